"""Single-flight: concurrent asks for the same missing key share one load."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._loading: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """``await load()`` once for all callers that ask for ``key`` while it is loading.

        The load runs in its own task, so one caller giving up (a cancelled request) does not
        cancel it for the others.
        """
        future = self._loading.get(key)
        if future is None:
            future = asyncio.ensure_future(load())
            self._loading[key] = future
            future.add_done_callback(lambda _: self._loading.pop(key, None))
            # Consume the outcome even if every caller left, so nothing is logged as unretrieved.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(future)

    async def drain(self) -> None:
        """Wait for every load in flight (their callers may be gone)."""
        if self._loading:
            await asyncio.gather(*self._loading.values(), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._loading)
