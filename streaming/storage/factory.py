"""Open the block store a URL names: ``s3://bucket/prefix/`` or ``file:///dir/``."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from botocore.exceptions import BotoCoreError, ClientError

from streaming.config import StoreSettings
from streaming.errors import ServiceUnavailable, first_line
from streaming.storage.base import BlockStore
from streaming.storage.local import LocalBlockStore
from streaming.storage.s3 import S3BlockStore


async def open_block_store(settings: StoreSettings) -> BlockStore:
    """The store for ``settings.url``; ValueError for a URL it cannot serve, ServiceUnavailable
    for a store it cannot open (a directory it cannot create, an S3 client it cannot make)."""
    url = urlparse(settings.url)
    if url.scheme == "s3":
        if not url.netloc:
            raise ValueError(f"store URL {settings.url!r} names no bucket")
        prefix = url.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        try:
            return await _open_s3(settings, url.netloc, prefix)
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(f"cannot use the block store {settings.url}: {first_line(exc)}") from exc
    if url.scheme == "file":
        try:
            return LocalBlockStore(unquote(url.netloc + url.path))
        except OSError as exc:
            reason = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
            raise ServiceUnavailable(f"cannot use the block store {settings.url}: {reason}") from exc
    raise ValueError(f"store URL {settings.url!r} must start with s3:// or file://")


async def _open_s3(settings: StoreSettings, bucket: str, prefix: str) -> BlockStore:
    return await S3BlockStore.open(
        bucket,
        prefix,
        endpoint_url=settings.s3_endpoint_url or None,
        region=settings.s3_region,
        max_connections=settings.s3_max_connections,
        concurrency=settings.fetch_concurrency,
        read_timeout=settings.read_timeout_seconds,
    )
