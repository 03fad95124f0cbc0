"""window_indices against a brute force over every sample time, in exact rational arithmetic.

Sample ``i`` of a block is at ``lo + i * 1e6 / rate`` microseconds (storage.md) and a window keeps
``start <= t < end`` (protocol.md). The brute force evaluates that for every sample with integers
only (the rate as an exact fraction p/q), so it has no float rounding of its own: a float brute force
would round ``lo + i * period`` to 0.25 us at epoch-sized times and misjudge samples near an edge.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from streaming.dsp.trim import sample_period_us, sample_time_us, window_indices

EPOCH_2024 = 1_712_345_678_000_000
# (float rate handed to the code, exact rate used by the brute force)
RATES = {
    "250": (250.0, Fraction(250)),
    "256": (256.0, Fraction(256)),
    "500": (500.0, Fraction(500)),
    "1000": (1000.0, Fraction(1000)),
    "200.5": (200.5, Fraction(401, 2)),
    "30000": (30000.0, Fraction(30000)),
    "1/3": (1 / 3, Fraction(1, 3)),
}
# Edges are whole microseconds, sample times need not be (200.5 Hz puts them on a 1/401 us grid). A
# sample less than 10 ns from an edge, but not on it, may count as on it: that is float rounding, far
# below the protocol's 1 us resolution. Anything a whole microsecond or more away must be judged exactly.
_AMBIGUOUS_US = Fraction(1, 100)


def _brute_force(lo: int, rate: Fraction, count: int, start: int, end: int) -> list[int]:
    """Indices of the samples with start <= lo + i * 1e6 / rate < end, checked one by one."""
    p, q = rate.numerator, rate.denominator
    kept = []
    for i in range(count):
        # t_i * p = lo * p + i * 1e6 * q, all integers
        scaled = lo * p + i * 10**6 * q
        if start * p <= scaled < end * p:
            kept.append(i)
    return kept


def _samples_before(lo: int, rate: Fraction, count: int, edge: int) -> set[int]:
    """Acceptable values for "how many samples lie before ``edge``": one, or two near an ambiguous edge."""
    position = (edge - lo) * rate / 10**6  # the edge, in samples from the block start
    exact = min(max(math.ceil(position), 0), count)
    allowed = {exact}
    nearest = round(position)
    distance_us = abs(position - nearest) * 10**6 / rate
    if 0 < distance_us < _AMBIGUOUS_US and 0 <= nearest < count:
        allowed |= {nearest, nearest + 1}
    return {min(max(a, 0), count) for a in allowed}


def _check(lo: int, rate_name: str, count: int, start: int, end: int) -> None:
    rate_float, rate = RATES[rate_name]
    i0, i1 = window_indices(lo, rate_float, count, start, end)
    context = f"lo={lo} rate={rate_name} count={count} window=[{start}, {end})"
    assert 0 <= i0 <= i1 <= count, context
    before_start = _samples_before(lo, rate, count, start)
    before_end = _samples_before(lo, rate, count, end)
    if len(before_start) == 1 and len(before_end) == 1:
        kept = _brute_force(lo, rate, count, start, end)
        assert list(range(i0, i1)) == kept, context
        if kept:
            assert (i0, i1) == (kept[0], kept[-1] + 1), context
        else:
            # An empty window sits where it falls: before, between or after the samples.
            assert i0 == i1 == next(iter(before_start)), context
    else:
        assert i0 in before_start, context
        assert i1 in {max(b, i0) for b in before_end}, context


def _sample_time(lo: int, rate: Fraction, index: int) -> Fraction:
    return lo + index * 10**6 / rate


def _random_window(rng: np.random.Generator, lo: int, rate: Fraction, count: int) -> tuple[int, int]:
    period = 10**6 / rate
    block_end = _sample_time(lo, rate, count)
    span = max(1, math.ceil(block_end - lo))
    kind = int(rng.integers(0, 9))
    if kind == 0:  # wholly before the block
        end = lo - int(rng.integers(0, span + 1))
        start = end - int(rng.integers(1, span + 2))
    elif kind == 1:  # wholly after the block
        start = math.ceil(block_end) + int(rng.integers(0, span + 1))
        end = start + int(rng.integers(1, span + 2))
    elif kind == 2:  # overlapping the left edge
        start = lo - int(rng.integers(1, span + 1))
        end = lo + int(rng.integers(1, span + 1))
    elif kind == 3:  # overlapping the right edge
        start = lo + int(rng.integers(0, span))
        end = math.ceil(block_end) + int(rng.integers(1, span + 1))
    elif kind == 4:  # covering the whole block
        start = lo - int(rng.integers(0, span + 1))
        end = math.ceil(block_end) + int(rng.integers(1, span + 1))
    elif kind == 5:  # inside
        start = lo + int(rng.integers(0, span))
        end = start + int(rng.integers(1, span + 1))
    else:  # edges at, just before or just after sample times
        first, second = sorted(int(i) for i in rng.integers(-2, count + 3, size=2))
        start = _edge_near(rng, _sample_time(lo, rate, first))
        end = _edge_near(rng, _sample_time(lo, rate, second))
        if end <= start:
            end = start + max(1, int(rng.integers(1, math.ceil(period) + 2)))
    return start, end


def _edge_near(rng: np.random.Generator, time: Fraction) -> int:
    choice = int(rng.integers(0, 5))
    if choice == 0:
        return math.floor(time)
    if choice == 1:
        return math.ceil(time)
    if choice == 2:
        return math.floor(time) - 1
    if choice == 3:
        return math.ceil(time) + 1
    return round(time)


@pytest.mark.parametrize("rate_name", list(RATES))
def test_random_windows_match_the_brute_force(rate_name: str) -> None:
    rng = np.random.default_rng(sum(map(ord, rate_name)))
    _, rate = RATES[rate_name]
    for _ in range(800):
        count = int(rng.integers(0, 300)) if rng.integers(0, 8) else int(rng.integers(0, 3))
        lo = int(rng.choice([0, 1_000, EPOCH_2024, EPOCH_2024 + int(rng.integers(0, 10**12))]))
        start, end = _random_window(rng, lo, rate, count)
        _check(lo, rate_name, count, start, end)


@pytest.mark.parametrize("rate_name", list(RATES))
def test_windows_exactly_on_sample_times(rate_name: str) -> None:
    """Edges on integer sample times: the start sample is kept, the end sample is not."""
    _, rate = RATES[rate_name]
    lo = EPOCH_2024
    count = 900 if rate_name == "200.5" else 120  # 200.5 Hz is on whole microseconds every 401 samples
    on_grid = [i for i in range(count + 1) if _sample_time(lo, rate, i).denominator == 1]
    assert len(on_grid) >= 2
    for a in on_grid:
        for b in on_grid:
            if a < b:
                start, end = int(_sample_time(lo, rate, a)), int(_sample_time(lo, rate, b))
                rate_float = RATES[rate_name][0]
                assert window_indices(lo, rate_float, count, start, end) == (a, min(b, count))
                _check(lo, rate_name, count, start, end)


@pytest.mark.parametrize("rate_name", list(RATES))
def test_adjacent_windows_partition_the_block(rate_name: str) -> None:
    """Consecutive windows [e_k, e_k+1) never drop or duplicate a sample, whatever the edges."""
    rate_float, rate = RATES[rate_name]
    rng = np.random.default_rng(7)
    lo, count = EPOCH_2024 + 17, 500
    block_end = math.ceil(_sample_time(lo, rate, count))
    for _ in range(50):
        cuts = sorted({int(c) for c in rng.integers(lo - 10, block_end + 10, size=8)})
        edges = [lo - 10**7, *cuts, block_end + 10**7]
        seen = []
        for start, end in itertools.pairwise(edges):
            i0, i1 = window_indices(lo, rate_float, count, start, end)
            seen.extend(range(i0, i1))
        assert seen == list(range(count))


@pytest.mark.parametrize(
    ("rate", "start", "end", "expected"),
    [
        (1 / 3, 3_000_001, 9_000_000, (2, 3)),  # sample 1 is at 3,000,000: 1 us before the window
        (1 / 3, 0, 3_000_001, (0, 2)),  # sample 1 is at 3,000,000: 1 us before the window's end
        (1.0, 1_000_001, 3_000_000, (2, 3)),
        (0.1, 10_000_005, 30_000_000, (2, 3)),
        (1 / 3600, 3_600_003_000, 7_200_000_000, (2, 2)),  # 3 ms after an hourly sample
    ],
)
def test_low_rate_edges_one_microsecond_off_a_sample(rate, start, end, expected) -> None:
    """Regression: the edge tolerance was 1e-6 *samples*, i.e. whole microseconds at 1 Hz and below."""
    assert window_indices(0, rate, 10, start, end) == expected


def test_known_values_at_250_hz() -> None:
    lo = 1_000_000
    assert window_indices(lo, 250.0, 100, lo, lo + 4000) == (0, 1)
    assert window_indices(lo, 250.0, 100, lo + 1, lo + 4000) == (1, 1)  # between samples 0 and 1
    assert window_indices(lo, 250.0, 100, lo + 1, lo + 4001) == (1, 2)
    assert window_indices(lo, 250.0, 100, lo - 10**9, lo + 10**9) == (0, 100)
    assert window_indices(lo, 250.0, 100, lo - 10, lo) == (0, 0)
    assert window_indices(lo, 250.0, 100, lo + 400_000, lo + 500_000) == (100, 100)  # block ends at 396 ms
    assert window_indices(lo, 250.0, 100, lo + 396_000, lo + 396_001) == (99, 100)


def test_large_block_far_from_zero() -> None:
    """A 100 MiB block (13,107,200 samples) at 30 kHz: edges on exact sample times deep inside it."""
    lo, count, rate = EPOCH_2024, 13_107_200, 30000.0
    for index in (3, 3 * 1234567, 13_107_196 // 3 * 3):
        start = lo + index * 100 // 3  # exact: 3 samples every 100 us
        assert window_indices(lo, rate, count, start, start + 100) == (index, index + 3)


def test_sample_helpers() -> None:
    assert sample_period_us(250.0) == 4000.0
    assert sample_period_us(1 / 3) == pytest.approx(3e6)
    assert sample_time_us(10, 250.0, 3) == 12_010
    assert sample_time_us(EPOCH_2024, 30000.0, 2) == EPOCH_2024 + 67  # 66.67 rounds up
    assert sample_time_us(EPOCH_2024, 200.5, 401) == EPOCH_2024 + 2_000_000
