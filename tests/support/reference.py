"""Expected pages computed independently of the server: the EDF read with pyedflib, plain numpy loops.

Shares no code with streaming/: block boundaries, trimming and min/max are re-derived here from
protocol.md and storage.md.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from pathlib import Path

import numpy as np
import pyedflib


@dataclasses.dataclass(frozen=True)
class ReferenceChannel:
    label: str
    rate: float
    start_us: int
    samples: np.ndarray


def read_edf(path: Path) -> dict[str, ReferenceChannel]:
    """Every data channel of a plain (continuous) EDF, by label, with pyedflib."""
    with pyedflib.EdfReader(str(path)) as reader:
        start = reader.getStartdatetime().replace(tzinfo=datetime.UTC)
        start_us = int(start.timestamp()) * 1_000_000
        channels = {}
        for i, label in enumerate(reader.getSignalLabels()):
            channels[label] = ReferenceChannel(
                label=label,
                rate=float(reader.getSampleFrequency(i)),
                start_us=start_us,
                samples=reader.readSignal(i).astype(np.float64),
            )
    return channels


@dataclasses.dataclass(frozen=True)
class ExpectedMessage:
    start_ts: int | None  # None for an empty message
    values: np.ndarray
    is_min_max: bool
    sample_period: float


def expected_messages(
    channel: ReferenceChannel,
    block_samples: int,
    start: int,
    end: int,
    pixel_width: float,
    query_limit: int | None = None,
) -> list[ExpectedMessage]:
    """What the server must send for one channel of a continuous recording cut in fixed-size blocks.

    ``query_limit`` (README): a block whose answer would hold more values gets coarser groups, the
    fewest samples per group whose pairs fit (a limit of 1 counts as 2).
    """
    period = 1e6 / channel.rate
    count = channel.samples.shape[0]
    resample = pixel_width / period > 3
    group = max(1, math.floor(pixel_width * channel.rate / 1e6 + 0.5)) if resample else 1  # halves up
    messages = []
    for first in range(0, count, block_samples):
        stop = min(first + block_samples, count)
        lo = round(channel.start_us + first * period)
        hi = round(channel.start_us + stop * period)
        if not (lo < end and start < hi):
            continue
        times = channel.start_us + np.arange(first, stop) * period
        inside = np.nonzero((times >= start) & (times < end))[0]
        window = channel.samples[first:stop][inside]
        block_group = group
        produced = len(window) if not resample else 2 * -(-len(window) // group)
        if query_limit is not None and produced > max(2, query_limit):
            pairs = max(2, query_limit) // 2
            block_group = max(group, 1)
            while -(-len(window) // block_group) > pairs:
                block_group += 1
        if block_group > 1:
            values = []
            for g in range(0, len(window), block_group):
                values += [window[g : g + block_group].min(), window[g : g + block_group].max()]
            values = np.array(values)
        else:
            values = window
        first_time = round(times[inside[0]]) if len(inside) else None
        messages.append(ExpectedMessage(first_time, values, block_group > 1, period * block_group))
    if not messages:
        messages.append(ExpectedMessage(None, np.empty(0), resample, period * group))
    return messages
