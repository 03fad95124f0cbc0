"""L1: decoded blocks in process memory, least recently used first out, bounded in bytes."""

from __future__ import annotations

import collections

import numpy as np


class ByteBoundedLRU:
    """Maps block keys to read-only float64 arrays; never holds more than ``capacity`` bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._entries: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> np.ndarray | None:
        samples = self._entries.get(key)
        if samples is not None:
            self._entries.move_to_end(key)
        return samples

    def put(self, key: str, samples: np.ndarray) -> None:
        """Keep ``samples`` (made read-only: entries are shared between requests).

        An array larger than the whole capacity is not kept, and no older entry for ``key`` stays either.
        """
        if samples.nbytes > self.capacity:
            self.discard(key)
            return
        samples.flags.writeable = False
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.size -= previous.nbytes
        self._entries[key] = samples
        self.size += samples.nbytes
        while self.size > self.capacity:
            _, evicted = self._entries.popitem(last=False)
            self.size -= evicted.nbytes

    def discard(self, key: str) -> None:
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.size -= previous.nbytes

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0
