"""Montages and filters over the real websocket, checked against pyedflib + numpy/scipy computations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from tests.support.client import ViewerClient
from tests.support.edf_writer import EdfSignalSpec, write_edf_plus
from tests.support.reference import ReferenceChannel, expected_messages, read_edf

BLOCK = 10_000


@pytest.fixture(scope="module")
def reference(shared_eeg: Path):
    return read_edf(shared_eeg)


def _package(server):
    return next(iter(server.packages.values()))


def _by_name(package):
    return {c.name: c for c in package.channels}


def _page_request(start, seconds, pixel_width, virtual):
    return {
        "startTime": start,
        "endTime": start + int(seconds * 1e6),
        "pixelWidth": pixel_width,
        "virtualChannels": virtual,
    }


async def _connect(server):
    return await ViewerClient.connect(server.ws_url(_package(server).package_id))


@pytest.mark.parametrize("pixel_width", [4000, 48_000])  # raw, then min/max in groups of 12
async def test_bipolar_ant_pos_equals_lead_minus_secondary(eeg_server, reference, pixel_width):
    package = _package(eeg_server)
    channels = _by_name(package)
    client = await _connect(eeg_server)
    try:
        await client.send({"packageId": package.package_id, "montage": "BIPOLAR_ANT_POS"})
        details = (await client.receive_json())["channelDetails"]
        assert [d["name"] for d in details][:3] == ["Fp1<->F7", "F7<->T7", "T7<->P7"]
        assert len(details) == 18
        assert details[0]["id"] == channels["Fp1"].id
        start = channels["Fp1"].start + 30_000_000
        virtual = [{"id": d["id"], "name": d["name"]} for d in details]
        page = await client.page(_page_request(start, 20, pixel_width, virtual))
    finally:
        client.close()
    for detail in details:
        lead, secondary = detail["name"].split("<->")
        a, b = reference[lead], reference[secondary]
        difference = ReferenceChannel(detail["name"], a.rate, a.start_us, a.samples - b.samples)
        expected = expected_messages(difference, BLOCK, start, start + 20_000_000, pixel_width)
        messages = [m for m in page.channel(detail["id"]) if m.segment.channelName == detail["name"]]
        assert len(messages) == len(expected)
        for message, want in zip(messages, expected, strict=True):
            assert message.segment.isMinMax == want.is_min_max
            np.testing.assert_allclose(message.segment.data, want.values, rtol=1e-12, atol=1e-9)
            assert message.segment.startTs == want.start_ts


async def test_missing_channels_refuse_a_montage_and_keep_the_previous_one(eeg_server, reference):
    package = _package(eeg_server)
    before = set(eeg_server.services.sessions)
    client = await _connect(eeg_server)
    try:
        await client.send({"montage": "BIPOLAR_ANT_POS"})
        assert len((await client.receive_json())["channelDetails"]) == 18
        (session,) = eeg_server.services.sessions - before
        await client.send({"montage": "BIPOLAR_TRANSVERSE"})
        refused = await client.receive_json()
        assert refused["error"] == "PackageCannotBeMontaged"
        assert refused["channelNames"] == ["A1", "A2", "Q1", "Q2"]
        assert "still using BIPOLAR_ANT_POS" in refused["reason"] and session.montage == "BIPOLAR_ANT_POS"
        await client.send({"montage": "REFERENTIAL_VS_CZ"})
        refused = await client.receive_json()
        assert refused["error"] == "PackageCannotBeMontaged"
        assert sorted(refused["channelNames"]) == ["F2", "P2", "Q1", "Q2"]
        assert session.montage == "BIPOLAR_ANT_POS"
        # The previous montage still serves.
        fp1 = _by_name(package)["Fp1"]
        page = await client.page(_page_request(fp1.start, 2, 4000, [{"id": fp1.id, "name": "Fp1<->F7"}]))
        (message,) = page.channel(fp1.id)
        np.testing.assert_allclose(
            message.segment.data, (reference["Fp1"].samples - reference["F7"].samples)[:500], atol=1e-9
        )
        await client.send({"montage": "NOT_MONTAGED"})
        assert len((await client.receive_json())["channelDetails"]) == 30
    finally:
        client.close()


async def test_bad_montage_names_and_misalignment(eeg_server):
    package = _package(eeg_server)
    fp1 = _by_name(package)["Fp1"]
    client = await _connect(eeg_server)
    try:
        for name, error in [
            ("Fp1<->", "InvalidMontageName"),
            ("<->F7", "InvalidMontageName"),
            ("Fp1<->F7<->T7", "InvalidMontageName"),
            ("F7<->T7", "InvalidMontageName"),  # the id is Fp1's: the name must lead with Fp1
            ("Fp1<->Nope", "PackageMissingChannels"),
        ]:
            await client.send(_page_request(fp1.start, 1, 4000, [{"id": fp1.id, "name": name}]))
            reply = await client.receive_json()
            assert reply["error"] == error, name
        await client.send({"montage": "CUSTOM_MONTAGE", "montageMap": [["Fp1", "Nope"]]})
        assert (await client.receive_json())["channelNames"] == ["Nope"]
        await client.send({"montage": "CUSTOM_MONTAGE", "montageMap": "Fp1-F7"})
        assert (await client.receive_json())["error"] == "InvalidRequest"
    finally:
        client.close()


def _ramp(records: int, per_record: int, offset: int = 0) -> np.ndarray:
    return (np.arange(records * per_record) * 7 + offset) % 60000 - 30000


async def test_custom_montage_on_labels_with_dashes_and_mixed_rates(tmp_path):
    from streaming.devservices import scratch_database
    from tests.conftest import make_settings
    from tests.support.server import start_server

    labels = [("EEG Fp1-Ref", 200, 0), ("EEG F7-Ref", 200, 3), ("ECG-II", 400, 5), ("Fz<->Cz", 200, 9)]
    signals = [EdfSignalSpec(label, rate, _ramp(6, rate, offset)) for label, rate, offset in labels]
    path = write_edf_plus(tmp_path / "dash.edf", signals, list(range(6)), discontinuous=False)
    with scratch_database() as params:
        async with start_server(make_settings(params, (tmp_path / "b").as_uri() + "/")) as server:
            result = await server.ingest(path)
            fp1, _f7, _ecg, stored_pair = result.channels
            client = await ViewerClient.connect(server.ws_url(result.package_id))
            try:
                await client.send(
                    {"montage": "CUSTOM_MONTAGE", "montageMap": [["EEG Fp1-Ref", "EEG F7-Ref"]]}
                )
                (detail,) = (await client.receive_json())["channelDetails"]
                assert detail["name"] == "EEG Fp1-Ref<->EEG F7-Ref" and detail["id"] == fp1.id
                page = await client.page(
                    _page_request(fp1.start + 1_000_000, 2, 5000, [{"id": fp1.id, "name": detail["name"]}])
                )
                (message,) = page.channel(fp1.id)
                np.testing.assert_array_equal(
                    message.segment.data, (_ramp(6, 200) - _ramp(6, 200, 3))[200:600]
                )
                await client.send(
                    _page_request(fp1.start, 1, 5000, [{"id": fp1.id, "name": "EEG Fp1-Ref<->ECG-II"}])
                )
                reply = await client.receive_json()
                assert reply["error"] == "MontageMisalignment"
                assert "200" in reply["reason"] and "400" in reply["reason"]
                # A label that itself reads like a montage is still that one stored channel.
                for name in ("Fz<->Cz", ""):
                    page = await client.page(
                        _page_request(fp1.start, 1, 5000, [{"id": stored_pair.id, "name": name}])
                    )
                    (message,) = page.channel(stored_pair.id)
                    np.testing.assert_array_equal(message.segment.data, _ramp(6, 200, 9)[:200])
            finally:
                client.close()


# -- filters ----------------------------------------------------------------------------------


def _warm_state(sos, x, pad):
    """filtfilt-style odd reflection of the first ``pad`` samples, run from the steady state."""
    reflected = 2 * x[0] - x[pad:0:-1]
    _, state = signal.sosfilt(sos, reflected, zi=signal.sosfilt_zi(sos) * reflected[0])
    return state


async def _raw_page(client, channel, start, seconds):
    page = await client.page(_page_request(start, seconds, 1000, [{"id": channel.id, "name": channel.name}]))
    return np.concatenate([m.segment.data for m in page.channel(channel.id)])


async def test_filtered_pages_join_without_a_seam(eeg_server, reference):
    package = _package(eeg_server)
    fp1 = _by_name(package)["Fp1"]
    x = reference["Fp1"].samples
    sos = signal.butter(4, 30.0, btype="lowpass", fs=250.0, output="sos")
    pad = math.ceil(3 * 4 * 250 / 30.0)
    client = await _connect(eeg_server)
    try:
        await client.send({"filter": "lowpass", "filterParameters": [4, 30.0], "channels": [fp1.id]})
        t0 = fp1.start + 35_000_000  # pages cross the 40 s block boundary
        first = await _raw_page(client, fp1, t0, 10)
        second = await _raw_page(client, fp1, t0 + 10_000_000, 10)
        await client.send({"channelFiltersToReset": [fp1.id]})
        after_reset = await _raw_page(client, fp1, t0 + 20_000_000, 4)  # continues, but the state restarts
        jumped = await _raw_page(client, fp1, t0 + 100_000_000, 4)
        await client.send({"channelFiltersToClear": [fp1.id]})
        unfiltered = await _raw_page(client, fp1, t0, 2)
    finally:
        client.close()
    begin = 35 * 250
    window = x[begin : begin + 20 * 250]
    one_pass, state = signal.sosfilt(sos, window, zi=_warm_state(sos, window, pad))
    np.testing.assert_allclose(np.concatenate([first, second]), one_pass, rtol=1e-9, atol=1e-9)
    next_window = x[begin + 20 * 250 : begin + 24 * 250]
    restarted, _ = signal.sosfilt(sos, next_window, zi=_warm_state(sos, next_window, pad))
    continued, _ = signal.sosfilt(sos, next_window, zi=state)
    np.testing.assert_allclose(after_reset, restarted, rtol=1e-9, atol=1e-9)
    assert np.abs(after_reset - continued).max() > 1e-6, "a reset must not carry the old state on"
    later = x[begin + 100 * 250 : begin + 104 * 250]
    restarted, _ = signal.sosfilt(sos, later, zi=_warm_state(sos, later, pad))
    np.testing.assert_allclose(jumped, restarted, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(unfiltered, x[begin : begin + 500], rtol=1e-12, atol=1e-9)


async def test_a_filter_on_a_montage_channel_filters_the_difference(eeg_server, reference):
    package = _package(eeg_server)
    fp1 = _by_name(package)["Fp1"]
    sos = signal.butter(4, [5.0, 15.0], btype="bandpass", fs=250.0, output="sos")
    client = await _connect(eeg_server)
    try:
        await client.send({"filter": "bandpass", "filterParameters": [4, 10.0, 10.0], "channels": [fp1.id]})
        start = fp1.start + 60_000_000
        page = await client.page(_page_request(start, 8, 1000, [{"id": fp1.id, "name": "Fp1<->F7"}]))
    finally:
        client.close()
    filtered = np.concatenate([m.segment.data for m in page.channel(fp1.id)])
    difference = (reference["Fp1"].samples - reference["F7"].samples)[60 * 250 : 68 * 250]
    pad = math.ceil(3 * 4 * 250 / 5.0)  # slowest edge: 5 Hz (the band is 10 Hz wide)
    expected, _ = signal.sosfilt(sos, difference, zi=_warm_state(sos, difference, pad))
    np.testing.assert_allclose(filtered, expected, rtol=1e-9, atol=1e-9)


async def test_filter_errors_name_the_rate_and_limit(eeg_server):
    package = _package(eeg_server)
    fp1 = _by_name(package)["Fp1"]
    client = await _connect(eeg_server)
    try:
        cases = [
            ({"filter": "lowpass", "filterParameters": [4, 125.0]}, ["250", "125"]),
            ({"filter": "highpass", "filterParameters": [4, 300.0]}, ["250", "125"]),
            ({"filter": "bandpass", "filterParameters": [4, 120.0, 20.0]}, ["130", "125"]),
            ({"filter": "bandstop", "filterParameters": [4, 50.0, 0.0]}, ["width"]),
            ({"filter": "bandstop", "filterParameters": [4, 50.0, -2.0]}, ["width"]),
            ({"filter": "notch", "filterParameters": [4, 50.0]}, ["notch"]),
            ({"filter": "lowpass", "filterParameters": [400, 30.0]}, ["order"]),
            ({"filter": "lowpass", "filterParameters": [4]}, ["cutoffHz"]),
        ]
        for message, words in cases:
            await client.send({**message, "channels": [fp1.id]})
            reply = await client.receive_json()
            assert reply["error"] == "InvalidFilter", message
            assert all(word in reply["reason"] for word in words), reply
        await client.send({"filter": "lowpass", "filterParameters": [4, 30.0], "channels": ["N:channel:x"]})
        assert (await client.receive_json())["error"] == "PackageMissingChannels"
        await client.send({"channelFiltersToReset": [fp1.id]})  # no filter yet: nothing to reset, no error
        page = await client.page(_page_request(fp1.start, 1, 4000, [{"id": fp1.id, "name": "Fp1"}]))
        assert page.texts == []
    finally:
        client.close()


async def test_bandstop_removes_mains_and_a_narrow_bandpass_stays_finite(tmp_path):
    from streaming.devservices import scratch_database
    from tests.conftest import make_settings
    from tests.support.server import start_server

    seconds = 8
    t500 = np.arange(seconds * 500) / 500
    eeg = 2000 * np.sin(2 * np.pi * 6 * t500) + 8000 * np.sin(2 * np.pi * 50 * t500)
    t5k = np.arange(seconds * 5000) / 5000
    slow = 6000 * np.sin(2 * np.pi * 0.75 * t5k) + 3000 * np.sin(2 * np.pi * 40 * t5k)
    signals = [
        EdfSignalSpec("EEG", 500, np.round(eeg).astype(np.int16)),
        EdfSignalSpec("ECoG", 5000, np.round(slow).astype(np.int16)),
    ]
    path = write_edf_plus(tmp_path / "mains.edf", signals, list(range(seconds)), discontinuous=False)
    with scratch_database() as params:
        async with start_server(make_settings(params, (tmp_path / "b").as_uri() + "/")) as server:
            result = await server.ingest(path)
            eeg_channel, ecog = result.channels
            client = await ViewerClient.connect(server.ws_url(result.package_id))
            try:
                await client.send(
                    {"filter": "bandstop", "filterParameters": [4, 50.0, 4.0], "channels": [eeg_channel.id]}
                )
                await client.send(
                    {"filter": "bandpass", "filterParameters": [8, 0.75, 0.5], "channels": [ecog.id]}
                )
                filtered = await _raw_page(client, eeg_channel, eeg_channel.start, seconds)
                narrow = await _raw_page(client, ecog, ecog.start, seconds)
            finally:
                client.close()

    def amplitude(x, frequency, rate):
        t = np.arange(x.shape[0]) / rate
        basis = np.column_stack([np.sin(2 * np.pi * frequency * t), np.cos(2 * np.pi * frequency * t)])
        coefficients, *_ = np.linalg.lstsq(basis, x, rcond=None)
        return float(np.hypot(*coefficients))

    settled = slice(500, None)  # after the first second
    before = amplitude(eeg[settled], 50, 500)
    after = amplitude(filtered[settled], 50, 500)
    assert 20 * np.log10(before / after) >= 40
    assert amplitude(filtered[settled], 6, 500) == pytest.approx(2000, rel=0.05)  # the EEG band survives
    assert np.all(np.isfinite(narrow))
    assert np.max(np.abs(narrow)) < 20_000
