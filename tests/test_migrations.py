"""Schema migrations on a real, empty Postgres database: storage.md's tables, constraints and lookup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg2
import psycopg2.errors
import pytest

from streaming.config import Settings, load_settings
from streaming.index.database import IndexDatabase
from streaming.index.migrations import MIGRATIONS
from streaming.index.models import BlockRef

VERSIONS = sorted(version for version, _, _ in MIGRATIONS)

# storage.md, column by column: (name, information_schema data_type, nullable)
RANGES_COLUMNS = {
    "id": ("integer", "NO"),
    "channel": ("character varying", "NO"),
    "rate": ("double precision", "NO"),
    "range": ("int8range", "YES"),
    "location": ("character varying", "YES"),
    "follows_gap": ("boolean", "NO"),
}
UNIT_RANGES_COLUMNS = {
    "id": ("integer", "NO"),
    "count": ("integer", "NO"),
    "channel": ("character varying", "NO"),
    "range": ("int8range", "YES"),
    "tsindex": ("character varying", "YES"),
    "tsblob": ("character varying", "YES"),
}


def _settings(database: dict) -> Settings:
    return load_settings(environ={}).replace(postgres=database)


@contextlib.asynccontextmanager
async def _opened(database: dict) -> AsyncIterator[IndexDatabase]:
    index = await IndexDatabase.open(_settings(database).postgres)
    try:
        yield index
    finally:
        await index.close()


@pytest.fixture
async def index(database: dict) -> AsyncIterator[IndexDatabase]:
    async with _opened(database) as opened:
        yield opened


@pytest.fixture
async def migrated(index: IndexDatabase) -> IndexDatabase:
    await index.migrate()
    return index


async def _fetch(index: IndexDatabase, sql: str, params: tuple = ()) -> list[tuple]:
    async with index.cursor() as cursor:
        await cursor.execute(sql, params)
        return [tuple(row) for row in await cursor.fetchall()]


async def _insert_range(index: IndexDatabase, channel: str, lo: int, hi: int, location: str = "k") -> None:
    async with index.cursor() as cursor:
        await cursor.execute(
            "INSERT INTO timeseries.ranges (channel, rate, range, location, follows_gap) "
            "VALUES (%s, 250.0, int8range(%s, %s), %s, false)",
            (channel, lo, hi, location),
        )


async def test_migrate_twice_applies_nothing_the_second_time(index: IndexDatabase) -> None:
    assert await index.migrate() == VERSIONS
    assert await index.migrate() == []
    rows = await _fetch(index, "SELECT version FROM timeseries.schema_migrations ORDER BY version")
    assert [row[0] for row in rows] == VERSIONS


async def test_migrate_again_from_a_new_pool(database: dict) -> None:
    async with _opened(database) as first:
        assert await first.migrate() == VERSIONS
    async with _opened(database) as second:
        assert await second.migrate() == []


async def _columns(index: IndexDatabase, table: str) -> dict[str, tuple[str, str]]:
    rows = await _fetch(
        index,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'timeseries' AND table_name = %s",
        (table,),
    )
    return {name: (kind, nullable) for name, kind, nullable in rows}


async def test_tables_exist(migrated: IndexDatabase) -> None:
    rows = await _fetch(
        migrated,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'timeseries'",
    )
    assert {"ranges", "unit_ranges", "packages", "channels", "schema_migrations"} <= {row[0] for row in rows}


async def test_ranges_and_unit_ranges_have_the_storage_md_columns(migrated: IndexDatabase) -> None:
    assert await _columns(migrated, "ranges") == RANGES_COLUMNS
    assert await _columns(migrated, "unit_ranges") == UNIT_RANGES_COLUMNS


async def test_primary_keys_and_serial_ids(migrated: IndexDatabase) -> None:
    for table in ("ranges", "unit_ranges", "packages", "channels"):
        rows = await _fetch(
            migrated,
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
            (f"timeseries.{table}",),
        )
        assert [row[0] for row in rows] == ["id"], table
    for table in ("ranges", "unit_ranges"):
        rows = await _fetch(migrated, "SELECT pg_get_serial_sequence(%s, 'id')", (f"timeseries.{table}",))
        assert rows[0][0] is not None, f"{table}.id is not SERIAL"


async def test_indexes_and_exclusion_constraints(migrated: IndexDatabase) -> None:
    rows = await _fetch(
        migrated,
        "SELECT c.relname, am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'timeseries' AND c.relkind = 'i'",
    )
    methods = dict(rows)
    assert methods.get("channel_range_index") == "gist"
    assert methods.get("unit_channel_range_index") == "gist"
    rows = await _fetch(
        migrated,
        "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'x' AND connamespace = 'timeseries'::regnamespace",
    )
    definitions = {table: definition for table, definition in rows}
    for table in ("timeseries.ranges", "timeseries.unit_ranges"):
        definition = definitions[table].replace(" ", "").lower()
        assert "usinggist" in definition and "channelwith=" in definition and "rangewith&&" in definition
    extensions = await _fetch(migrated, "SELECT extname FROM pg_extension")
    assert ("btree_gist",) in extensions


async def test_package_and_channel_metadata_columns(migrated: IndexDatabase) -> None:
    packages = await _columns(migrated, "packages")
    channels = await _columns(migrated, "channels")
    assert {"id", "name"} <= set(packages)
    # storage.md: a channel has id, package id, name, start, end, unit, rate, type, group, spike duration,
    # free-form properties.
    assert {"id", "package_id", "name", "unit", "rate", "type", "properties"} <= set(channels)
    assert any("start" in name for name in channels) and any("end" in name for name in channels)
    assert any("group" in name for name in channels) and any("spike" in name for name in channels)
    assert channels["properties"][0] in ("jsonb", "json")
    rows = await _fetch(
        migrated,
        "SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
        "AND conrelid = 'timeseries.channels'::regclass",
    )
    assert rows == [("timeseries.packages",)]


async def test_overlapping_ranges_of_one_channel_are_rejected(migrated: IndexDatabase) -> None:
    await _insert_range(migrated, "N:channel:a", 0, 10)
    for lo, hi in [(5, 15), (0, 10), (-5, 1), (9, 10), (2, 3), (-100, 100)]:
        with pytest.raises(psycopg2.errors.ExclusionViolation):
            await _insert_range(migrated, "N:channel:a", lo, hi)
    with pytest.raises(psycopg2.IntegrityError):  # ExclusionViolation is an IntegrityError
        await _insert_range(migrated, "N:channel:a", 3, 4)


async def test_overlapping_ranges_of_different_channels_are_fine(migrated: IndexDatabase) -> None:
    await _insert_range(migrated, "N:channel:a", 0, 10)
    await _insert_range(migrated, "N:channel:b", 0, 10)
    await _insert_range(migrated, "N:channel:c", 5, 15)
    rows = await _fetch(migrated, "SELECT count(*) FROM timeseries.ranges")
    assert rows == [(3,)]


async def test_touching_half_open_ranges_are_fine(migrated: IndexDatabase) -> None:
    await _insert_range(migrated, "N:channel:a", 0, 10)
    await _insert_range(migrated, "N:channel:a", 10, 20)
    await _insert_range(migrated, "N:channel:a", -10, 0)
    rows = await _fetch(
        migrated, "SELECT lower(range), upper(range) FROM timeseries.ranges ORDER BY lower(range)"
    )
    assert rows == [(-10, 0), (0, 10), (10, 20)]


async def test_unit_ranges_reject_overlaps_per_channel(migrated: IndexDatabase) -> None:
    sql = (
        "INSERT INTO timeseries.unit_ranges (count, channel, range, tsindex, tsblob) "
        "VALUES (%s, %s, int8range(%s, %s), 'i', 'b')"
    )
    async with migrated.cursor() as cursor:
        await cursor.execute(sql, (3, "N:channel:u", 0, 100))
        await cursor.execute(sql, (3, "N:channel:u", 100, 200))
        await cursor.execute(sql, (3, "N:channel:v", 50, 150))
        with pytest.raises(psycopg2.errors.ExclusionViolation):
            await cursor.execute(sql, (3, "N:channel:u", 99, 101))


LOOKUP = (
    "SELECT lower(range), upper(range), location FROM timeseries.ranges "
    "WHERE channel = %s AND range && int8range(%s, %s) ORDER BY lower(range)"
)


async def test_the_storage_md_lookup_returns_overlapping_rows_in_order(migrated: IndexDatabase) -> None:
    # Blocks of two channels inserted out of order, with a gap; hi is sometimes last sample + 1 us.
    spans = [(40_000, 50_000), (0, 10_000), (20_000, 29_001), (10_000, 20_000), (70_000, 80_000)]
    for lo, hi in spans:
        await _insert_range(migrated, "N:channel:a", lo, hi, location=f"a_{lo}_{hi}.bfts.gz")
        await _insert_range(migrated, "N:channel:b", lo + 5, hi + 5, location=f"b_{lo}_{hi}.bfts.gz")
    windows = [(0, 1), (9_999, 10_001), (10_000, 20_000), (29_001, 40_000), (29_000, 40_001), (-5, 100_000)]
    windows += [(50_000, 70_000), (80_000, 90_000), (35_000, 36_000)]
    for start, end in windows:
        rows = await _fetch(migrated, LOOKUP, ("N:channel:a", start, end))
        expected = sorted((lo, hi, f"a_{lo}_{hi}.bfts.gz") for lo, hi in spans if lo < end and start < hi)
        assert rows == expected, (start, end)
        refs = await migrated.blocks_for(["N:channel:a", "N:channel:missing"], start, end)
        assert refs["N:channel:missing"] == []
        assert [(r.lo, r.hi, r.location) for r in refs["N:channel:a"]] == expected
        assert all(isinstance(r, BlockRef) and r.rate == 250.0 for r in refs["N:channel:a"])


async def test_concurrent_migrations_apply_each_version_once(database: dict) -> None:
    async with contextlib.AsyncExitStack() as stack:
        indexes = [await stack.enter_async_context(_opened(database)) for _ in range(3)]
        applied = await asyncio.wait_for(asyncio.gather(*(i.migrate() for i in indexes)), 60)
        assert sorted(v for versions in applied for v in versions) == VERSIONS
        rows = await _fetch(
            indexes[0],
            "SELECT version, count(*) FROM timeseries.schema_migrations GROUP BY version ORDER BY version",
        )
        assert rows == [(version, 1) for version in VERSIONS]
        assert await _columns(indexes[1], "ranges") == RANGES_COLUMNS
        # The advisory lock was released: a later migrate neither blocks nor applies anything.
        assert await asyncio.wait_for(indexes[2].migrate(), 10) == []
