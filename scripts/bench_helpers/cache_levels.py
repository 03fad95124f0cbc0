"""Cache benchmarks for scripts/bench.py: the Redis entry codec choice, and cold/warm/hot pages.

Both run against a private redis-server started here (never the machine's shared one).
"""

from __future__ import annotations

import gzip
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blosc2
import lz4.frame
import numpy as np
import redis.asyncio as aredis
import zstandard

from streaming.cache.entry import decode_entry, encode_entry
from streaming.storage.codec import decode_block, encode_block
from tests.support.client import ViewerClient
from tests.support.reference import read_edf

MB = 1024 * 1024


def _median_seconds(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _blosc(codec: Any, shuffle: Any, level: int) -> Callable[[np.ndarray], bytes]:
    return lambda x: blosc2.compress(x.tobytes(), typesize=8, codec=codec, filter=shuffle, clevel=level)


def _from_bytes(decompress: Callable[[bytes], bytes]) -> Callable[[bytes], np.ndarray]:
    return lambda blob: np.frombuffer(decompress(blob), dtype="<f8")


async def codec_benchmark(eeg: Path, redis_url: str, repeat: int) -> list[dict[str, Any]]:
    """Each candidate L2 representation of an 8 MiB block of the real EEG: size, decode, Redis GET."""
    samples = np.concatenate([c.samples for c in read_edf(eeg).values()])[: 1 << 20].astype(np.float64)
    raw_bytes = samples.nbytes
    candidates: dict[str, tuple[bytes, Callable[[bytes], np.ndarray]]] = {
        "raw float64": (samples.tobytes(), _from_bytes(lambda b: b)),
        "gzip-1 as stored (isal inflate)": (encode_block(samples, 1), decode_block),
        "stdlib gzip-1": (
            encode_block(samples, 1),
            lambda blob: np.frombuffer(gzip.decompress(blob), dtype=">f8").astype(np.float64),
        ),
        "lz4 frame": (lz4.frame.compress(samples.tobytes()), _from_bytes(lz4.frame.decompress)),
        "zstd-1": (
            zstandard.ZstdCompressor(level=1).compress(samples.tobytes()),
            _from_bytes(zstandard.ZstdDecompressor().decompress),
        ),
        "blosc2 lz4 + shuffle": (
            _blosc(blosc2.Codec.LZ4, blosc2.Filter.SHUFFLE, 5)(samples),
            _from_bytes(blosc2.decompress),
        ),
        "blosc2 zstd-1 + shuffle (chosen)": (
            encode_entry("bench", samples),
            lambda blob: decode_entry(blob, "bench"),
        ),
    }
    client = aredis.Redis.from_url(redis_url)
    rows = []
    try:
        for name, (blob, decode) in candidates.items():
            assert np.array_equal(decode(blob).astype(np.float64), samples), name
            await client.set("bench:codec", blob)
            gets = []
            for _ in range(repeat):
                started = time.perf_counter()
                await client.get("bench:codec")
                gets.append(time.perf_counter() - started)
            get_s = statistics.median(gets)
            decode_s = _median_seconds(lambda blob=blob, decode=decode: decode(blob), repeat)
            rows.append(
                {
                    "name": name,
                    "mib": len(blob) / MB,
                    "ratio": raw_bytes / len(blob),
                    "decode_ms": decode_s * 1e3,
                    "get_ms": get_s * 1e3,
                    "total_ms": (decode_s + get_s) * 1e3,
                    "gbps": raw_bytes / (decode_s + get_s) / 1e9,
                }
            )
        await client.delete("bench:codec")
    finally:
        await client.aclose()
    return rows


async def level_benchmark(server: Any, package: Any, redis_client: Any, repeat: int) -> dict[str, Any]:
    """The README request (23 channels, 5 s) cold (store), warm (Redis), hot (process memory)."""
    reader = server.services.reader
    channels = package.channels[:23]
    start = channels[0].start
    rng = np.random.default_rng(7)

    def request(offset_s: float) -> dict[str, Any]:
        begin = start + int(offset_s * 1e6)
        return {
            "startTime": begin,
            "endTime": begin + 5_000_000,
            "pixelWidth": 5000,
            "virtualChannels": [{"id": c.id, "name": c.name} for c in channels],
        }

    client = await ViewerClient.connect(server.ws_url(package.package_id))
    out: dict[str, Any] = {}
    try:
        await client.page(request(0))  # connection and code warm-up
        for level in ("cold", "warm", "hot"):
            times = []
            measured_bytes = 0
            for _ in range(repeat):
                offset = float(rng.integers(0, 180))
                if level == "cold":
                    reader.l1.clear()
                    await redis_client.flushdb()
                else:
                    await client.page(request(offset))  # blocks now in Redis and in process memory
                    await reader.l2.flush()
                    if level == "warm":
                        reader.l1.clear()
                bytes_before = reader.store_bytes
                started = time.perf_counter()
                await client.page(request(offset))
                times.append(time.perf_counter() - started)
                measured_bytes += reader.store_bytes - bytes_before
            await reader.l2.flush()
            out[level] = {
                "median_ms": statistics.median(times) * 1e3,
                "store_mib_per_request": measured_bytes / repeat / MB,
            }
        # The second pass of one request, right after a cold first pass: bytes read from the store.
        reader.l1.clear()
        await redis_client.flushdb()
        await client.page(request(50))
        await reader.l2.flush()
        before = reader.store_bytes
        await client.page(request(50))
        out["second_pass_store_bytes"] = reader.store_bytes - before
    finally:
        client.close()
    return out
