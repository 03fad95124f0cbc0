"""Single-flight: one load per key for concurrent callers, cancelled when the last caller leaves."""

from __future__ import annotations

import asyncio

import pytest

from streaming.cache.singleflight import SingleFlight


class SlowLoad:
    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.release = asyncio.Event()

    async def __call__(self) -> int:
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return self.started


async def test_concurrent_callers_share_one_load() -> None:
    flights: SingleFlight[int] = SingleFlight()
    load = SlowLoad()
    callers = [asyncio.ensure_future(flights.run("k", load)) for _ in range(50)]
    await asyncio.sleep(0)
    load.release.set()
    assert await asyncio.gather(*callers) == [1] * 50
    assert load.started == 1 and len(flights) == 0


async def test_one_caller_leaving_does_not_cancel_the_load_for_the_others() -> None:
    flights: SingleFlight[int] = SingleFlight()
    load = SlowLoad()
    leaver = asyncio.ensure_future(flights.run("k", load))
    stayer = asyncio.ensure_future(flights.run("k", load))
    await asyncio.sleep(0)
    leaver.cancel()
    await asyncio.sleep(0)
    load.release.set()
    assert await stayer == 1
    assert leaver.cancelled() and load.cancelled == 0


async def test_the_last_caller_leaving_cancels_the_load() -> None:
    flights: SingleFlight[int] = SingleFlight()
    load = SlowLoad()
    callers = [asyncio.ensure_future(flights.run("k", load)) for _ in range(3)]
    await asyncio.sleep(0)
    for caller in callers:
        caller.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    await asyncio.sleep(0)
    assert load.cancelled == 1 and len(flights) == 0


async def test_a_caller_after_an_abandoned_load_starts_a_new_one() -> None:
    flights: SingleFlight[int] = SingleFlight()
    load = SlowLoad()
    first = asyncio.ensure_future(flights.run("k", load))
    await asyncio.sleep(0)
    first.cancel()
    second = asyncio.ensure_future(flights.run("k", load))  # before the cancelled load has finished
    await asyncio.sleep(0)
    load.release.set()
    assert await second == 2
    assert load.started == 2 and load.cancelled == 1


async def test_a_failed_load_fails_every_caller_and_is_not_kept() -> None:
    flights: SingleFlight[int] = SingleFlight()

    async def broken() -> int:
        await asyncio.sleep(0)
        raise OSError("store down")

    results = await asyncio.gather(*(flights.run("k", broken) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results) and len(flights) == 0
    with pytest.raises(OSError):
        await flights.run("k", broken)
