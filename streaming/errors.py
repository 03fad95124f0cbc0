"""Domain exceptions and their protocol names and HTTP statuses (protocol.md section 4).

Code below the handlers raises these; `handlers/` and `session/` turn them into the protocol's
error object in one place (`StreamingError.to_json`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

# Errors often quote what the client sent; these bound what is echoed back and logged.
MAX_REASON_CHARS = 1000
MAX_NAME_CHARS = 200
MAX_NAMES = 1000


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StreamingError(Exception):
    """An error a client is told about: a protocol name, a sentence and an HTTP status."""

    name = "UnexpectedError"
    status = 500

    def __init__(self, reason: str, channel_names: Iterable[str] = ()) -> None:
        reason = _bounded(reason, MAX_REASON_CHARS)
        super().__init__(reason)
        self.reason = reason
        names = itertools.islice(channel_names, MAX_NAMES)
        self.channel_names = [_bounded(str(name), MAX_NAME_CHARS) for name in names]

    def to_json(self) -> dict[str, Any]:
        """The protocol's error object."""
        return {"error": self.name, "reason": self.reason, "channelNames": self.channel_names}


class UnexpectedError(StreamingError):
    """A message the server does not understand (protocol.md: "anything else")."""

    name = "UnexpectedError"
    status = 400


class InvalidRequest(StreamingError):
    """A recognised message with a field that is missing or out of range."""

    name = "InvalidRequest"
    status = 400


class RequestMissingChannels(StreamingError):
    name = "RequestMissingChannels"
    status = 400


class PackageMissingChannels(StreamingError):
    name = "PackageMissingChannels"
    status = 404


class NotFound(StreamingError):
    """A path no endpoint serves."""

    name = "NotFound"
    status = 404


class PackageNotFound(StreamingError):
    name = "PackageNotFound"
    status = 404


class NotTimeSeries(StreamingError):
    name = "NotTimeSeries"
    status = 400


class InvalidMontageName(StreamingError):
    name = "InvalidMontageName"
    status = 400


class InvalidFilter(StreamingError):
    """Filter parameters that make no stable filter for the channel (the reason names rate and limit)."""

    name = "InvalidFilter"
    status = 400


class MontageMisalignment(StreamingError):
    name = "MontageMisalignment"
    status = 400


class PackageCannotBeMontaged(StreamingError):
    name = "PackageCannotBeMontaged"
    status = 400


class QueryLimitExceeded(StreamingError):
    """A REST retrieval would return more values than its limit."""

    name = "QueryLimitExceeded"
    status = 400


class Unauthorized(StreamingError):
    name = "Unauthorized"
    status = 401


class Forbidden(StreamingError):
    name = "Forbidden"
    status = 403


class BlockReadError(StreamingError):
    """A stored block could not be read or decoded; the request cannot be answered in full."""

    name = "BlockReadError"
    status = 500


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, whitespace collapsed (libpq writes "FATAL:  ...")."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class ServiceUnavailable(Exception):
    """A service a command needs (Postgres, the block store, a listening socket) cannot be used.

    Raised where the failure happens, worded for an operator: which service, where, and why, in one
    line. The CLI prints it without a traceback.
    """


class IngestError(Exception):
    """An ingest could not complete; nothing was indexed."""
