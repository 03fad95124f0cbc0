"""Fixtures: real Postgres, a real S3 HTTP server (moto), the real server on a free port, the shared EEG."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from streaming.devservices import S3Server, scratch_database
from tests.support.server import RunningServer, make_settings, start_server

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_EEG = SHARED_DATA / "eeg-rest-30ch-250hz.edf"


def require_shared(path: Path) -> Path:
    """``path`` under ../shared, or a skip (a failure when STREAMING_REQUIRE_SHARED=1, as in CI)."""
    if path.exists():
        return path
    reason = f"{path} is absent: the shared test recordings are not next to this checkout"
    if os.environ.get("STREAMING_REQUIRE_SHARED") == "1":
        pytest.fail(reason + " (STREAMING_REQUIRE_SHARED=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_eeg() -> Path:
    return require_shared(SHARED_EEG)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def database() -> Iterator[dict[str, str | int]]:
    """A fresh, empty Postgres database for one test."""
    with scratch_database() as params:
        yield params


def store_url_for(backend: str, tmp_path: Path, s3: S3Server | None) -> tuple[str, str]:
    """(store URL, S3 endpoint) for a backend name: "local" or "s3"."""
    if backend == "local":
        return (tmp_path / "blocks").as_uri() + "/", ""
    assert s3 is not None
    return f"s3://{s3.create_bucket()}/recordings/", s3.endpoint_url


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session", params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
async def eeg_server(
    backend: str, s3_server: S3Server, session_tmp: Path, shared_eeg: Path
) -> AsyncIterator[RunningServer]:
    """The real server over one block-store backend, the shared EEG ingested in 10,000-sample blocks."""
    with contextlib.ExitStack() as stack:
        params = stack.enter_context(scratch_database())
        url, endpoint = store_url_for(backend, session_tmp / backend, s3_server if backend == "s3" else None)
        settings = make_settings(params, url, endpoint)
        async with start_server(settings) as server:
            await server.ingest(shared_eeg, block_samples=10_000)
            yield server


@contextlib.asynccontextmanager
async def eeg_server_with(tmp_path: Path, recording: Path, **server: object) -> AsyncIterator[RunningServer]:
    """A private server (own database, local store) with some server settings changed."""
    with scratch_database() as params:
        settings = make_settings(params, (tmp_path / "blocks").as_uri() + "/", server=dict(server))
        async with start_server(settings) as running:
            await running.ingest(recording, block_samples=10_000)
            yield running
