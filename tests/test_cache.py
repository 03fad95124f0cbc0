"""The block cache against real Redis: a private server and a real 3-node Redis Cluster."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from streaming.cache.entry import decode_entry, encode_entry
from streaming.cache.redis_cache import KEY_PREFIX
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
async def cached_server(tmp_path: Path, recording: Path, redis_url: str, cluster: bool, **redis_options):
    with scratch_database() as params:
        settings = make_settings(
            params,
            (tmp_path / "blocks").as_uri() + "/",
            redis={"url": redis_url, "cluster": cluster, "retry_seconds": 0.1, **redis_options},
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
    server, package, channels, reference, seconds: float = 2
) -> dict[str, np.ndarray]:
    """A page of ``channels`` from the start (inside the first block): every sample equals the EDF's."""
    count = int(seconds * 250)
    assert count <= BLOCK
    viewer = await ViewerClient.connect(server.ws_url(package.package_id))
    try:
        answer = await viewer.page(_request(package, 0, seconds, channels))
    finally:
        viewer.close()
    served = {}
    for channel in channels:
        (message,) = answer.channel(channel.id)
        served[channel.id] = np.asarray(message.segment.data)
        np.testing.assert_allclose(
            served[channel.id], reference[channel.name].samples[:count], rtol=0, atol=1e-9
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


async def test_no_redis_at_startup_still_serves(tmp_path, shared_eeg):
    from streaming.devservices import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with cached_server(tmp_path, shared_eeg, dead, False) as server:
        package = _package(server)
        frames = await _raw_frames(server, _request(package, 0, 5, package.channels[:3]))
        assert len(frames) == 3
        assert not server.services.reader.l2.available


async def test_startup_warns_when_redis_would_not_evict(caplog):
    from streaming.cache.redis_cache import RedisBlockCache
    from streaming.config import load_settings
    from streaming.cpu import CpuPool

    settings = load_settings(environ={})
    cpu = CpuPool(1, 1 << 30)
    no_eviction = RedisProcess(None, "--maxmemory-policy", "noeviction")
    try:
        caplog.set_level(logging.WARNING, logger="streaming.cache.redis_cache")
        redis_settings = dataclasses.replace(settings.redis, url=no_eviction.url)
        cache = await RedisBlockCache.open(redis_settings, settings.cache, cpu)
        await cache.close()
        assert any("allkeys-lru" in r.getMessage() and "noeviction" in r.getMessage() for r in caplog.records)
    finally:
        no_eviction.stop()
        cpu.close()


async def test_a_small_pool_waits_instead_of_failing(redis_standalone):
    from streaming.cache.redis_cache import RedisBlockCache
    from streaming.config import load_settings
    from streaming.cpu import CpuPool

    settings = load_settings(environ={})
    redis_settings = dataclasses.replace(
        settings.redis, url=redis_standalone.url, max_connections=2, pool_wait_seconds=5
    )
    cpu = CpuPool(1, 1 << 30)
    cache = await RedisBlockCache.open(redis_settings, settings.cache, cpu)
    try:
        samples = np.arange(50_000, dtype=np.float64)
        for i in range(40):
            cache.set_later(f"pool-test-{i}", samples)
        await cache.flush()
        found = await asyncio.gather(*(cache.get(f"pool-test-{i}") for i in range(40)))
        assert cache.available, "a busy pool must not open the circuit breaker"
        assert all(f is not None and np.array_equal(f, samples) for f in found)
    finally:
        await cache.close()
        cpu.close()


async def test_a_refused_write_does_not_stop_reads():
    """SET answered with an error (here OOM under noeviction) skips that write; GETs keep working."""
    from streaming.cache.redis_cache import RedisBlockCache
    from streaming.config import load_settings
    from streaming.cpu import CpuPool

    settings = load_settings(environ={})
    cpu = CpuPool(1, 1 << 30)
    full = RedisProcess(None, "--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
    redis_settings = dataclasses.replace(settings.redis, url=full.url, retry_seconds=600)
    cache = await RedisBlockCache.open(redis_settings, settings.cache, cpu)
    try:
        rng = np.random.default_rng(3)
        kept = rng.normal(size=1000)
        cache.set_later("oom-kept", kept)
        await cache.flush()
        for i in range(8):  # 1 MiB of incompressible samples each: Redis is full after a few
            cache.set_later(f"oom-{i}", rng.normal(size=1 << 17))
            await cache.flush()
        assert full.client().dbsize() < 9, "the server was expected to refuse some writes"
        assert cache.available, "a refused write must not open the circuit breaker"
        assert await cache.get("oom-7") is None  # the refused one: a plain miss
        found = await cache.get("oom-kept")
        assert found is not None and np.array_equal(found, kept)
        assert cache.available
    finally:
        await cache.close()
        full.stop()
        cpu.close()
