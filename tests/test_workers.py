"""`streaming serve --workers 2`: one port, two processes, metrics that add up across them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streaming.devservices import free_port
from tests.support.client import ViewerClient


def _env(database, store_url: str, port: int, metrics_dir) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATA_POSTGRES", "STREAMING_", "PROMETHEUS"))
    }
    env.update(
        DATA_POSTGRES_HOST=str(database["host"]),
        DATA_POSTGRES_PORT=str(database["port"]),
        DATA_POSTGRES_DATABASE=str(database["database"]),
        STREAMING_STORE_URL=store_url,
        TIMESERIES_PORT=str(port),
        TIMESERIES_ADDRESS="127.0.0.1",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    return env


def _pages_answered(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # Every request ends with one outcome: "ok", or "disconnected" when the viewer closes
            # the socket as soon as its last frame arrives, before the server noted the end.
            if sample.name == "streaming_request_seconds_count" and sample.labels.get("kind") == "page":
                total += sample.value
    return total


def _children(parent: int) -> set[int]:
    """Live child processes of ``parent``, from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent and fields[0] != "Z":
                found.add(int(entry))
    return found


async def test_two_workers_share_the_port_and_the_metrics(database, tmp_path, shared_eeg):
    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = _env(database, (tmp_path / "blocks").as_uri() + "/", port, metrics_dir)
    metrics_port = free_port()
    env["STREAMING_SERVER_METRICS_PORT"] = str(metrics_port)
    ingest = subprocess.run(
        [sys.executable, "-m", "streaming", "ingest", str(shared_eeg), "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    summary = json.loads(ingest.stdout)
    server = subprocess.Popen(
        [sys.executable, "-m", "streaming", "serve", "--workers", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ts/health", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)

        channels = [{"id": c["id"], "name": c["name"]} for c in summary["channels"][:3]]
        start = summary["channels"][0]["start"]

        async def one_viewer(i: int) -> None:
            client = await ViewerClient.connect(
                f"ws://127.0.0.1:{port}/ts/query?package={summary['packageId']}"
            )
            try:
                page = await client.page(
                    {"startTime": start + i * 1_000_000, "endTime": start + (i + 1) * 1_000_000,
                     "pixelWidth": 4000, "virtualChannels": channels}
                )  # fmt: skip
                assert all(m.segment.nrPoints == 250 for ms in page.segments.values() for m in ms)
            finally:
                client.close()

        requests = 16
        await asyncio.gather(*(one_viewer(i) for i in range(requests)))
        await asyncio.sleep(0.3)
        pids = {
            int(m) for m in re.findall(r"_(\d+)\.db$", "\n".join(p.name for p in metrics_dir.iterdir()), re.M)
        }
        assert len(pids - {server.pid}) >= 2, "both workers should have written metrics"
        scrapes = [_pages_answered(p) for p in [port] * 8 + [metrics_port] * 4]  # whichever worker answers
        assert scrapes == [requests] * 12

        # A worker that dies is replaced; the others keep serving and its counts are kept.
        workers = _children(server.pid)
        assert len(workers) == 2
        os.kill(min(workers), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not (len(_children(server.pid)) == 2 and min(workers) not in _children(server.pid)):
            assert server.poll() is None and time.monotonic() < deadline, "the dead worker was not replaced"
            await asyncio.sleep(0.1)
        await asyncio.gather(*(one_viewer(i) for i in range(requests)))  # both workers (one new) answer
        await asyncio.sleep(0.3)
        assert [_pages_answered(p) for p in [port] * 4] == [2 * requests] * 4
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, output
    assert output.count("shutting down") == 2  # the killed worker never got to say it
    assert "restarted worker" in output
    assert "Traceback" not in output


def test_workers_that_cannot_start_stop_the_server(tmp_path):
    database = {"host": "127.0.0.1", "port": 5432, "database": "streaming_no_such_database"}
    env = _env(database, (tmp_path / "blocks").as_uri() + "/", free_port(), tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "streaming", "serve", "--workers", "2"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "failed before serving; stopping" in done.stderr
    assert "restarted worker" not in done.stderr


def test_workers_flag_rejects_nonsense():
    done = subprocess.run(
        [sys.executable, "-m", "streaming", "serve", "--workers", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--workers" in done.stderr


pytestmark = pytest.mark.timeout(180)
