"""Min/max resampling (protocol.md 1.2): the fast kernel against the slow reference and plain numpy."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from streaming.resample import group_size, minmax_pairs, needs_resampling
from streaming.resample.reference import minmax_pairs_reference

PRIMES = [5, 7, 11, 13, 97, 101, 997, 1009]
SIZES = [0, 1, 2, 3, *PRIMES, 64, 100, 128, 1000, 1024, 4096]


def _numpy_minmax(samples: np.ndarray, group: int) -> np.ndarray:
    """An independent computation: pad the tail group with its own first value, reduce rows."""
    count = len(samples)
    if count == 0:
        return np.empty(0)
    groups = -(-count // group)
    padded = np.resize(samples, groups * group)  # placeholder for the pad, overwritten below
    padded[count:] = samples[(groups - 1) * group]  # a value of the tail group: does not move min/max
    rows = padded.reshape(groups, group)
    return np.column_stack([rows.min(axis=1), rows.max(axis=1)]).ravel()


def _data(count: int, seed: int, with_inf: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(-3.0, 50.0, count)  # negative and positive values
    if with_inf and count:
        where = rng.integers(0, count, size=max(1, count // 50))
        values[where] = rng.choice(np.array([np.inf, -np.inf]), size=len(where))
    return values


def _same(actual: np.ndarray, expected) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.dtype == np.float64
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("with_inf", [False, True])
@pytest.mark.parametrize("count", SIZES)
def test_matches_reference_for_group_sizes_1_to_50(count: int, with_inf: bool) -> None:
    samples = _data(count, seed=count, with_inf=with_inf)
    for group in range(1, 51):
        result = minmax_pairs(samples, group)
        _same(result, minmax_pairs_reference(samples.tolist(), group))
        _same(result, _numpy_minmax(samples, group))


@pytest.mark.parametrize("count", [1, 2, 3, 7, 50, 1009])
def test_group_larger_than_the_data_gives_one_pair(count: int) -> None:
    samples = _data(count, seed=7, with_inf=False)
    for group in (count, count + 1, 2 * count + 3, 10**6):
        result = minmax_pairs(samples, group)
        _same(result, [samples.min(), samples.max()])
        _same(result, minmax_pairs_reference(samples.tolist(), group))


def test_random_sizes_and_groups() -> None:
    rng = np.random.default_rng(42)
    for _ in range(300):
        count = int(rng.integers(0, 3000))
        group = int(rng.integers(1, 400))
        samples = _data(count, seed=int(rng.integers(0, 2**31)), with_inf=bool(rng.integers(0, 2)))
        result = minmax_pairs(samples, group)
        assert len(result) == 2 * math.ceil(count / group)
        _same(result, minmax_pairs_reference(samples.tolist(), group))
        _same(result, _numpy_minmax(samples, group))


def test_pairs_are_ordered_and_bound_their_group() -> None:
    samples = _data(1003, seed=3, with_inf=True)
    group = 10
    result = minmax_pairs(samples, group)
    lows, highs = result[0::2], result[1::2]
    assert np.all(lows <= highs)
    for index, (low, high) in enumerate(zip(lows, highs, strict=True)):
        chunk = samples[index * group : (index + 1) * group]
        assert low in chunk and high in chunk
        assert np.all((chunk >= low) & (chunk <= high))


def test_tail_group_is_kept() -> None:
    samples = np.array([5.0, -1.0, 2.0, 9.0, -7.0])
    _same(minmax_pairs(samples, 2), [-1.0, 5.0, 2.0, 9.0, -7.0, -7.0])


def test_all_infinities() -> None:
    samples = np.array([np.inf, -np.inf, np.inf, np.inf, -np.inf, -np.inf, np.inf])
    _same(minmax_pairs(samples, 2), [-np.inf, np.inf, np.inf, np.inf, -np.inf, -np.inf, np.inf, np.inf])


def test_group_one_duplicates_each_sample() -> None:
    samples = _data(17, seed=1, with_inf=True)
    _same(minmax_pairs(samples, 1), np.repeat(samples, 2))


def test_input_is_not_modified_and_views_work() -> None:
    base = _data(200, seed=9, with_inf=False)
    keep = base.copy()
    view = base[3::3]
    _same(minmax_pairs(view, 4), minmax_pairs_reference(view.tolist(), 4))
    np.testing.assert_array_equal(base, keep)


@pytest.mark.parametrize("group", [0, -1, -100])
def test_group_below_one_is_rejected(group: int) -> None:
    with pytest.raises(ValueError):
        minmax_pairs(np.arange(10.0), group)
    with pytest.raises(ValueError):
        minmax_pairs(np.empty(0), group)


# protocol.md: resample iff pixelWidth / (1e6 / rate) > 3; group = round(pixelWidth * rate / 1e6), halves up.
# Computed here with exact fractions, so the float path in the implementation is checked too.


def _exact_ratio(pixel_width: float, rate: float | Fraction) -> Fraction:
    return Fraction(pixel_width) * Fraction(rate) / 10**6


RATES = [250.0, 256.0, 500.0, 1000.0, 200.5, 30000.0, 1 / 3, 512.0, 2048.0, 1.0]


@pytest.mark.parametrize("rate", RATES)
def test_needs_resampling_matches_the_protocol_rule(rate: float) -> None:
    rng = np.random.default_rng(int(rate * 1000))
    period = 1e6 / rate
    widths = [1.0, period, 2 * period, 3 * period, 4 * period, 100 * period, 14098.0, 1e9]
    widths += [float(w) for w in rng.uniform(0.1 * period, 10 * period, 500)]
    widths += [float(w) for w in rng.integers(1, int(10 * period) + 2, 500)]
    for width in widths:
        ratio = _exact_ratio(width, rate)
        if abs(ratio - 3) < Fraction(1, 10**9):
            continue  # within float error of the boundary: checked with exact cases below
        assert needs_resampling(width, rate) == (ratio > 3), (width, rate)


@pytest.mark.parametrize(
    ("pixel_width", "rate", "expected"),
    [
        (12000, 250.0, False),  # exactly 3 samples per pixel is not "more than 3"
        (12001, 250.0, True),
        (11999, 250.0, False),
        (3000, 1000.0, False),
        (3001, 1000.0, True),
        (11718.75, 256.0, False),  # 3 * 3906.25
        (11718.76, 256.0, True),
        (100, 30000.0, False),  # exactly 3 samples
        (101, 30000.0, True),
        (9_000_000, 1 / 3, False),
        (9_000_001, 1 / 3, True),
        (14098, 250.0, True),
        (4000, 250.0, False),
    ],
)
def test_needs_resampling_at_the_boundary(pixel_width: float, rate: float, expected: bool) -> None:
    assert needs_resampling(pixel_width, rate) is expected


@pytest.mark.parametrize("rate", RATES)
def test_group_size_matches_the_protocol_rule(rate: float) -> None:
    rng = np.random.default_rng(int(rate * 7))
    period = 1e6 / rate
    widths = [float(w) for w in rng.uniform(3 * period, 1000 * period, 1000)]
    widths += [float(w) for w in rng.integers(int(3 * period) + 1, int(50 * period) + 2, 500)]
    for width in widths:
        exact = _exact_ratio(width, rate)
        if abs(exact - math.floor(exact) - Fraction(1, 2)) < Fraction(1, 10**9):
            continue  # a float-rounding tie: the exact ties are checked below
        assert group_size(width, rate) == max(1, math.floor(exact + Fraction(1, 2))), (width, rate)


@pytest.mark.parametrize(
    ("pixel_width", "rate", "expected"),
    [
        (14098, 250.0, 4),  # 3.5245 samples per pixel
        (16000, 250.0, 4),
        (17999, 250.0, 4),
        (18001, 250.0, 5),
        (18000, 250.0, 5),  # 4.5: halves round up (Python's round would give 4)
        (10000, 250.0, 3),  # 2.5
        (14000, 250.0, 4),  # 3.5
        (1_000_000, 250.0, 250),
        (1_000_000, 30000.0, 30000),
        (30_000_000, 1 / 3, 10),
        (1000, 1000.0, 1),
        (1, 250.0, 1),  # far below one sample per pixel: still at least one sample per group
        (0.001, 1.0, 1),
    ],
)
def test_group_size_known_values(pixel_width: float, rate: float, expected: int) -> None:
    assert group_size(pixel_width, rate) == expected


def test_group_size_is_at_least_one() -> None:
    for width in (1e-9, 0.5, 1.0, 100.0):
        for rate in RATES:
            assert group_size(width, rate) >= 1


def test_absurd_pixel_widths_give_one_finite_group() -> None:
    """A pixel wider than any recording (up to float's largest) is one group, never an overflow."""
    for width in (1e18, 1e300, 1.7e308):
        group = group_size(width, 30_000.0)
        assert group == 2**53
        assert minmax_pairs(np.arange(10.0), group).tolist() == [0.0, 9.0]


def test_resampled_group_always_has_more_than_one_sample() -> None:
    """Whenever the rule says resample, the group spans at least 3 samples (ratio > 3 rounds to >= 3)."""
    rng = np.random.default_rng(11)
    for rate in RATES:
        for width in rng.uniform(1, 50 * 1e6 / rate, 300):
            if needs_resampling(float(width), rate):
                assert group_size(float(width), rate) >= 3


@pytest.mark.parametrize("group", [1, 7, 100, 65_537, 300_000])
def test_large_inputs_processed_in_chunks_match_plain_numpy(group):
    samples = np.random.default_rng(group).standard_normal(1_000_003)
    full = samples.shape[0] // group
    mins = [samples[i : i + group].min() for i in range(0, samples.shape[0], group)] if group > 1000 else None
    expected = np.empty(2 * -(-samples.shape[0] // group))
    body = samples[: full * group].reshape(full, group)
    expected[0 : 2 * full : 2] = body.min(axis=1)
    expected[1 : 2 * full : 2] = body.max(axis=1)
    if samples.shape[0] % group:
        expected[-2:] = samples[full * group :].min(), samples[full * group :].max()
    result = minmax_pairs(samples, group)
    np.testing.assert_array_equal(result, expected)
    if mins is not None:
        np.testing.assert_array_equal(result[0::2], mins)
