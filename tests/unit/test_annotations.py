"""POST /timespan bodies and layer names (streaming/annotations.py): what Postgres cannot store is a 400."""

from __future__ import annotations

import pytest
import ujson

from streaming.annotations import (
    DEFAULT_LAYER,
    MAX_DATA_DEPTH,
    MAX_DESCRIPTION,
    MAX_LABEL,
    MAX_LAYER,
    layer_name,
    parse_timespan,
)
from streaming.errors import InvalidRequest

ITEM = {"time": 1_000, "duration": 5, "value": "SPIKE", "source": "N:channel:a"}


def _body(**changes: object) -> bytes:
    return ujson.dumps({"items": [{**ITEM, **changes}]}).encode()


def test_a_plain_item() -> None:
    (item,) = parse_timespan(
        _body(description="looks real", data={"score": 0.9, "tags": ["a", {"b": None}], "n": 10**30})
    )
    assert item == {
        "start": 1_000,
        "end": 1_005,
        "label": "SPIKE",
        "channels": ["N:channel:a"],
        "description": "looks real",
        "data": {"score": 0.9, "tags": ["a", {"b": None}], "n": 10**30},
    }
    (bare,) = parse_timespan(_body(description=None, data=None))
    assert (bare["description"], bare["data"]) == ("", {})


@pytest.mark.parametrize(
    "changes",
    [
        {"value": "a\u0000b"},
        {"source": "N:channel:\u0000"},
        {"description": "\u0000"},
        {"data": {"k": "\u0000"}},
        {"data": {"\u0000": 1}},
        {"data": {"k": [1, {"x": "bad\u0000"}]}},
        {"value": "\ud800"},  # a lone surrogate: Postgres cannot store it either
        {"data": {"k": "\udc00"}},
        {"description": 5},
        {"description": ["x"]},
        {"description": "x" * (MAX_DESCRIPTION + 1)},
        {"value": "x" * (MAX_LABEL + 1)},
        {"source": "x" * 256},
        {"data": 5},
        {"data": ["x"]},
        {"data": {"big": "x" * 70_000}},
    ],
)
def test_what_postgres_cannot_store_is_invalid_request(changes: dict) -> None:
    with pytest.raises(InvalidRequest):
        parse_timespan(_body(**changes))


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_data(token: str) -> None:
    body = ujson.dumps({"items": [ITEM]})[:-3] + ', "data": {"k": [1, ' + token + "]}}]}"
    assert ujson.loads(body)  # ujson reads these; jsonb does not
    with pytest.raises(InvalidRequest, match="finite"):
        parse_timespan(body.encode())


def test_deep_data_is_refused_without_recursion() -> None:
    deep: dict = {}
    for _ in range(MAX_DATA_DEPTH + 1):
        deep = {"a": deep}
    with pytest.raises(InvalidRequest, match="nested"):
        parse_timespan(_body(data=deep))
    body = ujson.dumps({"items": [ITEM]})[:-3] + ', "data": ' + '{"a": [' * 500 + "]}" * 500 + "}]}"
    with pytest.raises(InvalidRequest):
        parse_timespan(body.encode())


def test_layer_names() -> None:
    assert layer_name(None) == DEFAULT_LAYER
    assert layer_name("Seizures") == "Seizures"
    assert layer_name("x" * MAX_LAYER) == "x" * MAX_LAYER
    for bad in ["", "   ", "x" * (MAX_LAYER + 1), "a\u0000b", "\ud800"]:
        with pytest.raises(InvalidRequest):
            layer_name(bad)
