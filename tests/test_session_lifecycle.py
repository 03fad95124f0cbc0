"""DumpBufferRequest, the request queue, throttling, keep-alives, idle and ping timeouts, startAtEpoch."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time

import numpy as np
import tornado.httpclient
import ujson

from tests.conftest import eeg_server_with
from tests.support.client import ViewerClient
from tests.support.proto import decode_message
from tests.support.reference import read_edf


def _package(server):
    return next(iter(server.packages.values()))


def _request(package, start, seconds, pixel_width=1000, channels=None):
    chosen = package.channels if channels is None else channels
    return {
        "startTime": start,
        "endTime": start + int(seconds * 1e6),
        "pixelWidth": pixel_width,
        "virtualChannels": [{"id": c.id, "name": c.name} for c in chosen],
    }


async def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_dump_drops_everything_before_it(eeg_server):
    package = _package(eeg_server)
    origin = package.channels[0].start
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        for i in range(20):  # whole-recording raw pages: far more than can be sent before the dump
            await client.send(_request(package, origin + i * 1000, 190))
        await client.send({"requestType": "DumpBufferRequest"})
        last = _request(package, origin + 50_000_000, 3, channels=package.channels[:4])
        await client.send(last)
        while True:
            frame = await client.receive()
            if isinstance(frame, str) and ujson.loads(frame).get("requestType") == "DumpBufferAck":
                break
        segments = []
        while len(segments) < 4:
            frame = await client.receive()
            assert isinstance(frame, bytes), f"unexpected text frame after the ack: {frame}"
            segments.append(decode_message(frame).segment)
        assert {s.pageStart for s in segments} == {last["startTime"]}, "a dropped request was answered"
        assert sorted(s.source for s in segments) == sorted(c.id for c in package.channels[:4])
        assert all(s.nrPoints == 750 for s in segments)
        # Nothing else arrives: no frame of the 20 dropped requests follows.
        await client.send({"currentTime": int(time.time() * 1000)})
        await client.send({"hello": "?"})
        assert (await client.receive_json())["error"] == "UnexpectedError"
    finally:
        client.close()


async def test_dumping_requests_whose_writes_are_pending_logs_no_error(eeg_server, caplog):
    """A dump (or a disconnect) while frames wait for a slow reader stops quietly: no tracebacks."""
    caplog.set_level(logging.INFO)
    package = _package(eeg_server)
    origin = package.channels[0].start
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        for _ in range(3):
            await client.send(_request(package, origin, 190))  # 30 channels, every sample: ~11 MiB
            await asyncio.sleep(0.3)  # read nothing: the socket's buffers fill and writes wait
            await client.send({"requestType": "DumpBufferRequest"})
            while True:
                frame = await client.receive()
                if isinstance(frame, str) and ujson.loads(frame).get("requestType") == "DumpBufferAck":
                    assert ujson.loads(frame)["dropped"] == 1
                    break
        await client.send(_request(package, origin, 190))
        await asyncio.sleep(0.3)
    finally:
        client.close()
    await _wait_for(lambda: not eeg_server.services.sessions)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    outcomes = [r.outcome for r in caplog.records if r.name == "streaming.requests"]
    assert outcomes == ["cancelled", "cancelled", "cancelled", "disconnected"]


async def test_a_page_read_in_full_is_ok_even_if_the_viewer_leaves_at_once(eeg_server, caplog):
    caplog.set_level(logging.INFO, logger="streaming.requests")
    package = _package(eeg_server)
    channels = package.channels[:4]
    for i in range(20):
        client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
        await client.page(_request(package, channels[0].start + i * 1_000_000, 1, channels=channels))
        client.close()  # right after the last frame: the request's task may not have returned yet
    await _wait_for(lambda: not eeg_server.services.sessions)
    outcomes = [r.outcome for r in caplog.records if r.name == "streaming.requests"]
    assert outcomes == ["ok"] * 20


async def test_the_queue_keeps_the_newest_requests(tmp_path, shared_eeg, caplog):
    caplog.set_level(logging.INFO, logger="streaming.requests")
    async with eeg_server_with(tmp_path, shared_eeg, max_message_queue=2) as server:
        package = _package(server)
        origin = package.channels[0].start
        client = await ViewerClient.connect(server.ws_url(package.package_id))
        try:
            await client.send(_request(package, origin, 190))  # busy for a while
            one = package.channels[:1]
            for i in range(1, 10):
                await client.send(_request(package, origin + i * 1_000_000, 1, channels=one))
            answered = []
            deadline = time.monotonic() + 60
            while len({s for s in answered if s != origin}) < 2:
                assert time.monotonic() < deadline
                frame = await client.receive()
                if isinstance(frame, bytes):
                    answered.append(decode_message(frame).segment.pageStart)
            await asyncio.sleep(0.3)
        finally:
            client.close()
    later = [s for s in dict.fromkeys(answered) if s != origin]
    assert later == [origin + 8_000_000, origin + 9_000_000]
    # The seven pushed out of the full queue are not lost without a trace: one line each.
    dropped = [r for r in caplog.records if r.name == "streaming.requests" and r.outcome == "dropped"]
    assert [(r.reason, r.start) for r in dropped] == [
        ("overflow", origin + i * 1_000_000) for i in range(1, 8)
    ]


async def test_throttle_spaces_out_requests(tmp_path, shared_eeg):
    async with eeg_server_with(tmp_path, shared_eeg, throttle_items=2, throttle_period_seconds=0.5) as server:
        package = _package(server)
        one = package.channels[:1]
        client = await ViewerClient.connect(server.ws_url(package.package_id))
        try:
            started = time.monotonic()
            for i in range(6):
                await client.page(_request(package, one[0].start + i * 1_000_000, 1, channels=one))
            elapsed = time.monotonic() - started
        finally:
            client.close()
    assert elapsed >= 0.9  # 2 at once, then 4 more at 4 per second


async def test_keepalives_idle_close_and_state_freed(tmp_path, shared_eeg):
    async with eeg_server_with(
        tmp_path, shared_eeg, keepalive_seconds=0.2, idle_timeout_seconds=1.5
    ) as server:
        package = _package(server)
        client = await ViewerClient.connect(server.ws_url(package.package_id))
        await client.send(
            {"filter": "lowpass", "filterParameters": [4, 30], "channels": [package.channels[0].id]}
        )
        (session,) = server.services.sessions
        await _wait_for(lambda: session.view.filters)
        keepalives = 0
        started = time.monotonic()
        while True:
            frame = await client.receive(timeout=10)
            if frame is None:
                break
            assert set(ujson.loads(frame)) == {"currentTime"}
            keepalives += 1
        assert keepalives >= 3
        assert time.monotonic() - started >= 1.0
        await _wait_for(lambda: not server.services.sessions)
        assert not session.busy and not session.view.filters and not session.view.filter_states
        health = ujson.loads(
            (await tornado.httpclient.AsyncHTTPClient().fetch(server.http_url("/ts/health"))).body
        )
        assert health["connections"] == 0


async def test_a_peer_that_stops_answering_pings_is_dropped(tmp_path, shared_eeg):
    async with eeg_server_with(
        tmp_path, shared_eeg, ping_interval_seconds=0.3, ping_timeout_seconds=0.3
    ) as server:
        package = _package(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ts/query?package={package.package_id} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        await _wait_for(lambda: len(server.services.sessions) == 1)
        (session,) = server.services.sessions
        health_url = server.http_url("/ts/health")
        health = ujson.loads((await tornado.httpclient.AsyncHTTPClient().fetch(health_url)).body)
        assert health["connections"] == 1
        # Never read or answer again: like a laptop whose network was cut.
        await _wait_for(lambda: not server.services.sessions, timeout=10)
        assert not session.busy
        health = ujson.loads((await tornado.httpclient.AsyncHTTPClient().fetch(health_url)).body)
        assert health["connections"] == 0
        writer.close()


async def test_start_at_epoch_makes_times_relative(eeg_server, shared_eeg):
    package = _package(eeg_server)
    origin = min(c.start for c in package.channels)
    channel = package.channels[2]
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id, startAtEpoch="true"))
    try:
        await client.send({"montage": "NOT_MONTAGED"})
        details = (await client.receive_json())["channelDetails"]
        assert details[2]["start"] == channel.start - origin == 0
        assert details[2]["end"] == 192_000_000
        page = await client.page(_request(package, 5_000_000, 2, 4000, [channel]))
    finally:
        client.close()
    (message,) = page.channel(channel.id)
    assert message.segment.startTs == 5_000_000
    assert message.segment.pageStart == 5_000_000 and message.segment.pageEnd == 7_000_000
    expected = read_edf(shared_eeg)[channel.name].samples[5 * 250 : 7 * 250]
    np.testing.assert_allclose(message.segment.data, expected, rtol=1e-12, atol=1e-9)


async def test_shutdown_tells_viewers_the_server_is_going_away(tmp_path, shared_eeg):
    async with eeg_server_with(tmp_path, shared_eeg) as server:
        package = _package(server)
        idle = await ViewerClient.connect(server.ws_url(package.package_id))
        busy = await ViewerClient.connect(server.ws_url(package.package_id))
        await busy.send(_request(package, package.channels[0].start, 190))  # still streaming
        assert isinstance(await busy.receive(), bytes)
    for client in (idle, busy):
        while await client.receive() is not None:
            pass
        assert client.connection.close_code == 1001
        assert client.connection.close_reason == "server shutting down"
