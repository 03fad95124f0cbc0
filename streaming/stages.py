"""Per-stage timing of the data path (lookup, fetch, decode, trim, resample, encode, send).

One StageClock per process accumulates seconds and counts per stage (the benchmark reads them), and
every observation also goes to the ``streaming_stage_seconds`` histogram.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from streaming.metrics import STAGE_SECONDS

STAGES = ("lookup", "fetch", "decode", "montage", "trim", "filter", "resample", "encode", "send")


class StageClock:
    """Thread-safe totals of time spent per stage (CPU stages run in executor threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, stage: str, seconds: float) -> None:
        STAGE_SECONDS.labels(stage).observe(seconds)
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            self.counts[stage] = self.counts.get(stage, 0) + 1

    @contextlib.contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - started)

    def snapshot(self) -> dict[str, tuple[float, int]]:
        """``{stage: (seconds, count)}`` as of now."""
        with self._lock:
            return {name: (self.seconds[name], self.counts[name]) for name in self.seconds}

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.counts.clear()
