"""A viewer that leaves mid-stream: the work stops quietly, nothing leaks, the next viewer is served."""

from __future__ import annotations

import asyncio
import gc
import logging

from tests.support.client import ViewerClient


def _package(server):
    return next(iter(server.packages.values()))


def _streaming_tasks() -> list[asyncio.Task]:
    return [
        t
        for t in asyncio.all_tasks()
        if not t.done() and "streaming" in getattr(t.get_coro(), "__qualname__", "") + repr(t.get_coro())
    ]


async def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_disconnect_while_23_channels_stream(eeg_server, caplog):
    caplog.set_level(logging.INFO)
    package = _package(eeg_server)
    channels = package.channels[:23]
    start = channels[0].start
    request = {
        "packageId": package.package_id,
        "startTime": start,
        "endTime": start + 192_000_000,
        "pixelWidth": 1000,  # raw: the whole recording, every sample, 23 x 5 messages
        "virtualChannels": [{"id": c.id, "name": c.name} for c in channels],
    }
    sessions_before = len(eeg_server.services.sessions)
    tasks_before = len(_streaming_tasks())
    for _ in range(3):
        leaver = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
        await leaver.send(request)
        first = await leaver.receive()
        assert isinstance(first, bytes)
        leaver.close()
        await _wait_for(lambda: len(eeg_server.services.sessions) == sessions_before)
    await _wait_for(lambda: len(_streaming_tasks()) <= tasks_before)
    gc.collect()
    await asyncio.sleep(0.1)

    stayer = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        page = await stayer.page(request)
    finally:
        stayer.close()
    assert sum(m.segment.nrPoints for c in channels for m in page.channel(c.id)) == 23 * 48_000

    noisy = [
        r for r in caplog.records if r.levelno >= logging.WARNING and not r.name.startswith("tornado.access")
    ]
    assert noisy == [], [r.getMessage() for r in noisy]
    assert not any("never retrieved" in r.getMessage() for r in caplog.records)
