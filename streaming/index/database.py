"""Reads and writes of the range index and metadata through one aiopg pool."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import aiopg
import psycopg2
import ujson

from streaming.config import PostgresSettings
from streaming.errors import ServiceUnavailable, first_line
from streaming.index.migrations import migrate
from streaming.index.models import BlockRef, Channel, Package, UnitBlockRef
from streaming.metrics import DB_POOL_CONNECTIONS

_CHANNEL_COLUMNS = (
    "id, package_id, name, start_us, end_us, unit, rate, type, channel_group, spike_duration, properties"
)


def _channel_from_row(row: Sequence[Any]) -> Channel:
    properties = row[10]
    if isinstance(properties, str):
        properties = ujson.loads(properties)
    return Channel(
        id=row[0],
        package_id=row[1],
        name=row[2],
        start=int(row[3]),
        end=int(row[4]),
        unit=row[5],
        rate=float(row[6]),
        type=row[7],
        group=row[8],
        spike_duration=row[9],
        properties=properties or {},
    )


class IndexDatabase:
    """The Postgres side of the service: range lookups, package metadata, ingest writes."""

    def __init__(self, pool: aiopg.Pool, where: str = "Postgres") -> None:
        self.pool = pool
        self.where = where  # which server this is, for operators' messages
        self._report_pool()

    def _report_pool(self) -> None:
        # Kept current on every acquire and release, so each worker's figures are live when scraped.
        DB_POOL_CONNECTIONS.labels("size").set(self.pool.size)
        DB_POOL_CONNECTIONS.labels("in_use").set(self.pool.size - self.pool.freesize)

    @classmethod
    async def open(cls, settings: PostgresSettings, dsn: str | None = None) -> IndexDatabase:
        """Create the pool once at startup; ``close()`` releases it.

        Raises ServiceUnavailable when Postgres cannot be reached or refuses the connection.
        """
        where = (
            "the embedded Postgres"
            if dsn
            else (f"Postgres at {settings.host}:{settings.port}/{settings.database}")
        )
        try:
            pool = await aiopg.create_pool(
                dsn or settings.dsn(),
                minsize=settings.pool_min,
                maxsize=settings.pool_max,
                timeout=settings.connect_timeout_seconds,
            )
        except psycopg2.OperationalError as exc:
            raise ServiceUnavailable(f"cannot connect to {where}: {first_line(exc)}") from exc
        except TimeoutError as exc:
            raise ServiceUnavailable(
                f"cannot connect to {where}: no answer within {settings.connect_timeout_seconds:g} s "
                "(postgres.connect_timeout_seconds)"
            ) from exc
        return cls(pool, where)

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()
        self._report_pool()

    @contextlib.asynccontextmanager
    async def cursor(self) -> AsyncIterator[Any]:
        try:
            async with self.pool.acquire() as connection, connection.cursor() as cursor:
                self._report_pool()
                yield cursor
        finally:
            self._report_pool()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """A cursor inside BEGIN ... COMMIT, rolled back on any exception (cancellation too)."""
        async with self.cursor() as cursor:
            await cursor.execute("BEGIN")
            try:
                yield cursor
            except BaseException:
                await cursor.execute("ROLLBACK")
                raise
            await cursor.execute("COMMIT")

    async def migrate(self) -> list[int]:
        """Apply pending schema migrations (idempotent); ServiceUnavailable if Postgres refuses them."""
        try:
            async with self.cursor() as cursor:
                return await migrate(cursor)
        except psycopg2.Error as exc:
            raise ServiceUnavailable(f"{self.where} refused the schema migration: {first_line(exc)}") from exc

    async def get_package(self, package_id: str) -> Package | None:
        """The package and its channels in ingest order, or None."""
        async with self.cursor() as cursor:
            await cursor.execute(
                "SELECT id, name, public FROM timeseries.packages WHERE id = %s", (package_id,)
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            await cursor.execute(
                f"SELECT {_CHANNEL_COLUMNS} FROM timeseries.channels WHERE package_id = %s "
                "ORDER BY position, name",
                (package_id,),
            )
            channels = tuple(_channel_from_row(r) for r in await cursor.fetchall())
        return Package(id=row[0], name=row[1], channels=channels, public=bool(row[2]))

    async def package_of_channel(self, channel_id: str) -> str | None:
        """The id of the package holding ``channel_id``, or None."""
        async with self.cursor() as cursor:
            await cursor.execute("SELECT package_id FROM timeseries.channels WHERE id = %s", (channel_id,))
            row = await cursor.fetchone()
        return row[0] if row else None

    async def unit_blocks_for(self, channel_id: str, start: int, end: int) -> list[UnitBlockRef]:
        """Spike-event runs of a unit channel overlapping ``[start, end)``, in time order."""
        async with self.cursor() as cursor:
            await cursor.execute(
                "SELECT channel, lower(range), upper(range), count, tsindex, tsblob "
                "FROM timeseries.unit_ranges WHERE channel = %s AND range && int8range(%s, %s, '[]') "
                "ORDER BY lower(range)",
                (channel_id, start, end),
            )
            return [
                UnitBlockRef(channel, int(lo), int(hi), int(count), tsindex, tsblob)
                for channel, lo, hi, count, tsindex, tsblob in await cursor.fetchall()
            ]

    async def insert_annotations(
        self, package_id: str, layer: str, creator: str, items: Sequence[dict[str, Any]]
    ) -> list[int]:
        """Store annotations in the package's layer (created on first use); returns their ids."""
        async with self.transaction() as cursor:
            await cursor.execute(
                "INSERT INTO timeseries.annotation_layers (package_id, name) VALUES (%s, %s) "
                "ON CONFLICT (package_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                (package_id, layer),
            )
            (layer_id,) = await cursor.fetchone()
            ids = []
            for item in items:
                await cursor.execute(
                    "INSERT INTO timeseries.annotations "
                    "(layer_id, range, label, description, data, creator, channel_ids) "
                    "VALUES (%s, int8range(%s, %s, '[)'), %s, %s, %s, %s, %s) RETURNING id",
                    (
                        layer_id,
                        item["start"],
                        item["end"],
                        item["label"],
                        item.get("description", ""),
                        ujson.dumps(item.get("data", {})),
                        creator,
                        list(item["channels"]),
                    ),
                )
                ids.append((await cursor.fetchone())[0])
        return ids

    async def annotations_for(self, package_id: str, start: int, end: int) -> list[dict[str, Any]]:
        """Annotations of a package overlapping ``[start, end)``, in time order."""
        async with self.cursor() as cursor:
            await cursor.execute(
                "SELECT a.id, l.name, lower(a.range), upper(a.range), a.label, a.description, a.data, "
                "a.creator, a.channel_ids FROM timeseries.annotations a "
                "JOIN timeseries.annotation_layers l ON l.id = a.layer_id "
                "WHERE l.package_id = %s AND a.range && int8range(%s, %s) ORDER BY lower(a.range), a.id",
                (package_id, start, end),
            )
            rows = await cursor.fetchall()
        return [
            {
                "id": row[0],
                "layer": row[1],
                "start": int(row[2]),
                "end": int(row[3]),
                "label": row[4],
                "description": row[5],
                "data": row[6] if not isinstance(row[6], str) else ujson.loads(row[6]),
                "creator": row[7],
                "channelIds": list(row[8]),
            }
            for row in rows
        ]

    async def find_package_by_source(self, sha256: str) -> str | None:
        async with self.cursor() as cursor:
            await cursor.execute("SELECT id FROM timeseries.packages WHERE source_sha256 = %s", (sha256,))
            row = await cursor.fetchone()
        return row[0] if row else None

    async def blocks_for(self, channel_ids: Iterable[str], start: int, end: int) -> dict[str, list[BlockRef]]:
        """Blocks overlapping ``[start, end)`` for every channel, in one query, each list in time order."""
        ids = list(dict.fromkeys(channel_ids))
        found: dict[str, list[BlockRef]] = {channel_id: [] for channel_id in ids}
        if not ids or start >= end:
            return found
        async with self.cursor() as cursor:
            await cursor.execute(
                "SELECT channel, lower(range), upper(range), location, rate FROM timeseries.ranges "
                "WHERE channel = ANY(%s) AND range && int8range(%s, %s) ORDER BY channel, lower(range)",
                (ids, start, end),
            )
            for channel, lo, hi, location, rate in await cursor.fetchall():
                found[channel].append(BlockRef(channel, int(lo), int(hi), location, float(rate)))
        return found

    async def insert_package(
        self,
        package_id: str,
        name: str,
        source_sha256: str | None,
        channels: Sequence[Channel],
        blocks: Sequence[BlockRef],
        public: bool = False,
    ) -> None:
        """Index a whole ingest in one transaction: all of it becomes visible, or none of it."""
        async with self.transaction() as cursor:
            await cursor.execute(
                "INSERT INTO timeseries.packages (id, name, source_sha256, public) VALUES (%s, %s, %s, %s)",
                (package_id, name, source_sha256, public),
            )
            for position, channel in enumerate(channels):
                await cursor.execute(
                    "INSERT INTO timeseries.channels (id, package_id, name, start_us, end_us, unit, rate, "
                    "type, channel_group, spike_duration, properties, position) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        channel.id,
                        package_id,
                        channel.name,
                        channel.start,
                        channel.end,
                        channel.unit,
                        channel.rate,
                        channel.type,
                        channel.group,
                        channel.spike_duration,
                        ujson.dumps(channel.properties),
                        position,
                    ),
                )
            for offset in range(0, len(blocks), 500):
                batch = blocks[offset : offset + 500]
                values = ", ".join(["(%s, %s, int8range(%s, %s), %s, false)"] * len(batch))
                params: list[Any] = []
                for block in batch:
                    params.extend((block.channel, block.rate, block.lo, block.hi, block.location))
                await cursor.execute(
                    "INSERT INTO timeseries.ranges (channel, rate, range, location, follows_gap) "
                    f"VALUES {values}",
                    params,
                )
            # Delivered on commit: every service process drops its cached copy of this package.
            await cursor.execute("SELECT pg_notify('streaming_packages', %s)", (package_id,))
