"""/metrics counts exactly what a scripted session did.

Why deltas of the global registry, not a fresh registry per test: every metric is a module-level
object of ``streaming.metrics`` registered in prometheus-client's global ``REGISTRY`` at import, and
``/metrics`` renders that registry; the code that increments them imports the objects directly, so
there is no registry to hand a server. (Giving the metrics an injectable registry would be a change
to ``streaming/metrics.py`` and to everything that imports it.) Deltas are exact all the same: the
session runs on a private server (its own database, local block store and L1 cache; the shared EEG
ingested in 10,000-sample blocks by ``eeg_server_with``), tests run one at a time in this process,
and every step compares the change of *every* ``streaming_*`` counter and histogram count between
two scrapes with the full set of changes the step must make. A count that moves when it should not
(a stage that is not expected, such as resample, or a cache result) fails as surely as one that
does not move.

Not compared exactly: histogram sums and buckets (durations), and the gauges, which are set rather
than incremented (open websockets and the Postgres pool are checked by value instead). Requests
that stop mid-page would race their own frames; they are made deterministic by replacing the block
that must be in flight with a named pipe in the local store, so its read blocks, observably, until
the test writes the block's bytes into the pipe. A store failure that is not "missing" is a socket
file in place of a block (opening it fails with ENXIO).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import tornado.httpclient
import tornado.websocket
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import eeg_server_with
from tests.support.client import ViewerClient
from tests.support.edf_writer import EdfSignalSpec, write_edf_plus
from tests.support.proto import decode_message

S = 1_000_000  # microseconds per second; the fixture's blocks are 10,000 samples: 40 s at 250 Hz

Key = tuple[str, tuple[tuple[str, str], ...]]

# Gauges: set, not incremented; checked on their own.
_GAUGES = ("streaming_websocket_connections", "streaming_db_pool_connections")


def key(name: str, **labels: str) -> Key:
    return name, tuple(sorted(labels.items()))


OPEN_SOCKETS = key("streaming_websocket_connections")


class Scraper:
    """GET /metrics, parsed; counts its own requests, which /metrics counts too."""

    def __init__(self, server) -> None:
        self.server = server
        self.scrapes = 0

    async def __call__(self) -> dict[Key, float]:
        response = await tornado.httpclient.AsyncHTTPClient().fetch(self.server.http_url("/metrics"))
        self.scrapes += 1
        assert response.headers["Content-Type"].startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(response.body.decode()):
            for sample in family.samples:
                samples[key(sample.name, **sample.labels)] = sample.value
        return samples

    async def until(self, name: str, value: float, timeout: float = 20.0, **labels: str) -> dict[Key, float]:
        """Scrape until the sample reaches ``value`` (for effects that land after the client saw
        the reply); returns that scrape."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            samples = await self()
            if samples.get(key(name, **labels), 0.0) >= value:
                return samples
            assert asyncio.get_running_loop().time() < deadline, f"{name}{labels} never reached {value}"
            await asyncio.sleep(0.02)


def counted(samples: dict[Key, float]) -> dict[Key, float]:
    """The samples that only grow by what the service did: counters and histogram counts."""
    return {
        k: v
        for k, v in samples.items()
        if k[0].startswith("streaming_")
        and not k[0].endswith(("_bucket", "_sum", "_created"))
        and k[0] not in _GAUGES
    }


def changes(before: dict[Key, float], after: dict[Key, float]) -> dict[Key, float]:
    old, new = counted(before), counted(after)
    moved = {k: new.get(k, 0.0) - old.get(k, 0.0) for k in old.keys() | new.keys()}
    return {k: v for k, v in moved.items() if v != 0}


def stages(**counts: int) -> dict[Key, float]:
    return {key("streaming_stage_seconds_count", stage=s): n for s, n in counts.items() if n}


def cache(hit: int = 0, miss: int = 0) -> dict[Key, float]:
    found: dict[Key, float] = {}
    if hit:
        found[key("streaming_cache_requests_total", level="l1", result="hit")] = hit
    if miss:
        found[key("streaming_cache_requests_total", level="l1", result="miss")] = miss
    return found


def store(ok: int = 0, read_bytes: int = 0, **failed: int) -> dict[Key, float]:
    found: dict[Key, float] = {
        key("streaming_store_reads_total", backend="local", outcome=o): n for o, n in failed.items()
    }
    if ok:
        found[key("streaming_store_reads_total", backend="local", outcome="ok")] = ok
    if read_bytes:
        found[key("streaming_store_read_bytes_total", backend="local")] = read_bytes
    return found


def page_outcome(outcome: str) -> dict[Key, float]:
    return {key("streaming_request_seconds_count", kind="page", outcome=outcome): 1}


def http(handler: str, status: int, count: int = 1) -> dict[Key, float]:
    return {key("streaming_http_requests_total", handler=handler, status=str(status)): count}


class Tally:
    """Every frame the test's viewers received, as the server should have counted it."""

    def __init__(self) -> None:
        self.frames: collections.Counter[str] = collections.Counter()
        self.bytes: collections.Counter[str] = collections.Counter()
        self._mark: tuple[collections.Counter[str], collections.Counter[str]] = (
            collections.Counter(),
            collections.Counter(),
        )

    def add(self, frame: str | bytes | None) -> None:
        if isinstance(frame, bytes):
            self.frames["binary"] += 1
            self.bytes["binary"] += len(frame)
        elif isinstance(frame, str):
            self.frames["text"] += 1
            self.bytes["text"] += len(frame.encode())

    def since_mark(self) -> dict[Key, float]:
        """The sent-frame counters the frames received since the last call must have moved."""
        frames, sizes = self.frames - self._mark[0], self.bytes - self._mark[1]
        self._mark = (collections.Counter(self.frames), collections.Counter(self.bytes))
        found: dict[Key, float] = {}
        for kind in ("binary", "text"):
            if frames[kind]:
                found[key("streaming_messages_sent_total", kind=kind)] = frames[kind]
                found[key("streaming_bytes_sent_total", kind=kind)] = sizes[kind]
        return found


class CountingViewer(ViewerClient):
    tally: Tally

    @classmethod
    async def open(cls, url: str, tally: Tally) -> CountingViewer:
        viewer = cls(await tornado.websocket.websocket_connect(url))
        viewer.tally = tally
        return viewer

    async def receive(self, timeout: float = 20.0) -> str | bytes | None:
        frame = await super().receive(timeout)
        self.tally.add(frame)
        return frame


class Gate:
    """A stored block replaced by a named pipe: reading it blocks until ``release``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self._writer: int | None = None
        path.unlink()
        os.mkfifo(path)

    async def reached(self, timeout: float = 20.0) -> None:
        """Wait until the store is reading the block (a reader has the pipe open)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._writer is None:
            try:
                self._writer = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                assert asyncio.get_running_loop().time() < deadline, f"nobody read {self.path.name}"
                await asyncio.sleep(0.01)

    async def release(self) -> None:
        """Hand the waiting reader the block's real bytes, and put the regular file back."""
        if self._writer is None:
            with contextlib.suppress(OSError):  # ENXIO: nobody is waiting
                self._writer = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        if self._writer is not None:
            writer, self._writer = self._writer, None
            os.set_blocking(writer, True)
            with contextlib.suppress(BrokenPipeError):
                await asyncio.to_thread(_write_all, writer, self.data)
            os.close(writer)
        self.path.unlink()
        self.path.write_bytes(self.data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@contextlib.asynccontextmanager
async def gated(path: Path) -> AsyncIterator[Gate]:
    gate = Gate(path)
    try:
        yield gate
    finally:
        await gate.release()


def make_unreadable(path: Path) -> None:
    """Replace a stored block with a socket file: opening it fails with ENXIO, an OSError that is
    not "not found" (permissions would not do: the tests may run as root)."""
    path.unlink()
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX) as unix:
            unix.bind(f"/proc/self/fd/{directory}/{path.name}")  # a short path: sun_path is 108 bytes
    finally:
        os.close(directory)


def _request(channels, start: int, end: int) -> dict[str, Any]:
    return {
        "startTime": start,
        "endTime": end,
        "pixelWidth": 4000,  # one sample period at 250 Hz: raw samples, no resample stage
        "virtualChannels": [{"id": c.id, "name": c.name} for c in channels],
    }


async def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_metrics_count_a_scripted_session_exactly(tmp_path, shared_eeg, caplog):
    caplog.set_level(logging.INFO, logger="streaming.requests")
    # Keep-alives would add text frames at a time of their own choosing.
    async with eeg_server_with(tmp_path, shared_eeg, keepalive_seconds=3600.0) as server:
        package = next(iter(server.packages.values()))
        c = package.channels
        t0 = c[0].start
        assert all(ch.start == t0 and ch.rate == 250.0 for ch in c)
        services = server.services
        index, local = services.index, services.store
        assert local.backend == "local"

        async def blocks(channels, start: int, end: int):
            found = await index.blocks_for([ch.id for ch in channels], start, end)
            return [found[ch.id] for ch in channels]

        def size(*refs) -> int:
            return sum(local.path_for(ref.location).stat().st_size for ref in refs)

        scrape = Scraper(server)
        tally = Tally()

        async def step(action, expected) -> tuple[dict[Key, float], dict[Key, float]]:
            """Run ``action``; then every counter must have moved by exactly ``expected`` (a dict, or
            a function giving it once the action ran), plus the frames the viewers received and
            this step's own scrapes."""
            tally.since_mark()
            before = await scrape()
            scrapes = scrape.scrapes
            await action()
            after = await scrape()
            want = {
                **(expected() if callable(expected) else expected),
                **tally.since_mark(),
                **http("MetricsHandler", 200, scrape.scrapes - scrapes),
            }
            got = changes(before, after)
            assert got == want, f"{action.__name__}: " + ", ".join(
                f"{name}{dict(labels)}: {got.get((name, labels), 0)} != {want.get((name, labels), 0)}"
                for name, labels in sorted(got.keys() | want.keys())
                if got.get((name, labels), 0) != want.get((name, labels), 0)
            )
            return before, after

        # -- one viewer: cold page, the same page from L1, a page partly in L1 ------------------
        viewer: CountingViewer | None = None

        async def connect() -> None:
            nonlocal viewer
            viewer = await CountingViewer.open(server.ws_url(package.package_id), tally)

        before, after = await step(connect, http("TimeSeriesSocket", 101))
        assert after[OPEN_SOCKETS] - before[OPEN_SOCKETS] == 1
        assert viewer is not None

        first = _request(c[:3], t0 + 10 * S, t0 + 50 * S)  # blocks 0 and 1 of three channels
        first_blocks = await blocks(c[:3], first["startTime"], first["endTime"])
        assert [len(b) for b in first_blocks] == [2, 2, 2]
        first_bytes = size(*(ref for refs in first_blocks for ref in refs))
        assert first_bytes > 0

        async def read_first() -> None:
            page = await viewer.page(first)
            assert sorted(len(v) for v in page.segments.values()) == [2, 2, 2] and page.texts == []

        await step(
            read_first,
            {
                **cache(miss=6),
                **store(ok=6, read_bytes=first_bytes),
                **stages(lookup=1, fetch=6, decode=6, trim=6, encode=6, send=6),
                **page_outcome("ok"),
            },
        )
        await step(
            read_first,
            {**cache(hit=6), **stages(lookup=1, trim=6, encode=6, send=6), **page_outcome("ok")},
        )

        third = _request(c[:4], t0 + 30 * S, t0 + 90 * S)  # blocks 0-2: six of the twelve in L1
        third_blocks = await blocks(c[:4], third["startTime"], third["endTime"])
        assert [len(b) for b in third_blocks] == [3, 3, 3, 3]
        cold = [refs[2] for refs in third_blocks[:3]] + third_blocks[3]

        async def read_third() -> None:
            page = await viewer.page(third)
            assert sorted(len(v) for v in page.segments.values()) == [3, 3, 3, 3] and page.texts == []

        await step(
            read_third,
            {
                **cache(hit=6, miss=6),
                **store(ok=6, read_bytes=size(*cold)),
                **stages(lookup=1, fetch=6, decode=6, trim=12, encode=12, send=12),
                **page_outcome("ok"),
            },
        )

        # -- one bad message ------------------------------------------------------------------
        async def bad_message() -> None:
            await viewer.send(_request(c[:1], t0 + 20 * S, t0 + 10 * S))  # ends before it starts
            assert (await viewer.receive_json())["error"] == "InvalidRequest"

        await step(bad_message, {key("streaming_bad_messages_total", error="InvalidRequest"): 1})

        # -- a dump: one request in flight (its second block unreadable for now), two queued ----
        dumped = _request(c[5:6], t0 + 10 * S, t0 + 50 * S)
        (dumped_blocks,) = await blocks(c[5:6], dumped["startTime"], dumped["endTime"])
        assert len(dumped_blocks) == 2

        now = await scrape()
        dump_before = now.get(key("streaming_requests_cancelled_total", reason="dump"), 0.0)
        cancelled_before = now.get(
            key("streaming_request_seconds_count", kind="page", outcome="cancelled"), 0.0
        )

        async def dump() -> None:
            async with gated(local.path_for(dumped_blocks[1].location)) as gate:
                await viewer.send(dumped)
                frame = await viewer.receive()
                assert isinstance(frame, bytes)
                assert decode_message(frame).totalResponses == 2
                await gate.reached()
                await viewer.send(first)
                await viewer.send(third)
                await viewer.send({"requestType": "DumpBufferRequest"})
                assert await viewer.receive_json() == {"requestType": "DumpBufferAck", "dropped": 3}
                # The dumped request's bookkeeping and its abandoned read finish after the ack.
                await scrape.until("streaming_requests_cancelled_total", dump_before + 3, reason="dump")
                await scrape.until(
                    "streaming_request_seconds_count", cancelled_before + 1, kind="page", outcome="cancelled"
                )
                await asyncio.wait_for(services.reader.flights.drain(), 20)

        await step(
            dump,
            {
                **cache(miss=2),
                **store(ok=1, read_bytes=size(dumped_blocks[0])),
                # The blocked fetch is timed when it is cancelled; nothing of it is decoded.
                **stages(lookup=1, fetch=2, decode=1, trim=1, encode=1, send=1),
                **page_outcome("cancelled"),
                key("streaming_requests_cancelled_total", reason="dump"): 3,
            },
        )

        # -- a block missing from the store, and one the store cannot read ----------------------
        broken = _request(c[7:9], t0 + 10 * S, t0 + 20 * S)
        ((missing_block,), (unreadable_block,)) = await blocks(c[7:9], broken["startTime"], broken["endTime"])
        local.path_for(missing_block.location).unlink()
        make_unreadable(local.path_for(unreadable_block.location))

        async def read_broken() -> None:
            page = await viewer.page(broken)
            assert sorted((t["error"], *t["channelNames"]) for t in page.texts) == sorted(
                [("BlockReadError", c[7].name), ("BlockReadError", c[8].name)]
            )
            for channel in c[7:9]:  # each channel's one message, empty
                assert [m.segment.nrPoints for m in page.channel(channel.id)] == [0]

        await step(
            read_broken,
            {
                **cache(miss=2),
                **store(missing=1, error=1),
                **stages(lookup=1, fetch=2, trim=2, encode=2, send=2),
                **page_outcome("ok"),
            },
        )

        # -- the idle viewer leaves: nothing is cancelled -------------------------------------
        async def leave_idle() -> None:
            viewer.close()
            await _wait_for(lambda: not services.sessions)

        before, after = await step(leave_idle, {})
        assert after[OPEN_SOCKETS] == before[OPEN_SOCKETS] - 1

        # -- a viewer that leaves mid-page ----------------------------------------------------
        left = _request(c[6:7], t0 + 10 * S, t0 + 50 * S)
        (left_blocks,) = await blocks(c[6:7], left["startTime"], left["endTime"])
        assert len(left_blocks) == 2

        async def leave_mid_page() -> None:
            async with gated(local.path_for(left_blocks[1].location)) as gate:
                leaver = await CountingViewer.open(server.ws_url(package.package_id), tally)
                await leaver.send(left)
                frame = await leaver.receive()
                assert isinstance(frame, bytes)
                assert decode_message(frame).totalResponses == 2
                await gate.reached()
                leaver.close()
                await _wait_for(lambda: not services.sessions)  # close() has stopped its request
                await asyncio.wait_for(services.reader.flights.drain(), 20)

        await step(
            leave_mid_page,
            {
                **http("TimeSeriesSocket", 101),
                **cache(miss=2),
                **store(ok=1, read_bytes=size(left_blocks[0])),
                **stages(lookup=1, fetch=2, decode=1, trim=1, encode=1, send=1),
                **page_outcome("disconnected"),
                key("streaming_requests_cancelled_total", reason="disconnect"): 1,
            },
        )

        # -- HTTP -------------------------------------------------------------------------------
        async def http_calls() -> None:
            fetch = tornado.httpclient.AsyncHTTPClient().fetch
            assert (await fetch(server.http_url("/ts/health"))).code == 200
            missing = await fetch(server.http_url("/ts/no-such-endpoint"), raise_error=False)
            assert missing.code == 404

        await step(http_calls, {**http("HealthHandler", 200), **http("NotFoundHandler", 404)})

        # -- the Postgres pool: a connection in use shows, and goes back -------------------------
        async with index.cursor():
            busy = await scrape()
        idle = await scrape()
        assert busy[key("streaming_db_pool_connections", state="size")] >= 1
        assert busy[key("streaming_db_pool_connections", state="in_use")] == 1
        assert idle[key("streaming_db_pool_connections", state="size")] >= 1
        assert idle[key("streaming_db_pool_connections", state="in_use")] == 0
        assert idle[OPEN_SOCKETS] == 0

        # -- an ingest, and the same file again (nothing new is written) -------------------------
        ramp = (np.arange(1000) * 7) % 60000 - 30000
        small = write_edf_plus(
            tmp_path / "small.edf",
            [EdfSignalSpec("Cz", 100, ramp), EdfSignalSpec("Pz", 100, ramp[::-1].copy())],
            list(range(10)),
            discontinuous=False,
        )
        results = []

        async def ingest() -> None:
            results.append(await server.ingest(small, block_samples=300))

        def ingested() -> dict[Key, float]:
            (result,) = results
            assert not result.already_ingested and result.blocks == 2 * 4  # 1,000 samples in 300s
            written = [p for ch in result.channels for p in local.root.glob(f"{ch.id}_*.bfts.gz")]
            assert len(written) == result.blocks
            return {
                key("streaming_ingest_recordings_total", outcome="ok"): 1,
                key("streaming_ingest_blocks_total"): result.blocks,
                key("streaming_ingest_bytes_total"): sum(p.stat().st_size for p in written),
            }

        await step(ingest, ingested)

        async def ingest_again() -> None:
            assert (await server.ingest(small, block_samples=300)).already_ingested

        await step(ingest_again, {})

    outcomes = [
        (r.outcome, getattr(r, "reason", None)) for r in caplog.records if r.name == "streaming.requests"
    ]
    assert outcomes == [
        ("ok", None),
        ("ok", None),
        ("ok", None),
        ("dropped", "dump"),
        ("dropped", "dump"),
        ("cancelled", "dump"),
        ("ok", None),
        ("disconnected", "disconnect"),
    ]


async def test_store_reads_are_counted_under_each_backend(eeg_server):
    """The shared server, local and S3 (moto): a page read with L1 emptied counts its store reads
    under the backend's label (its L1 is emptied because earlier tests may have filled it)."""
    package = next(iter(eeg_server.packages.values()))
    channels = package.channels[10:12]
    t0 = channels[0].start
    request = _request(channels, t0 + 10 * S, t0 + 50 * S)  # blocks 0 and 1 of both channels
    backend = eeg_server.services.store.backend
    scrape = Scraper(eeg_server)
    eeg_server.services.reader.l1.clear()
    before = await scrape()
    viewer = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        page = await viewer.page(request)
    finally:
        viewer.close()
    assert sorted(len(v) for v in page.segments.values()) == [2, 2]
    got = changes(before, await scrape())
    assert got[key("streaming_cache_requests_total", level="l1", result="miss")] == 4
    assert key("streaming_cache_requests_total", level="l1", result="hit") not in got
    assert got[key("streaming_store_reads_total", backend=backend, outcome="ok")] == 4
    assert got[key("streaming_store_read_bytes_total", backend=backend)] > 0
    assert {k for k in got if k[0].startswith("streaming_store_")} == {
        key("streaming_store_reads_total", backend=backend, outcome="ok"),
        key("streaming_store_read_bytes_total", backend=backend),
    }
