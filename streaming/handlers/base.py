"""JSON error responses shared by the HTTP handlers."""

from __future__ import annotations

import math
from typing import Any

import tornado.web

from streaming.auth import bearer_token
from streaming.errors import InvalidRequest, NotFound, StreamingError, UnexpectedError
from streaming.protocol.frames import json_frame
from streaming.services import Services


class JsonHandler(tornado.web.RequestHandler):
    """Writes JSON bodies and turns StreamingError into the protocol's error object."""

    services: Services

    def initialize(self, services: Services) -> None:
        self.services = services

    @property
    def public_only(self) -> bool:
        """True under /discover: public packages only, read-only, no token."""
        return self.request.path.startswith("/discover/")

    def token(self) -> str | None:
        return bearer_token(
            self.request.headers.get("Authorization"), self.get_query_argument("session", None)
        )

    def integer_argument(self, name: str, default: int | None = None) -> int:
        """A whole-number query argument; InvalidRequest when missing or malformed."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            if default is None:
                raise InvalidRequest(f"the {name} query parameter is required")
            return default
        try:
            return int(raw)
        except ValueError:
            raise InvalidRequest(f"{name} must be a whole number, got {raw!r}") from None

    def float_argument(self, name: str, default: float) -> float:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise InvalidRequest(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise InvalidRequest(f"{name} must be a positive number, got {raw!r}")
        return value

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


class NotFoundHandler(JsonHandler):
    """Any path no route matches: a JSON 404 like every other error."""

    def prepare(self) -> None:
        raise NotFound(f"no such endpoint: {self.request.method} {self.request.path}")
