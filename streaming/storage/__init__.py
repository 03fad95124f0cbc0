"""Block stores (S3, local directory) and the block codec (gzip of big-endian float64)."""

from streaming.storage.base import BlockStore
from streaming.storage.factory import open_block_store

__all__ = ["BlockStore", "open_block_store"]
