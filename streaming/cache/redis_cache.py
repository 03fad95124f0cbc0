"""L2: decoded blocks in Redis (standalone or Cluster), shared by every worker and host.

Redis is an accelerator, never a point of failure: every call has a timeout, and the first error
opens a circuit breaker. While it is open, the cache is skipped (requests go to the block store)
and a background probe pings Redis every ``retry_seconds``; the first successful ping closes it.
Warnings are logged at most once per ``warn_interval_seconds``.

An error *reply* to a GET or SET (``ResponseError``: WRONGTYPE when something else wrote a hash or
a list under a block's key, OOM or READONLY on a write) is about that key or that write, not about
Redis being down: Redis answered, and a ping would succeed at once. Tripping the breaker on it would
make it flap on every read of the key while most reads went to the store. So it is a miss for that
key, the key is deleted (best effort) so that the block's next write replaces it, and the breaker
stays closed. Only ``ClusterDownError`` (the cluster, not one key, cannot serve) opens it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError, RedisError, ResponseError

from streaming.cache.entry import VERSION, CacheEntryMismatch, decode_entry, encode_entry
from streaming.config import CacheSettings, RedisSettings
from streaming.cpu import CpuPool
from streaming.metrics import CACHE_BYTES, CACHE_REQUESTS

log = logging.getLogger(__name__)

# The entry format is part of the key: processes of two versions sharing one Redis during a rolling
# deploy each read their own entries instead of deleting each other's; old entries age out (TTL, LRU).
KEY_PREFIX = f"streaming:block:v{VERSION}:"
_FAILURES = (RedisError, OSError, asyncio.TimeoutError, ConnectionError)


def _about_the_key(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis refusing this one command (a bad key, a refused write), not Redis down."""
    return isinstance(exc, ResponseError) and not isinstance(exc, ClusterDownError)


class RedisBlockCache:
    """get/set of block entries with timeouts and a circuit breaker."""

    level = "l2"

    def __init__(self, client: Any, settings: RedisSettings, cache: CacheSettings, cpu: CpuPool) -> None:
        self.client = client
        self.cpu = cpu
        self.settings = settings
        self.ttl_seconds = cache.ttl_seconds
        self.max_entry_bytes = cache.max_entry_bytes
        self.available = True
        self._probe: asyncio.Task[None] | None = None
        self._last_warning: dict[str, float] = {}
        self._pending_writes: set[asyncio.Task[None]] = set()
        self._deletes: dict[str, asyncio.Task[None]] = {}

    @classmethod
    async def open(cls, settings: RedisSettings, cache: CacheSettings, cpu: CpuPool) -> RedisBlockCache:
        """Create the client (no connection is made yet) and check the eviction settings."""
        options = {
            "socket_timeout": settings.timeout_seconds,
            "socket_connect_timeout": settings.timeout_seconds,
        }
        if settings.cluster:
            client: Any = RedisCluster.from_url(settings.url, **options)
        else:
            pool = redis.BlockingConnectionPool.from_url(
                settings.url,
                max_connections=settings.max_connections,
                timeout=settings.pool_wait_seconds,  # wait for a free connection, bounded
                **options,
            )
            client = redis.Redis(connection_pool=pool)
        cache_level = cls(client, settings, cache, cpu)
        await cache_level.check_eviction_policy()
        return cache_level

    async def check_eviction_policy(self) -> None:
        """Warn when Redis would refuse writes or keep entries forever instead of evicting them."""
        try:
            config = await asyncio.wait_for(
                self.client.config_get("maxmemory*"), self.settings.timeout_seconds
            )
        except _FAILURES as exc:
            self._open_breaker(f"cannot reach Redis at startup ({exc})")
            return
        if isinstance(config, dict) and config and isinstance(next(iter(config.values())), dict):
            config = next(iter(config.values()))  # cluster: one answer per node
        policy = config.get("maxmemory-policy", "") if isinstance(config, dict) else ""
        maxmemory = config.get("maxmemory", "0") if isinstance(config, dict) else "0"
        if policy not in ("allkeys-lru", "allkeys-lfu"):
            log.warning(
                "Redis maxmemory-policy is %r: set 'maxmemory-policy allkeys-lru' (and maxmemory) so the "
                "block cache evicts old blocks; with 'noeviction' writes fail once it is full",
                policy,
            )
        elif str(maxmemory) == "0":
            log.warning("Redis maxmemory is 0 (unbounded): set maxmemory so that LRU eviction can work")

    def _warn(self, message: str, topic: str = "availability") -> None:
        """Rate-limited per topic: bad-key warnings never hide a "Redis is down" one."""
        now = time.monotonic()
        if now - self._last_warning.get(topic, -float("inf")) >= self.settings.warn_interval_seconds:
            self._last_warning[topic] = now
            log.warning("Redis cache: %s", message)

    def _open_breaker(self, reason: str) -> None:
        CACHE_REQUESTS.labels(self.level, "error").inc()
        if self.available:
            self.available = False
            self._warn(f"{reason}; serving from the block store until Redis answers again")
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        while not self.available:
            await asyncio.sleep(self.settings.retry_seconds)
            try:
                await asyncio.wait_for(self.client.ping(), self.settings.timeout_seconds)
            except _FAILURES as exc:
                self._warn(f"still unreachable ({exc})")
                continue
            self.available = True
            log.info("Redis cache: reachable again, caching resumes")

    async def get(self, key: str) -> np.ndarray | None:
        """The cached samples, or None (miss, mismatch, Redis unavailable)."""
        if not self.available:
            return None
        try:
            value = await asyncio.wait_for(self.client.get(KEY_PREFIX + key), self.settings.timeout_seconds)
        except _FAILURES as exc:
            if _about_the_key(exc):
                CACHE_REQUESTS.labels(self.level, "error").inc()
                self._warn(
                    f"GET {key} refused ({exc}); deleting the key, reading the block from the store", "key"
                )
                self._delete_later(key)
            else:
                self._open_breaker(f"GET failed ({type(exc).__name__}: {exc})")
            return None
        if value is None:
            CACHE_REQUESTS.labels(self.level, "miss").inc()
            return None
        CACHE_BYTES.labels(self.level, "read").inc(len(value))
        try:
            samples = await self.cpu.run(len(value) // 2, decode_entry, value, key)
        except CacheEntryMismatch as exc:
            CACHE_REQUESTS.labels(self.level, "error").inc()
            log.info("Redis cache: dropping a bad entry for %s: %s", key, exc)
            self._delete_later(key)
            return None
        CACHE_REQUESTS.labels(self.level, "hit").inc()
        return samples

    def set_later(self, key: str, samples: np.ndarray) -> None:
        """Store an entry in the background; a request never waits for a cache write."""
        if self.available and samples.nbytes <= self.max_entry_bytes:
            self._spawn(self._set(key, samples))

    async def _set(self, key: str, samples: np.ndarray) -> None:
        value = await self.cpu.run(samples.shape[0], encode_entry, key, samples)
        deleting = self._deletes.get(key)
        if deleting is not None:  # a DEL of the bad value must not land after (and remove) this SET
            await asyncio.gather(deleting, return_exceptions=True)
        try:
            await asyncio.wait_for(
                self.client.set(KEY_PREFIX + key, value, ex=self.ttl_seconds), self.settings.timeout_seconds
            )
        except _FAILURES as exc:
            if _about_the_key(exc):
                self._warn(f"SET {key} refused ({exc}); the block stays uncached", "key")
                self._delete_later(key)
            else:
                self._open_breaker(f"SET failed ({type(exc).__name__}: {exc})")
            return
        CACHE_BYTES.labels(self.level, "write").inc(len(value))

    def _delete_later(self, key: str) -> None:
        """Delete the key in the background (a request never waits for it); a later SET waits for it."""
        if key in self._deletes:
            return
        task = self._spawn(self._delete(key))
        self._deletes[key] = task
        task.add_done_callback(lambda _: self._deletes.pop(key, None))

    async def _delete(self, key: str) -> None:
        try:
            await asyncio.wait_for(self.client.delete(KEY_PREFIX + key), self.settings.timeout_seconds)
        except _FAILURES as exc:
            if _about_the_key(exc):
                log.info("Redis cache: could not delete %s (%s)", key, exc)  # best effort
            else:
                self._open_breaker(f"DEL failed ({exc})")

    def _spawn(self, work: Any) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._pending_writes.add(task)
        task.add_done_callback(self._pending_writes.discard)
        return task

    async def flush(self) -> None:
        """Wait for background writes (tests, shutdown)."""
        while self._pending_writes:
            await asyncio.gather(*list(self._pending_writes), return_exceptions=True)

    async def close(self) -> None:
        await self.flush()
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        await self.client.aclose()
