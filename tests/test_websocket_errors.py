"""Bad input gets the protocol's JSON error and never closes the socket or disturbs the next request."""

from __future__ import annotations

import asyncio
import logging
import time

import jwt
import pytest
import tornado.httpclient
import tornado.websocket
import ujson

from tests.conftest import make_settings
from tests.support.client import ViewerClient
from tests.support.server import start_server


def _package(server):
    return next(iter(server.packages.values()))


def _good_request(package, channels=2):
    start = package.channels[0].start
    return {
        "packageId": package.package_id,
        "startTime": start,
        "endTime": start + 1_000_000,
        "pixelWidth": 4000,
        "virtualChannels": [{"id": c.id, "name": c.name} for c in package.channels[:channels]],
    }


def _with(request, **changes):
    bad = {**request, **changes}
    return {k: v for k, v in bad.items() if v is not None}


BAD_MESSAGES = [
    ("no channels", lambda r: _with(r, virtualChannels=None), "RequestMissingChannels"),
    ("empty channel list", lambda r: _with(r, virtualChannels=[], channels=[]), "RequestMissingChannels"),
    ("start equals end", lambda r: _with(r, endTime=r["startTime"]), "InvalidRequest"),
    ("start after end", lambda r: _with(r, endTime=r["startTime"] - 10), "InvalidRequest"),
    ("zero pixel width", lambda r: _with(r, pixelWidth=0), "InvalidRequest"),
    ("negative pixel width", lambda r: _with(r, pixelWidth=-5), "InvalidRequest"),
    ("text pixel width", lambda r: _with(r, pixelWidth="wide"), "InvalidRequest"),
    ("non-numeric start", lambda r: _with(r, startTime="soon"), "InvalidRequest"),
    ("non-JSON text", lambda r: "this is {not json", "UnexpectedError"),
    ("JSON that is not an object", lambda r: "[1, 2, 3]", "UnexpectedError"),
    ("unknown message", lambda r: {"hello": "world"}, "UnexpectedError"),
    ("binary frame", lambda r: b"\x08\x01\x10\x02", "UnexpectedError"),
    ("unknown montage", lambda r: {"montage": "SIDEWAYS"}, "InvalidMontageName"),
    ("another package's id", lambda r: _with(r, packageId="N:package:someone-else"), "InvalidRequest"),
    (
        "montage for another package",
        lambda r: {"packageId": "N:package:x", "montage": "NOT_MONTAGED"},
        "InvalidRequest",
    ),
]


async def test_each_bad_message_gets_its_error_and_the_socket_keeps_serving(eeg_server):
    package = _package(eeg_server)
    good = _good_request(package)
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        for label, make, expected_error in BAD_MESSAGES:
            message = make(good)
            await client.send(message if not isinstance(message, dict) else ujson.dumps(message))
            reply = await client.receive_json()
            assert reply["error"] == expected_error, label
            assert isinstance(reply["reason"], str) and reply["reason"], label
            assert isinstance(reply["channelNames"], list), label
            page = await client.page(good)  # the same socket still answers in full
            assert all(len(page.channel(vc["id"])) == 1 for vc in good["virtualChannels"]), label
    finally:
        client.close()


async def test_unknown_channel_ids_are_listed(eeg_server):
    package = _package(eeg_server)
    request = _good_request(package)
    request["virtualChannels"].append({"id": "N:channel:not-here", "name": "X1"})
    request["virtualChannels"].append({"id": "N:channel:nor-here", "name": "X2"})
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        await client.send(request)
        reply = await client.receive_json()
        assert reply["error"] == "PackageMissingChannels"
        assert sorted(reply["channelNames"]) == ["N:channel:nor-here", "N:channel:not-here"]
        page = await client.page(_good_request(package))
        assert len(page.segments) == 2
    finally:
        client.close()


async def test_a_bad_message_does_not_disturb_another_clients_stream(eeg_server):
    package = _package(eeg_server)
    full = _good_request(package, channels=30)
    full["endTime"] = full["startTime"] + 192_000_000
    full["pixelWidth"] = 4000  # raw: every sample of every channel
    viewer = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    vandal = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        await viewer.send(full)
        for junk in ("{", b"\xff" * 100, ujson.dumps({"startTime": 5, "endTime": 1}), "null"):
            await vandal.send(junk)
            assert "error" in await vandal.receive_json()
        page = await viewer.read_page([vc["id"] for vc in full["virtualChannels"]])
        total = sum(m.segment.nrPoints for messages in page.segments.values() for m in messages)
        assert total == 30 * 48_000
    finally:
        viewer.close()
        vandal.close()


async def test_upgrade_is_refused_with_a_json_error(eeg_server):
    client = tornado.httpclient.AsyncHTTPClient()
    for path, status, name in [
        ("/ts/query?package=N:package:missing", 404, "PackageNotFound"),
        ("/ts/query", 400, "InvalidRequest"),
    ]:
        response = await client.fetch(eeg_server.http_url(path), raise_error=False)
        assert response.code == status
        assert ujson.loads(response.body)["error"] == name
    with pytest.raises(tornado.httpclient.HTTPClientError, match="404"):
        await tornado.websocket.websocket_connect(eeg_server.ws_url("N:package:missing"))


async def test_health_reports_connections(eeg_server):
    client = tornado.httpclient.AsyncHTTPClient()
    before = ujson.loads((await client.fetch(eeg_server.http_url("/ts/health"))).body)
    viewer = await ViewerClient.connect(eeg_server.ws_url(_package(eeg_server).package_id))
    try:
        during = ujson.loads((await client.fetch(eeg_server.http_url("/ts/health"))).body)
    finally:
        viewer.close()
    assert during["connections"] == before["connections"] + 1
    assert during["age"] >= 0 and abs(during["currentTime"] - time.time() * 1000) < 60_000


async def test_tokens_are_checked_when_a_jwt_key_is_set(database, tmp_path, shared_eeg):
    key = "k" * 32
    settings = make_settings(database, (tmp_path / "b").as_uri() + "/", auth={"jwt_key": key})
    async with start_server(settings) as server:
        package = await server.ingest(shared_eeg)
        http = tornado.httpclient.AsyncHTTPClient()
        base = server.http_url(f"/ts/query?package={package.package_id}")

        async def status(url: str, headers: dict | None = None) -> int:
            response = await http.fetch(url, headers=headers, raise_error=False)
            return response.code

        assert await status(base) == 401
        assert await status(base + "&session=garbage") == 401
        other = jwt.encode({"packages": ["N:package:other"]}, key, algorithm="HS256")
        assert await status(base + f"&session={other}") == 403
        expired = jwt.encode({"exp": int(time.time()) - 10}, key, algorithm="HS256")
        assert await status(base + f"&session={expired}") == 401
        good = jwt.encode({"packages": [package.package_id]}, key, algorithm="HS256")
        viewer = await ViewerClient.connect(server.ws_url(package.package_id, session=good))
        viewer.close()
        bearer = tornado.httpclient.HTTPRequest(
            server.ws_url(package.package_id), headers={"Authorization": f"Bearer {good}"}
        )
        (await tornado.websocket.websocket_connect(bearer)).close()


async def _drain(client: ViewerClient, quiet: float = 1.0) -> int:
    frames = 0
    while True:
        try:
            frame = await client.receive(timeout=quiet)
        except TimeoutError:
            return frames
        assert frame is not None, "the server closed the socket"
        frames += 1


async def test_a_viewer_that_floods_without_reading_is_bounded(eeg_server, caplog):
    from streaming.session.viewer import LOGGED_COMPLAINTS, MAX_PENDING_REPLIES

    caplog.set_level(logging.INFO, logger="streaming.session.viewer")
    package = _package(eeg_server)
    before = set(eeg_server.services.sessions)
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        await _wait_until(lambda: len(eeg_server.services.sessions - before) == 1)
        (session,) = eeg_server.services.sessions - before
        junk = ujson.dumps({"montage": "X" * 50_000})  # echoed in the error: must come back shortened
        for _ in range(100):
            await client.send(junk)
        for _ in range(3000):  # ~6 KiB channel list each: far more than the socket buffers hold
            await client.send({"montage": "NOT_MONTAGED"})
        await _wait_until(lambda: len(session._replies) == MAX_PENDING_REPLIES)
        await asyncio.sleep(0.5)
        assert len(session._replies) == MAX_PENDING_REPLIES  # bounded while the viewer reads nothing
        lines = [r.getMessage() for r in caplog.records if "connection" in r.getMessage()]
        assert len(lines) <= LOGGED_COMPLAINTS + 2 and all(len(line) < 1500 for line in lines)
        assert await _drain(client) > MAX_PENDING_REPLIES
        page = await client.page(_good_request(package))  # the socket still serves
        assert len(page.segments) == 2
    finally:
        client.close()


async def _wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)
