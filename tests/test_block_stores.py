"""One suite for both block stores: a local directory, and S3 through a real moto HTTP server."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streaming.config import StoreSettings, load_settings
from streaming.devservices import S3Server, free_port
from streaming.storage.base import BlockNotFound, BlockStore, StoreUnavailable
from streaming.storage.factory import open_block_store
from streaming.storage.local import LocalBlockStore
from streaming.storage.s3 import S3BlockStore

KEY = "N:channel:7a4c1f36-1d6e-4b5e-9a77-0c2f3a5d9e11_1712345678000000_1712345678524288.bfts.gz"


def _store_settings(**changes: object) -> StoreSettings:
    return dataclasses.replace(load_settings(environ={}).store, **changes)


def _s3_settings(
    s3_server: S3Server, bucket: str, prefix: str = "recordings/", **changes: object
) -> StoreSettings:
    return _store_settings(url=f"s3://{bucket}/{prefix}", s3_endpoint_url=s3_server.endpoint_url, **changes)


def _payload(size: int, seed: int = 0) -> bytes:
    return (bytes(range(seed % 256, 256)) + bytes(range(seed % 256))) * (size // 256) + b"\x1f" * (size % 256)


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlockStore]:
    if request.param == "local":
        opened: BlockStore = LocalBlockStore(tmp_path / "root")
    else:
        s3_server: S3Server = request.getfixturevalue("s3_server")
        opened = await open_block_store(_s3_settings(s3_server, s3_server.create_bucket()))
        assert isinstance(opened, S3BlockStore)
    assert opened.backend == request.param
    try:
        yield opened
    finally:
        await opened.close()


# ---- both backends ------------------------------------------------------------------------------------


async def test_put_get_delete_round_trip(store: BlockStore) -> None:
    data = _payload(10_000, seed=3)
    await store.put(KEY, data)
    assert await store.get(KEY) == data
    await store.delete(KEY)
    with pytest.raises(BlockNotFound):
        await store.get(KEY)


async def test_get_missing_is_block_not_found(store: BlockStore) -> None:
    with pytest.raises(BlockNotFound):
        await store.get("never-written.bfts.gz")
    with pytest.raises(KeyError):  # BlockNotFound is a KeyError
        await store.get("prefix/never-written.bfts.gz")


async def test_delete_missing_is_fine(store: BlockStore) -> None:
    await store.delete("never-written.bfts.gz")
    await store.delete("no/such/folder/x.bfts.gz")


async def test_delete_twice_is_fine(store: BlockStore) -> None:
    await store.put(KEY, b"x")
    await store.delete(KEY)
    await store.delete(KEY)


async def test_overwrite_replaces_the_whole_object(store: BlockStore) -> None:
    await store.put(KEY, _payload(5000, seed=1))
    await store.put(KEY, b"short")
    assert await store.get(KEY) == b"short"
    await store.put(KEY, _payload(7000, seed=2))
    assert await store.get(KEY) == _payload(7000, seed=2)


async def test_keys_with_prefix_folders_are_separate_objects(store: BlockStore) -> None:
    keys = [KEY, f"site-a/{KEY}", f"site-a/2024/{KEY}", f"site-b/{KEY}", "site-a/other.bfts.gz"]
    for index, key in enumerate(keys):
        await store.put(key, f"object {index}".encode())
    for index, key in enumerate(keys):
        assert await store.get(key) == f"object {index}".encode()
    await store.delete(f"site-a/{KEY}")
    with pytest.raises(BlockNotFound):
        await store.get(f"site-a/{KEY}")
    assert await store.get(f"site-a/2024/{KEY}") == b"object 2"
    assert await store.get(KEY) == b"object 0"


async def test_empty_object(store: BlockStore) -> None:
    await store.put("empty.bfts.gz", b"")
    assert await store.get("empty.bfts.gz") == b""


async def test_two_mebibyte_object(store: BlockStore) -> None:
    data = os.urandom(2 * 1024 * 1024)
    await store.put(KEY, data)
    assert await store.get(KEY) == data


async def test_concurrent_reads(store: BlockStore) -> None:
    blobs = {f"block-{i}.bfts.gz": _payload(50_000 + i, seed=i) for i in range(20)}
    await asyncio.gather(*(store.put(key, data) for key, data in blobs.items()))
    results = await asyncio.gather(*(store.get(key) for key in blobs))
    assert results == list(blobs.values())


async def test_close_twice_is_fine(store: BlockStore) -> None:
    await store.close()
    await store.close()


# ---- local only ------------------------------------------------------------------------------------------


@pytest.fixture
def outside_secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret"
    secret.write_bytes(b"must never be served")
    return secret


@pytest.mark.parametrize(
    "key",
    [
        "../secret",
        "../x",
        "/etc/passwd",
        "a/../../secret",
        "a/../../x",
        "",
        "\x00",
        "a\x00b",
        "secret\x00.bfts.gz",
        ".",
        "a/..",
        "..",
        "\\etc\\passwd",
        "../../../../../../../etc/passwd",
    ],
)
async def test_local_keys_cannot_escape_the_root(tmp_path: Path, outside_secret: Path, key: str) -> None:
    root = tmp_path / "root"
    store = LocalBlockStore(root)
    try:
        with pytest.raises(BlockNotFound):
            await store.get(key)
        with pytest.raises(BlockNotFound):
            await store.put(key, b"overwritten")
        with pytest.raises(BlockNotFound):
            await store.delete(key)
    finally:
        await store.close()
    _assert_nothing_outside_changed(tmp_path, outside_secret)


def _assert_nothing_outside_changed(tmp_path: Path, outside_secret: Path) -> None:
    assert outside_secret.read_bytes() == b"must never be served"
    assert not (tmp_path / "x").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root", "secret"]


async def test_local_symlink_out_of_the_root_is_refused(tmp_path: Path, outside_secret: Path) -> None:
    root = tmp_path / "root"
    store = LocalBlockStore(root)
    (root / "link").symlink_to(tmp_path, target_is_directory=True)
    (root / "file-link").symlink_to(outside_secret)
    try:
        for key in ("link/secret", "file-link"):
            with pytest.raises(BlockNotFound):
                await store.get(key)
    finally:
        await store.close()


async def test_local_keys_that_stay_inside_are_fine(tmp_path: Path) -> None:
    store = LocalBlockStore(tmp_path / "root")
    try:
        await store.put("a/b.bfts.gz", b"inside")
        assert await store.get("a/../a/./b.bfts.gz") == b"inside"
        with pytest.raises(BlockNotFound):  # a folder is not a block
            await store.get("a")
    finally:
        await store.close()


async def test_local_layout_and_atomic_writes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = LocalBlockStore(root)
    try:
        await store.put(f"prefix/{KEY}", b"data")
        await store.put(f"prefix/{KEY}", b"data2")
    finally:
        await store.close()
    assert (root / "prefix" / KEY).read_bytes() == b"data2"
    assert [p.name for p in (root / "prefix").iterdir()] == [KEY]  # no temporary files left behind


async def test_factory_opens_a_local_store_from_a_file_url(tmp_path: Path) -> None:
    root = tmp_path / "with space"
    store = await open_block_store(_store_settings(url=root.as_uri() + "/"))
    try:
        assert isinstance(store, LocalBlockStore)
        await store.put("k.bfts.gz", b"v")
    finally:
        await store.close()
    assert (root / "k.bfts.gz").read_bytes() == b"v"


@pytest.mark.parametrize("url", ["", "http://example/blocks", "s3://", "s3:///prefix/", "blocks/"])
async def test_factory_rejects_urls_it_cannot_serve(url: str) -> None:
    with pytest.raises(ValueError):
        await open_block_store(_store_settings(url=url))


# ---- S3 only ---------------------------------------------------------------------------------------------


async def test_s3_prefix_is_part_of_the_object_key(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    prefixed = await open_block_store(_s3_settings(s3_server, bucket, prefix="recordings/site"))
    bare = await open_block_store(_s3_settings(s3_server, bucket, prefix=""))
    try:
        await prefixed.put(KEY, b"through the prefix")
        assert await bare.get(f"recordings/site/{KEY}") == b"through the prefix"
        with pytest.raises(BlockNotFound):
            await bare.get(KEY)
    finally:
        await prefixed.close()
        await bare.close()


async def test_s3_failed_and_cancelled_reads_do_not_exhaust_the_pool(s3_server: S3Server) -> None:
    settings = _s3_settings(s3_server, s3_server.create_bucket(), s3_max_connections=2, fetch_concurrency=2)
    store = await open_block_store(settings)
    try:
        big = os.urandom(8 * 1024 * 1024)
        await store.put("big.bfts.gz", big)
        await store.put("small.bfts.gz", b"small")

        for attempt in range(11):
            with pytest.raises(BlockNotFound):
                await asyncio.wait_for(store.get(f"missing-{attempt}.bfts.gz"), 10)

        # Eleven reads cancelled partway: spread the cancel over the time a whole read takes, so that some
        # stop before the response headers and some while the body streams.
        started = time.monotonic()
        assert await store.get("big.bfts.gz") == big
        full_read = time.monotonic() - started
        cancelled = attempts = 0
        while cancelled < 11 and attempts < 100:
            task = asyncio.create_task(store.get("big.bfts.gz"))
            await asyncio.sleep(max(0.0005, min(0.005, full_read * (1 + attempts % 9) / 10)))
            attempts += 1
            if task.done():
                assert task.result() == big
                continue
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            cancelled += 1
        assert cancelled == 11, (
            f"only {cancelled} of {attempts} reads could be cancelled before they finished"
        )

        started = time.monotonic()
        assert await asyncio.wait_for(store.get("big.bfts.gz"), 10) == big
        assert await asyncio.wait_for(store.get("small.bfts.gz"), 10) == b"small"
        # Both pool connections are usable at once.
        both = await asyncio.wait_for(
            asyncio.gather(store.get("small.bfts.gz"), store.get("small.bfts.gz")), 10
        )
        assert both == [b"small", b"small"]
        assert time.monotonic() - started < 10
    finally:
        await store.close()


async def test_s3_bucket_that_does_not_exist(s3_server: S3Server) -> None:
    store = await open_block_store(_s3_settings(s3_server, "no-such-bucket-for-streaming"))
    try:
        with pytest.raises((StoreUnavailable, BlockNotFound)):
            await asyncio.wait_for(store.get(KEY), 10)
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.put(KEY, b"x"), 10)
        # The store still works for the next call (nothing crashed or leaked).
        with pytest.raises((StoreUnavailable, BlockNotFound)):
            await asyncio.wait_for(store.get(KEY), 10)
    finally:
        await store.close()


async def test_s3_server_that_does_not_answer_is_store_unavailable() -> None:
    settings = _store_settings(
        url="s3://bucket/", s3_endpoint_url=f"http://127.0.0.1:{free_port()}", read_timeout_seconds=2
    )
    store = await open_block_store(settings)
    try:
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.get(KEY), 20)
    finally:
        await store.close()
