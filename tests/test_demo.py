"""The README's first command: `streaming demo` with nothing configured serves the real EEG."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import ujson

from streaming.devservices import free_port
from tests.support.client import ViewerClient
from tests.support.reference import read_edf


async def test_demo_serves_the_shared_eeg_with_embedded_services(tmp_path, shared_eeg):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATA_POSTGRES", "STREAMING_"))}
    env["STREAMING_DEMO_DATA_DIR"] = str(tmp_path / "demo")
    process = subprocess.Popen(
        [sys.executable, "-m", "streaming", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any("Press Ctrl-C" in line for line in output):
            assert time.monotonic() < deadline and process.poll() is None, "".join(output)
            output.append(process.stdout.readline())
        banner = "".join(output)
        url = re.search(r"websocket: (ws://\S+)", banner).group(1)
        request, zoomed_out = (
            ujson.loads(line) for line in re.findall(r"^    (\{\"session\".*)$", banner, re.M)
        )
        assert len(request["virtualChannels"]) == 23
        assert zoomed_out["endTime"] - zoomed_out["startTime"] == 192_000_000
        assert zoomed_out["pixelWidth"] == 192_000  # 48 samples per pixel: min/max
        assert "XDG_RUNTIME_DIR" not in banner

        client = await ViewerClient.connect(url.replace("localhost", "127.0.0.1"))
        try:
            await client.send({"packageId": request["packageId"], "montage": "NOT_MONTAGED"})
            details = (await client.receive_json())["channelDetails"]
            assert len(details) == 30
            page = await client.page(request)
            overview = await client.page(zoomed_out)
        finally:
            client.close()
        for channel in zoomed_out["virtualChannels"]:
            (message,) = overview.channel(channel["id"])
            assert message.segment.isMinMax and message.segment.nrPoints == 2000
        reference = read_edf(shared_eeg)
        for channel in request["virtualChannels"]:
            (message,) = page.channel(channel["id"])
            assert message.segment.nrPoints == 1250  # 5 s at 250 Hz, raw
            np.testing.assert_allclose(
                message.segment.data, reference[channel["name"]].samples[:1250], rtol=1e-12, atol=1e-9
            )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            remaining, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, "".join(output) + remaining
    assert "shutting down" in remaining
    assert "Traceback" not in "".join(output) + remaining


async def test_without_shared_data_the_demo_falls_back_to_pyedflibs_edf(tmp_path, monkeypatch):
    """A fresh checkout without ../shared still has a recording to serve: the EDF inside pyedflib."""
    import pyedflib

    from streaming import demo
    from streaming.devservices import scratch_database
    from tests.support.server import make_settings, start_server

    monkeypatch.setattr(demo, "SHARED_EEG", tmp_path / "absent.edf")
    recording = demo.default_recording()
    assert recording.is_file() and recording.parent.parent == Path(pyedflib.__file__).parent
    with scratch_database() as params:
        async with start_server(make_settings(params, (tmp_path / "blocks").as_uri() + "/")) as server:
            result = await server.ingest(recording)
            with pyedflib.EdfReader(str(recording)) as reader:
                labels = [label.strip() for label in reader.getSignalLabels()]
                first = reader.readSignal(0)
            assert [c.name for c in result.channels] == labels
            channel = result.channels[0]
            client = await ViewerClient.connect(server.ws_url(result.package_id))
            try:
                page = await client.page(
                    {
                        "startTime": channel.start,
                        "endTime": channel.start + 1_000_000,
                        "pixelWidth": 1e6 / channel.rate,
                        "virtualChannels": [{"id": channel.id, "name": channel.name}],
                    }
                )
            finally:
                client.close()
            values = np.concatenate([m.segment.data for m in page.channel(channel.id)])
            np.testing.assert_allclose(values, first[: int(channel.rate)], rtol=1e-9, atol=1e-9)
