"""make_app: the one place the routes are assembled."""

from __future__ import annotations

import tornado.web

from streaming.handlers.annotations import TimespanHandler
from streaming.handlers.base import NotFoundHandler
from streaming.handlers.health import HealthHandler
from streaming.handlers.metrics import MetricsHandler, count_request
from streaming.handlers.retrieve import (
    ContinuousHandler,
    SegmentsHandler,
    UnitHandler,
    ValidateMontageHandler,
)
from streaming.handlers.timeseries_socket import TimeSeriesSocket
from streaming.services import Services


def make_app(services: Services) -> tornado.web.Application:
    """The tornado application; every handler gets ``services`` through ``initialize``."""
    routes: list[tuple[str, type, dict[str, object]]] = []
    for prefix in ("", "/discover"):
        routes += [
            (rf"{prefix}/ts/health", HealthHandler, {"services": services}),
            (rf"{prefix}/ts/query", TimeSeriesSocket, {"services": services}),
            (rf"{prefix}/ts/retrieve/continuous", ContinuousHandler, {"services": services}),
            (rf"{prefix}/ts/retrieve/unit", UnitHandler, {"services": services}),
            (rf"{prefix}/ts/retrieve/segments", SegmentsHandler, {"services": services}),
            (rf"{prefix}/ts/validate-montage", ValidateMontageHandler, {"services": services}),
        ]
    routes.append((r"/timespan", TimespanHandler, {"services": services}))  # writes: never under /discover
    routes.append((r"/metrics", MetricsHandler, {"services": services}))
    return tornado.web.Application(
        routes,
        # permessage-deflate stays off: float data barely compresses and costs ~65 s of CPU per GB.
        websocket_max_message_size=1 << 20,
        websocket_ping_interval=services.settings.server.ping_interval_seconds,
        websocket_ping_timeout=services.settings.server.ping_timeout_seconds,
        log_function=count_request,
        default_handler_class=NotFoundHandler,
        default_handler_args={"services": services},
    )


def make_metrics_app(services: Services) -> tornado.web.Application:
    """/metrics alone, for ``server.metrics_port``."""
    return tornado.web.Application([(r"/metrics", MetricsHandler, {"services": services})])
