"""POST /timespan bodies: annotations with a time, a duration, a label and the channel they mark."""

from __future__ import annotations

import math
from typing import Any

import ujson

from streaming.errors import InvalidRequest

MAX_ITEMS = 10_000
MAX_LABEL = 1_000


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
                or value >= 2**62
                or (isinstance(value, float) and not value.is_integer())
            ):
                raise InvalidRequest(f"{where}.{name} must be a whole, non-negative number of microseconds")
        label, source = item.get("value"), item.get("source")
        if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL:
            raise InvalidRequest(f"{where}.value must be a label of 1 to {MAX_LABEL} characters")
        if not isinstance(source, str) or not source:
            raise InvalidRequest(f"{where}.source must be a channel id")
        start = int(time)
        parsed.append(
            {
                "start": start,
                # A zero-length event still covers its instant: [t, t + 1 us).
                "end": start + max(1, int(duration)),
                "label": label,
                "channels": [source],
                "description": str(item.get("description", "")),
                "data": item.get("data") if isinstance(item.get("data"), dict) else {},
            }
        )
    return parsed
