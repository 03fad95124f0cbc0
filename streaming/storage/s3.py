"""A block store in an S3 bucket (or any S3-compatible server) through aiobotocore."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from streaming.storage.base import BlockNotFound, StoreUnavailable

_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


class S3BlockStore:
    """Blocks as objects under ``s3://bucket/prefix``; one client and connection pool per process.

    Every response body is closed through ``async with`` so that a read that fails or is cancelled
    halfway returns its connection to the pool.
    """

    backend = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str, concurrency: int) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self._slots = asyncio.Semaphore(concurrency)
        self._exit_stack: contextlib.AsyncExitStack | None = None

    @classmethod
    async def open(
        cls,
        bucket: str,
        prefix: str,
        *,
        endpoint_url: str | None,
        region: str,
        max_connections: int,
        concurrency: int,
        read_timeout: float,
    ) -> S3BlockStore:
        """Create the client once; call ``close()`` on shutdown."""
        stack = contextlib.AsyncExitStack()
        config = AioConfig(
            max_pool_connections=max_connections,
            connect_timeout=min(10.0, read_timeout),
            read_timeout=read_timeout,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3", endpoint_url=endpoint_url or None, region_name=region, config=config
            )
        )
        store = cls(client, bucket, prefix, concurrency)
        store._exit_stack = stack
        return store

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    async def get(self, key: str) -> bytes:
        async with self._slots:
            try:
                response = await self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))
                async with response["Body"] as stream:
                    return await stream.read()
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in _MISSING_CODES:
                    raise BlockNotFound(key) from exc
                raise StoreUnavailable(f"S3 refused {key}: {code}") from exc
            except (TimeoutError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
                raise StoreUnavailable(f"S3 read of {key} failed: {exc}") from exc

    async def put(self, key: str, data: bytes) -> None:
        async with self._slots:
            try:
                await self._client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)
            except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
                raise StoreUnavailable(f"S3 write of {key} failed: {exc}") from exc

    async def delete(self, key: str) -> None:
        async with self._slots:
            try:
                await self._client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
            except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
                raise StoreUnavailable(f"S3 delete of {key} failed: {exc}") from exc

    async def close(self) -> None:
        if self._exit_stack is not None:
            stack, self._exit_stack = self._exit_stack, None
            await stack.aclose()
