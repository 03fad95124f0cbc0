"""BlockReader: the one way the data path gets a block's decoded samples.

L1 (decoded arrays in this process) -> single-flight -> L2 (Redis, shared) -> block store + decode.
A block missing from both levels is read from the store once, however many requests, channels
or sockets ask for it at the same time.
"""

from __future__ import annotations

import numpy as np

from streaming.cache.lru import ByteBoundedLRU
from streaming.cache.redis_cache import RedisBlockCache
from streaming.cache.singleflight import SingleFlight
from streaming.cpu import CpuPool
from streaming.errors import BlockReadError
from streaming.index.models import BlockRef
from streaming.metrics import CACHE_REQUESTS, STORE_READ_BYTES, STORE_READS
from streaming.stages import StageClock
from streaming.storage.base import BlockNotFound, BlockStore, StoreUnavailable
from streaming.storage.codec import BlockFormatError, decode_block


class BlockReader:
    """Decoded samples of stored blocks, through the cache levels that are configured."""

    def __init__(
        self,
        store: BlockStore,
        cpu: CpuPool,
        clock: StageClock,
        l1: ByteBoundedLRU | None = None,
        l2: RedisBlockCache | None = None,
    ) -> None:
        self.store = store
        self.cpu = cpu
        self.clock = clock
        self.l1 = l1
        self.l2 = l2
        self.flights: SingleFlight[np.ndarray] = SingleFlight()
        self.store_reads = 0
        self.store_bytes = 0

    async def samples(self, block: BlockRef) -> np.ndarray:
        """The block's samples as read-only native float64; BlockReadError when it cannot be read."""
        key = block.location
        if self.l1 is not None:
            cached = self.l1.get(key)
            if cached is not None:
                CACHE_REQUESTS.labels("l1", "hit").inc()
                return cached
            CACHE_REQUESTS.labels("l1", "miss").inc()
        return await self.flights.run(key, lambda: self._load(block))

    async def _load(self, block: BlockRef) -> np.ndarray:
        key = block.location
        if self.l2 is not None:
            with self.clock.stage("cache"):
                cached = await self.l2.get(key)
            if cached is not None:
                self._keep(key, cached)
                return cached
        samples = await self._read_store(block)
        self._keep(key, samples)
        if self.l2 is not None:
            self.l2.set_later(key, samples)
        return samples

    def _keep(self, key: str, samples: np.ndarray) -> None:
        samples.flags.writeable = False
        if self.l1 is not None:
            self.l1.put(key, samples)

    async def _read_store(self, block: BlockRef) -> np.ndarray:
        backend = self.store.backend
        try:
            with self.clock.stage("fetch"):
                data = await self.store.get(block.location)
        except BlockNotFound as exc:
            STORE_READS.labels(backend, "missing").inc()
            raise BlockReadError(f"block {block.location} could not be read: {exc}") from exc
        except StoreUnavailable as exc:
            STORE_READS.labels(backend, "error").inc()
            raise BlockReadError(f"block {block.location} could not be read: {exc}") from exc
        STORE_READS.labels(backend, "ok").inc()
        STORE_READ_BYTES.labels(backend).inc(len(data))
        self.store_reads += 1
        self.store_bytes += len(data)
        try:
            return await self.cpu.run(len(data), self._decode, data)
        except BlockFormatError as exc:
            raise BlockReadError(f"block {block.location} is corrupt: {exc}") from exc

    async def close(self) -> None:
        """Wait for loads and cache writes still in flight."""
        await self.flights.drain()
        if self.l2 is not None:
            await self.l2.flush()

    def _decode(self, data: bytes) -> np.ndarray:
        with self.clock.stage("decode"):
            return decode_block(data)
