"""Butterworth filters in second-order sections, with state carried across consecutive pages.

Designed with scipy in SOS form: the transfer-function (b, a) form loses stability at high orders
and low cutoffs, SOS does not. A filter's state is warmed up on a reflection of the first samples
it sees (as ``scipy.signal.filtfilt`` pads), so the first page shows no start-up transient.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import signal

FILTER_KINDS = ("lowpass", "highpass", "bandpass", "bandstop")
MAX_ORDER = 12
# A page continues the previous one when its first sample is at most this many samples after the
# previous page's last; further away, the state restarts.
CONTINUITY_SAMPLES = 100
MAX_WARMUP_SAMPLES = 20_000
# Edges below this fraction of the sample rate make singular designs (1e-6: 0.005 Hz at 5 kHz).
MIN_EDGE_FRACTION = 1e-6


class FilterSpecError(ValueError):
    """Filter parameters that cannot make a stable filter for this channel."""


@dataclasses.dataclass(frozen=True)
class FilterSpec:
    kind: str
    order: int
    low_hz: float | None  # lower edge (highpass cutoff, band low edge)
    high_hz: float | None  # upper edge (lowpass cutoff, band high edge)

    @classmethod
    def from_request(cls, kind: str, parameters: tuple[float, ...]) -> FilterSpec:
        """Parse protocol.md's ``[order, cutoffHz]`` or ``[order, centreHz, widthHz]``."""
        if kind not in FILTER_KINDS:
            raise FilterSpecError(f"unknown filter {kind!r}; expected one of {', '.join(FILTER_KINDS)}")
        expected = 2 if kind in ("lowpass", "highpass") else 3
        if len(parameters) != expected:
            shape = "[order, cutoffHz]" if expected == 2 else "[order, centreHz, widthHz]"
            raise FilterSpecError(f"{kind} takes {shape}, got {list(parameters)}")
        if not all(math.isfinite(p) for p in parameters):
            raise FilterSpecError("filter parameters must be finite numbers")
        order = parameters[0]
        if not order.is_integer() or not 1 <= order <= MAX_ORDER:
            raise FilterSpecError(f"filter order must be a whole number from 1 to {MAX_ORDER}, got {order:g}")
        if kind == "lowpass":
            return cls(kind, int(order), None, parameters[1])
        if kind == "highpass":
            return cls(kind, int(order), parameters[1], None)
        centre, width = parameters[1], parameters[2]
        if width <= 0:
            raise FilterSpecError(f"band width must be positive, got {width:g} Hz")
        return cls(kind, int(order), centre - width / 2, centre + width / 2)

    def check_rate(self, rate: float) -> None:
        """Raise FilterSpecError unless the filter is stable for ``rate`` (see ``design``)."""
        self.design(rate)

    def design(self, rate: float) -> np.ndarray:
        """The filter as second-order sections for ``rate``.

        Raises FilterSpecError unless every edge lies between ``rate * MIN_EDGE_FRACTION`` and
        Nyquist and the design is finite with a steady state (needed to warm the state up).
        """
        nyquist = rate / 2
        lowest = rate * MIN_EDGE_FRACTION
        for edge in (self.low_hz, self.high_hz):
            if edge is not None and not lowest <= edge < nyquist:
                raise FilterSpecError(
                    f"{self.kind} edge {edge:g} Hz is outside [{lowest:g}, {nyquist:g}) Hz: "
                    f"the channel is sampled at {rate:g} Hz, so its Nyquist limit is {nyquist:g} Hz"
                )
        try:
            sos = self._design(rate)
            steady = signal.sosfilt_zi(sos)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise FilterSpecError(f"{self.kind} filter cannot be designed at {rate:g} Hz: {exc}") from exc
        if not (np.all(np.isfinite(sos)) and np.all(np.isfinite(steady))):
            raise FilterSpecError(f"{self.kind} filter is numerically unstable at {rate:g} Hz")
        return sos

    def _design(self, rate: float) -> np.ndarray:
        if self.kind == "lowpass":
            edges: float | list[float] = self.high_hz  # type: ignore[assignment]
        elif self.kind == "highpass":
            edges = self.low_hz  # type: ignore[assignment]
        else:
            edges = [self.low_hz, self.high_hz]  # type: ignore[list-item]
        sos = signal.butter(self.order, edges, btype=self.kind, fs=rate, output="sos")
        return np.asarray(sos, dtype=np.float64)

    def warmup_samples(self, rate: float) -> int:
        """Padding long enough for the filter's transient to die down (about 3 time constants)."""
        slowest = min(edge for edge in (self.low_hz, self.high_hz) if edge is not None)
        if self.kind in ("bandpass", "bandstop") and self.high_hz is not None and self.low_hz is not None:
            slowest = min(slowest, self.high_hz - self.low_hz)
        return int(min(MAX_WARMUP_SAMPLES, math.ceil(3 * self.order * rate / max(slowest, 1e-3))))


def warm_state(sos: np.ndarray, first_samples: np.ndarray, pad: int) -> np.ndarray:
    """The filter state after running over an odd reflection of the start of the signal.

    This is the padding ``scipy.signal.filtfilt`` uses: ``2 * x[0] - x[pad:0:-1]``, entered from the
    steady state for a constant ``x[pad]``-valued input.
    """
    pad = max(0, min(pad, first_samples.shape[0] - 1))
    if pad == 0:
        return signal.sosfilt_zi(sos) * (first_samples[0] if first_samples.shape[0] else 0.0)
    reflected = 2 * first_samples[0] - first_samples[pad:0:-1]
    zi = signal.sosfilt_zi(sos) * reflected[0]
    _, state = signal.sosfilt(sos, reflected, zi=zi)
    return state


@dataclasses.dataclass
class ChannelFilter:
    """A filter applied to one channel for the rest of a connection, with its running state."""

    spec: FilterSpec
    rate: float
    sos: np.ndarray
    state: np.ndarray | None = None
    next_time_us: float | None = None  # time the next sample would have to continue this state

    @classmethod
    def create(cls, spec: FilterSpec, rate: float) -> ChannelFilter:
        return cls(spec, rate, spec.design(rate))

    def reset(self) -> None:
        self.state = None
        self.next_time_us = None

    def apply(self, samples: np.ndarray, first_time_us: float) -> np.ndarray:
        """Filter consecutive samples starting at ``first_time_us``; continues or restarts the state."""
        if samples.shape[0] == 0:
            return samples
        period = 1e6 / self.rate
        continues = (
            self.state is not None
            and self.next_time_us is not None
            and -0.5 * period <= first_time_us - self.next_time_us <= CONTINUITY_SAMPLES * period
        )
        if not continues:
            pad = min(self.spec.warmup_samples(self.rate), MAX_WARMUP_SAMPLES)
            self.state = warm_state(self.sos, samples, pad)
        filtered, self.state = signal.sosfilt(self.sos, samples, zi=self.state)
        self.next_time_us = first_time_us + samples.shape[0] * period
        return filtered
