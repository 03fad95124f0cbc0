"""Raw samples and unit (spike) events of one channel in a window, bounded by a limit."""

from __future__ import annotations

import numpy as np

from streaming.cache.reader import BlockReader
from streaming.dsp.trim import window_indices
from streaming.errors import BlockReadError, QueryLimitExceeded
from streaming.index.database import IndexDatabase
from streaming.index.models import Channel
from streaming.storage.base import BlockNotFound, BlockStore, StoreUnavailable
from streaming.storage.codec import BlockFormatError, inflate

_EVENT = np.dtype([("time", ">i8"), ("unit", "u1")])


async def continuous_samples(
    index: IndexDatabase, reader: BlockReader, channel: Channel, start: int, end: int, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Times (int64 us) and values of every sample in ``[start, end)``; QueryLimitExceeded past
    ``limit`` samples (checked block by block, so memory never exceeds the limit)."""
    blocks = (await index.blocks_for([channel.id], start, end))[channel.id]
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    total = 0
    period = 1e6 / channel.rate
    for block in blocks:
        samples = await reader.samples(block)
        first, stop = window_indices(block.lo, channel.rate, samples.shape[0], start, end)
        total += stop - first
        if total > limit:
            raise QueryLimitExceeded(
                f"the window holds more than {limit} samples of {channel.name}; ask for a shorter one",
                [channel.name],
            )
        times.append(np.rint(block.lo + np.arange(first, stop) * period).astype(np.int64))
        values.append(samples[first:stop])
    if not times:
        return np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate(times), np.concatenate(values)


def sample_pairs(times: np.ndarray, values: np.ndarray) -> list[list[int | float]]:
    """``[[timeMicros, value], ...]`` with integer times (np.column_stack would make them floats)."""
    return [[t, v] for t, v in zip(times.tolist(), values.astype(np.float64).tolist(), strict=True)]


def decode_events(data: bytes) -> np.ndarray:
    """A ``tsindex`` object: gzip of 9-byte records (big-endian int64 time, one byte unit id)."""
    raw = inflate(data)
    if len(raw) % _EVENT.itemsize:
        raise BlockFormatError(f"event index of {len(raw)} bytes is not a whole number of 9-byte records")
    return np.frombuffer(raw, dtype=_EVENT)


async def unit_events(
    index: IndexDatabase, store: BlockStore, channel: Channel, start: int, end: int, limit: int
) -> np.ndarray:
    """Event times (int64 us) of a unit channel in ``[start, end)``, in time order."""
    found: list[np.ndarray] = []
    total = 0
    for run in await index.unit_blocks_for(channel.id, start, end):
        try:
            events = decode_events(await store.get(run.tsindex))
        except (BlockNotFound, StoreUnavailable, BlockFormatError) as exc:
            raise BlockReadError(
                f"event index {run.tsindex} could not be read: {exc}", [channel.name]
            ) from exc
        times = events["time"].astype(np.int64)
        times = times[(times >= start) & (times < end)]
        total += times.shape[0]
        if total > limit:
            raise QueryLimitExceeded(
                f"the window holds more than {limit} events of {channel.name}", [channel.name]
            )
        found.append(times)
    return np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
