"""Our hand-written protobuf encoder against the official protobuf runtime (tests/support/proto.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import struct

import numpy as np
import pytest

from streaming.protocol.frames import SegmentHeader, encode_segment_message, json_frame, keepalive_frame
from tests.support.proto import TimeSeriesMessage, decode_message

UINT64_MAX = 2**64 - 1
CASES = 400

_INTERESTING_UINTS = [0, 1, 127, 128, 16383, 16384, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**63, 2**63 + 1]
_INTERESTING_UINTS += [UINT64_MAX - 1, UINT64_MAX, 1_712_345_678_901_234, 3_284_198_937_000_000]
_INTERESTING_DOUBLES = [
    0.0,
    -0.0,
    math.nan,
    math.inf,
    -math.inf,
    4000.0,
    1e6 / 3,
    5e-324,
    1.7976931348623157e308,
]
_STRINGS = [
    "",
    "Fp1",
    "Fp1<->F7",
    "N:channel:7a4c1f36-1d6e-4b5e-9a77-0c2f3a5d9e11",
    "µV",
    "uV",
    "電極",
    "🧠 EEG",
    "a\x00b",
    "x" * 200,  # length varint needs two bytes
]


def _official(header: SegmentHeader, values: np.ndarray, total: int, sequence: int) -> bytes:
    """The same message built with the official generated classes."""
    message = TimeSeriesMessage()
    segment = message.segment
    segment.SetInParent()  # the segment is always present, even when every field is a default
    segment.startTs = header.start_ts
    segment.source = header.source
    segment.lastUsed = header.last_used
    segment.unit = header.unit
    segment.samplePeriod = header.sample_period
    segment.requestedSamplePeriod = header.requested_sample_period
    segment.pageStart = header.page_start
    segment.isMinMax = header.is_min_max
    segment.unitM = header.unit_m
    segment.segmentType = header.segment_type
    segment.nrPoints = len(values)
    segment.data.extend(float(v) for v in values)
    segment.pageEnd = header.page_end
    segment.channelName = header.channel_name
    message.totalResponses = total
    message.responseSequenceId = sequence
    return message.SerializeToString()


def _random_uint(rng: np.random.Generator) -> int:
    kind = rng.integers(0, 4)
    if kind == 0:
        return _INTERESTING_UINTS[int(rng.integers(0, len(_INTERESTING_UINTS)))]
    if kind == 1:
        return int(rng.integers(0, 2**63 - 1, dtype=np.int64)) + int(rng.integers(0, 2))  # up to 2**63
    if kind == 2:
        return 2**63 + int(rng.integers(-1000, 1000))
    return int(rng.integers(0, 1 << int(rng.integers(1, 64)), dtype=np.uint64))


def _random_double(rng: np.random.Generator) -> float:
    if rng.integers(0, 2):
        return _INTERESTING_DOUBLES[int(rng.integers(0, len(_INTERESTING_DOUBLES)))]
    return float(rng.normal(0, 10.0 ** int(rng.integers(-3, 9))))


def _random_string(rng: np.random.Generator) -> str:
    if rng.integers(0, 3):
        return _STRINGS[int(rng.integers(0, len(_STRINGS)))]
    code_points = rng.integers(0x20, 0x2FFF, size=int(rng.integers(0, 40)))
    return "".join(chr(int(c)) for c in code_points if not 0xD800 <= c <= 0xDFFF)


def _random_values(rng: np.random.Generator) -> np.ndarray:
    count = int(rng.integers(0, 5001)) if rng.integers(0, 4) else int(rng.integers(0, 4))
    values = rng.normal(0.0, 100.0, count)
    if count and rng.integers(0, 2):
        specials = rng.integers(0, count, size=min(count, 5))
        values[specials] = rng.choice(np.array([0.0, -0.0, np.nan, np.inf, -np.inf]), size=len(specials))
    return values


def _random_case(rng: np.random.Generator) -> tuple[SegmentHeader, np.ndarray, int, int]:
    segment_types = ["Continuous", "", "Unit"]
    header = SegmentHeader(
        start_ts=_random_uint(rng),
        source=_random_string(rng),
        unit=_random_string(rng),
        sample_period=_random_double(rng),
        requested_sample_period=_random_double(rng),
        page_start=_random_uint(rng),
        page_end=_random_uint(rng),
        is_min_max=bool(rng.integers(0, 2)),
        channel_name=_random_string(rng),
        unit_m=_random_uint(rng),
        last_used=_random_uint(rng),
        segment_type=segment_types[int(rng.integers(0, 3))],
    )
    return header, _random_values(rng), _random_uint(rng), _random_uint(rng)


def test_random_messages_are_byte_identical_to_the_official_encoder() -> None:
    rng = np.random.default_rng(1234)
    for case in range(CASES):
        header, values, total, sequence = _random_case(rng)
        ours = encode_segment_message(header, values, total, sequence)
        assert ours == _official(header, values, total, sequence), f"case {case}: {header}, {len(values)}"


def test_random_messages_parse_back_with_the_official_decoder() -> None:
    rng = np.random.default_rng(99)
    for _ in range(100):
        header, values, total, sequence = _random_case(rng)
        message = decode_message(encode_segment_message(header, values, total, sequence))
        segment = message.segment
        assert message.HasField("segment")
        assert (message.totalResponses, message.responseSequenceId) == (total, sequence)
        assert (segment.startTs, segment.pageStart, segment.pageEnd) == (
            header.start_ts,
            header.page_start,
            header.page_end,
        )
        assert (segment.source, segment.unit, segment.channelName, segment.segmentType) == (
            header.source,
            header.unit,
            header.channel_name,
            header.segment_type,
        )
        assert (segment.unitM, segment.lastUsed, segment.isMinMax) == (
            header.unit_m,
            header.last_used,
            header.is_min_max,
        )
        assert struct.pack("<d", segment.samplePeriod) == struct.pack("<d", header.sample_period)
        assert struct.pack("<d", segment.requestedSamplePeriod) == struct.pack(
            "<d", header.requested_sample_period
        )
        assert segment.nrPoints == len(values)
        assert np.array(segment.data, dtype="<f8").tobytes() == values.astype("<f8").tobytes()


def _fixed_header(**changes: object) -> SegmentHeader:
    header = SegmentHeader(
        start_ts=3_284_198_937_000_000,
        source="N:channel:1",
        unit="uV",
        sample_period=4000.0,
        requested_sample_period=14098.0,
        page_start=3_284_198_937_000_000,
        page_end=3_284_198_942_000_000,
        is_min_max=False,
        channel_name="Fp1",
    )
    return dataclasses.replace(header, **changes)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"sample_period": -0.0},
        {"sample_period": math.nan},
        {"sample_period": math.inf, "requested_sample_period": -math.inf},
        {"sample_period": 0.0, "requested_sample_period": 0.0},
        {"start_ts": 0, "page_start": 0, "page_end": 0, "unit_m": 0},
        {"start_ts": UINT64_MAX, "page_end": 2**63, "last_used": 2**63 - 1},
        {"source": "", "unit": "", "channel_name": "", "segment_type": ""},
        {"is_min_max": True},
    ],
)
@pytest.mark.parametrize("count", [0, 1, 2, 16, 17])
def test_edge_headers(changes: dict, count: int) -> None:
    header = _fixed_header(**changes)
    values = np.linspace(-1.0, 1.0, count)
    for total, sequence in [(0, 0), (1, 0), (5, 4), (2**63, 2**63 - 1), (UINT64_MAX, UINT64_MAX)]:
        assert encode_segment_message(header, values, total, sequence) == _official(
            header, values, total, sequence
        )


def test_all_default_message_still_carries_an_empty_segment() -> None:
    header = SegmentHeader(
        start_ts=0,
        source="",
        unit="",
        sample_period=0.0,
        requested_sample_period=0.0,
        page_start=0,
        page_end=0,
        is_min_max=False,
        channel_name="",
        unit_m=0,
        segment_type="",
    )
    frame = encode_segment_message(header, np.empty(0), 0, 0)
    assert frame == _official(header, np.empty(0), 0, 0)
    assert frame == b"\x1a\x00"  # field 3, length-delimited, zero length
    assert decode_message(frame).HasField("segment")


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(np.arange(20, dtype=np.float64)[::3], id="strided"),
        pytest.param(np.arange(20, dtype=">f8"), id="big-endian"),
        pytest.param(np.arange(20, dtype=np.float32) / 7, id="float32"),
        pytest.param(np.arange(-10, 10, dtype=np.int64), id="int64"),
        pytest.param(np.arange(40, dtype=np.float64).reshape(2, 20)[1], id="row-view"),
    ],
)
def test_values_of_any_layout_encode_as_float64(values: np.ndarray) -> None:
    header = _fixed_header(is_min_max=True)
    expected = _official(header, values.astype(np.float64), 3, 1)
    assert encode_segment_message(header, values, 3, 1) == expected


def test_large_page_is_identical() -> None:
    values = np.random.default_rng(5).normal(size=300_000)
    header = _fixed_header()
    assert encode_segment_message(header, values, 1, 0) == _official(header, values, 1, 0)


@pytest.mark.parametrize(
    "payload",
    [
        {"channelDetails": [{"id": "N:channel:1", "name": "Fp1<->F7", "rate": 250.0, "unit": "µV"}]},
        {"error": "UnexpectedError", "reason": 'quote " and backslash \\ and newline \n', "channelNames": []},
        {"nested": {"list": [1, 2.5, None, True, False, "電極"]}, "big": 2**62},
        {},
    ],
)
def test_json_frame_is_valid_json(payload: dict) -> None:
    text = json_frame(payload)
    assert isinstance(text, str)
    assert json.loads(text) == payload


def test_json_frame_keeps_non_ascii_readable() -> None:
    assert "µV" in json_frame({"unit": "µV"})


@pytest.mark.parametrize("now_ms", [0, 1_712_345_678_901, 2**53])
def test_keepalive_frame(now_ms: int) -> None:
    parsed = json.loads(keepalive_frame(now_ms))
    assert parsed == {"currentTime": now_ms}
    assert isinstance(parsed["currentTime"], int)
