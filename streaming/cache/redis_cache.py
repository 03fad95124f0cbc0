"""L2: decoded blocks in Redis (standalone or Cluster), shared by every worker and host.

Redis is an accelerator, never a point of failure: every call has a timeout, and the first error
opens a circuit breaker. While it is open, the cache is skipped (requests go to the block store)
and a background probe pings Redis (in a cluster, every primary) every ``retry_seconds``; the first
successful ping closes it. Warnings are logged at most once per ``warn_interval_seconds``. Whatever
the client raises is a failure of Redis, never of the request: the cluster client's own exceptions
(``RedisClusterException`` is not a ``RedisError``) and its bugs included.

Connections are bounded the same way in both modes: a command first waits (at most
``pool_wait_seconds``) for one of ``max_connections`` slots, then at most ``timeout_seconds`` for
its answer. Standalone, the slots match the ``BlockingConnectionPool``; in Cluster mode redis-py's
per-node pools raise ``MaxConnectionsError`` ("too many connections") instead of waiting, and a
command holds at most one connection per node, so ``max_connections`` slots in all keep every
node's pool (also ``max_connections``) from ever running out.

An error *reply* to a GET or SET (``ResponseError``: WRONGTYPE when something else wrote a hash or
a list under a block's key, OOM or READONLY on a write) is about that key or that write, not about
Redis being down: Redis answered, and a ping would succeed at once. Tripping the breaker on it would
make it flap on every read of the key while most reads went to the store. So it is a miss for that
key, the key is deleted (best effort) so that the block's next write replaces it, and the breaker
stays closed. Only ``ClusterDownError`` (the cluster, not one key, cannot serve) opens it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from streaming.cache.entry import VERSION, CacheEntryMismatch, decode_entry, encode_entry
from streaming.config import CacheSettings, RedisSettings
from streaming.cpu import CpuPool
from streaming.metrics import CACHE_BYTES, CACHE_REQUESTS

log = logging.getLogger(__name__)

# The entry format is part of the key: processes of two versions sharing one Redis during a rolling
# deploy each read their own entries instead of deleting each other's; old entries age out (TTL, LRU).
KEY_PREFIX = f"streaming:block:v{VERSION}:"
# RedisClusterException is not a RedisError: the cluster client raises it when no node can be reached
# ("Redis Cluster cannot be connected") or slots are left uncovered while a node is down.
_FAILURES = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError, ConnectionError)


class ClientFailure(RedisError):
    """The Redis client raised something other than a Redis, socket or timeout error."""


class _Skipped(Exception):
    """A command not sent: the breaker opened while it waited for a connection slot."""


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


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
        self.slots = asyncio.Semaphore(settings.max_connections)
        self._every_primary = {"target_nodes": RedisCluster.PRIMARIES} if settings.cluster else {}

    @classmethod
    async def open(cls, settings: RedisSettings, cache: CacheSettings, cpu: CpuPool) -> RedisBlockCache:
        """Create the client (no connection is made yet) and check the eviction settings."""
        options = {
            "socket_timeout": settings.timeout_seconds,
            "socket_connect_timeout": settings.timeout_seconds,
        }
        if settings.cluster:
            # Per node; redis-py raises instead of waiting when a node's pool is used up: the slots wait.
            client: Any = RedisCluster.from_url(
                settings.url, max_connections=settings.max_connections, **options
            )
        else:
            pool = redis.BlockingConnectionPool.from_url(
                settings.url,
                max_connections=settings.max_connections,
                timeout=settings.pool_wait_seconds,  # a backstop: the slots never let it run out
                **options,
            )
            client = redis.Redis(connection_pool=pool)
        cache_level = cls(client, settings, cache, cpu)
        await cache_level.check_eviction_policy()
        return cache_level

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the ``max_connections`` command slots, waited for at most ``pool_wait_seconds``."""
        try:
            async with asyncio.timeout(self.settings.pool_wait_seconds):
                await self.slots.acquire()
        except TimeoutError:
            raise RedisConnectionError(
                f"no free connection within {self.settings.pool_wait_seconds} s "
                f"(redis.max_connections = {self.settings.max_connections})"
            ) from None
        try:
            yield
        finally:
            self.slots.release()

    async def _command(self, name: str, *args: Any, skip_when_unavailable: bool = True, **kwargs: Any) -> Any:
        """``client.<name>(*args, **kwargs)``: a slot, then the answer within ``timeout_seconds``.

        Raises ``_Skipped`` instead when the breaker opened while this command waited for a slot: it
        would only wait for a Redis already known to be failing.
        """
        async with self.slot():
            if skip_when_unavailable and not self.available:
                raise _Skipped
            command = asyncio.ensure_future(getattr(self.client, name)(*args, **kwargs))
            # When this caller is cancelled (an abandoned read-ahead), the command is cancelled too, but
            # redis-py can end it with its own error instead (ClusterDownError): consume that outcome,
            # or asyncio logs "Task exception was never retrieved" with a traceback each time.
            command.add_done_callback(_consume_outcome)
            try:
                return await asyncio.wait_for(command, self.settings.timeout_seconds)
            except _FAILURES:
                raise
            except Exception as exc:
                # The client failing in a way it does not declare is Redis failing too, never the
                # request: redis-py's cluster client, while a node is down, can disconnect a connection
                # that another command is still connecting (AttributeError: 'NoneType' object has no
                # attribute 'writelines').
                raise ClientFailure(f"{type(exc).__name__}: {exc}") from exc

    async def check_eviction_policy(self) -> None:
        """Warn when Redis (any node of a cluster) would refuse writes or keep entries forever."""
        options: dict[str, Any] = {"target_nodes": RedisCluster.ALL_NODES} if self.settings.cluster else {}
        try:
            config = await self._command("config_get", "maxmemory*", **options)
        except _FAILURES as exc:
            self._open_breaker(f"cannot reach Redis at startup ({exc})")
            return
        if isinstance(config, dict) and config and all(isinstance(v, dict) for v in config.values()):
            answers = config  # cluster: one answer per node
        else:  # standalone, or a cluster of one node
            answers = {"": config if isinstance(config, dict) else {}}

        def on(nodes: list[str]) -> str:
            return f" on {', '.join(sorted(nodes))}" if any(nodes) else ""

        policies = {str(answer.get("maxmemory-policy", "")) for answer in answers.values()}
        for policy in sorted(policies - {"allkeys-lru", "allkeys-lfu"}):
            nodes = [node for node, answer in answers.items() if answer.get("maxmemory-policy", "") == policy]
            log.warning(
                "Redis maxmemory-policy is %r%s: set 'maxmemory-policy allkeys-lru' (and maxmemory) so the "
                "block cache evicts old blocks; with 'noeviction' writes fail once it is full",
                policy,
                on(nodes),
            )
        unbounded = [node for node, answer in answers.items() if str(answer.get("maxmemory", "0")) == "0"]
        if unbounded and policies <= {"allkeys-lru", "allkeys-lfu"}:
            log.warning(
                "Redis maxmemory is 0 (unbounded)%s: set maxmemory so that LRU eviction can work",
                on(unbounded),
            )

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
                # Cluster: every primary. A plain PING goes to one node, which answers while another
                # is down, and the breaker would close and open again on every probe.
                await self._command("ping", skip_when_unavailable=False, **self._every_primary)
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
            value = await self._command("get", KEY_PREFIX + key)
        except _Skipped:
            return None
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
            await self._command("set", KEY_PREFIX + key, value, ex=self.ttl_seconds)
        except _Skipped:
            return
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
            await self._command("delete", KEY_PREFIX + key)
        except _Skipped:
            return
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
