"""A bounded thread pool for numpy work, so one large page cannot freeze every socket."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CpuPool:
    """Runs CPU-heavy pure functions off the event loop; small jobs run inline (a thread hop costs more).

    gunzip (isal), numpy reductions and ``bytes.join`` release the GIL, so threads overlap usefully.
    """

    def __init__(self, workers: int, inline_below: int) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="streaming-cpu")
        self.inline_below = inline_below

    async def run(self, size: int, function: Callable[..., T], *args: object) -> T:
        """``function(*args)``, in a worker thread when ``size`` (samples or bytes) is large."""
        if size < self.inline_below:
            return function(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
