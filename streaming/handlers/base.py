"""JSON error responses shared by the HTTP handlers."""

from __future__ import annotations

from typing import Any

import tornado.web

from streaming.errors import StreamingError, UnexpectedError
from streaming.protocol.frames import json_frame
from streaming.services import Services


class JsonHandler(tornado.web.RequestHandler):
    """Writes JSON bodies and turns StreamingError into the protocol's error object."""

    services: Services

    def initialize(self, services: Services) -> None:
        self.services = services

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json_frame(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        if not isinstance(error, StreamingError):
            error = UnexpectedError(self._reason or "internal error")
            error.status = status_code
        self.write_json(error.to_json(), error.status)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, StreamingError) and value.status < 500:
            return  # a client's mistake: answered with JSON, not a server fault
        super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, StreamingError):
            self.log_exception(type(e), e, e.__traceback__)
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)
