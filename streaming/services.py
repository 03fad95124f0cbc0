"""The composition root: opens every pool and client once at startup, closes them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from streaming.cache.lru import ByteBoundedLRU
from streaming.cache.reader import BlockReader
from streaming.cache.redis_cache import RedisBlockCache
from streaming.config import Settings
from streaming.cpu import CpuPool
from streaming.index.catalog import PackageCatalog
from streaming.index.database import IndexDatabase
from streaming.pipeline.stream import PageStreamer
from streaming.session.viewer import ViewerSession
from streaming.stages import StageClock
from streaming.storage.base import BlockStore
from streaming.storage.factory import open_block_store

log = logging.getLogger(__name__)


class Services:
    """Everything a request handler needs, owned in one place."""

    def __init__(
        self,
        settings: Settings,
        index: IndexDatabase,
        store: BlockStore,
        cpu: CpuPool,
        exit_stack: contextlib.AsyncExitStack,
        l2: RedisBlockCache | None = None,
        packages: PackageCatalog | None = None,
    ) -> None:
        self.settings = settings
        self.index = index
        self.packages = packages or PackageCatalog(index, settings.postgres.dsn())
        self.store = store
        self.cpu = cpu
        self.clock = StageClock()
        l1 = ByteBoundedLRU(settings.cache.l1_bytes) if settings.cache.l1_bytes else None
        self.reader = BlockReader(store, cpu, self.clock, l1=l1, l2=l2)
        self.streamer = PageStreamer(index, self.reader, cpu, self.clock, settings.server.parallelism)
        self.sessions: set[ViewerSession] = set()
        self.started_at = time.time()
        self._exit_stack = exit_stack
        self._background: set[asyncio.Task[Any]] = set()

    @classmethod
    async def start(cls, settings: Settings, *, postgres_dsn: str | None = None) -> Services:
        """Open the Postgres pool, the block store and the CPU pool; migrate the schema."""
        if not settings.store.url:
            raise ValueError("no block store configured: set STREAMING_STORE_URL (s3://... or file://...)")
        if not (settings.postgres.configured or postgres_dsn):
            raise ValueError("no Postgres configured: set DATA_POSTGRES_HOST (or run `streaming demo`)")
        async with contextlib.AsyncExitStack() as stack:
            index = await IndexDatabase.open(settings.postgres, postgres_dsn)
            stack.push_async_callback(index.close)
            await index.migrate()
            packages = PackageCatalog(index, postgres_dsn or settings.postgres.dsn())
            packages.start()
            stack.push_async_callback(packages.close)
            store = await open_block_store(settings.store)
            stack.push_async_callback(store.close)
            cpu = CpuPool(settings.server.cpu_workers, settings.server.inline_samples)
            stack.callback(cpu.close)
            l2 = None
            if settings.redis.url:
                l2 = await RedisBlockCache.open(settings.redis, settings.cache, cpu)
                stack.push_async_callback(l2.close)
            services = cls(settings, index, store, cpu, stack.pop_all(), l2, packages)
        log.info(
            "services started: store=%s, cache=%s",
            store.backend,
            "L1 + Redis" if l2 else "L1 only (no Redis configured)",
        )
        return services

    def run_in_background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` without waiting for it, keeping a reference until it ends."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Close sessions, then the CPU pool, store and database pool (reverse order of opening)."""
        for session in list(self.sessions):
            await session.shut_down()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.reader.close()
        await self._exit_stack.aclose()
