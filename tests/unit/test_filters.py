"""Filter parameters, stability checks and carried state (pure scipy, no server)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from streaming.dsp.filters import MAX_ORDER, ChannelFilter, FilterSpec, FilterSpecError


def _spec(kind: str, parameters: tuple[float, ...]) -> FilterSpec:
    """A spec from protocol parameters, as floats the way the request parser hands them on."""
    return FilterSpec.from_request(kind, tuple(float(p) for p in parameters))


@pytest.mark.parametrize(
    ("kind", "parameters", "needle"),
    [
        ("notch", (4, 50.0), "unknown filter"),
        ("lowpass", (4, 50.0, 2.0), "[order, cutoffHz]"),
        ("bandpass", (4, 10.0), "[order, centreHz, widthHz]"),
        ("lowpass", (4, float("nan")), "finite"),
        ("highpass", (float("inf"), 1.0), "finite"),
        ("lowpass", (0, 10.0), "order"),
        ("lowpass", (MAX_ORDER + 1, 10.0), "order"),
        ("lowpass", (2.5, 10.0), "order"),
        ("bandstop", (4, 50.0, 0.0), "width"),
        ("bandpass", (4, 50.0, -1.0), "width"),
    ],
)
def test_bad_parameters_are_refused(kind: str, parameters: tuple[float, ...], needle: str) -> None:
    with pytest.raises(FilterSpecError) as caught:
        _spec(kind, parameters)
    assert needle in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "parameters", "rate"),
    [
        ("lowpass", (4, 125.0), 250.0),  # exactly Nyquist
        ("lowpass", (4, 300.0), 250.0),
        ("highpass", (4, 1e-9), 5000.0),  # far below anything a design survives
        ("bandstop", (4, 10.0, 30.0), 250.0),  # width > 2 * centre: the low edge is negative
        ("bandpass", (4, 120.0, 20.0), 250.0),  # the high edge passes Nyquist
    ],
)
def test_edges_outside_the_channel_rate_name_the_rate_and_limit(
    kind: str, parameters: tuple[float, ...], rate: float
) -> None:
    spec = _spec(kind, parameters)
    with pytest.raises(FilterSpecError) as caught:
        spec.design(rate)
    assert f"{rate:g} Hz" in str(caught.value) and f"{rate / 2:g}" in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "parameters", "rate"),
    [
        ("bandpass", (8, 0.75, 0.5), 5000.0),  # 8th order 0.5-1 Hz at 5 kHz: unstable as (b, a)
        ("highpass", (12, 0.1), 5000.0),
        ("lowpass", (12, 1.0), 1000.0),
        ("bandstop", (4, 50.0, 4.0), 250.0),
    ],
)
def test_hard_designs_stay_finite_on_long_inputs(
    kind: str, parameters: tuple[float, ...], rate: float
) -> None:
    spec = _spec(kind, parameters)
    channel_filter = ChannelFilter.create(spec, rate)
    rng = np.random.default_rng(5)
    samples = rng.normal(0, 50, int(rate * 60))
    filtered = channel_filter.apply(samples, 0.0)
    assert np.all(np.isfinite(filtered)) and np.abs(filtered).max() < 1e4


def test_consecutive_pages_equal_one_pass_over_the_concatenation() -> None:
    rate = 250.0
    spec = _spec("bandpass", (4, 10.0, 5.0))
    samples = np.random.default_rng(1).normal(0, 20, 3000)
    split = 1234  # longer than the warm-up padding, so both runs start from the same state
    assert spec.warmup_samples(rate) < split
    paged = ChannelFilter.create(spec, rate)
    first = paged.apply(samples[:split], 0.0)
    second = paged.apply(samples[split:], split * 1e6 / rate)
    one_pass = ChannelFilter.create(spec, rate).apply(samples, 0.0)
    np.testing.assert_allclose(np.concatenate([first, second]), one_pass, rtol=1e-9, atol=1e-9)


def test_a_jump_restarts_the_state_without_a_transient() -> None:
    rate = 250.0
    spec = _spec("lowpass", (4, 30.0))
    channel_filter = ChannelFilter.create(spec, rate)
    level = np.full(2000, 100.0)
    channel_filter.apply(np.zeros(2000), 0.0)
    # 101 samples after the last page's end: not a continuation, so no step from 0 to 100 is filtered.
    jumped = channel_filter.apply(level, (2000 + 101) * 1e6 / rate)
    np.testing.assert_allclose(jumped, 100.0, rtol=1e-6)
    continued = ChannelFilter.create(spec, rate)
    continued.apply(np.zeros(2000), 0.0)
    stepped = continued.apply(level, (2000 + 100) * 1e6 / rate)
    assert abs(stepped[0] - 100.0) > 50, "within 100 samples the state carries on"


def test_reset_forgets_the_state() -> None:
    spec = _spec("highpass", (2, 1.0))
    channel_filter = ChannelFilter.create(spec, 250.0)
    channel_filter.apply(np.ones(100), 0.0)
    channel_filter.reset()
    assert channel_filter.state is None and channel_filter.next_time_us is None


def test_design_is_scipy_butterworth_in_sections() -> None:
    spec = _spec("bandstop", (4, 50.0, 4.0))
    expected = signal.butter(4, [48.0, 52.0], btype="bandstop", fs=500.0, output="sos")
    np.testing.assert_array_equal(spec.design(500.0), expected)
