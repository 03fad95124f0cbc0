"""Which samples of a block fall inside a request window."""

from __future__ import annotations

import math

# Sample times are lo + i * 1e6 / rate microseconds; a sample within this many microseconds of a
# window edge counts as on it, so float rounding never drops or duplicates an edge sample. Kept in
# time, not samples, so it stays far below 1 us at any rate.
_EDGE_TOLERANCE_US = 1e-3


def sample_period_us(rate: float) -> float:
    """Microseconds between consecutive samples."""
    return 1e6 / rate


def window_indices(lo: int, rate: float, count: int, start: int, end: int) -> tuple[int, int]:
    """Half-open index range ``[i0, i1)`` of the samples of a block inside ``[start, end)``.

    Parameters
    ----------
    lo : int
        Time of the block's first sample, microseconds.
    rate : float
        Sample rate, Hz.
    count : int
        Number of samples in the block (from its data, never from the stored end).
    start, end : int
        The request window, microseconds, half-open.
    """
    scale = rate / 1e6
    tolerance = _EDGE_TOLERANCE_US * scale
    i0 = math.ceil((start - lo) * scale - tolerance)
    i1 = math.ceil((end - lo) * scale - tolerance)
    i0 = min(max(i0, 0), count)
    i1 = min(max(i1, i0), count)
    return i0, i1


def sample_time_us(lo: int, rate: float, index: int) -> int:
    """Time of sample ``index`` of a block starting at ``lo``, rounded to whole microseconds."""
    return round(lo + index * 1e6 / rate)
