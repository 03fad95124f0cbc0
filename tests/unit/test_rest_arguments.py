"""Query-argument parsing of the REST handlers (streaming/handlers/base.py) and the continuous answer."""

from __future__ import annotations

import numpy as np
import pytest
import ujson

from streaming.errors import InvalidRequest
from streaming.handlers.base import parse_integer, parse_positive_number
from streaming.protocol.requests import MAX_TIME_US
from streaming.retrieval.samples import sample_pairs


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0), ("42", 42), ("+42", 42), ("-42", -42), ("007", 7), (str(MAX_TIME_US), MAX_TIME_US)],
)
def test_plain_decimal_integers(raw: str, expected: int) -> None:
    assert parse_integer("start", raw, -MAX_TIME_US, MAX_TIME_US) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " 1 ",
        "1 ",
        "1_000",
        "1e3",
        "1.0",
        "0x10",
        "\u0661\u0662\u0663",  # Arabic-Indic digits: int() takes them
        "--1",
        "+",
        "1" * 41,  # not even handed to int()
        "99999999999999999999999",
        "-999999999999999999999",
        str(MAX_TIME_US + 1),
        str(-MAX_TIME_US - 1),
        "9223372036854775808",
    ],
)
def test_everything_else_is_invalid_request(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_integer("start", raw, -MAX_TIME_US, MAX_TIME_US)
    assert "start" in caught.value.reason
    assert len(caught.value.reason) < 200


def test_minimum_only() -> None:
    assert parse_integer("limit", "99999999999999999999999", minimum=1) == 99999999999999999999999
    with pytest.raises(InvalidRequest):
        parse_integer("limit", "0", minimum=1)


@pytest.mark.parametrize(("raw", "expected"), [("2", 2.0), ("2.5", 2.5), (".5", 0.5), ("1e3", 1000.0)])
def test_positive_numbers(raw: str, expected: float) -> None:
    assert parse_positive_number("gapThreshold", raw) == expected


@pytest.mark.parametrize("raw", ["", "0", "-1", "nan", "inf", "1e400", "1_0", " 2", "\u0661", "2.5.1", "0x1"])
def test_bad_positive_numbers(raw: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_positive_number("gapThreshold", raw)


def test_sample_pairs_keep_times_integer() -> None:
    times = np.array([1_224_017_292_000_000, 1_224_017_292_004_000], dtype=np.int64)
    pairs = sample_pairs(times, np.array([2.5, -1.0]))
    assert pairs == [[1_224_017_292_000_000, 2.5], [1_224_017_292_004_000, -1.0]]
    assert all(type(t) is int and type(v) is float for t, v in pairs)
    assert ujson.dumps(pairs) == "[[1224017292000000,2.5],[1224017292004000,-1.0]]"
    assert sample_pairs(np.empty(0, dtype=np.int64), np.empty(0)) == []
