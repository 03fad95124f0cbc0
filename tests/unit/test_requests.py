"""Client text messages (protocol.md 1.1) parse to typed requests, or to the protocol's error objects."""

from __future__ import annotations

import json

import pytest

from streaming.errors import (
    InvalidFilter,
    InvalidMontageName,
    InvalidRequest,
    RequestMissingChannels,
    StreamingError,
    UnexpectedError,
)
from streaming.protocol.requests import (
    ClearFilterRequest,
    DumpBufferRequest,
    FilterRequest,
    KeepAlive,
    MontageRequest,
    ResetFilterRequest,
    TimeSeriesRequest,
    VirtualChannel,
    parse_message,
)

PACKAGE = "N:package:1234"
CHANNEL_A = "N:channel:0f2a9a8e-1111-4a5b-8c9d-000000000001"
CHANNEL_B = "N:channel:0f2a9a8e-2222-4a5b-8c9d-000000000002"
START, END = 3_284_198_937_000_000, 3_284_198_942_000_000


def _time_series(**changes: object) -> dict:
    """protocol.md's TimeSeriesRequest example."""
    message: dict = {
        "session": "<token>",
        "packageId": PACKAGE,
        "startTime": START,
        "endTime": END,
        "pixelWidth": 14098,
        "virtualChannels": [{"id": CHANNEL_A, "name": "Fp1"}],
        "channels": [CHANNEL_A],
        "minMax": True,
        "queryLimit": 100000,
        "requestAnnotations": False,
    }
    for key, value in changes.items():
        if value is _DROP:
            message.pop(key, None)
        else:
            message[key] = value
    return message


_DROP = object()


def _parse(message: object) -> object:
    return parse_message(json.dumps(message, allow_nan=True))


def _error(message: object | str, kind: type[StreamingError]) -> StreamingError:
    text = message if isinstance(message, (str, bytes)) else json.dumps(message, allow_nan=True)
    with pytest.raises(StreamingError) as caught:
        parse_message(text)
    error = caught.value
    assert type(error) is kind, f"{type(error).__name__}: {error}"
    _check_error_object(error, kind.name)
    return error


def _check_error_object(error: StreamingError, name: str) -> None:
    body = error.to_json()
    assert set(body) == {"error", "reason", "channelNames"}
    assert body["error"] == name
    assert isinstance(body["reason"], str) and body["reason"]
    assert isinstance(body["channelNames"], list)
    assert json.loads(json.dumps(body)) == body  # serialisable as a text frame


# ---- every message kind -------------------------------------------------------------------------------


def test_time_series_request_of_the_protocol_example() -> None:
    request = _parse(_time_series())
    assert request == TimeSeriesRequest(
        start=START,
        end=END,
        pixel_width=14098.0,
        channels=(VirtualChannel(CHANNEL_A, "Fp1"),),
        query_limit=100000,
        package_id=PACKAGE,
        request_annotations=False,
    )
    assert isinstance(request.pixel_width, float)


def test_time_series_request_with_montage_names_and_many_channels() -> None:
    virtual = [{"id": CHANNEL_A, "name": "Fp1<->F7"}, {"id": CHANNEL_B, "name": "F7<->T7"}]
    request = _parse(_time_series(virtualChannels=virtual, channels=_DROP))
    assert request.channels == (VirtualChannel(CHANNEL_A, "Fp1<->F7"), VirtualChannel(CHANNEL_B, "F7<->T7"))


def test_older_client_fields_are_accepted_and_ignored() -> None:
    with_old = _parse(_time_series(session="tok", minMax=False))
    without_old = _parse(_time_series(session=_DROP, minMax=_DROP))
    assert with_old == without_old


def test_channels_list_form() -> None:
    request = _parse(_time_series(virtualChannels=_DROP, channels=[CHANNEL_A, CHANNEL_B]))
    assert request.channels == (VirtualChannel(CHANNEL_A, ""), VirtualChannel(CHANNEL_B, ""))


def test_empty_virtual_channels_fall_back_to_channels() -> None:
    request = _parse(_time_series(virtualChannels=[], channels=[CHANNEL_B]))
    assert request.channels == (VirtualChannel(CHANNEL_B, ""),)


def test_virtual_channels_are_preferred_over_channels() -> None:
    request = _parse(_time_series(virtualChannels=[{"id": CHANNEL_A, "name": "Fp1"}], channels=[CHANNEL_B]))
    assert request.channels == (VirtualChannel(CHANNEL_A, "Fp1"),)


def test_optional_time_series_fields() -> None:
    minimal = {"startTime": 0, "endTime": 1, "pixelWidth": 0.5, "channels": [CHANNEL_A]}
    request = _parse(minimal)
    assert request == TimeSeriesRequest(0, 1, 0.5, (VirtualChannel(CHANNEL_A, ""),))
    assert request.query_limit is None and request.package_id is None and request.request_annotations is False
    assert _parse(_time_series(queryLimit=0)).query_limit == 0  # 0: send an empty segment
    assert _parse(_time_series(requestAnnotations=True)).request_annotations is True


def test_whole_floats_are_accepted_as_microseconds() -> None:
    request = _parse(_time_series(startTime=float(START), endTime=float(END)))
    assert (request.start, request.end) == (START, END)
    assert isinstance(request.start, int)


def test_bytes_frames_parse_too() -> None:
    assert parse_message(json.dumps(_time_series()).encode()) == _parse(_time_series())


@pytest.mark.parametrize(
    "montage", ["NOT_MONTAGED", "BIPOLAR_ANT_POS", "BIPOLAR_TRANSVERSE", "REFERENTIAL_VS_CZ"]
)
def test_montage_request(montage: str) -> None:
    assert _parse({"packageId": PACKAGE, "montage": montage}) == MontageRequest(montage, (), PACKAGE)
    assert _parse({"montage": montage}) == MontageRequest(montage, (), None)


def test_custom_montage_request() -> None:
    message = {"packageId": PACKAGE, "montage": "CUSTOM_MONTAGE", "montageMap": [["Fp1", "F7"], ["F7", "T7"]]}
    assert _parse(message) == MontageRequest("CUSTOM_MONTAGE", (("Fp1", "F7"), ("F7", "T7")), PACKAGE)


@pytest.mark.parametrize(
    ("name", "parameters"),
    [("bandpass", [4, 10.0, 5.0]), ("bandstop", [4, 60, 2]), ("lowpass", [4, 30.0]), ("highpass", [4, 0.5])],
)
def test_filter_request(name: str, parameters: list) -> None:
    request = _parse({"filter": name, "filterParameters": parameters, "channels": [CHANNEL_A]})
    assert request == FilterRequest(name, tuple(float(p) for p in parameters), (CHANNEL_A,))
    assert all(isinstance(p, float) for p in request.parameters)


def test_clear_and_reset_filter_requests() -> None:
    assert _parse({"channelFiltersToClear": [CHANNEL_A, CHANNEL_B]}) == ClearFilterRequest(
        (CHANNEL_A, CHANNEL_B)
    )
    assert _parse({"channelFiltersToReset": [CHANNEL_B]}) == ResetFilterRequest((CHANNEL_B,))
    assert _parse({"channelFiltersToClear": []}) == ClearFilterRequest(())


def test_dump_buffer_request() -> None:
    assert _parse({"requestType": "DumpBufferRequest"}) == DumpBufferRequest()


@pytest.mark.parametrize("now_ms", [0, 1712345678901, 1712345678901.0])
def test_keep_alive(now_ms: float) -> None:
    request = _parse({"currentTime": now_ms})
    assert request == KeepAlive(1712345678901 if now_ms else 0)
    assert isinstance(request.current_time_ms, int)


# ---- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "{",
        '{"startTime": }',
        "{'single': 'quotes'}",
        "[1, 2",
        "\xff",
        b"\xff\xfe",
        "[" * 100_000,
    ],
)
def test_non_json_is_an_unexpected_error(text: str | bytes) -> None:
    _error(text, UnexpectedError)


@pytest.mark.parametrize("value", [[], [1, 2], [_time_series()], "a string", 5, 1.5, None, True])
def test_json_that_is_not_an_object_is_an_unexpected_error(value: object) -> None:
    _error(value, UnexpectedError)


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"foo": 1},
        {"session": "tok"},  # the old field alone is not a request
        {"minMax": True, "packageId": PACKAGE},
        {"requestType": "SomethingElse"},
        {"start": START, "end": END},
    ],
)
def test_unknown_keys_are_an_unexpected_error(message: dict) -> None:
    _error(message, UnexpectedError)


@pytest.mark.parametrize(
    "changes",
    [
        {"virtualChannels": _DROP, "channels": _DROP},
        {"virtualChannels": [], "channels": []},
        {"virtualChannels": [], "channels": _DROP},
        {"virtualChannels": _DROP, "channels": []},
        {"virtualChannels": None, "channels": None},
    ],
)
def test_missing_channels(changes: dict) -> None:
    _error(_time_series(**changes), RequestMissingChannels)


@pytest.mark.parametrize(("start", "end"), [(END, START), (START, START), (START + 1, START)])
def test_start_not_before_end_is_invalid(start: int, end: int) -> None:
    _error(_time_series(startTime=start, endTime=end), InvalidRequest)


@pytest.mark.parametrize("width", [0, 0.0, -1, -14098.5, "14098", "NaN", None, [], {}])
def test_bad_pixel_width_is_invalid(width: object) -> None:
    _error(_time_series(pixelWidth=width), InvalidRequest)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_pixel_width_literals_are_invalid(literal: str) -> None:
    text = json.dumps(_time_series(pixelWidth=0)).replace('"pixelWidth": 0', f'"pixelWidth": {literal}')
    assert literal in text
    with pytest.raises(StreamingError) as caught:
        parse_message(text)
    # A JSON parser may reject the literal (UnexpectedError) or read it (InvalidRequest); never accept it.
    assert isinstance(caught.value, (InvalidRequest, UnexpectedError))


def test_missing_pixel_width_is_invalid() -> None:
    _error(_time_series(pixelWidth=_DROP), InvalidRequest)


@pytest.mark.parametrize("key", ["startTime", "endTime", "pixelWidth", "queryLimit"])
@pytest.mark.parametrize("value", [True, False])
def test_bool_where_a_number_is_expected_is_invalid(key: str, value: bool) -> None:
    _error(_time_series(**{key: value}), InvalidRequest)


@pytest.mark.parametrize(
    "changes",
    [
        {"startTime": "3284198937000000"},
        {"startTime": 1.5},
        {"startTime": -1},
        {"startTime": _DROP},
        {"endTime": None},
        {"endTime": 2**63},
        {"endTime": 1e300},
        {"queryLimit": -1},
        {"queryLimit": 2.5},
        {"queryLimit": "100"},
        {"virtualChannels": "Fp1"},
        {"virtualChannels": [{"name": "Fp1"}]},
        {"virtualChannels": [{"id": 5, "name": "Fp1"}]},
        {"virtualChannels": ["N:channel:1"]},
        {"virtualChannels": _DROP, "channels": [CHANNEL_A, 7]},
        {"virtualChannels": _DROP, "channels": CHANNEL_A},
    ],
)
def test_bad_time_series_fields_are_invalid(changes: dict) -> None:
    _error(_time_series(**changes), InvalidRequest)


@pytest.mark.parametrize("montage", ["not_montaged", "BIPOLAR", "", None, 3, ["NOT_MONTAGED"]])
def test_unknown_montage(montage: object) -> None:
    _error({"packageId": PACKAGE, "montage": montage}, InvalidMontageName)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"montageMap": []},
        {"montageMap": None},
        {"montageMap": "Fp1-F7"},
        {"montageMap": [["Fp1"]]},
        {"montageMap": [["Fp1", "F7", "T7"]]},
        {"montageMap": [["Fp1", 7]]},
        {"montageMap": [["Fp1", "F7"], "F7-T7"]},
        {"montageMap": {"Fp1": "F7"}},
    ],
)
def test_custom_montage_needs_a_map_of_pairs(changes: dict) -> None:
    _error({"packageId": PACKAGE, "montage": "CUSTOM_MONTAGE", **changes}, InvalidRequest)


@pytest.mark.parametrize(
    "message",
    [
        {"filter": 4, "filterParameters": [4, 10.0], "channels": [CHANNEL_A]},
        {"filter": "lowpass", "filterParameters": [4, "10"], "channels": [CHANNEL_A]},
        {"filter": "lowpass", "filterParameters": [True, 10], "channels": [CHANNEL_A]},
        {"filter": "lowpass", "filterParameters": 4, "channels": [CHANNEL_A]},
    ],
)
def test_bad_filter_names_and_parameters_are_invalid_filters(message: dict) -> None:
    _error(message, InvalidFilter)


@pytest.mark.parametrize(
    "message",
    [
        {"filter": "lowpass", "filterParameters": [4, 10]},
        {"filter": "lowpass", "filterParameters": [4, 10], "channels": CHANNEL_A},
        {"channelFiltersToClear": CHANNEL_A},
        {"channelFiltersToReset": [1]},
        {"currentTime": "now"},
        {"currentTime": True},
        {"currentTime": 1.5},
    ],
)
def test_bad_fields_of_other_messages_are_invalid(message: dict) -> None:
    _error(message, InvalidRequest)


def test_error_objects_carry_channel_names() -> None:
    error = RequestMissingChannels("no channels", channel_names=(CHANNEL_A, CHANNEL_B))
    assert error.to_json() == {
        "error": "RequestMissingChannels",
        "reason": "no channels",
        "channelNames": [CHANNEL_A, CHANNEL_B],
    }


@pytest.mark.parametrize(
    ("kind", "status"),
    [(UnexpectedError, 400), (InvalidRequest, 400), (RequestMissingChannels, 400), (InvalidMontageName, 400)],
)
def test_bad_input_errors_are_http_400(kind: type[StreamingError], status: int) -> None:
    assert kind.status == status  # protocol.md 4: 400 for bad input, 500 only for real faults


def test_end_time_beyond_any_recording_is_invalid() -> None:
    from streaming.protocol.requests import MAX_TIME_US

    assert isinstance(_parse(_time_series(startTime=0, endTime=MAX_TIME_US)), TimeSeriesRequest)
    error = _error(_time_series(startTime=0, endTime=MAX_TIME_US + 1), InvalidRequest)
    assert "endTime" in error.reason


@pytest.mark.parametrize(
    "message",
    [
        _time_series(startTime="x" * 100_000),
        _time_series(pixelWidth=["y" * 100_000]),
        {"z" * 100_000: 1},
        {**{f"key{i}" * 1000: i for i in range(50)}},
    ],
)
def test_replies_never_echo_unbounded_input(message: dict) -> None:
    with pytest.raises(StreamingError) as caught:
        _parse(message)
    assert len(caught.value.reason) < 400


def test_too_many_channels_in_one_request_is_invalid() -> None:
    from streaming.protocol.requests import MAX_CHANNELS_PER_REQUEST

    many = [{"id": CHANNEL_A, "name": f"n{i}"} for i in range(MAX_CHANNELS_PER_REQUEST + 1)]
    _error(_time_series(virtualChannels=many), InvalidRequest)
    assert isinstance(_parse(_time_series(virtualChannels=many[:-1])), TimeSeriesRequest)


def test_errors_bound_what_they_echo() -> None:
    error = InvalidMontageName("x" * 100_000, ["y" * 10_000] * 5000)
    body = error.to_json()
    assert len(body["reason"]) <= 1000 and len(body["channelNames"]) == 1000
    assert all(len(name) <= 200 for name in body["channelNames"])
    reply = _error({"packageId": PACKAGE, "montage": "Z" * 50_000}, InvalidMontageName)
    assert len(reply.reason) < 300
