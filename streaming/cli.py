"""The ``streaming`` command: serve | ingest | demo | db init | token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import ujson

from streaming.config import ConfigError, Settings, load_settings
from streaming.errors import IngestError, ServiceUnavailable
from streaming.logs import configure_logging
from streaming.server import run_workers, serve

log = logging.getLogger("streaming")
T = TypeVar("T")


def _checked(convert: Callable[[str], T], accept: Callable[[T], bool], wanted: str) -> Callable[[str], T]:
    """An argparse type: ``convert`` the text, then refuse values ``accept`` rejects."""

    def parse(text: str) -> T:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text}")
        return value

    return parse


_positive_int = _checked(int, lambda value: value >= 1, "a whole number of at least 1")
_port = _checked(int, lambda value: 0 <= value <= 65535, "a port number from 0 to 65535")
_seconds = _checked(
    float,
    lambda value: math.isfinite(value) and 0 < value < 100 * 365 * 86400,
    "a positive number of seconds",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streaming", description=__doc__)
    parser.add_argument("--config", help="a TOML file overriding conf/default.toml")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the websocket and HTTP API")
    serve.add_argument("--port", type=_port, help="overrides server.port")
    serve.add_argument(
        "--workers", type=_positive_int, default=1, help="processes sharing the port (default 1)"
    )

    ingest = commands.add_parser("ingest", help="ingest an EDF/EDF+/BDF recording")
    ingest.add_argument("recording", help="path of the .edf or .bdf file")
    ingest.add_argument("--package-id", help="package id to create (default: a new N:package:<uuid>)")
    ingest.add_argument("--name", help="package name (default: the file name)")
    ingest.add_argument(
        "--block-samples", type=_positive_int, help="samples per stored block (default: ingest.block_samples)"
    )
    ingest.add_argument("--json", action="store_true", help="print a machine-readable summary")
    ingest.add_argument("--public", action="store_true", help="also serve it read-only under /discover")

    demo = commands.add_parser("demo", help="ingest a real EEG and serve it, with embedded services")
    demo.add_argument("recording", nargs="?", help="EDF file to serve (default: a bundled real EEG)")
    demo.add_argument("--port", type=_port, help="overrides server.port")

    database = commands.add_parser("db", help="database administration")
    database_commands = database.add_subparsers(dest="db_command", required=True)
    database_commands.add_parser("init", help="create or migrate the schema (idempotent)")

    token = commands.add_parser("token", help="print a session token signed with JWT_KEY")
    token.add_argument(
        "--subject", default="streaming-cli", help="the token's sub claim (annotation creator)"
    )
    token.add_argument(
        "--package", action="append", dest="packages", help="a package it may read (repeatable; default: any)"
    )
    token.add_argument("--ttl", type=_seconds, default=3600.0, help="seconds until it expires (default 3600)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "port", None) is not None:
        settings = settings.replace(server={"port": args.port})
    configure_logging(settings.server.log_level, settings.server.log_format)
    try:
        if args.command == "serve":
            if args.workers > 1:
                return run_workers(settings, args.workers, list(sys.argv[1:] if argv is None else argv))
            return asyncio.run(serve(settings))
        if args.command == "ingest":
            return asyncio.run(_ingest(settings, args))
        if args.command == "demo":
            from streaming.demo import run_demo

            return asyncio.run(run_demo(settings, args.recording))
        if args.command == "db":
            return asyncio.run(_db_init(settings))
        if args.command == "token":
            from streaming.auth import issue_token

            print(issue_token(settings.auth.jwt_key, args.subject, args.packages, args.ttl))
            return 0
    except (ValueError, IngestError) as exc:
        print(f"streaming {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except ServiceUnavailable as exc:
        # Postgres, the block store or a socket: the operator's to fix, so one line, no traceback.
        # Anything else propagates: for a fault of ours the traceback is what a bug report needs.
        print(f"streaming {args.command}: {exc}", file=sys.stderr)
        return 1
    return 2


async def _db_init(settings: Settings) -> int:
    from streaming.index.database import IndexDatabase

    if not settings.postgres.configured:
        raise ValueError("no Postgres configured: set DATA_POSTGRES_HOST")
    index = await IndexDatabase.open(settings.postgres)
    try:
        applied = await index.migrate()
    finally:
        await index.close()
    print(f"schema up to date (applied now: {applied or 'none'})")
    return 0


async def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    from streaming.index.database import IndexDatabase
    from streaming.ingest.run import ingest_recording
    from streaming.storage.factory import open_block_store

    if not settings.postgres.configured or not settings.store.url:
        raise ValueError("ingest needs DATA_POSTGRES_HOST and STREAMING_STORE_URL")
    index = await IndexDatabase.open(settings.postgres)
    try:
        await index.migrate()
        store = await open_block_store(settings.store)
        try:
            result = await ingest_recording(
                args.recording,
                index,
                store,
                settings.ingest,
                gap_threshold=settings.server.default_gap_threshold,
                package_id=args.package_id,
                name=args.name,
                block_samples=args.block_samples,
                public=args.public,
            )
        finally:
            await store.close()
    finally:
        await index.close()
    if args.json:
        print(ujson.dumps(result.summary(), indent=2))
    else:
        state = "already ingested as" if result.already_ingested else "ingested as"
        print(f"{args.recording} {state} package {result.package_id} ({result.blocks} blocks written)")
        for channel in result.channels:
            print(f"  {channel.id}  {channel.name}  {channel.rate:g} Hz  {channel.unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
