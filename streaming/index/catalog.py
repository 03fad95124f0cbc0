"""Package and channel metadata cached in process, invalidated by Postgres NOTIFY from ingest.

Every websocket upgrade needs its package; reading it from Postgres each time is a round trip per
viewer. Ingest sends ``NOTIFY streaming_packages, '<package id>'`` in its transaction; every service
process LISTENs and drops that package (or everything, if the listening connection was lost and
notifications may have been missed). Entries also expire after ``ttl_seconds`` as a backstop.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiopg

from streaming.index.database import IndexDatabase
from streaming.index.models import Package

log = logging.getLogger(__name__)

CHANNEL = "streaming_packages"


class PackageCatalog:
    def __init__(self, index: IndexDatabase, dsn: str, ttl_seconds: float = 300.0) -> None:
        self.index = index
        self.dsn = dsn
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, tuple[float, Package]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._connection: aiopg.Connection | None = None
        self._closing = False
        self.listening = asyncio.Event()

    async def get(self, package_id: str) -> Package | None:
        """The package with its channels, from memory when fresh."""
        entry = self._entries.get(package_id)
        if entry is not None and time.monotonic() - entry[0] < self.ttl_seconds:
            return entry[1]
        package = await self.index.get_package(package_id)
        if package is not None:
            self._entries[package_id] = (time.monotonic(), package)
        return package

    def invalidate(self, package_id: str | None = None) -> None:
        if package_id is None:
            self._entries.clear()
        else:
            self._entries.pop(package_id, None)

    def start(self) -> None:
        self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        delay = 0.5
        while not self._closing:
            try:
                async with aiopg.connect(self.dsn) as connection, connection.cursor() as cursor:
                    if self._closing:
                        return  # close() came while this was connecting: it has nothing to close
                    self._connection = connection
                    await cursor.execute(f"LISTEN {CHANNEL}")
                    self.invalidate()  # anything may have changed while we were not listening
                    self.listening.set()
                    delay = 0.5
                    while True:
                        # aiopg's notification queue raises once the connection is closed or lost.
                        notice = await connection.notifies.get()
                        self.invalidate(notice.payload or None)
            except Exception as exc:
                self.listening.clear()
                self.invalidate()
                if self._closing:
                    return
                log.warning("package change notifications lost (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                self._connection = None

    async def close(self) -> None:
        """Stop listening. Closing the connection ends the wait for notifications (cancelling a
        wait on aiopg's notification queue can hang)."""
        self._closing = True
        if self._listener is None:
            return
        if self._connection is not None:
            self._connection.close()
        done, _ = await asyncio.wait({self._listener}, timeout=5)
        if not done:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
