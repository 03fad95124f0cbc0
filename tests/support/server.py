"""Run the real server (real Services, real tornado app, real port) inside the test's event loop."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import tornado.httpserver

from streaming.app import make_app
from streaming.config import Settings, load_settings
from streaming.devservices import free_port
from streaming.ingest.run import IngestResult, ingest_recording
from streaming.server import shut_down
from streaming.services import Services


def make_settings(
    database: dict[str, str | int],
    store_url: str,
    s3_endpoint: str = "",
    **sections: dict[str, object],
) -> Settings:
    """Settings for a test or benchmark: defaults (no environment), the given database and block
    store, a free loopback port, and any other sections changed."""
    settings = load_settings(environ={})
    changes: dict[str, dict[str, object]] = {
        "server": {"port": free_port(), "address": "127.0.0.1"},
        "postgres": dict(database),
        "store": {"url": store_url, "s3_endpoint_url": s3_endpoint},
    }
    for name, values in sections.items():
        changes.setdefault(name, {}).update(values)
    return settings.replace(**changes)


@dataclasses.dataclass
class RunningServer:
    settings: Settings
    services: Services
    http: tornado.httpserver.HTTPServer
    packages: dict[str, IngestResult] = dataclasses.field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.settings.server.port

    def http_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, package_id: str, **params: str) -> str:
        query = "".join(f"&{key}={value}" for key, value in params.items())
        return f"ws://127.0.0.1:{self.port}/ts/query?package={package_id}{query}"

    async def ingest(self, path: Path, **options: object) -> IngestResult:
        result = await ingest_recording(
            path,
            self.services.index,
            self.services.store,
            self.settings.ingest,
            gap_threshold=self.settings.server.default_gap_threshold,
            **options,  # type: ignore[arg-type]
        )
        self.packages[result.name] = result
        return result


@contextlib.asynccontextmanager
async def start_server(settings: Settings) -> AsyncIterator[RunningServer]:
    services = await Services.start(settings)
    try:
        http = make_app(services).listen(settings.server.port, settings.server.address)
    except BaseException:
        await services.close()
        raise
    try:
        yield RunningServer(settings, services, http)
    finally:
        await shut_down([http], services)  # the same shutdown as `streaming serve`
