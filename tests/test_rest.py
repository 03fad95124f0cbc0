"""The REST endpoints of protocol.md section 3, over real HTTP, checked against independent values."""

from __future__ import annotations

import contextlib
import gzip
from pathlib import Path

import jwt
import numpy as np
import psycopg2
import pytest
import tornado.httpclient
import ujson

from streaming.devservices import scratch_database
from tests.conftest import make_settings
from tests.support.client import ViewerClient
from tests.support.edf_writer import EdfSignalSpec, write_edf_plus
from tests.support.reference import read_edf
from tests.support.server import start_server

HEADER_START_US = 1_224_017_292_000_000


async def _get(server, path: str, **headers):
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        server.http_url(path), headers=headers or None, raise_error=False
    )
    return response.code, ujson.loads(response.body) if response.body else None


async def _post(server, path: str, body, **headers):
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        server.http_url(path),
        method="POST",
        body=body if isinstance(body, (str, bytes)) else ujson.dumps(body),
        headers=headers or None,
        raise_error=False,
    )
    return response.code, ujson.loads(response.body) if response.body else None


def _package(server):
    return next(iter(server.packages.values()))


async def test_continuous_returns_raw_samples_across_blocks(eeg_server, shared_eeg):
    package = _package(eeg_server)
    channel = package.channels[4]
    start = channel.start + 39_000_000  # 39-41 s: across the 40 s block boundary
    status, pairs = await _get(
        eeg_server,
        f"/ts/retrieve/continuous?channel={channel.id}&start={start}&end={start + 2_000_000}&limit=1000",
    )
    assert status == 200
    expected = read_edf(shared_eeg)[channel.name].samples[39 * 250 : 41 * 250]
    times = np.array([p[0] for p in pairs])
    np.testing.assert_array_equal(times, start + np.arange(500) * 4000)
    assert all(type(p[0]) is int for p in pairs)  # integer microseconds, never 1224017292000000.0
    np.testing.assert_allclose([p[1] for p in pairs], expected, rtol=1e-12, atol=1e-9)


async def test_continuous_limits_and_errors(eeg_server):
    package = _package(eeg_server)
    channel = package.channels[0]
    base = f"/ts/retrieve/continuous?channel={channel.id}&start={channel.start}"
    status, error = await _get(eeg_server, base + f"&end={channel.start + 10_000_000}&limit=100")
    assert status == 400 and error["error"] == "QueryLimitExceeded"
    status, pairs = await _get(eeg_server, base + f"&end={channel.start + 400_000}&limit=100")
    assert status == 200 and len(pairs) == 100
    for path, code, name in [
        (f"/ts/retrieve/continuous?channel={channel.id}&start=x&end=5", 400, "InvalidRequest"),
        (f"/ts/retrieve/continuous?channel={channel.id}&start=9&end=5", 400, "InvalidRequest"),
        (f"/ts/retrieve/continuous?channel={channel.id}&start=1", 400, "InvalidRequest"),
        ("/ts/retrieve/continuous?start=1&end=5", 400, "InvalidRequest"),
        ("/ts/retrieve/continuous?channel=N:channel:nope&start=1&end=5", 404, "PackageMissingChannels"),
        (f"/ts/retrieve/unit?channel={channel.id}&start=1&end=5", 400, "NotTimeSeries"),
        (base + "&end=99999999999999999&limit=0", 400, "InvalidRequest"),
    ]:
        status, error = await _get(eeg_server, path)
        assert (status, error["error"]) == (code, name), path
        assert set(error) == {"error", "reason", "channelNames"}


BAD_TIMES = [
    "99999999999999999999999",
    "-999999999999999999999",
    "9223372036854775808",
    str(2**62 + 1),
    "1_000",
    "%201%20",  # " 1 "
    "1e3",
    "1.5",
    "0x10",
    "%D9%A1%D9%A2",  # Arabic-Indic digits
    "",
    "%FF",  # not UTF-8
]


async def test_bad_arguments_are_400_on_every_endpoint(eeg_server):
    """Malformed or out-of-range arguments are InvalidRequest (400), never a 500 from Postgres."""
    channel = _package(eeg_server).channels[0]
    window = {"start": str(channel.start), "end": str(channel.start + 40_000)}
    paths = []
    for endpoint in ("continuous", "unit", "segments"):
        for name in ("start", "end"):
            for bad in BAD_TIMES:
                query = {"channel": channel.id, **window, name: bad}
                paths.append(f"/ts/retrieve/{endpoint}?" + "&".join(f"{k}={v}" for k, v in query.items()))
    for endpoint in ("continuous", "unit"):
        for bad in ["0", "-1", "1_000", "1e3", "", "%FF", "1" * 50]:
            paths.append(f"/ts/retrieve/{endpoint}?channel={channel.id}&start=0&end=5&limit={bad}")
    for bad in ["0", "-1", "nan", "inf", "1e400", "1_0", "", "%FF", "%202"]:
        paths.append(f"/ts/retrieve/segments?channel={channel.id}&gapThreshold={bad}")
    paths += [
        "/ts/retrieve/continuous?channel=%FF&start=0&end=5",
        f"/ts/retrieve/continuous?channel={channel.id}&start=0&end=5&session=%FF",
        "/ts/validate-montage?package=",
        "/ts/validate-montage?package=%FF",
        f"/ts/validate-montage?package={_package(eeg_server).package_id}&session=%FF",
    ]
    for path in paths:
        status, error = await _get(eeg_server, path)
        assert (status, error["error"]) == (400, "InvalidRequest"), path
        assert set(error) == {"error", "reason", "channelNames"}
    for path in [  # the edges of the accepted range
        f"/ts/retrieve/continuous?channel={channel.id}&start=-{2**62}&end={channel.start + 4000}",
        f"/ts/retrieve/continuous?channel={channel.id}&start=%2B{channel.start}&end={2**62}&limit=999999999999",
        f"/ts/retrieve/segments?channel={channel.id}&start=-5&end={2**62}",
    ]:
        status, body = await _get(eeg_server, path)
        assert status == 200 and body, path


@contextlib.asynccontextmanager
async def _server(tmp_path: Path, **sections):
    with scratch_database() as database:
        settings = make_settings(database, (tmp_path / "b").as_uri() + "/", **sections)
        async with start_server(settings) as server:
            yield server, database


def _ramp(records: int, per_record: int) -> np.ndarray:
    return (np.arange(records * per_record) * 7) % 60000 - 30000


async def test_segments_join_blocks_and_split_at_gaps(tmp_path):
    signals = [EdfSignalSpec("EEG", 100, _ramp(10, 100))]
    path = write_edf_plus(tmp_path / "gap.edf", signals, [0, 1, 2, 3, 4, 10, 11, 12, 13, 14])
    async with _server(tmp_path) as (server, _):
        result = await server.ingest(path, block_samples=150)
        channel = result.channels[0]
        status, spans = await _get(server, f"/ts/retrieve/segments?channel={channel.id}")
        assert status == 200
        assert spans == [
            [HEADER_START_US, HEADER_START_US + 5_000_000],
            [HEADER_START_US + 10_000_000, HEADER_START_US + 15_000_000],
        ]
        status, joined = await _get(server, f"/ts/retrieve/segments?channel={channel.id}&gapThreshold=600")
        assert joined == [[HEADER_START_US, HEADER_START_US + 15_000_000]]
        start = HEADER_START_US + 11_000_000
        status, late = await _get(
            server, f"/ts/retrieve/segments?channel={channel.id}&start={start}&end={start + 1_000_000}"
        )
        assert late == [[HEADER_START_US + 10_000_000, HEADER_START_US + 15_000_000]]
        status, _ = await _get(server, f"/ts/retrieve/segments?channel={channel.id}&gapThreshold=-1")
        assert status == 400


async def test_unit_events_from_the_storage_layout(tmp_path, shared_eeg):
    async with _server(tmp_path) as (server, database):
        result = await server.ingest(shared_eeg)
        unit_id = "N:channel:00000000-0000-4000-8000-00000000aaaa"
        times = np.array([HEADER_START_US + t for t in (10, 2_000, 3_500_000, 9_000_000)], dtype=">i8")
        records = np.zeros(4, dtype=[("time", ">i8"), ("unit", "u1")])
        records["time"], records["unit"] = times, [1, 2, 1, 3]
        await server.services.store.put("units/a.tsindex.gz", gzip.compress(records.tobytes()))
        connection = psycopg2.connect(
            host=database["host"], port=database["port"], dbname=database["database"], user="postgres"
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO timeseries.channels (id, package_id, name, start_us, end_us, unit, rate, type) "
                "VALUES (%s, %s, 'spikes', %s, %s, 'uV', 30000, 'unit')",
                (unit_id, result.package_id, int(times[0]), int(times[-1]) + 1),
            )
            cursor.execute(
                "INSERT INTO timeseries.unit_ranges (count, channel, range, tsindex, tsblob) "
                "VALUES (4, %s, int8range(%s, %s, '[]'), 'units/a.tsindex.gz', 'units/a.tsblob.gz')",
                (unit_id, int(times[0]), int(times[-1])),
            )
            cursor.execute("SELECT pg_notify('streaming_packages', %s)", (result.package_id,))
        connection.close()
        server.services.packages.invalidate()
        start, end = HEADER_START_US, HEADER_START_US + 5_000_000
        status, events = await _get(server, f"/ts/retrieve/unit?channel={unit_id}&start={start}&end={end}")
        assert status == 200 and events == [int(t) for t in times[:3]]
        status, error = await _get(
            server, f"/ts/retrieve/unit?channel={unit_id}&start={start}&end={end}&limit=2"
        )
        assert status == 400 and error["error"] == "QueryLimitExceeded"
        status, error = await _get(
            server, f"/ts/retrieve/continuous?channel={unit_id}&start={start}&end={end}"
        )
        assert status == 400 and error["error"] == "NotTimeSeries"


async def test_validate_montage(eeg_server, tmp_path):
    status, error = await _get(eeg_server, f"/ts/validate-montage?package={_package(eeg_server).package_id}")
    assert status == 400 and error["error"] == "PackageCannotBeMontaged"
    assert error["channelNames"] == ["A1", "A2", "F2", "P2", "Q1", "Q2"]
    names = "Fp1 F7 T7 P7 O1 Fp2 F8 T8 P8 O2 F3 C3 P3 F4 C4 P4 Fz Cz Pz A1 A2 Q1 Q2 F2 P2".split()
    signals = [EdfSignalSpec(name, 10, _ramp(2, 10)) for name in names]
    path = write_edf_plus(tmp_path / "full.edf", signals, [0, 1], discontinuous=False)
    async with _server(tmp_path) as (server, _):
        result = await server.ingest(path)
        status, body = await _get(server, f"/ts/validate-montage?package={result.package_id}")
        assert status == 200 and body["montages"] == [
            "BIPOLAR_ANT_POS",
            "BIPOLAR_TRANSVERSE",
            "REFERENTIAL_VS_CZ",
        ]
        status, error = await _get(server, "/ts/validate-montage?package=N:package:nope")
        assert status == 404


async def test_timespan_stores_annotations(tmp_path, shared_eeg):
    key = "s" * 32
    async with _server(tmp_path, auth={"jwt_key": key}) as (server, _):
        result = await server.ingest(shared_eeg)
        fp1, cz = result.channels[0], result.channels[17]
        items = [
            {"time": fp1.start + 1_000_000, "duration": 500_000, "value": "SPIKE", "source": fp1.id},
            {"time": fp1.start + 2_000_000, "duration": 0, "value": "artifact", "source": cz.id},
        ]
        token = jwt.encode({"sub": "dr-who", "packages": [result.package_id]}, key, algorithm="HS256")
        status, error = await _post(server, "/timespan", {"items": items})
        assert status == 401 and error["error"] == "Unauthorized"
        other = jwt.encode({"packages": ["N:package:else"]}, key, algorithm="HS256")
        status, error = await _post(server, f"/timespan?session={other}", {"items": items})
        assert status == 403
        status, body = await _post(server, f"/timespan?session={token}", {"items": items})
        assert status == 201 and len(body["ids"]) == 2 and body["package"] == result.package_id
        stored = await server.services.index.annotations_for(result.package_id, fp1.start, fp1.end)
        assert [
            (a["label"], a["start"] - fp1.start, a["end"] - fp1.start, a["channelIds"], a["creator"])
            for a in stored
        ] == [
            ("SPIKE", 1_000_000, 1_500_000, [fp1.id], "dr-who"),
            ("artifact", 2_000_000, 2_000_001, [cz.id], "dr-who"),
        ]
        for bad, name in [
            ("not json", "InvalidRequest"),
            ({"items": []}, "InvalidRequest"),
            ({"items": [{"time": -1, "value": "x", "source": fp1.id}]}, "InvalidRequest"),
            ({"items": [{"time": 1, "value": "", "source": fp1.id}]}, "InvalidRequest"),
            ({"items": [{"time": 1, "value": "x", "source": "N:channel:nope"}]}, "PackageMissingChannels"),
        ]:
            status, error = await _post(server, f"/timespan?session={token}", bad)
            assert error["error"] == name and status in (400, 404), bad
        assert len(await server.services.index.annotations_for(result.package_id, 0, 2**62)) == 2

        # A page asking for annotations gets the ones in its window as a text frame, then its data.
        viewer = await ViewerClient.connect(
            server.ws_url(result.package_id, session=token, startAtEpoch="true")
        )
        try:
            request = {
                "packageId": result.package_id,
                "startTime": 1_200_000,
                "endTime": 3_000_000,
                "pixelWidth": 4000,
                "virtualChannels": [{"id": fp1.id, "name": "Fp1"}],
                "requestAnnotations": True,
            }
            page = await viewer.page(request)
            (frame,) = [text for text in page.texts if "annotations" in text]
            assert (frame["pageStart"], frame["pageEnd"]) == (1_200_000, 3_000_000)
            assert [(a["label"], a["start"], a["end"]) for a in frame["annotations"]] == [
                ("SPIKE", 1_000_000, 1_500_000),
                ("artifact", 2_000_000, 2_000_001),
            ]
            page = await viewer.page({**request, "requestAnnotations": False})
            assert not [text for text in page.texts if "annotations" in text]
        finally:
            viewer.close()


async def test_discover_serves_public_packages_only_without_a_token(tmp_path, shared_eeg):
    async with _server(tmp_path, auth={"jwt_key": "d" * 32}) as (server, _):
        private = await server.ingest(shared_eeg)
        public_path = tmp_path / "public-copy.edf"
        data = bytearray(shared_eeg.read_bytes())
        data[8:16] = b"PUBLIC  "  # patient field: a different file for the dedupe hash, same signals
        public_path.write_bytes(bytes(data))
        public = await server.ingest(public_path, public=True)
        channel = public.channels[0]
        window = f"&start={channel.start}&end={channel.start + 40_000}"
        status, pairs = await _get(server, f"/discover/ts/retrieve/continuous?channel={channel.id}{window}")
        assert status == 200 and len(pairs) == 10
        status, _ = await _get(server, f"/ts/retrieve/continuous?channel={channel.id}{window}")
        assert status == 401  # the private route still wants a token
        hidden = private.channels[0]
        status, error = await _get(server, f"/discover/ts/retrieve/continuous?channel={hidden.id}{window}")
        assert status == 404 and error["error"] == "PackageNotFound"
        viewer = await ViewerClient.connect(
            f"ws://127.0.0.1:{server.port}/discover/ts/query?package={public.package_id}"
        )
        viewer.close()
        with pytest.raises(tornado.httpclient.HTTPClientError, match="404"):
            await ViewerClient.connect(
                f"ws://127.0.0.1:{server.port}/discover/ts/query?package={private.package_id}"
            )
        status, error = await _post(server, "/discover/timespan", {"items": []})
        assert status == 404 and error["error"] == "NotFound"  # writes are never served under /discover


async def test_timespan_refuses_what_postgres_cannot_store(tmp_path, shared_eeg):
    async with _server(tmp_path) as (server, _):
        result = await server.ingest(shared_eeg)
        channel = result.channels[0]
        item = {"time": channel.start, "duration": 1, "value": "SPIKE", "source": channel.id}
        raw = ujson.dumps({"items": [item]})[:-3]
        bodies = [
            {"items": [{**item, "value": "a\u0000b"}]},
            {"items": [{**item, "source": channel.id + "\u0000"}]},
            {"items": [{**item, "description": "\u0000"}]},
            {"items": [{**item, "data": {"k": "\u0000"}}]},
            {"items": [{**item, "data": {"\u0000": 1}}]},
            {"items": [{**item, "data": {"k": [1, {"x": "\u0000"}]}}]},
            {"items": [{**item, "description": "x" * 20_000}]},
            {"items": [{**item, "data": 5}]},
            raw + ', "data": {"k": NaN}}]}',
            raw + ', "data": {"k": Infinity}}]}',
            raw + ', "data": {"k": 1e999}}]}',
            raw[: raw.index('"value"')] + '"value": "\\ud800", "source": "' + channel.id + '"}]}',
        ]
        for body in bodies:
            status, error = await _post(server, "/timespan", body)
            assert (status, error["error"]) == (400, "InvalidRequest"), body
            assert set(error) == {"error", "reason", "channelNames"}
        good = {"items": [item]}
        for layer in ["", "%20", "%00", "x" * 256, "y" * 5000, "%FF"]:
            status, error = await _post(server, f"/timespan?layer={layer}", good)
            assert (status, error["error"]) == (400, "InvalidRequest"), layer
        assert await server.services.index.annotations_for(result.package_id, 0, 2**62) == []
        status, body = await _post(server, "/timespan", good)
        assert status == 201 and body["layer"] == "Default"
        status, body = await _post(server, f"/timespan?layer={'z' * 255}", good)
        assert status == 201 and body["layer"] == "z" * 255
