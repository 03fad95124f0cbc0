"""Reading decoded blocks: the cache levels in front of the block store (store -> decode for now)."""

from streaming.cache.reader import BlockReader

__all__ = ["BlockReader"]
