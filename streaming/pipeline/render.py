"""Turn one decoded block into one ``TimeSeriesMessage`` for one channel of one request (pure numpy)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from streaming.dsp.filters import ChannelFilter
from streaming.dsp.trim import sample_period_us, sample_time_us, window_indices
from streaming.protocol.frames import SegmentHeader, encode_segment_message
from streaming.resample.minmax import group_size, minmax_pairs, needs_resampling
from streaming.stages import StageClock


@dataclasses.dataclass(frozen=True)
class ChannelPage:
    """What one channel of one page request must produce. Times are absolute microseconds."""

    channel_id: str
    channel_name: str  # the virtual name from the request, echoed as channelName
    unit: str
    rate: float
    start: int
    end: int
    pixel_width: float
    query_limit: int | None = None
    time_offset: int = 0  # subtracted from every time sent (startAtEpoch)
    secondary_id: str | None = None  # montage: samples are this page's channel minus this one
    filter: ChannelFilter | None = dataclasses.field(default=None, compare=False)


def _header(page: ChannelPage, start_ts: int, sample_period: float, is_min_max: bool) -> SegmentHeader:
    offset = page.time_offset
    return SegmentHeader(
        start_ts=max(0, start_ts - offset),
        source=page.channel_id,
        unit=page.unit,
        sample_period=sample_period,
        requested_sample_period=page.pixel_width,
        page_start=page.start - offset,
        page_end=page.end - offset,
        is_min_max=is_min_max,
        channel_name=page.channel_name,
    )


def reduce_window(window: np.ndarray, page: ChannelPage, clock: StageClock) -> tuple[np.ndarray, int]:
    """Min/max-resample when the page asks for it or the query limit forces it.

    Returns the values and the group size (1 for raw samples).
    """
    group = group_size(page.pixel_width, page.rate) if needs_resampling(page.pixel_width, page.rate) else 1
    count = window.shape[0]
    produced = count if group == 1 else 2 * math.ceil(count / group)
    # A (min, max) pair is the smallest answer that covers a window, so a limit of 1 acts as 2.
    limit = None if page.query_limit is None else max(2, page.query_limit)
    if limit is not None and produced > limit:
        # Never cut a page short: coarsen the groups until the (min, max) pairs fit in the limit.
        group = max(group, math.ceil(count / (limit // 2)))
    if group == 1:
        return window, 1
    with clock.stage("resample"):
        return minmax_pairs(window, group), group


def render_block(
    samples: np.ndarray,
    block_lo: int,
    page: ChannelPage,
    sequence_id: int,
    total: int,
    clock: StageClock,
) -> bytes:
    """Trim ``samples`` (a block starting at ``block_lo``) to the page, reduce, and encode."""
    with clock.stage("trim"):
        first, stop = window_indices(block_lo, page.rate, samples.shape[0], page.start, page.end)
        window = samples[first:stop]
    if page.filter is not None:
        with clock.stage("filter"):
            window = page.filter.apply(window, block_lo + first * sample_period_us(page.rate))
    values, group = reduce_window(window, page, clock)
    period = sample_period_us(page.rate) * group
    start_ts = sample_time_us(block_lo, page.rate, first) if window.shape[0] else page.start
    with clock.stage("encode"):
        return encode_segment_message(_header(page, start_ts, period, group > 1), values, total, sequence_id)


def render_empty(page: ChannelPage, clock: StageClock) -> bytes:
    """The single message for a window with no data: empty values, ``totalResponses = 1``."""
    resampled = needs_resampling(page.pixel_width, page.rate)
    group = group_size(page.pixel_width, page.rate) if resampled else 1
    with clock.stage("encode"):
        header = _header(page, page.start, sample_period_us(page.rate) * group, resampled)
        return encode_segment_message(header, np.empty(0), 1, 0)
