"""Versioned, idempotent schema migrations; `streaming db init` applies the ones not yet applied."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# Postgres advisory lock id, so that several processes starting at once migrate one at a time.
_MIGRATION_LOCK = 0x5354524D  # "STRM"

# The timeseries.* tables are exactly storage.md's; packages and channels are ours.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "range index (storage.md) and package/channel metadata",
        """
        CREATE EXTENSION IF NOT EXISTS btree_gist;
        CREATE TABLE IF NOT EXISTS timeseries.ranges (
            id          SERIAL PRIMARY KEY,
            channel     VARCHAR NOT NULL,
            rate        FLOAT NOT NULL,
            range       INT8RANGE,
            location    VARCHAR,
            follows_gap BOOLEAN NOT NULL,
            EXCLUDE USING gist (channel WITH =, range WITH &&)
        );
        CREATE INDEX IF NOT EXISTS channel_range_index ON timeseries.ranges USING gist (channel, range);
        CREATE TABLE IF NOT EXISTS timeseries.unit_ranges (
            id SERIAL PRIMARY KEY, count INTEGER NOT NULL, channel VARCHAR NOT NULL,
            range INT8RANGE, tsindex VARCHAR, tsblob VARCHAR,
            EXCLUDE USING gist (channel WITH =, range WITH &&)
        );
        CREATE INDEX IF NOT EXISTS unit_channel_range_index
            ON timeseries.unit_ranges USING gist (channel, range);
        CREATE TABLE IF NOT EXISTS timeseries.packages (
            id            VARCHAR PRIMARY KEY,
            name          VARCHAR NOT NULL,
            source_sha256 VARCHAR UNIQUE,
            created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS timeseries.channels (
            id             VARCHAR PRIMARY KEY,
            package_id     VARCHAR NOT NULL REFERENCES timeseries.packages(id) ON DELETE CASCADE,
            name           VARCHAR NOT NULL,
            start_us       BIGINT NOT NULL,
            end_us         BIGINT NOT NULL,
            unit           VARCHAR NOT NULL,
            rate           FLOAT NOT NULL,
            type           VARCHAR NOT NULL,
            channel_group  VARCHAR NOT NULL DEFAULT 'default',
            spike_duration BIGINT,
            properties     JSONB NOT NULL DEFAULT '{}'::jsonb,
            position       INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS channels_package_index ON timeseries.channels (package_id, position);
        """,
    ),
    (
        2,
        "public packages and annotations",
        """
        ALTER TABLE timeseries.packages ADD COLUMN IF NOT EXISTS public BOOLEAN NOT NULL DEFAULT false;
        CREATE TABLE IF NOT EXISTS timeseries.annotation_layers (
            id          SERIAL PRIMARY KEY,
            package_id  VARCHAR NOT NULL REFERENCES timeseries.packages(id) ON DELETE CASCADE,
            name        VARCHAR NOT NULL,
            description VARCHAR NOT NULL DEFAULT '',
            UNIQUE (package_id, name)
        );
        CREATE TABLE IF NOT EXISTS timeseries.annotations (
            id          SERIAL PRIMARY KEY,
            layer_id    INTEGER NOT NULL REFERENCES timeseries.annotation_layers(id) ON DELETE CASCADE,
            range       INT8RANGE NOT NULL,
            label       VARCHAR NOT NULL,
            description VARCHAR NOT NULL DEFAULT '',
            data        JSONB NOT NULL DEFAULT '{}'::jsonb,
            creator     VARCHAR NOT NULL DEFAULT '',
            channel_ids VARCHAR[] NOT NULL,
            created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS annotations_layer_range_index
            ON timeseries.annotations USING gist (layer_id, range);
        """,
    ),
]


async def migrate(cursor: Any) -> list[int]:
    """Apply pending migrations inside one advisory lock; return the versions applied now."""
    await cursor.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        await cursor.execute("CREATE SCHEMA IF NOT EXISTS timeseries")
        await cursor.execute(
            """CREATE TABLE IF NOT EXISTS timeseries.schema_migrations (
                   version INTEGER PRIMARY KEY,
                   description VARCHAR NOT NULL,
                   applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
        )
        await cursor.execute("SELECT version FROM timeseries.schema_migrations")
        done = {row[0] for row in await cursor.fetchall()}
        applied = []
        for version, description, sql in MIGRATIONS:
            if version in done:
                continue
            await cursor.execute("BEGIN")
            try:
                await cursor.execute(sql)
                await cursor.execute(
                    "INSERT INTO timeseries.schema_migrations (version, description) VALUES (%s, %s)",
                    (version, description),
                )
                await cursor.execute("COMMIT")
            except BaseException:
                await cursor.execute("ROLLBACK")
                raise
            log.info("applied migration %d: %s", version, description)
            applied.append(version)
        return applied
    finally:
        await cursor.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
