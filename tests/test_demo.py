"""The README's first command: `streaming demo` with nothing configured serves the real EEG."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

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
        request = ujson.loads(re.search(r"^    (\{\"session\".*)$", banner, re.M).group(1))
        assert len(request["virtualChannels"]) == 23

        client = await ViewerClient.connect(url.replace("localhost", "127.0.0.1"))
        try:
            await client.send({"packageId": request["packageId"], "montage": "NOT_MONTAGED"})
            details = (await client.receive_json())["channelDetails"]
            assert len(details) == 30
            page = await client.page(request)
        finally:
            client.close()
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
