"""Open the block store a URL names: ``s3://bucket/prefix/`` or ``file:///dir/``."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from streaming.config import StoreSettings
from streaming.storage.base import BlockStore
from streaming.storage.local import LocalBlockStore
from streaming.storage.s3 import S3BlockStore


async def open_block_store(settings: StoreSettings) -> BlockStore:
    """The store for ``settings.url``; raise ValueError for a URL it cannot serve."""
    url = urlparse(settings.url)
    if url.scheme == "s3":
        if not url.netloc:
            raise ValueError(f"store URL {settings.url!r} names no bucket")
        prefix = url.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return await S3BlockStore.open(
            url.netloc,
            prefix,
            endpoint_url=settings.s3_endpoint_url or None,
            region=settings.s3_region,
            max_connections=settings.s3_max_connections,
            concurrency=settings.fetch_concurrency,
            read_timeout=settings.read_timeout_seconds,
        )
    if url.scheme == "file":
        return LocalBlockStore(unquote(url.netloc + url.path))
    raise ValueError(f"store URL {settings.url!r} must start with s3:// or file://")
