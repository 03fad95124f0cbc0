"""The block cache against real Redis: a private server and a real 3-node Redis Cluster."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streaming.cache.entry import decode_entry, encode_entry
from streaming.cache.redis_cache import KEY_PREFIX
from streaming.config import CacheSettings, RedisSettings, load_settings
from streaming.devservices import scratch_database
from tests.conftest import make_settings
from tests.support.client import ViewerClient
from tests.support.redis_servers import RedisCluster3, RedisProcess
from tests.support.reference import read_edf
from tests.support.server import start_server

BLOCK = 10_000


@pytest.fixture(scope="session")
def redis_standalone():
    server = RedisProcess()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster():
    cluster = RedisCluster3()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["standalone", "cluster"])
def redis_target(request):
    if request.param == "standalone":
        return request.getfixturevalue("redis_standalone"), False
    return request.getfixturevalue("redis_cluster"), True


@contextlib.asynccontextmanager
async def cached_server(
    tmp_path: Path,
    recording: Path,
    redis_url: str,
    cluster: bool,
    cache_options: dict[str, object] | None = None,
    **redis_options,
):
    with scratch_database() as params:
        settings = make_settings(
            params,
            (tmp_path / "blocks").as_uri() + "/",
            redis={"url": redis_url, "cluster": cluster, "retry_seconds": 0.1, **redis_options},
            cache=dict(cache_options or {}),
        )
        async with start_server(settings) as server:
            await server.ingest(recording, block_samples=BLOCK)
            yield server


def _package(server):
    return next(iter(server.packages.values()))


def _request(package, start_offset_s: float, seconds: float, channels, pixel_width=4000):
    start = package.channels[0].start + int(start_offset_s * 1e6)
    return {
        "startTime": start,
        "endTime": start + int(seconds * 1e6),
        "pixelWidth": pixel_width,
        "virtualChannels": [{"id": c.id, "name": c.name} for c in channels],
    }


async def _raw_frames(server, request) -> list[bytes]:
    """Every binary frame answering ``request``, in arrival order per channel."""
    client = await ViewerClient.connect(server.ws_url(_package(server).package_id))
    frames: dict[str, list[bytes]] = {}
    try:
        await client.send(request)
        page = await client.read_page([vc["id"] for vc in request["virtualChannels"]])
        for channel_id, messages in page.segments.items():
            frames[channel_id] = [m.SerializeToString() for m in messages]
    finally:
        client.close()
    return [frame for channel_id in sorted(frames) for frame in frames[channel_id]]


async def test_repeat_requests_read_nothing_from_the_store(tmp_path, shared_eeg, redis_target):
    redis_server, cluster = redis_target
    async with cached_server(tmp_path, shared_eeg, redis_server.url, cluster) as server:
        reader = server.services.reader
        package = _package(server)
        request = _request(package, 30, 30, package.channels[:10])  # spans two blocks per channel
        cold = await _raw_frames(server, request)
        reads_after_cold = reader.store_reads
        assert reads_after_cold == 20
        await reader.l2.flush()
        reader.l1.clear()  # next pass: from Redis
        warm = await _raw_frames(server, request)
        hot = await _raw_frames(server, request)  # from process memory
        assert reader.store_reads == reads_after_cold, "a cached block was read from the store again"
        assert warm == cold and hot == cold
        first = await server.services.index.blocks_for(
            [package.channels[0].id], request["startTime"], request["endTime"]
        )
        location = first[package.channels[0].id][0].location
        assert decode_entry(redis_server.client().get(KEY_PREFIX + location), location).shape == (BLOCK,)


async def test_fifty_concurrent_requests_for_one_cold_block_read_it_once(tmp_path, shared_eeg, redis_target):
    redis_server, cluster = redis_target
    async with cached_server(tmp_path, shared_eeg, redis_server.url, cluster) as server:
        package = _package(server)
        channel = package.channels[7]
        reader = server.services.reader
        before = reader.store_reads

        async def one(i: int) -> list[bytes]:
            return await _raw_frames(server, _request(package, 1 + i * 0.5, 0.5, [channel]))

        pages = await asyncio.gather(*(one(i) for i in range(50)))
        assert all(len(frames) == 1 for frames in pages)
        assert reader.store_reads - before == 1


async def test_a_wrong_cached_value_is_replaced_and_never_served(tmp_path, shared_eeg, redis_target):
    redis_server, cluster = redis_target
    reference = read_edf(shared_eeg)
    async with cached_server(tmp_path, shared_eeg, redis_server.url, cluster) as server:
        package = _package(server)
        fp1, fp2 = package.channels[0], package.channels[1]
        blocks = await server.services.index.blocks_for([fp1.id, fp2.id], fp1.start, fp1.start + 1)
        key, other = blocks[fp1.id][0].location, blocks[fp2.id][0].location
        client = redis_server.client()
        # The entry of another block under this block's key (what a cancelled read can leave), then junk.
        for bad in (encode_entry(other, reference["Fp2"].samples[:BLOCK]), b"\x00garbage" * 100):
            client.set(KEY_PREFIX + key, bad)
            server.services.reader.l1.clear()
            viewer = await ViewerClient.connect(server.ws_url(package.package_id))
            try:
                answer = await viewer.page(_request(package, 0, 2, [fp1]))
            finally:
                viewer.close()
            (message,) = answer.channel(fp1.id)
            np.testing.assert_allclose(message.segment.data, reference["Fp1"].samples[:500], atol=1e-9)
            await server.services.reader.l2.flush()
            replaced = client.get(KEY_PREFIX + key)
            np.testing.assert_allclose(
                decode_entry(replaced, key), reference["Fp1"].samples[:BLOCK], atol=1e-9
            )


async def _page_matches_reference(
    server, package, channels, reference, seconds: float = 2, offset_s: float = 0, timeout: float = 60
) -> dict[str, np.ndarray]:
    """A page of ``channels`` (short enough to be sent as raw samples) on a new socket: every sample
    equals the EDF's. ``timeout`` bounds the wait for the whole page."""
    count, first = int(seconds * 250), int(offset_s * 250)
    assert count <= BLOCK
    viewer = await ViewerClient.connect(server.ws_url(package.package_id))
    try:
        answer = await viewer.page(_request(package, offset_s, seconds, channels), timeout)
    finally:
        viewer.close()
    served = {}
    for channel in channels:
        messages = sorted(answer.channel(channel.id), key=lambda m: m.segment.startTs)
        served[channel.id] = np.concatenate([np.asarray(m.segment.data) for m in messages])
        np.testing.assert_allclose(
            served[channel.id], reference[channel.name].samples[first : first + count], rtol=0, atol=1e-9
        )
    return served


async def _first_blocks(server, channels) -> list[str]:
    blocks = await server.services.index.blocks_for(
        [c.id for c in channels], channels[0].start, channels[0].start + 1
    )
    return [blocks[c.id][0].location for c in channels]


async def test_a_key_of_another_redis_type_is_a_miss_for_that_key_only(tmp_path, shared_eeg, redis_target):
    """WRONGTYPE on GET is that key's problem: it is replaced, and Redis stays in use for the rest."""
    redis_server, cluster = redis_target
    reference = read_edf(shared_eeg)
    # A probe interval longer than the test: a breaker opened by the bad key would stay open.
    async with cached_server(tmp_path, shared_eeg, redis_server.url, cluster, retry_seconds=600) as server:
        package = _package(server)
        reader, l2 = server.services.reader, server.services.reader.l2
        channels = package.channels[:4]
        await _page_matches_reference(server, package, channels, reference)  # all four blocks into Redis
        await l2.flush()
        keys = await _first_blocks(server, channels)
        client = redis_server.client()
        for _ in range(3):  # every time it is found again, the same answer
            client.delete(KEY_PREFIX + keys[0])
            client.hset(KEY_PREFIX + keys[0], "a", "b")
            reader.l1.clear()
            before = reader.store_reads
            await _page_matches_reference(server, package, channels, reference)
            assert reader.store_reads - before == 1, "only the block under the bad key comes from the store"
            assert l2.available, "a bad key must not open the circuit breaker"
            await l2.flush()
            assert client.type(KEY_PREFIX + keys[0]) == b"string"
            np.testing.assert_allclose(
                decode_entry(client.get(KEY_PREFIX + keys[0]), keys[0]),
                reference[channels[0].name].samples[:BLOCK],
                rtol=0,
                atol=1e-9,
            )
        reader.l1.clear()
        before = reader.store_reads
        await _page_matches_reference(server, package, channels, reference)
        assert reader.store_reads == before, "every block, the replaced one too, is served by Redis again"


async def test_a_corrupted_payload_is_never_served(tmp_path, shared_eeg, redis_target):
    """One byte flipped inside the compressed samples: the checksum refuses it, the store answers."""
    redis_server, cluster = redis_target
    reference = read_edf(shared_eeg)
    async with cached_server(tmp_path, shared_eeg, redis_server.url, cluster) as server:
        package = _package(server)
        reader, l2 = server.services.reader, server.services.reader.l2
        channels = package.channels[:2]
        await _page_matches_reference(server, package, channels, reference, 40)
        await l2.flush()
        key = (await _first_blocks(server, channels))[0]
        client = redis_server.client()
        good = client.get(KEY_PREFIX + key)
        block = decode_entry(good, key)
        middle = len(good) // 2
        assert middle > 64 + len(key), "the flipped byte must be inside the payload, past the header"
        for mask in (0x01, 0x10, 0xFF):
            corrupted = bytearray(good)
            corrupted[middle] ^= mask
            client.set(KEY_PREFIX + key, bytes(corrupted))
            reader.l1.clear()
            before = reader.store_reads
            served = await _page_matches_reference(server, package, channels, reference, 40)
            np.testing.assert_array_equal(served[channels[0].id], block)  # bit for bit
            assert reader.store_reads - before == 1, "the corrupted entry was served"
            np.testing.assert_array_equal(reader.l1.get(key), block)  # what L1 kept is right too
            assert l2.available
            await l2.flush()
            replaced = client.get(KEY_PREFIX + key)
            assert replaced != bytes(corrupted)
            np.testing.assert_array_equal(decode_entry(replaced, key), block)


async def test_redis_dying_mid_stream_never_fails_a_request(tmp_path, shared_eeg, caplog):
    caplog.set_level(logging.WARNING, logger="streaming.cache.redis_cache")
    redis_server = RedisProcess()
    try:
        async with cached_server(
            tmp_path, shared_eeg, redis_server.url, False, warn_interval_seconds=60
        ) as server:
            package = _package(server)
            reader = server.services.reader
            l2 = reader.l2
            completed = 0

            async def keep_paging(stop: asyncio.Event) -> None:
                nonlocal completed
                i = 0
                while not stop.is_set():
                    reader.l1.clear()
                    request = _request(package, (i % 18) * 10, 10, package.channels[:6])
                    frames = await _raw_frames(server, request)
                    assert len(frames) >= 6
                    completed += 1
                    i += 1

            stop = asyncio.Event()
            pager = asyncio.ensure_future(keep_paging(stop))
            await asyncio.sleep(0.5)
            redis_server.kill()
            await asyncio.sleep(1.0)
            assert not l2.available
            during = completed
            redis_server.start()
            deadline = asyncio.get_running_loop().time() + 10
            while not l2.available:
                assert asyncio.get_running_loop().time() < deadline, "the cache never came back"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            stop.set()
            await pager
            assert during > 0 and completed > during
            await l2.flush()
            assert redis_server.client().dbsize() > 0, "caching did not resume after Redis came back"
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert 1 <= len(warnings) <= 2, [r.getMessage() for r in warnings]
    finally:
        redis_server.stop()


def _breaker_closings(caplog) -> int:
    return sum("reachable again" in r.getMessage() for r in caplog.records)


def _redis_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "streaming.cache.redis_cache" and r.levelno >= logging.WARNING
    ]


async def _eventually(condition, seconds: float, failure: str) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, failure
        await asyncio.sleep(0.05)


class _Pager:
    """Pages through the recording until the ``async with`` ends: a new socket per page, L1 cleared before
    each, every sample checked against the EDF (the uncached truth), and each page answered within
    ``timeout`` (a liveness bound, not a speed assertion)."""

    def __init__(self, server, reference, channels, timeout: float = 15) -> None:
        self.server, self.reference, self.channels, self.timeout = server, reference, channels, timeout
        self.completed = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        package, i = _package(self.server), 0
        while not self._stop.is_set():
            self.server.services.reader.l1.clear()
            offset = (i * 7 % 36) * 5  # 0, 35, 70, ... s: 10 s pages, some across a block boundary
            await _page_matches_reference(
                self.server, package, self.channels, self.reference, 10, offset, self.timeout
            )
            self.completed += 1
            i += 1

    async def pages(self, count: int) -> None:
        """Until ``count`` more pages have been answered (and checked)."""
        assert self._task is not None
        target = self.completed + count
        await _eventually(
            lambda: self.completed >= target or self._task.done(), count * self.timeout, "pages stopped"
        )
        if self._task.done():
            await self._task  # the pager's failure
            raise AssertionError("the pager stopped")

    async def __aenter__(self) -> _Pager:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, kind, error, traceback) -> None:
        assert self._task is not None
        self._stop.set()
        if kind is None:
            await self._task
        else:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _served_from_redis(server, reference, channels, offsets) -> bool:
    """Whether pages at ``offsets`` (L1 cleared first) were answered without reading the store."""
    reader = server.services.reader
    reader.l1.clear()
    before = reader.store_reads
    for offset in offsets:
        await _page_matches_reference(server, _package(server), channels, reference, 10, offset)
    return reader.store_reads == before


async def test_a_frozen_redis_slows_no_request(tmp_path, shared_eeg, caplog):
    """SIGSTOP: Redis keeps its sockets open and answers nothing (a hung or very slow Redis). Pages are
    answered from the store, right, while it is frozen; one warning; the cache serves again after."""
    caplog.set_level(logging.INFO, logger="streaming.cache.redis_cache")
    reference = read_edf(shared_eeg)
    redis_server = RedisProcess()
    try:
        async with cached_server(
            tmp_path, shared_eeg, redis_server.url, False, timeout_seconds=0.2, warn_interval_seconds=60
        ) as server:
            reader, l2 = server.services.reader, server.services.reader.l2
            channels = _package(server).channels[:6]
            async with _Pager(server, reference, channels) as pager:
                await pager.pages(3)  # blocks 0 and 1 of every channel are in Redis
                await l2.flush()
                assert l2.available and redis_server.client().dbsize() >= 12
                redis_server.freeze()
                try:
                    store_reads = reader.store_reads
                    await pager.pages(6)
                    await asyncio.sleep(1.5)  # frozen through several probes (retry 0.1 s + timeout 0.2 s)
                    await pager.pages(1)
                    assert not l2.available, "the frozen Redis was never noticed"
                    assert _breaker_closings(caplog) == 0, "the breaker closed while Redis was frozen"
                    assert reader.store_reads > store_reads, "pages were not answered from the store"
                finally:
                    redis_server.thaw()
                await _eventually(lambda: l2.available, 10, "the cache never came back")
                await pager.pages(2)
            await l2.flush()
            assert await _served_from_redis(server, reference, channels, [0, 35]), "caching did not resume"
        warnings = _redis_warnings(caplog)
        assert len(warnings) == 1, warnings
        assert "serving from the block store" in warnings[0]
    finally:
        redis_server.thaw()
        redis_server.stop()


@pytest.mark.parametrize("fault", ["killed", "frozen"])
async def test_a_cluster_node_failing_mid_stream_never_fails_a_request(tmp_path, shared_eeg, caplog, fault):
    """One node of a 3-node cluster killed (and started again) or frozen (SIGSTOP, then SIGCONT): pages
    are answered, right, from the store; the breaker stays open until the node is back (no flapping:
    the probe must not take the other nodes' answers for the cluster's); one warning."""
    caplog.set_level(logging.INFO, logger="streaming.cache.redis_cache")
    reference = read_edf(shared_eeg)
    cluster = RedisCluster3()  # a private one: this test takes a node down
    node = cluster.nodes[0] if fault == "killed" else cluster.nodes[1]  # node 0 is the one in the URL
    try:
        async with cached_server(
            tmp_path, shared_eeg, cluster.url, True, timeout_seconds=0.2, warn_interval_seconds=60
        ) as server:
            reader, l2 = server.services.reader, server.services.reader.l2
            channels = _package(server).channels[:12]
            async with _Pager(server, reference, channels) as pager:
                await pager.pages(2)
                await l2.flush()
                assert l2.available and node.client().dbsize() > 0, "the node must hold some blocks"
                if fault == "killed":
                    node.kill()
                else:
                    node.freeze()
                try:
                    store_reads = reader.store_reads
                    closings = _breaker_closings(caplog)
                    await pager.pages(6)
                    await asyncio.sleep(1.5)  # down through several probes (retry 0.1 s + timeout 0.2 s)
                    await pager.pages(1)
                    assert not l2.available, "the failing node was never noticed"
                    assert _breaker_closings(caplog) == closings, "the breaker closed while the node was down"
                    assert reader.store_reads > store_reads, "pages were not answered from the store"
                finally:
                    if fault == "killed":
                        await asyncio.to_thread(node.start)
                    else:
                        node.thaw()
                await asyncio.to_thread(cluster.wait_until_ok)
                await _eventually(lambda: l2.available, 30, "the cache never came back")
                await pager.pages(2)

            async def resumed() -> bool:
                await _served_from_redis(server, reference, channels, [0, 35])  # (again) into Redis
                await l2.flush()
                return await _served_from_redis(server, reference, channels, [0, 35])

            deadline = asyncio.get_running_loop().time() + 30
            while not await resumed():
                assert asyncio.get_running_loop().time() < deadline, "caching did not resume"
        gc.collect()  # a Redis command task whose error nobody consumed is reported when collected
        unconsumed = [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
        assert unconsumed == [], unconsumed
        warnings = _redis_warnings(caplog)
        assert len(warnings) == 1, warnings
    finally:
        node.thaw()
        cluster.stop()


@pytest.mark.parametrize("cluster", [False, True], ids=["standalone", "cluster"])
async def test_no_redis_at_startup_still_serves(tmp_path, shared_eeg, cluster):
    from streaming.devservices import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with cached_server(tmp_path, shared_eeg, dead, cluster) as server:
        package = _package(server)
        frames = await _raw_frames(server, _request(package, 0, 5, package.channels[:3]))
        assert len(frames) == 3
        assert not server.services.reader.l2.available


async def test_entries_expire_after_the_configured_ttl(tmp_path, shared_eeg, redis_target):
    redis_server, cluster = redis_target
    reference = read_edf(shared_eeg)
    ttl = 4321  # not the default
    async with cached_server(
        tmp_path, shared_eeg, redis_server.url, cluster, cache_options={"ttl_seconds": ttl}
    ) as server:
        channels = _package(server).channels[:3]
        await _page_matches_reference(server, _package(server), channels, reference)
        await server.services.reader.l2.flush()
        client = redis_server.client()
        for key in await _first_blocks(server, channels):
            remaining = client.ttl(KEY_PREFIX + key)
            assert ttl - 1 <= remaining <= ttl, f"{key}: TTL {remaining}, configured {ttl}"


def _cache_settings(**redis_changes: Any) -> tuple[RedisSettings, CacheSettings]:
    """Default settings (no environment) with some Redis settings changed: RedisBlockCache.open's."""

    settings = load_settings(environ={})
    return dataclasses.replace(settings.redis, **redis_changes), settings.cache


@contextlib.asynccontextmanager
async def _open_cache(**redis_changes: Any) -> Any:
    """A RedisBlockCache (and its CPU pool) with some Redis settings changed, closed afterwards."""
    from streaming.cache.redis_cache import RedisBlockCache
    from streaming.cpu import CpuPool

    cpu = CpuPool(1, 1 << 30)
    try:
        cache = await RedisBlockCache.open(*_cache_settings(**redis_changes), cpu)
        try:
            yield cache
        finally:
            await cache.close()
    finally:
        cpu.close()


async def test_startup_warns_when_redis_would_not_evict(caplog):
    from streaming.cache.redis_cache import RedisBlockCache
    from streaming.cpu import CpuPool

    cpu = CpuPool(1, 1 << 30)
    no_eviction = RedisProcess(None, "--maxmemory-policy", "noeviction")
    try:
        caplog.set_level(logging.WARNING, logger="streaming.cache.redis_cache")
        cache = await RedisBlockCache.open(*_cache_settings(url=no_eviction.url), cpu)
        await cache.close()
        assert any("allkeys-lru" in r.getMessage() and "noeviction" in r.getMessage() for r in caplog.records)
    finally:
        no_eviction.stop()
        cpu.close()


async def test_startup_warns_when_any_cluster_node_would_not_evict(redis_cluster, caplog):
    """Every node is checked, not the one CONFIG GET happens to be sent to."""
    from streaming.cache.redis_cache import RedisBlockCache
    from streaming.cpu import CpuPool

    caplog.set_level(logging.WARNING, logger="streaming.cache.redis_cache")
    cpu = CpuPool(1, 1 << 30)

    async def warnings_at_startup() -> list[str]:
        caplog.clear()
        cache = await RedisBlockCache.open(*_cache_settings(url=redis_cluster.url, cluster=True), cpu)
        await cache.close()
        return _redis_warnings(caplog)

    try:
        assert await warnings_at_startup() == [], "every node evicts: nothing to warn about"
        for node in redis_cluster.nodes:
            client = node.client()
            for setting, value, restore, expected in (
                ("maxmemory-policy", "noeviction", "allkeys-lru", "'noeviction'"),
                ("maxmemory", "0", "512mb", "maxmemory is 0"),
            ):
                client.config_set(setting, value)
                try:
                    (warning,) = await warnings_at_startup()
                    assert expected in warning and f"127.0.0.1:{node.port}" in warning, warning
                finally:
                    client.config_set(setting, restore)
    finally:
        cpu.close()


async def test_a_small_pool_waits_instead_of_failing(redis_target, caplog):
    """Many concurrent reads and writes through 2 connections (per node): no "Too many connections"."""
    redis_server, cluster = redis_target
    caplog.set_level(logging.WARNING, logger="streaming.cache.redis_cache")
    async with _open_cache(
        url=redis_server.url, cluster=cluster, max_connections=2, pool_wait_seconds=5
    ) as cache:
        samples = np.arange(50_000, dtype=np.float64)
        keys = [f"pool-test-{i}" for i in range(60)]
        for key in keys:
            cache.set_later(key, samples)
        await cache.flush()
        found = await asyncio.gather(*(cache.get(key) for key in keys))
        assert cache.available, f"a busy pool must not open the circuit breaker: {_redis_warnings(caplog)}"
        assert all(f is not None and np.array_equal(f, samples) for f in found)
        assert _redis_warnings(caplog) == []
        if cluster:
            nodes = cache.client.get_nodes()
            assert len(nodes) == 3 and all(n.max_connections == 2 for n in nodes)
            assert all(len(n._connections) <= 2 for n in nodes)


async def test_a_read_waits_for_a_connection_longer_than_the_command_timeout(redis_target):
    """The pool wait (``pool_wait_seconds``) is its own bound, not cut short by ``timeout_seconds``."""
    redis_server, cluster = redis_target
    async with _open_cache(
        url=redis_server.url, cluster=cluster, max_connections=2, timeout_seconds=0.2, pool_wait_seconds=30
    ) as cache:
        samples = np.arange(1000, dtype=np.float64)
        cache.set_later("pool-wait", samples)
        await cache.flush()
        async with cache.slot(), cache.slot():  # every connection busy for three command timeouts
            reading = asyncio.ensure_future(cache.get("pool-wait"))
            await asyncio.sleep(0.6)
            assert not reading.done(), "the read gave up waiting for a connection"
        found = await asyncio.wait_for(reading, 30)
        assert found is not None and np.array_equal(found, samples)
        assert cache.available


async def test_the_wait_for_a_connection_is_bounded(redis_target):
    """No connection free for ``pool_wait_seconds``: the read is a miss, it does not wait on."""
    redis_server, cluster = redis_target
    async with _open_cache(
        url=redis_server.url, cluster=cluster, max_connections=1, pool_wait_seconds=0.3, retry_seconds=0.1
    ) as cache:
        samples = np.arange(1000, dtype=np.float64)
        cache.set_later("pool-bound", samples)
        await cache.flush()
        async with cache.slot():
            assert await asyncio.wait_for(cache.get("pool-bound"), 30) is None
        await _eventually(lambda: cache.available, 10, "the cache never came back")
        found = await cache.get("pool-bound")
        assert found is not None and np.array_equal(found, samples)


async def test_reads_queued_behind_a_hung_redis_do_not_each_wait_out_a_timeout():
    """One connection, Redis frozen, five reads: the first times out and opens the breaker; the four
    that waited for its connection then skip Redis instead of each sending a GET into the hang."""
    from prometheus_client import REGISTRY

    from streaming.cache.redis_cache import RedisBlockCache
    from streaming.cpu import CpuPool

    def errors() -> float:
        labels = {"level": "l2", "result": "error"}
        return REGISTRY.get_sample_value("streaming_cache_requests_total", labels) or 0.0

    redis_server = RedisProcess()
    redis_settings, cache_settings = _cache_settings(
        url=redis_server.url, max_connections=1, timeout_seconds=0.2, pool_wait_seconds=30, retry_seconds=600
    )
    cpu = CpuPool(1, 1 << 30)
    cache = await RedisBlockCache.open(redis_settings, cache_settings, cpu)
    try:
        before = errors()
        redis_server.freeze()
        try:
            found = await asyncio.wait_for(asyncio.gather(*(cache.get(f"hung-{i}") for i in range(5))), 30)
        finally:
            redis_server.thaw()
        assert found == [None] * 5 and not cache.available
        assert errors() - before == 1, "reads queued for the connection were sent to the hung Redis"
    finally:
        await cache.close()
        redis_server.stop()
        cpu.close()


@pytest.mark.parametrize("cluster", [False, True], ids=["standalone", "cluster"])
async def test_a_refused_write_does_not_stop_reads(cluster):
    """SET answered with an error (here OOM under noeviction) skips that write; GETs keep working."""
    from streaming.cache.redis_cache import RedisBlockCache
    from streaming.cpu import CpuPool

    cpu = CpuPool(1, 1 << 30)
    options = ("--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
    full = RedisCluster3(*options) if cluster else RedisProcess(None, *options)
    cache = await RedisBlockCache.open(
        *_cache_settings(url=full.url, cluster=cluster, retry_seconds=600), cpu
    )
    try:
        rng = np.random.default_rng(3)
        kept = rng.normal(size=1000)
        cache.set_later("oom-kept", kept)
        await cache.flush()
        keys = [f"oom-{i}" for i in range(16)]
        for key in keys:  # 1 MiB of incompressible samples each: every node is full after a few
            cache.set_later(key, rng.normal(size=1 << 17))
            await cache.flush()
        client = full.client()
        refused = [key for key in keys if not client.exists(KEY_PREFIX + key)]
        assert refused, "the server was expected to refuse some writes"
        assert cache.available, "a refused write must not open the circuit breaker"
        assert await cache.get(refused[-1]) is None  # a plain miss
        found = await cache.get("oom-kept")
        assert found is not None and np.array_equal(found, kept)
        assert cache.available
    finally:
        await cache.close()
        full.stop()
        cpu.close()
