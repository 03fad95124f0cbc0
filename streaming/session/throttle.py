"""A token bucket: at most ``items`` starts per ``period`` seconds, waiting (not dropping) beyond that."""

from __future__ import annotations

import asyncio
import time


class Throttle:
    def __init__(self, items: int, period: float) -> None:
        self.capacity = float(items)
        self.rate = items / period
        self.tokens = float(items)
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def acquire(self) -> None:
        """Take one token, sleeping until one is available."""
        self._refill()
        while self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) / self.rate)
            self._refill()
        self.tokens -= 1
