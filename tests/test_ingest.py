"""Ingest: gaps, mixed rates, idempotency, and failures that leave nothing half-indexed."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streaming.errors import IngestError
from streaming.index.database import IndexDatabase
from streaming.ingest.run import ingest_recording
from streaming.storage.base import StoreUnavailable
from streaming.storage.codec import decode_block
from streaming.storage.local import LocalBlockStore
from tests.conftest import make_settings
from tests.support.client import ViewerClient
from tests.support.edf_writer import EdfSignalSpec, set_header_field, write_edf_plus
from tests.support.server import start_server

HEADER_START_US = 1_224_017_292_000_000  # 14.10.08 20.48.12 UTC


def _ramp(records: int, per_record: int, offset: int = 0) -> np.ndarray:
    return (np.arange(records * per_record) * 7 + offset) % 60000 - 30000


@pytest.fixture
def gap_recording(tmp_path: Path) -> Path:
    """Two 100 Hz channels: records at 0-4 s, then a 5 s gap, then records at 10-14 s (EDF+D)."""
    signals = [
        EdfSignalSpec("Fp1-Ref", 100, _ramp(10, 100)),
        EdfSignalSpec("Fp2-Ref", 100, _ramp(10, 100, 5)),
    ]
    return write_edf_plus(tmp_path / "gap.edf", signals, [0, 1, 2, 3, 4, 10, 11, 12, 13, 14])


@pytest.fixture
def mixed_rate_recording(tmp_path: Path) -> Path:
    """One channel at 250 Hz and one at 1000 Hz in the same 1 s records (EDF+C)."""
    signals = [EdfSignalSpec("EEG", 250, _ramp(8, 250)), EdfSignalSpec("ECG", 1000, _ramp(8, 1000, 11))]
    return write_edf_plus(tmp_path / "mixed.edf", signals, list(range(8)), discontinuous=False)


@contextlib.asynccontextmanager
async def _local_server(database, tmp_path: Path):
    settings = make_settings(database, (tmp_path / "blocks").as_uri() + "/")
    async with start_server(settings) as server:
        yield server


async def _ranges(index: IndexDatabase, channel_id: str) -> list[tuple[int, int, str]]:
    async with index.cursor() as cursor:
        await cursor.execute(
            "SELECT lower(range), upper(range), location FROM timeseries.ranges "
            "WHERE channel = %s ORDER BY lower(range)",
            (channel_id,),
        )
        return [(int(lo), int(hi), loc) for lo, hi, loc in await cursor.fetchall()]


async def _count(index: IndexDatabase, table: str) -> int:
    async with index.cursor() as cursor:
        await cursor.execute(f"SELECT count(*) FROM timeseries.{table}")
        return (await cursor.fetchone())[0]


async def test_edf_plus_d_gap_gives_separate_ranges_and_an_empty_window(database, tmp_path, gap_recording):
    async with _local_server(database, tmp_path) as server:
        result = await server.ingest(gap_recording, block_samples=150)
        channel = result.channels[0]
        assert channel.name == "Fp1-Ref" and channel.rate == 100
        ranges = await _ranges(server.services.index, channel.id)
        second = HEADER_START_US + 10_000_000
        assert [(lo, hi) for lo, hi, _ in ranges] == [
            (HEADER_START_US, HEADER_START_US + 1_500_000),
            (HEADER_START_US + 1_500_000, HEADER_START_US + 3_000_000),
            (HEADER_START_US + 3_000_000, HEADER_START_US + 4_500_000),
            (HEADER_START_US + 4_500_000, HEADER_START_US + 5_000_000),
            (second, second + 1_500_000),
            (second + 1_500_000, second + 3_000_000),
            (second + 3_000_000, second + 4_500_000),
            (second + 4_500_000, second + 5_000_000),
        ]
        # storage.md key naming: {channelId}_{firstSampleUs}_{endUs}.bfts.gz
        assert all(loc == f"{channel.id}_{lo}_{hi}.bfts.gz" for lo, hi, loc in ranges)
        stored = decode_block(await server.services.store.get(ranges[4][2]))
        np.testing.assert_array_equal(stored, _ramp(10, 100)[500:650])

        client = await ViewerClient.connect(server.ws_url(result.package_id))
        try:
            inside_gap = await client.page(
                {
                    "startTime": HEADER_START_US + 6_000_000,
                    "endTime": HEADER_START_US + 9_000_000,
                    "pixelWidth": 10_000,
                    "virtualChannels": [{"id": channel.id, "name": channel.name}],
                }
            )
            (empty,) = inside_gap.channel(channel.id)
            assert empty.totalResponses == 1 and empty.segment.nrPoints == 0

            across = await client.page(
                {
                    "startTime": HEADER_START_US + 4_900_000,
                    "endTime": HEADER_START_US + 10_100_000,
                    "pixelWidth": 10_000,
                    "virtualChannels": [{"id": channel.id, "name": channel.name}],
                }
            )
            before, after = across.channel(channel.id)
            assert before.segment.startTs == HEADER_START_US + 4_900_000
            np.testing.assert_array_equal(before.segment.data, _ramp(10, 100)[490:500])
            assert after.segment.startTs == second
            np.testing.assert_array_equal(after.segment.data, _ramp(10, 100)[500:510])
        finally:
            client.close()


async def test_a_gap_is_a_step_of_more_than_two_sample_periods(database, tmp_path):
    """100 Hz, 1 s records. Record 1's first sample comes 2.5 periods after record 0's last (a gap);
    record 2's comes 1.9 periods after record 1's last (not a gap: it joins record 1 back to back)."""
    signals = [EdfSignalSpec("Cz", 100, _ramp(3, 100))]
    path = write_edf_plus(tmp_path / "steps.edf", signals, [0.0, 1.015, 2.024])
    async with _local_server(database, tmp_path) as server:
        result = await server.ingest(path, block_samples=1000)
        ranges = await _ranges(server.services.index, result.channels[0].id)
    assert [(lo - HEADER_START_US, hi - HEADER_START_US) for lo, hi, _ in ranges] == [
        (0, 1_000_000),
        (1_015_000, 3_015_000),  # records 1 and 2 back to back: 200 samples from 1.015 s
    ]


async def test_mixed_rates_keep_each_channel_rate(database, tmp_path, mixed_rate_recording):
    async with _local_server(database, tmp_path) as server:
        result = await server.ingest(mixed_rate_recording)
        eeg, ecg = result.channels
        assert (eeg.rate, ecg.rate) == (250, 1000)
        assert eeg.end == ecg.end == HEADER_START_US + 8_000_000
        client = await ViewerClient.connect(server.ws_url(result.package_id))
        try:
            await client.send({"montage": "NOT_MONTAGED", "packageId": result.package_id})
            details = (await client.receive_json())["channelDetails"]
            assert [(d["name"], d["rate"]) for d in details] == [("EEG", 250.0), ("ECG", 1000.0)]
            start = HEADER_START_US + 2_000_000
            page = await client.page(
                {
                    "startTime": start,
                    "endTime": start + 1_000_000,
                    "pixelWidth": 5000,  # 1.25 samples/pixel at 250 Hz (raw), 5 at 1000 Hz (min/max)
                    "virtualChannels": [{"id": c.id, "name": c.name} for c in (eeg, ecg)],
                }
            )
        finally:
            client.close()
        (eeg_message,) = page.channel(eeg.id)
        assert not eeg_message.segment.isMinMax and eeg_message.segment.samplePeriod == 4000
        np.testing.assert_array_equal(eeg_message.segment.data, _ramp(8, 250)[500:750])
        (ecg_message,) = page.channel(ecg.id)
        assert ecg_message.segment.isMinMax and ecg_message.segment.samplePeriod == 5000
        window = _ramp(8, 1000, 11)[2000:3000].reshape(200, 5)
        expected = np.column_stack([window.min(axis=1), window.max(axis=1)]).ravel()
        np.testing.assert_array_equal(ecg_message.segment.data, expected)


async def test_ingesting_the_same_file_twice_creates_nothing_new(database, tmp_path, gap_recording):
    async with _local_server(database, tmp_path) as server:
        first = await server.ingest(gap_recording, block_samples=150)
        rows = await _count(server.services.index, "ranges")
        again = await server.ingest(gap_recording, block_samples=150)
        assert again.already_ingested and again.package_id == first.package_id
        assert [c.id for c in again.channels] == [c.id for c in first.channels]
        assert await _count(server.services.index, "ranges") == rows
        with pytest.raises(IngestError, match="already ingested"):
            await server.ingest(gap_recording, package_id="N:package:other")


class FailingAfter(LocalBlockStore):
    """A real local store that stops accepting writes after ``allowed`` of them (the store going down)."""

    def __init__(self, root: Path, allowed: int) -> None:
        super().__init__(root)
        self.allowed = allowed

    async def put(self, key: str, data: bytes) -> None:
        if self.allowed <= 0:
            raise StoreUnavailable("store went away")
        self.allowed -= 1
        await super().put(key, data)


async def test_store_failure_midway_leaves_no_rows_and_no_orphans(database, tmp_path, gap_recording):
    async with _local_server(database, tmp_path) as server:
        store = FailingAfter(tmp_path / "flaky", allowed=5)
        with pytest.raises(IngestError, match="nothing was indexed"):
            await ingest_recording(
                gap_recording, server.services.index, store, server.settings.ingest, block_samples=150
            )
        assert await _count(server.services.index, "ranges") == 0
        assert await _count(server.services.index, "packages") == 0
        assert [p for p in (tmp_path / "flaky").rglob("*") if p.is_file()] == []


async def test_unreadable_file_is_refused_cleanly(database, tmp_path):
    bogus = tmp_path / "bogus.edf"
    bogus.write_bytes(b"this is not an EDF file" * 100)
    async with _local_server(database, tmp_path) as server:
        with pytest.raises(IngestError):
            await server.ingest(bogus)
        assert await _count(server.services.index, "ranges") == 0
        assert await _count(server.services.index, "packages") == 0


async def test_missing_bucket_fails_without_rows(database, tmp_path, gap_recording, s3_server):
    settings = make_settings(database, "s3://no-such-bucket/x/", s3_server.endpoint_url)
    async with start_server(settings) as server:
        with pytest.raises(IngestError):
            await server.ingest(gap_recording)
        assert await _count(server.services.index, "ranges") == 0


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streaming", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _cli_env(database, tmp_path: Path) -> dict[str, str]:
    return {
        "DATA_POSTGRES_HOST": str(database["host"]),
        "DATA_POSTGRES_PORT": str(database["port"]),
        "DATA_POSTGRES_DATABASE": str(database["database"]),
        "DATA_POSTGRES_USER": str(database["user"]),
        "STREAMING_STORE_URL": (tmp_path / "cli-blocks").as_uri() + "/",
    }


def test_cli_db_init_and_ingest_json(database, tmp_path, gap_recording):
    env = _cli_env(database, tmp_path)
    for _ in range(2):
        done = _cli(["db", "init"], env)
        assert done.returncode == 0, done.stderr
    done = _cli(["ingest", str(gap_recording), "--json", "--block-samples", "200"], env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["packageId"].startswith("N:package:") and not summary["alreadyIngested"]
    assert [c["name"] for c in summary["channels"]] == ["Fp1-Ref", "Fp2-Ref"]
    assert all(c["id"].startswith("N:channel:") for c in summary["channels"])
    assert summary["blocks"] == 2 * 2 * 3  # 2 channels x 2 segments x ceil(500 / 200)
    again = _cli(["ingest", str(gap_recording)], env)
    assert again.returncode == 0 and "already ingested" in again.stdout
    missing = _cli(["ingest", str(tmp_path / "nope.edf")], env)
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_cli_ingest_with_a_chosen_id_and_name_prints_the_channels(database, tmp_path, mixed_rate_recording):
    env = _cli_env(database, tmp_path)
    package_id = "N:package:0b9c7d8e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
    done = _cli(["ingest", str(mixed_rate_recording), "--package-id", package_id, "--name", "Night 1"], env)
    assert done.returncode == 0, done.stderr
    first, *channels = done.stdout.strip().splitlines()
    assert first == f"{mixed_rate_recording} ingested as package {package_id} (2 blocks written)"
    assert [line.split()[1:] for line in channels] == [
        ["EEG", "250", "Hz", "uV"],
        ["ECG", "1000", "Hz", "uV"],
    ]
    assert all(line.split()[0].startswith("N:channel:") for line in channels)
    summary = json.loads(_cli(["ingest", str(mixed_rate_recording), "--json"], env).stdout)
    assert summary["packageId"] == package_id and summary["name"] == "Night 1" and summary["alreadyIngested"]


async def test_bdf_24_bit_recording(database, tmp_path):
    import edfio

    rate, seconds = 512, 4
    digital = (np.arange(rate * seconds) * 4099) % (1 << 23) - (1 << 22)  # spans 24-bit values
    signal = edfio.BdfSignal(
        digital.astype(np.float64),
        rate,
        label="iEEG A1",
        physical_dimension="uV",
        physical_range=(-(1 << 23), (1 << 23) - 1),
        digital_range=(-(1 << 23), (1 << 23) - 1),
    )
    path = tmp_path / "deep.bdf"
    recording = edfio.Recording(startdate=datetime.date(2008, 10, 14))
    edfio.Bdf([signal], recording=recording, starttime=datetime.time(20, 48, 12)).write(path)
    async with _local_server(database, tmp_path) as server:
        result = await server.ingest(path, block_samples=1000)
        (channel,) = result.channels
        assert (channel.name, channel.rate, channel.unit) == ("iEEG A1", 512, "uV")
        assert (channel.start, channel.end) == (HEADER_START_US, HEADER_START_US + seconds * 1_000_000)
        assert len(await _ranges(server.services.index, channel.id)) == 3  # 2048 samples in 1000s
        client = await ViewerClient.connect(server.ws_url(result.package_id))
        try:
            page = await client.page(
                {
                    "startTime": channel.start,
                    "endTime": channel.end,
                    "pixelWidth": 1000,
                    "virtualChannels": [{"id": channel.id, "name": channel.name}],
                }
            )
        finally:
            client.close()
        values = np.concatenate([m.segment.data for m in page.channel(channel.id)])
        np.testing.assert_allclose(values, digital, atol=1e-6)


# --- record onsets: the absolute start of record i is the header's date and time plus its onset ---


def _header_us(*fields: int) -> int:
    """Microseconds since the epoch of a header date and time (UTC), computed independently of ingest."""
    return int(datetime.datetime(*fields, tzinfo=datetime.UTC).timestamp()) * 1_000_000


def _expected_los(header_us: int, onsets: list[float]) -> list[int]:
    return sorted(header_us + round(onset * 1_000_000) for onset in onsets)


async def test_edf_plus_d_out_of_order_onsets_are_relative_to_the_header_start(database, tmp_path):
    onsets = [5.0, 0.0, 10.0]
    per_record = 100
    signals = [EdfSignalSpec("Fp1", per_record, _ramp(3, per_record))]
    path = write_edf_plus(tmp_path / "unordered.edf", signals, onsets, start=("01.01.20", "10.00.00"))
    header_us = _header_us(2020, 1, 1, 10, 0, 0)
    async with _local_server(database, tmp_path) as server:
        result = await server.ingest(path, block_samples=per_record)
        (channel,) = result.channels
        ranges = await _ranges(server.services.index, channel.id)
        assert [lo for lo, _, _ in ranges] == _expected_los(header_us, onsets)
        assert [hi - lo for lo, hi, _ in ranges] == [1_000_000] * 3
        # channel start/end: the earliest lower bound and the latest upper bound, not blocks[0]/[-1]
        assert channel.start == header_us + 0
        assert channel.end == header_us + 11_000_000
        # record i's samples sit at its own onset
        for record, onset in enumerate(onsets):
            location = next(loc for lo, _, loc in ranges if lo == header_us + round(onset * 1e6))
            stored = decode_block(await server.services.store.get(location))
            expected = _ramp(3, per_record)[record * per_record : (record + 1) * per_record]
            np.testing.assert_array_equal(stored, expected)


async def test_edf_plus_c_first_onset_is_counted_once(database, tmp_path):
    onsets = [3.25, 4.25, 5.25, 6.25]
    signals = [EdfSignalSpec("EEG", 200, _ramp(4, 200)), EdfSignalSpec("ECG", 50, _ramp(4, 50))]
    path = write_edf_plus(
        tmp_path / "late.edf", signals, onsets, discontinuous=False, start=("14.10.08", "20.48.12")
    )
    async with _local_server(database, tmp_path) as server:
        result = await server.ingest(path)
        for channel in result.channels:
            assert channel.start == HEADER_START_US + 3_250_000
            assert channel.end == HEADER_START_US + 7_250_000
            ranges = await _ranges(server.services.index, channel.id)
            assert [(lo, hi) for lo, hi, _ in ranges] == [(channel.start, channel.end)]


async def test_onsets_past_midnight_move_to_the_next_day_not_back(database, tmp_path):
    """Header 23:59:58 on 31 Dec 2019, records 5 s and 6 s later: 00:00:03 and 00:00:04 on 1 Jan 2020."""
    onsets = [5.0, 6.0]
    signals = [EdfSignalSpec("EEG", 10, _ramp(2, 10))]
    path = write_edf_plus(tmp_path / "midnight.edf", signals, onsets, start=("31.12.19", "23.59.58"))
    header_us = _header_us(2019, 12, 31, 23, 59, 58)
    async with _local_server(database, tmp_path) as server:
        result = await server.ingest(path, block_samples=10)
        (channel,) = result.channels
        ranges = await _ranges(server.services.index, channel.id)
        assert [lo for lo, _, _ in ranges] == _expected_los(header_us, onsets)
        assert channel.start == _header_us(2020, 1, 1, 0, 0, 3)
        assert channel.end == _header_us(2020, 1, 1, 0, 0, 5)


async def test_subsecond_first_onset_near_midnight(database, tmp_path):
    onsets = [1.5, 2.5]
    signals = [EdfSignalSpec("EEG", 10, _ramp(2, 10))]
    path = write_edf_plus(
        tmp_path / "sub.edf", signals, onsets, discontinuous=False, start=("31.12.19", "23.59.59")
    )
    async with _local_server(database, tmp_path) as server:
        (channel,) = (await server.ingest(path)).channels
        assert channel.start == _header_us(2020, 1, 1, 0, 0, 0) + 500_000
        assert channel.end == channel.start + 2_000_000


async def test_overlapping_data_records_are_refused(database, tmp_path):
    signals = [EdfSignalSpec("EEG", 10, _ramp(3, 10))]
    path = write_edf_plus(tmp_path / "overlap.edf", signals, [0.0, 5.0, 4.5])
    async with _local_server(database, tmp_path) as server:
        with pytest.raises(IngestError, match="overlap"):
            await server.ingest(path)
        await _assert_nothing_stored(server, tmp_path)


# --- duplicate labels ---


async def test_duplicate_labels_are_made_unique(database, tmp_path, caplog):
    labels = ["C3", "C3", "C3#2", "C4", "C3"]
    signals = [EdfSignalSpec(label, 10, _ramp(2, 10, 100 * i)) for i, label in enumerate(labels)]
    path = write_edf_plus(tmp_path / "dup.edf", signals, [0, 1], discontinuous=False)
    async with _local_server(database, tmp_path) as server:
        with caplog.at_level("WARNING"):
            result = await server.ingest(path)
        names = [c.name for c in result.channels]
        assert names == ["C3", "C3#3", "C3#2", "C4", "C3#4"]
        assert "duplicate" in caplog.text and "C3#3" in caplog.text
        for i, channel in enumerate(result.channels):
            ((_, _, location),) = await _ranges(server.services.index, channel.id)
            stored = decode_block(await server.services.store.get(location))
            np.testing.assert_array_equal(stored, _ramp(2, 10, 100 * i))
        package = await server.services.index.get_package(result.package_id)
        assert package is not None and [c.name for c in package.channels] == names


# --- damaged files: refused with a clear message, nothing stored ---


def _good_file(tmp_path: Path, name: str = "bad.edf") -> Path:
    signals = [EdfSignalSpec("EEG", 100, _ramp(4, 100)), EdfSignalSpec("ECG", 50, _ramp(4, 50))]
    return write_edf_plus(tmp_path / name, signals, [0, 1, 2, 3], discontinuous=False)


def _truncate(path: Path, remove: int) -> None:
    path.write_bytes(path.read_bytes()[:-remove])


DAMAGES = {
    "truncated mid-record": (lambda p: _truncate(p, 10), "truncated"),
    "missing whole records": (lambda p: set_header_field(p, "num_records", 6), "truncated"),
    "bytes after the last record": (lambda p: p.write_bytes(p.read_bytes() + b"\0" * 40), "after the last"),
    "unknown record count": (lambda p: set_header_field(p, "num_records", -1), "number of data records"),
    "no records": (lambda p: set_header_field(p, "num_records", 0), "no data records"),
    "zero samples per record": (
        lambda p: set_header_field(p, "samples_per_record", 0, signal=1),
        r"signal 2 \('ECG'\) has 0 samples per data record",
    ),
    "physical min == max": (
        lambda p: (set_header_field(p, "physical_min", 5, 0), set_header_field(p, "physical_max", 5, 0)),
        r"signal 1 \('EEG'\): physical minimum and maximum are both 5",
    ),
    "digital min == max": (
        lambda p: (set_header_field(p, "digital_min", 7, 1), set_header_field(p, "digital_max", 7, 1)),
        r"signal 2 \('ECG'\): digital minimum and maximum are both 7",
    ),
    "huge header size": (lambda p: set_header_field(p, "header_bytes", 99999999), "header"),
    "record duration 0": (lambda p: set_header_field(p, "record_duration", 0), "record duration"),
    "non-numeric record count": (
        lambda p: set_header_field(p, "num_records", "four"),
        "number of data records",
    ),
    "signal count too large": (lambda p: set_header_field(p, "num_signals", 40), "header"),
    "not an EDF at all": (lambda p: p.write_bytes(b"this is not an EDF file" * 100), "not an EDF"),
    "shorter than a header": (lambda p: p.write_bytes(b"0       "), "header"),
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
async def test_damaged_file_is_refused_with_a_clear_message(database, tmp_path, damage):
    path = _good_file(tmp_path)
    change, message = DAMAGES[damage]
    change(path)
    async with _local_server(database, tmp_path) as server:
        with pytest.raises(IngestError, match=message) as caught:
            await server.ingest(path)
        assert str(path) in str(caught.value)
        await _assert_nothing_stored(server, tmp_path)


def _write_bdf(path: Path, seconds: int = 2) -> Path:
    import edfio

    signal = edfio.BdfSignal(np.arange(64.0 * seconds), 64, label="A1", physical_range=(-1000, 1000))
    edfio.Bdf([signal], recording=edfio.Recording(startdate=datetime.date(2008, 10, 14))).write(path)
    return path


@pytest.mark.parametrize("remove", [1, 3 * 64])
async def test_truncated_bdf_is_refused(database, tmp_path, remove):
    """BDF samples are 3 bytes: a file one byte or one whole record short is refused."""
    path = _write_bdf(tmp_path / "short.bdf")
    _truncate(path, remove)
    async with _local_server(database, tmp_path) as server:
        with pytest.raises(IngestError, match="truncated"):
            await server.ingest(path)
        await _assert_nothing_stored(server, tmp_path)


async def test_any_edfio_failure_becomes_a_recording_error(tmp_path, monkeypatch):
    import edfio

    from streaming.ingest.recording import Recording, RecordingError

    path = _good_file(tmp_path)

    def broken(*args: object, **kwargs: object) -> None:
        raise UnboundLocalError("cannot access local variable 'x'")

    monkeypatch.setattr(edfio, "read_edf", broken)
    with pytest.raises(RecordingError, match=r"bad\.edf.*cannot access local variable 'x'"):
        Recording(path)


async def _assert_nothing_stored(server, tmp_path: Path) -> None:
    assert await _count(server.services.index, "ranges") == 0
    assert await _count(server.services.index, "packages") == 0
    blocks = tmp_path / "blocks"
    assert not blocks.exists() or [p for p in blocks.rglob("*") if p.is_file()] == []


def test_cli_refuses_a_damaged_file_without_a_traceback(database, tmp_path):
    env = _cli_env(database, tmp_path)
    assert _cli(["db", "init"], env).returncode == 0
    for damage in (
        "truncated mid-record",
        "zero samples per record",
        "huge header size",
        "record duration 0",
    ):
        path = _good_file(tmp_path, "bad.edf")
        DAMAGES[damage][0](path)
        done = _cli(["ingest", str(path)], env)
        assert done.returncode == 1, (damage, done.stdout, done.stderr)
        assert done.stderr.startswith(f"streaming ingest: {path}"), (damage, done.stderr)
        assert "Traceback" not in done.stderr, (damage, done.stderr)
