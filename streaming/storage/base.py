"""The block store interface shared by every backend."""

from __future__ import annotations

from typing import Protocol


class BlockNotFound(KeyError):
    """No block is stored under that key."""


class StoreUnavailable(OSError):
    """The store could not be reached or refused the operation."""


class BlockStore(Protocol):
    """Keyed blob storage for gzipped blocks. Keys are relative (``prefix/name.bfts.gz``)."""

    backend: str  # "s3" or "local", for logs and metrics

    async def get(self, key: str) -> bytes:
        """The stored bytes; raises BlockNotFound or StoreUnavailable."""
        ...

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing what was there."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...
