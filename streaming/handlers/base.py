"""JSON error responses shared by the HTTP handlers."""

from __future__ import annotations

import math
import re
from typing import Any

import tornado.web

from streaming.auth import bearer_token
from streaming.errors import InvalidRequest, NotFound, StreamingError, UnexpectedError
from streaming.protocol.frames import json_frame
from streaming.protocol.requests import MAX_TIME_US
from streaming.services import Services

# Plain ASCII decimals only: int() and float() would also take "1_000", " 1 ", Arabic-Indic digits, "inf".
_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?")
_MAX_ARGUMENT_CHARS = 40


def _quoted(raw: str) -> str:
    """``repr(raw)``, cut short: error replies never echo unbounded input."""
    return repr(raw) if len(raw) <= _MAX_ARGUMENT_CHARS else repr(raw[:_MAX_ARGUMENT_CHARS]) + "..."


def parse_integer(name: str, raw: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An optionally signed decimal integer in ``[minimum, maximum]``; InvalidRequest otherwise."""
    if not _INTEGER.fullmatch(raw):
        raise InvalidRequest(f"{name} must be a whole number, got {_quoted(raw)}")
    value = int(raw)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else f" from {minimum}"
        high = "" if maximum is None else f" to {maximum}"
        raise InvalidRequest(f"{name} must be a whole number{low}{high}, got {_quoted(raw)}")
    return value


def parse_positive_number(name: str, raw: str) -> float:
    """A finite decimal number above zero ("2", "2.5", "1e3"); InvalidRequest otherwise."""
    value = float(raw) if _NUMBER.fullmatch(raw) else math.nan
    if not math.isfinite(value) or value <= 0:
        raise InvalidRequest(f"{name} must be a positive number, got {_quoted(raw)}")
    return value


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

    def _raw_argument(self, name: str) -> str | None:
        # strip=False: " 1 " is not a number (tornado still drops control characters).
        return self.get_query_argument(name, None, strip=False)

    def integer_argument(
        self, name: str, default: int | None = None, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """A whole-number query argument in ``[minimum, maximum]``; InvalidRequest when missing
        (and no default) or malformed."""
        raw = self._raw_argument(name)
        if raw is None:
            if default is None:
                raise InvalidRequest(f"the {name} query parameter is required")
            return default
        return parse_integer(name, raw, minimum, maximum)

    def time_argument(self, name: str, default: int | None = None) -> int:
        """A time query argument: microseconds since the epoch, within +-MAX_TIME_US (the websocket's
        bound), so it always fits Postgres' int8 ranges."""
        return self.integer_argument(name, default, -MAX_TIME_US, MAX_TIME_US)

    def float_argument(self, name: str, default: float) -> float:
        """A positive, finite number query argument."""
        raw = self._raw_argument(name)
        return default if raw is None else parse_positive_number(name, raw)

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json_frame(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        if isinstance(error, tornado.web.HTTPError) and 400 <= status_code < 500 and error.log_message:
            # tornado's own 4xx (an argument that is not UTF-8, ...): say what was wrong.
            message = error.log_message % error.args if error.args else error.log_message
            error = InvalidRequest(message[:200]) if status_code == 400 else UnexpectedError(message[:200])
            error.status = status_code
        elif not isinstance(error, StreamingError):
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
