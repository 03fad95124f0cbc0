"""Single-flight: concurrent asks for the same missing key share one load."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclasses.dataclass
class _Flight(Generic[T]):
    task: asyncio.Task[T]
    waiters: int = 0
    abandoned: bool = False  # every caller gave up and the load was cancelled


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._loading: dict[str, _Flight[T]] = {}

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """``await load()`` once for all callers that ask for ``key`` while it is loading.

        The load runs in its own task, so one caller giving up (a cancelled request) does not
        cancel it for the others; when the last caller gives up, the load is cancelled too, so a
        dropped request stops its fetches instead of finishing them for nobody.
        """
        flight = self._loading.get(key)
        if flight is None or flight.abandoned:
            flight = self._start(key, load)
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.abandoned = True
                flight.task.cancel()

    def _start(self, key: str, load: Callable[[], Awaitable[T]]) -> _Flight[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(load())
        flight = _Flight(task)
        self._loading[key] = flight

        def finished(done: asyncio.Task[T]) -> None:
            if self._loading.get(key) is flight:
                del self._loading[key]
            # Consume the outcome even if every caller left, so nothing is logged as unretrieved.
            if not done.cancelled():
                done.exception()

        task.add_done_callback(finished)
        return flight

    async def drain(self) -> None:
        """Wait for every load in flight (their callers may be gone)."""
        if self._loading:
            await asyncio.gather(*(f.task for f in self._loading.values()), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._loading)
