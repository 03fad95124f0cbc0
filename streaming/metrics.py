"""Every Prometheus metric of the service, in one place.

Labels are bounded sets (stage, outcome, handler class, backend, level, error name), never URLs or
channel ids. With several worker processes, prometheus-client's multiprocess mode is used
(``PROMETHEUS_MULTIPROC_DIR``, set by ``streaming serve --workers N``), so a scrape of any worker
returns the totals of all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

STAGE_SECONDS = Histogram(
    "streaming_stage_seconds",
    "Time spent in one stage of the data path, per block or per request.",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
REQUEST_SECONDS = Histogram(
    "streaming_request_seconds",
    "Time to answer a request in full, by kind and outcome.",
    ["kind", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
WEBSOCKET_CONNECTIONS = Gauge(
    "streaming_websocket_connections",
    "Open viewer websockets.",
    multiprocess_mode="livesum",
)
MESSAGES_SENT = Counter("streaming_messages_sent_total", "Websocket frames sent, by kind.", ["kind"])
BYTES_SENT = Counter("streaming_bytes_sent_total", "Websocket payload bytes sent, by kind.", ["kind"])
REQUESTS_CANCELLED = Counter(
    "streaming_requests_cancelled_total",
    "Page requests stopped or dropped before their last frame, by reason (dump, disconnect, overflow).",
    ["reason"],
)
BAD_MESSAGES = Counter("streaming_bad_messages_total", "Client messages answered with an error.", ["error"])
CACHE_REQUESTS = Counter(
    "streaming_cache_requests_total", "Block cache lookups, by level and result.", ["level", "result"]
)
CACHE_BYTES = Counter(
    "streaming_cache_bytes_total", "Bytes read from or written to a cache level.", ["level", "direction"]
)
STORE_READS = Counter(
    "streaming_store_reads_total", "Block store reads, by backend and outcome.", ["backend", "outcome"]
)
STORE_READ_BYTES = Counter(
    "streaming_store_read_bytes_total", "Bytes read from the block store.", ["backend"]
)
DB_POOL_CONNECTIONS = Gauge(
    "streaming_db_pool_connections",
    "Postgres pool connections, by state (size, in_use).",
    ["state"],
    multiprocess_mode="livesum",
)
INGEST_RECORDINGS = Counter(
    "streaming_ingest_recordings_total", "Recordings ingested, by outcome.", ["outcome"]
)
INGEST_BLOCKS = Counter("streaming_ingest_blocks_total", "Blocks written by ingest.")
INGEST_BYTES = Counter("streaming_ingest_bytes_total", "Compressed bytes written by ingest.")
HTTP_REQUESTS = Counter(
    "streaming_http_requests_total", "HTTP requests, by handler class and status.", ["handler", "status"]
)


def exposition() -> tuple[bytes, str]:
    """The current metrics in Prometheus text format, summed over worker processes when there are several."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
