"""POST /timespan bodies: annotations with a time, a duration, a label and the channel they mark."""

from __future__ import annotations

import math
from typing import Any

import ujson

from streaming.errors import InvalidRequest
from streaming.protocol.requests import MAX_TIME_US

MAX_ITEMS = 10_000
MAX_LABEL = 1_000  # characters of an item's value
MAX_DESCRIPTION = 10_000  # characters of an item's description
MAX_SOURCE = 255  # characters of a channel id
MAX_LAYER = 255  # characters of a layer name
MAX_DATA_BYTES = 65_536  # an item's data object, as JSON
MAX_DATA_DEPTH = 32  # nesting of an item's data object
DEFAULT_LAYER = "Default"


def check_text(where: str, text: str) -> None:
    """Postgres text holds neither NUL nor lone surrogates (which "\\ud800" in JSON decodes to)."""
    if "\x00" in text:
        raise InvalidRequest(f"{where} must not contain NUL (\\u0000) characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{where} must be valid Unicode (no lone surrogates)") from None


def layer_name(raw: str | None) -> str:
    """The ``layer`` query argument: absent is the default layer; empty or too long is InvalidRequest."""
    if raw is None:
        return DEFAULT_LAYER
    if not raw.strip():
        raise InvalidRequest(
            f"layer must be a name of 1 to {MAX_LAYER} characters (omit it for {DEFAULT_LAYER})"
        )
    if len(raw) > MAX_LAYER:
        raise InvalidRequest(f"layer must be a name of 1 to {MAX_LAYER} characters, got {len(raw)}")
    check_text("layer", raw)
    return raw


def _check_data(where: str, data: dict[str, Any]) -> None:
    """JSON Postgres' jsonb accepts: strings without NUL, finite numbers, bounded depth and size."""
    pending: list[tuple[str, Any, int]] = [(where, data, 0)]
    while pending:  # iterative: a deep object is refused, not a RecursionError
        path, value, depth = pending.pop()
        if depth > MAX_DATA_DEPTH:
            raise InvalidRequest(f"{where} is nested more than {MAX_DATA_DEPTH} levels deep")
        if isinstance(value, str):
            check_text(path, value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidRequest(f"{path} must be a finite number, got {value}")
        elif isinstance(value, dict):
            for key, item in value.items():
                check_text(f"a key of {path}", key)
                pending.append((f"{path}.{key[:40]}", item, depth + 1))
        elif isinstance(value, list):
            pending.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))
    if len(ujson.dumps(data)) > MAX_DATA_BYTES:
        raise InvalidRequest(f"{where} must be at most {MAX_DATA_BYTES} bytes of JSON")


def parse_timespan(body: bytes) -> list[dict[str, Any]]:
    """``{"items": [{"time", "duration", "value", "source"}]}`` -> validated annotation dicts
    (``start``, ``end``, ``label``, ``channels``, optional ``description`` and ``data``)."""
    try:
        payload = ujson.loads(body or b"null")
    except ValueError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc
    items = payload.get("items") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise InvalidRequest('the body must be {"items": [{"time", "duration", "value", "source"}, ...]}')
    if len(items) > MAX_ITEMS:
        raise InvalidRequest(f"at most {MAX_ITEMS} items per request, got {len(items)}")
    parsed: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        where = f"items[{position}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object")
        time: Any = item.get("time")
        duration: Any = item.get("duration", 0)
        for name, value in (("time", time), ("duration", duration)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
                or value >= MAX_TIME_US
                or (isinstance(value, float) and not value.is_integer())
            ):
                raise InvalidRequest(f"{where}.{name} must be a whole, non-negative number of microseconds")
        label, source = item.get("value"), item.get("source")
        if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL:
            raise InvalidRequest(f"{where}.value must be a label of 1 to {MAX_LABEL} characters")
        check_text(f"{where}.value", label)
        if not isinstance(source, str) or not source or len(source) > MAX_SOURCE:
            raise InvalidRequest(f"{where}.source must be a channel id of 1 to {MAX_SOURCE} characters")
        check_text(f"{where}.source", source)
        description = item.get("description")
        if description is None:
            description = ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidRequest(f"{where}.description must be text of at most {MAX_DESCRIPTION} characters")
        check_text(f"{where}.description", description)
        data = item.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidRequest(f"{where}.data must be a JSON object")
        _check_data(f"{where}.data", data)
        start = int(time)
        parsed.append(
            {
                "start": start,
                # A zero-length event still covers its instant: [t, t + 1 us).
                "end": start + max(1, int(duration)),
                "label": label,
                "channels": [source],
                "description": description,
                "data": data,
            }
        )
    return parsed
