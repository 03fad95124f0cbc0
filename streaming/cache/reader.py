"""BlockReader: the one way the data path gets a block's decoded samples."""

from __future__ import annotations

import numpy as np

from streaming.cpu import CpuPool
from streaming.errors import BlockReadError
from streaming.index.models import BlockRef
from streaming.metrics import STORE_READ_BYTES, STORE_READS
from streaming.stages import StageClock
from streaming.storage.base import BlockNotFound, BlockStore, StoreUnavailable
from streaming.storage.codec import BlockFormatError, decode_block


class BlockReader:
    """Fetch a block from the store and decode it off the event loop."""

    def __init__(self, store: BlockStore, cpu: CpuPool, clock: StageClock) -> None:
        self.store = store
        self.cpu = cpu
        self.clock = clock
        self.store_reads = 0
        self.store_bytes = 0

    async def samples(self, block: BlockRef) -> np.ndarray:
        """The block's samples as native float64; raises BlockReadError when it cannot be read."""
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

    def _decode(self, data: bytes) -> np.ndarray:
        with self.clock.stage("decode"):
            return decode_block(data)
