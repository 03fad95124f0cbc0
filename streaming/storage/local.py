"""A block store in a local directory: keys are paths below one root and can never leave it."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from streaming.storage.base import BlockNotFound, StoreUnavailable


class LocalBlockStore:
    """Blocks as files under ``root``; writes are atomic (temporary file, then rename)."""

    backend = "local"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """The file for ``key``; rejects keys that would escape the root."""
        if not key or key.startswith(("/", "\\")) or "\x00" in key:
            raise BlockNotFound(f"invalid block key {key!r}")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise BlockNotFound(f"block key {key!r} escapes the store root")
        return path

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise BlockNotFound(key) from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {key}: {exc}") from exc

    async def put(self, key: str, data: bytes) -> None:
        path = self.path_for(key)
        try:
            await asyncio.to_thread(_atomic_write, path, data)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {key}: {exc}") from exc

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete {key}: {exc}") from exc

    async def close(self) -> None:
        return None


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
