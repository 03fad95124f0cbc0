"""Benchmark the streaming service end to end and its hot kernels; prints markdown tables.

Run from the repository root with ``make bench`` (``BENCH_ARGS="--quick"`` for a smoke run) or
``.venv/bin/python scripts/bench.py [--quick] [--json PATH] [--reps N]``.

What it measures (a benchmark, not a test: nothing here asserts a timing):

1. page latency through a real websocket against the real server (real Postgres, a local block
   directory and a moto S3 server), with the time per data-path stage from ``services.clock``;
2. peak memory of a short vs a very long window over a synthetic 1-hour recording, to show that
   memory is bounded by blocks, not by the window;
3. the min/max resampling kernel vs tsdownsample (and vs the pure-Python reference);
4. block decode (isal) vs stdlib gzip;
5. the hand-written protobuf encoder vs the official protobuf runtime.

Tables go to stdout, progress to stderr. Needs the shared EEG at ``../shared/data`` and a Postgres
(``streaming.devservices.scratch_database`` uses 127.0.0.1:5432 or an embedded one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import dataclasses
import gc
import gzip
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from streaming.config import Settings, load_settings  # noqa: E402
from streaming.devservices import S3Server, scratch_database  # noqa: E402
from streaming.resample.minmax import needs_resampling  # noqa: E402
from streaming.stages import STAGES  # noqa: E402
from tests.support.client import Page, ViewerClient  # noqa: E402
from tests.support.server import RunningServer, make_settings, start_server  # noqa: E402

SHARED_EEG = REPO_ROOT.parent / "shared" / "data" / "eeg-rest-30ch-250hz.edf"
EEG_RATE = 250.0
CORE_STAGES = ("lookup", "fetch", "decode", "trim", "resample", "encode", "send")
MB = 1024 * 1024
T0 = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {message}", file=sys.stderr, flush=True)


# -- configuration ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Plan:
    warmups: int
    reps: int
    synthetic_channels: int
    synthetic_rate: float
    synthetic_seconds: int
    memory_reps: int
    kernel_sizes: tuple[int, ...]
    kernel_groups: tuple[int, ...]
    kernel_repeat: int
    reference_samples: int
    decode_bytes: int
    decode_repeat: int
    encode_values: int
    encode_repeat: int


def make_plan(quick: bool, reps: int | None) -> Plan:
    if quick:
        plan = Plan(
            warmups=2,
            reps=8,
            synthetic_channels=8,
            synthetic_rate=1000.0,
            synthetic_seconds=600,
            memory_reps=2,
            kernel_sizes=(131_072, 1_000_000),
            kernel_groups=(10, 100),
            kernel_repeat=3,
            reference_samples=20_000,
            decode_bytes=8 * MB,
            decode_repeat=3,
            encode_values=1_000_000,
            encode_repeat=2,
        )
    else:
        plan = Plan(
            warmups=3,
            reps=30,
            synthetic_channels=8,
            synthetic_rate=1000.0,
            synthetic_seconds=3600,
            memory_reps=3,
            kernel_sizes=(131_072, 1_000_000, 10_000_000),
            kernel_groups=(10, 100),
            kernel_repeat=7,
            reference_samples=100_000,
            decode_bytes=8 * MB,
            decode_repeat=7,
            encode_values=1_000_000,
            encode_repeat=5,
        )
    return dataclasses.replace(plan, reps=reps) if reps else plan


def l1_cache_bytes(settings: Settings) -> int | None:
    """The in-process decoded-block cache size, or None when this version has no such cache."""
    cache = getattr(settings, "cache", None)
    value = getattr(cache, "l1_bytes", None)
    return int(value) if value is not None else None


def cache_off() -> dict[str, dict[str, object]]:
    """Settings sections that turn the in-process block cache off (nothing when there is none)."""
    return {"cache": {"l1_bytes": 0}} if l1_cache_bytes(load_settings(environ={})) is not None else {}


def cache_label(settings: Settings) -> str:
    size = l1_cache_bytes(settings)
    if size is None:
        return "none"
    return f"L1 {size / MB:g} MiB" if size else "off"


# -- small helpers ---------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1e3


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def duration_text(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def time_calls(function: Callable[[], object], repeat: int) -> list[float]:
    """Seconds per call of ``function``, after one untimed warm-up call."""
    function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(?:e[-+]?\d+)?\s*(?:x|%|MB|MiB|ms)?$")


def markdown_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], notes: Sequence[str] = ()
) -> str:
    """A titled markdown table; columns whose cells are all numbers are right-aligned."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in headers]
    aligns = ["---:" if col and all(_NUMBER.match(c) or c == "-" for c in col) else "---" for col in columns]
    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if notes:
        lines.append("")
        lines += list(notes)
    return "\n".join(lines) + "\n"


def machine_line() -> str:
    import isal
    import tsdownsample
    from google.protobuf.internal import api_implementation

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"Machine: nproc {cpus} ({model or platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"tsdownsample {tsdownsample.__version__}, isal {isal.__version__}, "
        f"protobuf backend {api_implementation.Type()}, {platform.system()} {platform.release()}; "
        f"load average {load_average()} at start"
    )


def load_average() -> str:
    try:
        return "/".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


# -- memory sampling -------------------------------------------------------------------------------


def _libc_trim() -> Callable[[], None]:
    """``malloc_trim(0)`` (glibc): give freed heap pages back, so RSS tracks live memory."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = libc.malloc_trim if libc is not None else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


malloc_trim = _libc_trim()


class PeakRss:
    """Samples this process's RSS every ``interval`` seconds in a thread; ``delta`` = max - baseline."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._process = psutil.Process()
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rss(self) -> int:
        return int(self._process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._rss())
            self.samples += 1

    def __enter__(self) -> PeakRss:
        gc.collect()
        malloc_trim()
        self.baseline = min(self._rss() for _ in range(3))
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def delta(self) -> int:
        return self.peak - self.baseline


# -- synthetic recording ---------------------------------------------------------------------------

SYNTHETIC_WRITER = Path(__file__).resolve().parent / "bench_helpers" / "synthetic_edf.py"


async def write_synthetic_edf(path: Path, channels: int, rate: float, seconds: int, seed: int) -> None:
    """Write the synthetic EDF in a child process, so building it does not inflate our RSS."""
    command = [sys.executable, str(SYNTHETIC_WRITER), str(path), "--channels", str(channels)]
    command += ["--rate", str(rate), "--seconds", str(seconds), "--seed", str(seed)]
    child = await asyncio.create_subprocess_exec(*command, stderr=asyncio.subprocess.PIPE)
    _, stderr = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"writing the synthetic EDF failed: {stderr.decode(errors='replace')}")


# -- 1-2. page latency through the real server ----------------------------------------------------


def page_request(package: Any, channels: Sequence[Any], start: int, end: int, pixel_width: float) -> dict:
    return {
        "packageId": package.package_id,
        "startTime": start,
        "endTime": end,
        "pixelWidth": pixel_width,
        "virtualChannels": [{"id": c.id, "name": c.name} for c in channels],
    }


def page_counts(page: Page) -> tuple[int, int]:
    """(values, frames) in a page."""
    frames = sum(len(messages) for messages in page.segments.values())
    values = sum(m.segment.nrPoints for messages in page.segments.values() for m in messages)
    return values, frames


async def run_series(
    server: RunningServer,
    package: Any,
    channels: Sequence[Any],
    windows: Sequence[tuple[int, int]],
    pixel_width: float,
    warmups: int,
) -> dict[str, Any]:
    """Warm up, then request every window once in turn on one websocket; times and stage totals."""
    client = await ViewerClient.connect(server.ws_url(package.package_id))
    try:
        for start, end in windows[:warmups]:
            await client.page(page_request(package, channels, start, end, pixel_width))
        measured = windows[warmups:]
        services = server.services
        services.clock.reset()
        reads, read_bytes = services.reader.store_reads, services.reader.store_bytes
        times: list[float] = []
        values = frames = 0
        for start, end in measured:
            request = page_request(package, channels, start, end, pixel_width)
            started = time.perf_counter()
            page = await client.page(request)
            times.append(time.perf_counter() - started)
            got_values, got_frames = page_counts(page)
            values += got_values
            frames += got_frames
        snapshot = services.clock.snapshot()
        count = len(measured)
        names = [*STAGES, *(name for name in snapshot if name not in STAGES)]
        return {
            "requests": count,
            "seconds": times,
            "median_ms": ms(statistics.median(times)),
            "p95_ms": ms(percentile(times, 95)),
            "values_per_request": values / count,
            "frames_per_request": frames / count,
            "store_reads_per_request": (services.reader.store_reads - reads) / count,
            "store_mb_per_request": (services.reader.store_bytes - read_bytes) / count / MB,
            "stages": {name: {"seconds": s, "count": n} for name, (s, n) in snapshot.items()},
            "stage_ms_per_request": {name: ms(snapshot.get(name, (0.0, 0))[0]) / count for name in names},
            "stage_calls_per_request": {name: snapshot.get(name, (0.0, 0))[1] / count for name in names},
        }
    finally:
        client.close()


def random_windows(
    start: int, end: int, seconds: float, count: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """``count`` windows of ``seconds`` at random millisecond offsets inside ``[start, end)``."""
    length = int(seconds * 1e6)
    span_ms = (end - start - length) // 1000
    offsets = rng.integers(0, max(1, span_ms), size=count) * 1000
    return [(start + int(o), start + int(o) + length) for o in offsets]


async def latency_benchmarks(
    plan: Plan, servers: Sequence[tuple[str, RunningServer, Any]], results: dict[str, Any]
) -> None:
    rng = np.random.default_rng(20240611)
    resampling_px = 40_000.0  # 10 samples per pixel at 250 Hz -> groups of 10
    raw_px = 5_000.0  # 1.25 samples per pixel -> raw samples
    long_px = 192_000.0  # whole 192 s recording on 1000 pixels -> groups of 48
    series = []
    count = plan.warmups + plan.reps
    windows_for: dict[str, list[tuple[int, int]]] = {}
    for store, server, package in servers:
        channels = package.channels
        start = min(c.start for c in channels)
        end = max(c.end for c in channels)
        # The same random windows for every server of a store, so cache variants compare fairly.
        windows = windows_for.setdefault(store, random_windows(start, end, 5.0, count, rng))
        series.append((store, "5 s, resampled", server, package, channels[:23], windows, resampling_px))
        series.append((store, "5 s, raw", server, package, channels[:23], windows, raw_px))
        series.append(
            (store, "long: whole 192 s", server, package, channels, [(start, end)] * count, long_px)
        )
    rows = []
    for store, label, server, package, channels, windows, pixel_width in series:
        cache = cache_label(server.settings)
        progress(f"latency: {store} (cache {cache}) {label} ({plan.warmups} warm-ups + {plan.reps} requests)")
        outcome = await run_series(server, package, channels, windows, pixel_width, plan.warmups)
        seconds = (windows[0][1] - windows[0][0]) / 1e6
        outcome.update(
            store=store,
            cache=cache,
            request=label,
            channels=len(channels),
            window_seconds=seconds,
            pixel_width=pixel_width,
            samples_per_pixel=pixel_width / (1e6 / EEG_RATE),
        )
        rows.append(outcome)
    results["latency"] = rows


def latency_tables(rows: list[dict[str, Any]], plan: Plan) -> str:
    with_cache = any(r["cache"] != "none" for r in rows)

    def who(r: dict[str, Any]) -> list[str]:
        return [r["store"], *([r["cache"]] if with_cache else []), r["request"]]

    who_headers = ["store", *(["block cache"] if with_cache else []), "request"]
    cache_note = (
        " 'block cache' is the in-process decoded-block cache (cache.l1_bytes); with it on, the "
        "warm-ups load every block these requests touch, so the measured requests are cache hits."
        if with_cache
        else " This version has no block cache: every request fetches and decodes its blocks."
    )
    latency = markdown_table(
        f"Page latency over a real websocket (shared EEG, 250 Hz, default 131,072-sample blocks; "
        f"{plan.reps} sequential requests after {plan.warmups} warm-ups)",
        [
            *who_headers,
            "channels",
            "window",
            "pixelWidth (us)",
            "samples/px",
            "values/request",
            "frames/request",
            "MiB read/request",
            "median ms",
            "p95 ms",
        ],
        [
            [
                *who(r),
                str(r["channels"]),
                f"{r['window_seconds']:g} s",
                f"{r['pixel_width']:,.0f}",
                fmt(r["samples_per_pixel"], 2),
                f"{r['values_per_request']:,.0f}",
                f"{r['frames_per_request']:,.0f}",
                fmt(r["store_mb_per_request"], 2),
                fmt(r["median_ms"]),
                fmt(r["p95_ms"]),
            ]
            for r in rows
        ],
        [
            "End-to-end time = sending the TimeSeriesRequest until the last frame of every channel is "
            "received and parsed by the client (the client runs in the same process and event loop "
            "as the server). The 5 s windows start at random offsets; 'resampled' is min/max in groups "
            "of 10 samples, 'raw' sends samples as stored. 'MiB read/request' is compressed bytes "
            "fetched from the block store." + cache_note,
        ],
    )
    names = list(dict.fromkeys(name for r in rows for name in r["stage_ms_per_request"]))
    unused = [
        n for n in names if n not in CORE_STAGES and not any(r["stage_ms_per_request"][n] for r in rows)
    ]
    shown = [n for n in names if n not in unused]
    stages = markdown_table(
        "Time per request by stage (ms, from services.clock)",
        [*who_headers, *shown, "sum of stages", "median wall"],
        [
            [
                *who(r),
                *(fmt(r["stage_ms_per_request"][name], 2) for name in shown),
                fmt(sum(r["stage_ms_per_request"].values()), 1),
                fmt(r["median_ms"]),
            ]
            for r in rows
        ],
        [
            "Stage totals of the measured requests divided by the request count (mean, not median). "
            "Stages overlap: channels are streamed concurrently (server.parallelism = 8), the next "
            "block is fetched while the current one is rendered, and CPU stages run in a 2-thread pool, "
            "so the stages can add up to more than the wall time. 'fetch' and 'send' are awaited "
            "times (they include waiting for the store, a pool thread or the socket), not CPU time; "
            "the CPU stages run in pool threads and include waiting for the GIL, which the event loop "
            "(server and client) holds much of the time."
            + (f" Stages these requests never enter are omitted: {', '.join(unused)}." if unused else ""),
        ],
    )
    return latency + "\n" + stages


# -- 3. memory over a synthetic long recording --------------------------------------------------------


async def memory_benchmark(plan: Plan, server: RunningServer, tmp: Path, results: dict[str, Any]) -> None:
    path = tmp / "synthetic.edf"
    progress(
        f"memory: writing synthetic EDF ({plan.synthetic_channels} ch x {plan.synthetic_rate:g} Hz x "
        f"{plan.synthetic_seconds} s) in a child process"
    )
    started = time.perf_counter()
    await write_synthetic_edf(
        path, plan.synthetic_channels, plan.synthetic_rate, plan.synthetic_seconds, seed=7
    )
    write_seconds = time.perf_counter() - started
    progress(f"memory: ingesting {path.stat().st_size / MB:,.0f} MiB EDF with default blocks")
    started = time.perf_counter()
    ingested = await server.ingest(path)
    ingest_seconds = time.perf_counter() - started
    path.unlink()
    package = ingested
    channels = package.channels
    start = min(c.start for c in channels)
    end = max(c.end for c in channels)
    rate = channels[0].rate
    block = server.settings.ingest.block_samples
    pixels = 2000
    cases = [
        ("short: 5 s", start + (end - start) // 2 // 1000 * 1000, 5.0, pixels),
        ("long: whole recording", start, (end - start) / 1e6, pixels),
    ]
    client = await ViewerClient.connect(server.ws_url(package.package_id))
    rows = []
    try:
        specs = []
        for label, case_start, seconds, px in cases:
            case_end = case_start + int(seconds * 1e6)
            pixel_width = (case_end - case_start) / px
            label += " (min/max)" if needs_resampling(pixel_width, rate) else " (raw)"
            specs.append((label, page_request(package, channels, case_start, case_end, pixel_width), seconds))
        # One warm-up of each (first-use allocations: thread stacks, pools), then alternate.
        for _, request, _ in specs:
            await client.page(request)
        measured: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in specs}
        for _ in range(plan.memory_reps):
            for label, request, _ in specs:
                with PeakRss() as rss:
                    t = time.perf_counter()
                    page = await client.page(request)
                    elapsed = time.perf_counter() - t
                values, frames = page_counts(page)
                del page
                measured[label].append(
                    {
                        "delta_mb": rss.delta / MB,
                        "baseline_mb": rss.baseline / MB,
                        "seconds": elapsed,
                        "values": values,
                        "frames": frames,
                        "rss_samples": rss.samples,
                    }
                )
        # Cross-check with the allocator's own count (Python objects and numpy buffers).
        traced: dict[str, float] = {}
        for label, request, _ in specs:
            gc.collect()
            tracemalloc.start()
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            await client.page(request)
            traced[label] = (tracemalloc.get_traced_memory()[1] - before) / MB
            tracemalloc.stop()
    finally:
        client.close()
    for label, request, seconds in specs:
        runs = measured[label]
        samples = round(seconds * rate)
        first = int((request["startTime"] - start) * rate / 1e6)
        blocks_touched = (first + samples - 1) // block - first // block + 1
        rows.append(
            {
                "window": label,
                "channels": len(channels),
                "window_seconds": seconds,
                "pixel_width": request["pixelWidth"],
                "samples_per_channel": samples,
                "window_decoded_mb": samples * 8 * len(channels) / MB,
                "blocks_per_channel": blocks_touched,
                "median_ms": ms(statistics.median(r["seconds"] for r in runs)),
                "peak_rss_delta_mb_median": statistics.median(r["delta_mb"] for r in runs),
                "peak_rss_delta_mb_max": max(r["delta_mb"] for r in runs),
                "traced_peak_mb": traced[label],
                "values": runs[-1]["values"],
                "runs": runs,
            }
        )
    results["memory"] = {
        "synthetic": {
            "channels": plan.synthetic_channels,
            "rate": plan.synthetic_rate,
            "seconds": plan.synthetic_seconds,
            "write_seconds": write_seconds,
            "ingest_seconds": ingest_seconds,
            "blocks": ingested.blocks,
            "block_samples": block,
            "parallelism": server.settings.server.parallelism,
            "cache": cache_label(server.settings),
        },
        "rows": rows,
    }


def memory_table(memory: dict[str, Any]) -> str:
    syn = memory["synthetic"]
    rows = memory["rows"]
    short, long = rows[0], rows[-1]
    ratio = (
        long["peak_rss_delta_mb_median"] / short["peak_rss_delta_mb_median"]
        if short["peak_rss_delta_mb_median"] > 0
        else float("nan")
    )
    return markdown_table(
        f"Peak memory, short vs whole-recording window (synthetic {syn['channels']} ch x "
        f"{syn['rate']:g} Hz x {duration_text(syn['seconds'])} random walk, {syn['blocks']} blocks of "
        f"{syn['block_samples']:,} samples, both windows on 2000 px)",
        [
            "window",
            "channels",
            "samples/channel",
            "blocks/channel",
            "window as float64 (MiB)",
            "values sent",
            "request ms",
            "peak RSS delta, median (MiB)",
            "peak RSS delta, max (MiB)",
            "tracemalloc peak (MiB)",
        ],
        [
            [
                r["window"],
                str(r["channels"]),
                f"{r['samples_per_channel']:,}",
                str(r["blocks_per_channel"]),
                fmt(r["window_decoded_mb"], 1),
                f"{r['values']:,}",
                fmt(r["median_ms"]),
                fmt(r["peak_rss_delta_mb_median"], 1),
                fmt(r["peak_rss_delta_mb_max"], 1),
                fmt(r["traced_peak_mb"], 1),
            ]
            for r in rows
        ],
        [
            f"Ratio long/short of the median peak RSS delta: **{fmt(ratio, 2)}x**, while the long window "
            f"holds {long['samples_per_channel'] / short['samples_per_channel']:,.0f}x the samples "
            f"({fmt(long['window_decoded_mb'], 0)} MiB as float64); tracemalloc peak ratio: "
            f"{fmt(long['traced_peak_mb'] / max(short['traced_peak_mb'], 1e-9), 2)}x.",
            f"RSS of this process (server and client run in it) sampled every 5 ms by a thread; delta = "
            f"max observed - baseline taken after gc + malloc_trim, {len(short['runs'])} runs each "
            f"(short and long alternating, after one warm-up each). tracemalloc peak: one more run with "
            f"tracemalloc on (Python objects + numpy buffers, not the interpreter/thread stacks). "
            f"Ingest: EDF written in {syn['write_seconds']:.1f} s, "
            f"ingested in {syn['ingest_seconds']:.1f} s; "
            f"server.parallelism = {syn['parallelism']} channels at once, each holding at most 2 blocks; "
            f"block cache: {syn['cache']} (so only the streaming path's own memory is measured).",
        ],
    )


# -- 4. resample kernel ----------------------------------------------------------------------------


def random_walk(count: int, seed: int) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).standard_normal(count))


def kernel_benchmarks(plan: Plan, results: dict[str, Any]) -> None:
    from tsdownsample import MinMaxDownsampler

    from streaming.resample.minmax import minmax_pairs
    from streaming.resample.reference import minmax_pairs_reference

    downsampler = MinMaxDownsampler()
    rows = []
    for size in plan.kernel_sizes:
        samples = random_walk(size, size)
        for group in plan.kernel_groups:
            progress(f"kernel: minmax {size:,} samples, group {group}")
            n_out = 2 * math.ceil(size / group)
            ours = time_calls(lambda s=samples, g=group: minmax_pairs(s, g), plan.kernel_repeat)
            theirs = time_calls(
                lambda s=samples, n=n_out: downsampler.downsample(s, n_out=n), plan.kernel_repeat
            )
            # Same values? tsdownsample returns the indices of each bin's min and max in time order.
            pairs = minmax_pairs(samples, group).reshape(-1, 2)
            indices = downsampler.downsample(samples, n_out=n_out)
            same = "-"
            if size % group == 0 and indices.shape[0] == n_out:
                picked = np.sort(samples[indices].reshape(-1, 2), axis=1)
                same = "yes" if np.array_equal(picked, pairs) else "no"
            ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
            rows.append(
                {
                    "samples": size,
                    "group": group,
                    "ours_seconds": ours,
                    "tsdownsample_seconds": theirs,
                    "ours_gbps": size * 8 / ours_s / 1e9,
                    "tsdownsample_gbps": size * 8 / theirs_s / 1e9,
                    "ratio": theirs_s / ours_s,
                    "same_values": same,
                }
            )
        del samples
    results["resample_kernel"] = rows

    progress(f"kernel: fast vs pure-Python reference on {plan.reference_samples:,} samples")
    samples = random_walk(plan.reference_samples, 3)
    as_list = samples.tolist()
    reference_rows = []
    for group in plan.kernel_groups:
        slow = time_calls(lambda g=group: minmax_pairs_reference(as_list, g), max(3, plan.kernel_repeat // 2))
        fast = time_calls(lambda g=group: minmax_pairs(samples, g), plan.kernel_repeat)
        equal = np.array_equal(
            np.asarray(minmax_pairs_reference(as_list, group)), minmax_pairs(samples, group)
        )
        reference_rows.append(
            {
                "samples": plan.reference_samples,
                "group": group,
                "reference_seconds": slow,
                "fast_seconds": fast,
                "speedup": statistics.median(slow) / statistics.median(fast),
                "same_values": "yes" if equal else "no",
            }
        )
    results["resample_reference"] = reference_rows


def kernel_tables(results: dict[str, Any]) -> str:
    kernel = markdown_table(
        "Min/max resample kernel vs tsdownsample (GB/s of float64 input, median; single thread)",
        [
            "samples",
            "group",
            "minmax_pairs GB/s",
            "tsdownsample MinMax GB/s",
            "ours/tsdownsample",
            "same values",
        ],
        [
            [
                f"{r['samples']:,}",
                str(r["group"]),
                fmt(r["ours_gbps"], 2),
                fmt(r["tsdownsample_gbps"], 2),
                f"{r['ratio']:.2f}x",
                r["same_values"],
            ]
            for r in results["resample_kernel"]
        ],
        [
            "tsdownsample: `MinMaxDownsampler().downsample(y, n_out=2*ceil(n/group))` (parallel=False), "
            "timing the call only (it returns indices). 'ours/tsdownsample' > 1 means ours is faster. "
            "'same values': tsdownsample's picks, sorted per bin, equal our (min, max) pairs "
            "('-': n is not a multiple of group, so tsdownsample's equal-width bins and our fixed "
            "groups differ). "
            "131,072 samples is one default stored block, the size the server resamples at a time.",
        ],
    )
    reference = markdown_table(
        "Fast kernel vs the pure-Python reference (streaming/resample/reference.py)",
        ["samples", "group", "reference ms", "minmax_pairs ms", "speedup", "same values"],
        [
            [
                f"{r['samples']:,}",
                str(r["group"]),
                fmt(ms(statistics.median(r["reference_seconds"])), 1),
                fmt(ms(statistics.median(r["fast_seconds"])), 3),
                f"{r['speedup']:,.0f}x",
                r["same_values"],
            ]
            for r in results["resample_reference"]
        ],
        ["The reference is given a Python list (conversion not timed); the fast kernel a float64 array."],
    )
    return kernel + "\n" + reference


# -- 5. decode -------------------------------------------------------------------------------------


def eeg_like_block(count: int, seed: int) -> np.ndarray:
    """A 16-bit-quantised random walk scaled to microvolts, like samples ingested from an EDF."""
    rng = np.random.default_rng(seed)
    digital = np.clip(np.cumsum(rng.integers(-40, 41, size=count)), -32768, 32767)
    return digital.astype(np.float64) * (6000.0 / 65535.0) + 1.5


def decode_benchmarks(plan: Plan, results: dict[str, Any]) -> None:
    from streaming.storage.codec import decode_block, encode_block

    samples = eeg_like_block(plan.decode_bytes // 8, 11)
    rows = []
    for level in (1, 6):
        progress(f"decode: {plan.decode_bytes / MB:g} MiB block, gzip level {level}")
        data = encode_block(samples, level)

        def stdlib(data: bytes = data) -> np.ndarray:
            return np.frombuffer(gzip.decompress(data), dtype=">f8").astype(np.float64)

        same = np.array_equal(decode_block(data), stdlib()) and np.array_equal(decode_block(data), samples)
        ours = time_calls(lambda data=data: decode_block(data), plan.decode_repeat)
        theirs = time_calls(stdlib, plan.decode_repeat)
        out = samples.nbytes
        rows.append(
            {
                "level": level,
                "raw_bytes": out,
                "compressed_bytes": len(data),
                "isal_seconds": ours,
                "stdlib_seconds": theirs,
                "isal_gbps": out / statistics.median(ours) / 1e9,
                "stdlib_gbps": out / statistics.median(theirs) / 1e9,
                "ratio": statistics.median(theirs) / statistics.median(ours),
                "same_values": "yes" if same else "no",
            }
        )
    results["decode"] = rows


def decode_table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(
        f"Block decode: decode_block (isal) vs stdlib gzip ({rows[0]['raw_bytes'] / MB:g} MiB block, "
        "GB/s of float64 output, median)",
        [
            "gzip level",
            "compressed MiB",
            "compression",
            "isal GB/s",
            "stdlib GB/s",
            "isal/stdlib",
            "same values",
        ],
        [
            [
                str(r["level"]),
                fmt(r["compressed_bytes"] / MB, 2),
                f"{r['raw_bytes'] / r['compressed_bytes']:.2f}x",
                fmt(r["isal_gbps"], 2),
                fmt(r["stdlib_gbps"], 2),
                f"{r['ratio']:.2f}x",
                r["same_values"],
            ]
            for r in rows
        ],
        [
            "Block = 16-bit-quantised random walk as big-endian float64 (what ingest writes). Both sides "
            "do the same work: inflate, then `np.frombuffer(..., '>f8').astype(float64)`.",
        ],
    )


# -- 6. encode -------------------------------------------------------------------------------------


def encode_benchmarks(plan: Plan, results: dict[str, Any]) -> None:
    from streaming.protocol.frames import SegmentHeader, encode_segment_message
    from tests.support.proto import TimeSeriesMessage

    progress(f"encode: {plan.encode_values:,}-value page, ours vs official protobuf")
    values = random_walk(plan.encode_values, 5)
    header = SegmentHeader(
        start_ts=1_223_966_892_000_000,
        source="N:channel:00000000-0000-0000-0000-000000000001",
        unit="uV",
        sample_period=4000.0,
        requested_sample_period=4000.0,
        page_start=1_223_966_892_000_000,
        page_end=1_223_966_892_000_000 + plan.encode_values * 4000,
        is_min_max=False,
        channel_name="Fp1",
    )

    def official_message() -> Any:
        message = TimeSeriesMessage()
        segment = message.segment
        segment.startTs = header.start_ts
        segment.source = header.source
        segment.lastUsed = header.last_used
        segment.unit = header.unit
        segment.samplePeriod = header.sample_period
        segment.requestedSamplePeriod = header.requested_sample_period
        segment.pageStart = header.page_start
        segment.isMinMax = header.is_min_max
        segment.unitM = header.unit_m
        segment.segmentType = header.segment_type
        segment.nrPoints = values.shape[0]
        segment.data.extend(values)
        segment.pageEnd = header.page_end
        segment.channelName = header.channel_name
        message.totalResponses = 1
        return message

    ours_bytes = encode_segment_message(header, values, 1, 0)
    built = official_message()
    official_bytes = built.SerializeToString()
    ours = time_calls(lambda: encode_segment_message(header, values, 1, 0), plan.encode_repeat)
    full = time_calls(lambda: official_message().SerializeToString(), plan.encode_repeat)
    serialize_only = time_calls(built.SerializeToString, plan.encode_repeat)
    results["encode"] = {
        "values": plan.encode_values,
        "bytes": len(ours_bytes),
        "ours_seconds": ours,
        "official_seconds": full,
        "official_serialize_only_seconds": serialize_only,
        "ratio": statistics.median(full) / statistics.median(ours),
        "identical": ours_bytes == official_bytes,
    }


def encode_table(encode: dict[str, Any]) -> str:
    return markdown_table(
        "Encode one page: encode_segment_message vs the official protobuf runtime (median)",
        [
            "values",
            "message MiB",
            "ours ms",
            "official: build + serialize ms",
            "official: SerializeToString only ms",
            "official/ours",
            "identical",
        ],
        [
            [
                f"{encode['values']:,}",
                fmt(encode["bytes"] / MB, 2),
                fmt(ms(statistics.median(encode["ours_seconds"])), 2),
                fmt(ms(statistics.median(encode["official_seconds"])), 1),
                fmt(ms(statistics.median(encode["official_serialize_only_seconds"])), 2),
                f"{encode['ratio']:.1f}x",
                "yes" if encode["identical"] else "no",
            ]
        ],
        [
            "Official: tests/support/proto.py TimeSeriesMessage, header fields set, "
            "`segment.data.extend(values)` (a numpy float64 array), then `SerializeToString()`. "
            "'identical' compares the two byte strings.",
        ],
    )


# -- services --------------------------------------------------------------------------------------


async def cache_benchmarks(plan: Plan, eeg: Path, tmp: Path, results: dict[str, Any]) -> None:
    """Redis entry codec candidates, then cold (S3) vs warm (Redis) vs hot (L1) pages."""
    from scripts.bench_helpers.cache_levels import codec_benchmark, level_benchmark
    from tests.support.redis_servers import RedisProcess

    redis_server = RedisProcess()
    try:
        progress("cache: Redis entry codecs on an 8 MiB block of the real EEG")
        results["cache_codec"] = await codec_benchmark(eeg, redis_server.url, plan.decode_repeat * 3)
        with contextlib.ExitStack() as stack:
            s3 = S3Server()
            stack.callback(s3.stop)
            database = stack.enter_context(scratch_database())
            settings = make_settings(
                database,
                f"s3://{s3.create_bucket()}/recordings/",
                s3.endpoint_url,
                redis={"url": redis_server.url},
            )
            async with start_server(settings) as server:
                package = await server.ingest(eeg)
                progress("cache: cold (S3) vs warm (Redis) vs hot (process memory) pages")
                client = redis_server.client()
                import redis.asyncio as aredis

                async_client = aredis.Redis.from_url(redis_server.url)
                try:
                    results["cache_levels"] = await level_benchmark(
                        server, package, async_client, max(5, plan.reps // 2)
                    )
                finally:
                    await async_client.aclose()
                    client.close()
    finally:
        redis_server.stop()


def cache_tables(results: dict[str, Any]) -> str:
    codec = markdown_table(
        "Redis entry representation (8 MiB block of the real EEG, median of repeated GET + decode)",
        ["representation", "MiB", "compression", "decode ms", "Redis GET ms", "GET + decode ms", "GB/s"],
        [
            [
                r["name"],
                fmt(r["mib"], 2),
                f"{r['ratio']:.2f}x",
                fmt(r["decode_ms"]),
                fmt(r["get_ms"]),
                fmt(r["total_ms"]),
                fmt(r["gbps"], 2),
            ]
            for r in results["cache_codec"]
        ],
        [
            "GB/s of float64 samples delivered. EEG stored as 16-bit-quantised floats barely compresses; "
            "what decides is GET + decode time. blosc2 (byte shuffle + zstd-1) is what the cache stores.",
        ],
    )
    levels = results["cache_levels"]
    cold = levels["cold"]["median_ms"]
    rows = [
        [
            name,
            fmt(levels[key]["median_ms"]),
            f"{cold / levels[key]['median_ms']:.1f}x",
            fmt(levels[key]["store_mib_per_request"], 2),
        ]
        for key, name in (
            ("cold", "cold: S3 (moto) + decode"),
            ("warm", "warm: Redis (L2)"),
            ("hot", "hot: process memory (L1)"),
        )
    ]
    table = markdown_table(
        "README request (23 channels, 5 s, raw) by cache level, one run",
        ["level", "median ms", "speed-up vs cold", "MiB read from the store per request"],
        rows,
        [
            "Bytes read from the block store on the second pass of a request: "
            f"{levels['second_pass_store_bytes']}."
        ],
    )
    return codec + "\n" + table


async def service_benchmarks(plan: Plan, eeg: Path, tmp: Path, results: dict[str, Any]) -> None:
    """Latency series for each store (and, when this version has one, with and without the block
    cache), then the memory benchmark on its own server."""
    default_cache = l1_cache_bytes(load_settings(environ={}))
    variants: list[dict[str, dict[str, object]]] = [{}]
    if default_cache:
        variants.append(cache_off())
    with contextlib.ExitStack() as stack:
        progress("services: starting moto S3 server and two scratch Postgres databases")
        s3 = S3Server()
        stack.callback(s3.stop)
        stores = {
            "local": ((tmp / "blocks").as_uri() + "/", ""),
            "s3": (f"s3://{s3.create_bucket()}/recordings/", s3.endpoint_url),
        }
        databases = {store: stack.enter_context(scratch_database()) for store in stores}
        ingests = []
        servers: list[tuple[str, RunningServer, Any]] = []
        async with contextlib.AsyncExitStack() as running:
            for store, (url, endpoint) in stores.items():
                for variant in variants:
                    settings = make_settings(databases[store], url, endpoint, **variant)
                    server = await running.enter_async_context(start_server(settings))
                    # The second variant shares the database and store: ingest finds the package.
                    started = time.perf_counter()
                    package = await server.ingest(eeg)
                    if not package.already_ingested:
                        progress(f"services: ingested the shared EEG into the {store} store")
                        ingests.append(
                            {
                                "store": store,
                                "channels": len(package.channels),
                                "blocks": package.blocks,
                                "seconds": time.perf_counter() - started,
                            }
                        )
                    servers.append((store, server, package))
            results["ingest"] = ingests
            await latency_benchmarks(plan, servers, results)
        with scratch_database() as database:
            settings = make_settings(database, (tmp / "synthetic-blocks").as_uri() + "/", **cache_off())
            async with start_server(settings) as server:
                await memory_benchmark(plan, server, tmp, results)


def ingest_table(rows: list[dict[str, Any]], block_samples: int) -> str:
    return markdown_table(
        f"Setup: ingest of the shared EEG (192 s, 30 ch, 250 Hz; default {block_samples:,}-sample blocks)",
        ["store", "channels", "blocks", "ingest s"],
        [[r["store"], str(r["channels"]), str(r["blocks"]), fmt(r["seconds"], 2)] for r in rows],
        [
            "48,000 samples per channel fit in one default block, so every request for this EEG reads "
            "and decodes each requested channel's whole recording, however short the window.",
        ],
    )


# -- main ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller inputs (smoke run)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the raw numbers as JSON")
    parser.add_argument("--reps", type=int, default=None, help="measured requests per latency series")
    args = parser.parse_args(argv)
    if not SHARED_EEG.exists():
        print(
            f"bench: the shared EEG {SHARED_EEG} is absent; the benchmark needs ../shared/data next to "
            "this checkout.",
            file=sys.stderr,
        )
        return 2
    plan = make_plan(args.quick, args.reps)
    machine = machine_line()
    with contextlib.suppress(OSError):
        if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
            progress(f"warning: the machine is busy (load average {load_average()}); numbers will be noisy")
    results: dict[str, Any] = {"machine": machine, "quick": args.quick, "plan": dataclasses.asdict(plan)}
    started = time.perf_counter()

    # Micro-benchmarks first, while no server or moto process competes for the two cores.
    kernel_benchmarks(plan, results)
    decode_benchmarks(plan, results)
    encode_benchmarks(plan, results)
    with tempfile.TemporaryDirectory(prefix="streaming-bench-") as tmp:
        asyncio.run(service_benchmarks(plan, SHARED_EEG, Path(tmp), results))
        asyncio.run(cache_benchmarks(plan, SHARED_EEG, Path(tmp), results))
    results["total_seconds"] = time.perf_counter() - started
    progress(f"done in {results['total_seconds']:.0f} s")

    block_samples = load_settings(environ={}).ingest.block_samples
    parts = [
        f"## Benchmark{' (--quick)' if args.quick else ''}\n\n{machine}\n",
        ingest_table(results["ingest"], block_samples),
        latency_tables(results["latency"], plan),
        memory_table(results["memory"]),
        kernel_tables(results),
        decode_table(results["decode"]),
        encode_table(results["encode"]),
        cache_tables(results),
        f"Total run time: {results['total_seconds']:.0f} s.\n",
    ]
    print("\n".join(parts))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
        progress(f"raw numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
