"""`streaming serve` (and `db init`) that cannot start: one clear line on stderr, exit 1, no traceback.
Configuration mistakes: one "configuration error:" line, exit 2."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streaming.devservices import free_port

pytestmark = pytest.mark.timeout(120)

_OURS = ("DATA_POSTGRES", "STREAMING_", "PROMETHEUS", "TIMESERIES_", "JWT_KEY", "PARALLELISM", "QUERY_LIMIT")


def _env(tmp_path: Path, database: dict | None = None, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    database = database or {"host": "127.0.0.1", "port": 5432, "database": "streaming_no_such_database"}
    env.update(
        DATA_POSTGRES_HOST=str(database["host"]),
        DATA_POSTGRES_PORT=str(database["port"]),
        DATA_POSTGRES_DATABASE=str(database["database"]),
        STREAMING_STORE_URL=(tmp_path / "blocks").as_uri() + "/",
        TIMESERIES_ADDRESS="127.0.0.1",
        TIMESERIES_PORT=str(free_port()),
        STREAMING_POSTGRES_CONNECT_TIMEOUT_SECONDS="5",
    )
    env.update(overrides)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streaming", *(args or ("serve",))],
        env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def _one_line(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The failure's one line: the last on stderr (INFO logs, e.g. migrations, may come before it)."""
    assert done.returncode == code, done.stderr
    # "Unclosed": aiopg's warning for a pool left open (bind used to fail after the pool was opened).
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert not [line for line in lines[:-1] if " INFO " not in line], done.stderr
    return lines[-1]


@contextlib.contextmanager
def _listening() -> Iterator[int]:
    """A port something already listens on (and never answers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_unknown_database(tmp_path):
    line = _one_line(_run(_env(tmp_path)))
    assert line.startswith("streaming serve: cannot connect to Postgres at 127.0.0.1:5432/streaming_no_such_")
    assert "does not exist" in line


def test_postgres_not_listening(tmp_path):
    port = free_port()
    line = _one_line(_run(_env(tmp_path, {"host": "127.0.0.1", "port": port, "database": "test"})))
    assert line.startswith(f"streaming serve: cannot connect to Postgres at 127.0.0.1:{port}/test: ")


def test_postgres_that_never_answers(tmp_path):
    with _listening() as port:
        env = _env(tmp_path, {"host": "127.0.0.1", "port": port, "database": "test"})
        env["STREAMING_POSTGRES_CONNECT_TIMEOUT_SECONDS"] = "1"
        line = _one_line(_run(env))
    assert line.startswith(f"streaming serve: cannot connect to Postgres at 127.0.0.1:{port}/test: ")


def test_db_init_names_the_database_too(tmp_path):
    line = _one_line(_run(_env(tmp_path), "db", "init"))
    assert line.startswith("streaming db: cannot connect to Postgres at 127.0.0.1:5432/streaming_no_such_")


def test_port_in_use_is_found_before_any_pool_is_opened(tmp_path, database):
    with _listening() as port:
        line = _one_line(_run(_env(tmp_path, database, TIMESERIES_PORT=str(port))))
    assert line == f"streaming serve: cannot listen on 127.0.0.1:{port} (server.port): Address already in use"


def test_metrics_port_in_use(tmp_path, database):
    with _listening() as port:
        line = _one_line(_run(_env(tmp_path, database, STREAMING_SERVER_METRICS_PORT=str(port))))
    assert line.startswith(f"streaming serve: cannot listen on 127.0.0.1:{port} (server.metrics_port): ")


def test_address_that_is_not_an_address(tmp_path):
    line = _one_line(_run(_env(tmp_path, TIMESERIES_ADDRESS="999.1.1.1")))
    assert line.startswith("streaming serve: cannot listen on 999.1.1.1:")


def test_workers_with_the_port_in_use_leave_nothing_behind(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with _listening() as port:
        env = _env(tmp_path, TIMESERIES_PORT=str(port), TMPDIR=str(scratch))
        line = _one_line(_run(env, "serve", "--workers", "2"))
    assert line.startswith(f"streaming serve: cannot listen on 127.0.0.1:{port} (server.port): ")
    assert list(scratch.iterdir()) == []  # the metrics directory it made is gone


def test_block_store_directory_that_cannot_be_created(tmp_path, database):
    (tmp_path / "a-file").write_text("not a directory")
    url = (tmp_path / "a-file" / "blocks").as_uri() + "/"
    line = _one_line(_run(_env(tmp_path, database, STREAMING_STORE_URL=url)))
    assert line.startswith(f"streaming serve: cannot use the block store {url}: ")


@pytest.mark.parametrize(
    ("overrides", "mentions"),
    [
        ({"STREAMING_POSTGRES_CONNECT_TIMEOUT_SECONDS": "inf"}, "STREAMING_POSTGRES_CONNECT_TIMEOUT_SECONDS"),
        ({"STREAMING_POSTGRES_CONNECT_TIMEOUT_SECONDS": "-5"}, "postgres.connect_timeout_seconds"),
        ({"STREAMING_POSTGRES_CONNECT_TIMEOUT_SECONDS": "nan"}, "STREAMING_POSTGRES_CONNECT_TIMEOUT_SECONDS"),
        ({"STREAMING_SERVER_LOG_LEVEL": "VERBOSE"}, "server.log_level"),
        ({"STREAMING_CONFIG": "{tmp}"}, "{tmp}"),
        ({"STREAMING_CONFIG": "{tmp}/latin1.toml"}, "{tmp}/latin1.toml"),
        ({"STREAMING_CONFIG": "{tmp}/list.toml"}, "postgres.user"),
    ],
)
def test_configuration_errors(tmp_path, overrides, mentions):
    (tmp_path / "latin1.toml").write_bytes('[postgres]\npassword = "caf\u00e9"\n'.encode("latin-1"))
    (tmp_path / "list.toml").write_text('[postgres]\nuser = ["a", "b"]\n')
    overrides = {k: v.format(tmp=tmp_path) for k, v in overrides.items()}
    line = _one_line(_run(_env(tmp_path, **overrides)), code=2)
    assert line.startswith("configuration error: ") and mentions.format(tmp=tmp_path) in line


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--port", "70000"],
        ["serve", "--workers", "0"],
        ["ingest", "x.edf", "--block-samples", "-5"],
        ["token", "--ttl", "inf"],
        ["token", "--ttl", "nan"],
    ],
)
def test_bad_flags_are_usage_errors(tmp_path, args):
    done = _run(_env(tmp_path), *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr and args[-2] in done.stderr
