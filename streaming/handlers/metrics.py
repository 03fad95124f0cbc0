"""GET /metrics: Prometheus exposition, summed over worker processes when there are several."""

from __future__ import annotations

import logging

import tornado.web
from tornado.log import access_log

from streaming.metrics import HTTP_REQUESTS, exposition
from streaming.services import Services


class MetricsHandler(tornado.web.RequestHandler):
    def initialize(self, services: Services) -> None:
        self.services = services

    def get(self) -> None:
        body, content_type = exposition()
        self.set_header("Content-Type", content_type)
        self.finish(body)


def count_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's ``log_function``: count every HTTP request by handler class and status, and log it."""
    status = handler.get_status()
    HTTP_REQUESTS.labels(type(handler).__name__, str(status)).inc()
    level = logging.DEBUG if status < 400 else logging.INFO if status < 500 else logging.ERROR
    access_log.log(
        level,
        "%d %s %s %.2fms",
        status,
        handler.request.method,
        handler.request.path,  # the path, not the query string: it may hold a session token
        1000.0 * handler.request.request_time(),
    )
