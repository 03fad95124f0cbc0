"""/metrics counts what a scripted session did (deltas, since the server runs in this process)."""

from __future__ import annotations

import asyncio
import json
import logging

import tornado.httpclient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import ViewerClient


def _package(server):
    return next(iter(server.packages.values()))


async def _scrape(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await tornado.httpclient.AsyncHTTPClient().fetch(server.http_url("/metrics"))
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples, name, **labels) -> float:
    wanted = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and wanted <= set(lab))


def _delta(before, after, name, **labels) -> float:
    return _value(after, name, **labels) - _value(before, name, **labels)


async def test_metrics_follow_a_scripted_session(eeg_server, caplog):
    caplog.set_level(logging.INFO, logger="streaming.requests")
    package = _package(eeg_server)
    channels = package.channels[:3]
    start = channels[0].start
    virtual = [{"id": c.id, "name": c.name} for c in channels]
    backend = eeg_server.services.store.backend
    before = await _scrape(eeg_server)

    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        during = await _scrape(eeg_server)
        for i in range(3):  # three complete pages of one block each: 3 channels x 1 message
            page = await client.page(
                {
                    "startTime": start + i * 1_000_000,
                    "endTime": start + i * 1_000_000 + 500_000,
                    "pixelWidth": 4000,
                    "virtualChannels": virtual,
                }
            )
            assert sum(len(v) for v in page.segments.values()) == 3
        await client.send("not json")  # one bad message
        assert (await client.receive_json())["error"] == "UnexpectedError"
        for _ in range(5):  # then a burst that a dump drops
            await client.send(
                {
                    "startTime": start,
                    "endTime": start + 190_000_000,
                    "pixelWidth": 1000,
                    "virtualChannels": [{"id": c.id, "name": c.name} for c in package.channels],
                }
            )
        await client.send({"requestType": "DumpBufferRequest"})
        while True:
            frame = await client.receive()
            if isinstance(frame, str) and "DumpBufferAck" in frame:
                dropped = json.loads(frame)["dropped"]
                break
    finally:
        client.close()
    await asyncio.sleep(0.2)
    await tornado.httpclient.AsyncHTTPClient().fetch(eeg_server.http_url("/ts/health"))
    after = await _scrape(eeg_server)

    assert _delta(before, during, "streaming_websocket_connections") == 1
    assert _delta(before, after, "streaming_websocket_connections") == 0
    assert _delta(before, after, "streaming_request_seconds_count", kind="page", outcome="ok") == 3
    assert _delta(before, after, "streaming_request_seconds_count", kind="page", outcome="cancelled") >= 1
    assert _delta(before, after, "streaming_requests_cancelled_total", reason="dump") == dropped >= 1
    assert _delta(before, after, "streaming_bad_messages_total", error="UnexpectedError") == 1
    assert _delta(before, after, "streaming_messages_sent_total", kind="binary") >= 9
    assert _delta(before, after, "streaming_bytes_sent_total", kind="binary") > 9 * 125 * 8
    # Every block came from the in-process cache or the store (earlier tests may have warmed L1).
    l1_hits = _delta(before, after, "streaming_cache_requests_total", level="l1", result="hit")
    l1_misses = _delta(before, after, "streaming_cache_requests_total", level="l1", result="miss")
    store_reads = _delta(before, after, "streaming_store_reads_total", backend=backend, outcome="ok")
    assert l1_hits + l1_misses >= 9
    assert store_reads <= l1_misses
    if store_reads:
        assert _delta(before, after, "streaming_store_read_bytes_total", backend=backend) > 0
    for stage in ("lookup", "trim", "encode", "send"):  # fetch and decode only on cache misses
        assert _delta(before, after, "streaming_stage_seconds_count", stage=stage) >= 3, stage
    assert _delta(before, after, "streaming_http_requests_total", handler="HealthHandler", status="200") == 1
    assert _delta(before, after, "streaming_http_requests_total", handler="MetricsHandler", status="200") >= 2
    assert _value(after, "streaming_db_pool_connections", state="size") >= 1
    # Labels never carry channel ids or URLs.
    assert not any("N:channel" in str(labels) or "/ts/" in str(labels) for _, labels in after)

    lines = [r for r in caplog.records if r.name == "streaming.requests"]
    ok = [r for r in lines if r.outcome == "ok"]
    assert len(ok) >= 3
    assert {r.package for r in ok} == {package.package_id}
    assert all(r.channels == 3 and r.ms >= 0 and r.end - r.start == 500_000 for r in ok[-3:])
