"""Slow, obviously correct min/max resampling, the yardstick for the fast kernel's tests."""

from __future__ import annotations

from collections.abc import Sequence


def minmax_pairs_reference(samples: Sequence[float], group: int) -> list[float]:
    """``[min, max]`` of each run of ``group`` samples, the last run possibly shorter."""
    out: list[float] = []
    for first in range(0, len(samples), group):
        chunk = list(samples[first : first + group])
        out.append(min(chunk))
        out.append(max(chunk))
    return out
