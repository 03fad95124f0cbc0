"""Client -> server text messages (protocol.md 1.1), parsed into typed requests or a StreamingError."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import ujson

from streaming.errors import (
    InvalidFilter,
    InvalidMontageName,
    InvalidRequest,
    RequestMissingChannels,
    UnexpectedError,
)

MONTAGE_NAMES = (
    "NOT_MONTAGED",
    "BIPOLAR_ANT_POS",
    "BIPOLAR_TRANSVERSE",
    "REFERENTIAL_VS_CZ",
    "CUSTOM_MONTAGE",
)


@dataclasses.dataclass(frozen=True, slots=True)
class VirtualChannel:
    id: str
    name: str


@dataclasses.dataclass(frozen=True)
class TimeSeriesRequest:
    start: int  # us
    end: int  # us, exclusive
    pixel_width: float  # us per pixel
    channels: tuple[VirtualChannel, ...]
    query_limit: int | None = None
    package_id: str | None = None
    request_annotations: bool = False


@dataclasses.dataclass(frozen=True)
class MontageRequest:
    montage: str
    montage_map: tuple[tuple[str, str], ...] = ()
    package_id: str | None = None


@dataclasses.dataclass(frozen=True)
class FilterRequest:
    filter: str
    parameters: tuple[float, ...]
    channels: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ClearFilterRequest:
    channels: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ResetFilterRequest:
    channels: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class DumpBufferRequest:
    pass


@dataclasses.dataclass(frozen=True)
class KeepAlive:
    current_time_ms: int


ClientMessage = (
    TimeSeriesRequest
    | MontageRequest
    | FilterRequest
    | ClearFilterRequest
    | ResetFilterRequest
    | DumpBufferRequest
    | KeepAlive
)

# Far beyond the largest montage of the largest recordings (hundreds of channels): bounds one request.
MAX_CHANNELS_PER_REQUEST = 4096
# Far beyond any recording (year ~148,000) and far from int64 overflow once startAtEpoch adds an origin.
MAX_TIME_US = 2**62

_TIME_SERIES_KEYS = {"startTime", "endTime", "pixelWidth", "virtualChannels", "channels"}


def parse_message(text: str | bytes) -> ClientMessage:
    """Parse one text frame; raise a StreamingError subclass describing what is wrong."""
    try:
        message = ujson.loads(text)
    except (ValueError, TypeError) as exc:
        raise UnexpectedError(f"message is not valid JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise UnexpectedError("message must be a JSON object")
    if "montage" in message:
        return _parse_montage(message)
    if "filter" in message:
        return _parse_filter(message)
    if "channelFiltersToClear" in message:
        return ClearFilterRequest(_string_list(message, "channelFiltersToClear"))
    if "channelFiltersToReset" in message:
        return ResetFilterRequest(_string_list(message, "channelFiltersToReset"))
    if message.get("requestType") == "DumpBufferRequest":
        return DumpBufferRequest()
    if _TIME_SERIES_KEYS & message.keys():
        return _parse_time_series(message)
    if "currentTime" in message:
        return KeepAlive(_integer(message, "currentTime"))
    keys = ", ".join(_shorten(key, 40) for key in sorted(message)[:5])
    raise UnexpectedError(f"unrecognised message with keys [{keys}]")


def _shorten(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: replies and logs never echo unbounded input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _integer(message: dict[str, Any], key: str) -> int:
    value = message.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRequest(f"{key} must be a whole number, got {_shorten(value)}")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidRequest(f"{key} must be a whole number, got {_shorten(value)}")
    if not -(2**63) <= value < 2**63:
        raise InvalidRequest(f"{key} is out of range: {value!r}")
    return int(value)


def _string_list(message: dict[str, Any], key: str) -> tuple[str, ...]:
    value = message.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"{key} must be a list of channel ids")
    return tuple(value)


def _parse_time_series(message: dict[str, Any]) -> TimeSeriesRequest:
    start = _integer(message, "startTime")
    end = _integer(message, "endTime")
    if start < 0:
        raise InvalidRequest(f"startTime must not be negative, got {start}")
    if end > MAX_TIME_US:
        raise InvalidRequest(f"endTime must be below {MAX_TIME_US} microseconds, got {end}")
    if start >= end:
        raise InvalidRequest(f"startTime ({start}) must be before endTime ({end})")
    pixel_width = message.get("pixelWidth")
    if (
        isinstance(pixel_width, bool)
        or not isinstance(pixel_width, (int, float))
        or not math.isfinite(pixel_width)
        or pixel_width <= 0
    ):
        raise InvalidRequest(
            f"pixelWidth must be a positive number of microseconds, got {_shorten(pixel_width)}"
        )

    channels: list[VirtualChannel] = []
    virtual = message.get("virtualChannels")
    plain = message.get("channels")
    if virtual:
        if not isinstance(virtual, list):
            raise InvalidRequest("virtualChannels must be a list of {id, name} objects")
        for item in virtual:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise InvalidRequest("each virtual channel needs a string id")
            name = item.get("name")
            channels.append(VirtualChannel(item["id"], name if isinstance(name, str) else ""))
    elif plain:
        if not isinstance(plain, list) or not all(isinstance(item, str) for item in plain):
            raise InvalidRequest("channels must be a list of channel ids")
        channels = [VirtualChannel(item, "") for item in plain]
    if not channels:
        raise RequestMissingChannels("the request names no channels: send virtualChannels or channels")
    if len(channels) > MAX_CHANNELS_PER_REQUEST:
        raise InvalidRequest(
            f"the request names {len(channels)} channels; at most {MAX_CHANNELS_PER_REQUEST} per request"
        )

    query_limit = message.get("queryLimit")
    if query_limit is not None:
        query_limit = _integer(message, "queryLimit")
        if query_limit < 0:
            raise InvalidRequest(f"queryLimit must not be negative, got {query_limit}")
    package_id = message.get("packageId")
    return TimeSeriesRequest(
        start=start,
        end=end,
        pixel_width=float(pixel_width),
        channels=tuple(channels),
        query_limit=query_limit,
        package_id=package_id if isinstance(package_id, str) else None,
        request_annotations=message.get("requestAnnotations") is True,
    )


def _parse_montage(message: dict[str, Any]) -> MontageRequest:
    montage = message.get("montage")
    if montage not in MONTAGE_NAMES:
        expected = ", ".join(MONTAGE_NAMES)
        raise InvalidMontageName(f"unknown montage {_shorten(montage)}; expected one of {expected}")
    pairs: list[tuple[str, str]] = []
    if montage == "CUSTOM_MONTAGE":
        raw = message.get("montageMap")
        if not isinstance(raw, list) or not raw:
            raise InvalidRequest("CUSTOM_MONTAGE needs a montageMap of [lead, secondary] name pairs")
        for pair in raw:
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise InvalidRequest(f"montageMap entry {_shorten(pair)} is not a [lead, secondary] pair")
            pairs.append((pair[0], pair[1]))
    package_id = message.get("packageId")
    return MontageRequest(montage, tuple(pairs), package_id if isinstance(package_id, str) else None)


def _parse_filter(message: dict[str, Any]) -> FilterRequest:
    name = message.get("filter")
    if not isinstance(name, str):
        raise InvalidFilter("filter must be a filter name")
    parameters = message.get("filterParameters", [])
    if not isinstance(parameters, list) or not all(
        isinstance(p, (int, float)) and not isinstance(p, bool) for p in parameters
    ):
        raise InvalidFilter("filterParameters must be a list of numbers")
    return FilterRequest(name, tuple(float(p) for p in parameters), _string_list(message, "channels"))
