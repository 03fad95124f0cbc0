"""One frozen Settings object built from conf/default.toml, an optional TOML file and the environment.

Precedence, lowest first: ``conf/default.toml`` (every key and its default), the file named by
``--config`` or ``STREAMING_CONFIG``, then environment variables. Every key can be set as
``STREAMING_<SECTION>_<KEY>`` (for example ``STREAMING_SERVER_PORT``); the reference service's
variable names (``TIMESERIES_PORT``, ``DATA_POSTGRES_HOST``, ...) are accepted too.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "conf" / "default.toml"

# (section, key) -> the reference implementation's environment variable.
LEGACY_ENV_NAMES: dict[tuple[str, str], str] = {
    ("server", "address"): "TIMESERIES_ADDRESS",
    ("server", "port"): "TIMESERIES_PORT",
    ("server", "parallelism"): "PARALLELISM",
    ("server", "query_limit"): "QUERY_LIMIT",
    ("server", "idle_timeout_seconds"): "IDLE_TIMEOUT",
    ("server", "default_gap_threshold"): "DEFAULT_GAP_THRESHOLD",
    ("server", "max_message_queue"): "MAX_MESSAGE_QUEUE",
    ("server", "throttle_items"): "TIMESERIES_THROTTLE_ITEMS",
    ("server", "throttle_period_seconds"): "TIMESERIES_THROTTLE_PERIOD_SECONDS",
    ("postgres", "host"): "DATA_POSTGRES_HOST",
    ("postgres", "port"): "DATA_POSTGRES_PORT",
    ("postgres", "database"): "DATA_POSTGRES_DATABASE",
    ("postgres", "user"): "DATA_POSTGRES_USER",
    ("postgres", "password"): "DATA_POSTGRES_PASSWORD",
    ("store", "url"): "STREAMING_STORE_URL",
    ("store", "s3_endpoint_url"): "STREAMING_S3_ENDPOINT_URL",
    ("redis", "url"): "STREAMING_REDIS_URL",
    ("redis", "cluster"): "STREAMING_REDIS_CLUSTER",
    ("auth", "jwt_key"): "JWT_KEY",
}


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    address: str
    port: int
    parallelism: int
    query_limit: int
    idle_timeout_seconds: float
    default_gap_threshold: float
    max_message_queue: int
    keepalive_seconds: float
    ping_interval_seconds: float
    ping_timeout_seconds: float
    throttle_items: int
    throttle_period_seconds: float
    cpu_workers: int
    inline_samples: int
    allowed_origins: tuple[str, ...]
    log_level: str
    log_format: str
    metrics_port: int


@dataclasses.dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    database: str
    user: str
    password: str
    pool_min: int
    pool_max: int
    connect_timeout_seconds: float

    @property
    def configured(self) -> bool:
        """True when a Postgres server was named; `demo` starts an embedded one otherwise."""
        return bool(self.host)

    def dsn(self) -> str:
        """A libpq connection string for these settings."""
        parts = {
            "host": self.host,
            "port": str(self.port),
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
            "connect_timeout": str(int(self.connect_timeout_seconds)),
        }
        return " ".join(f"{k}='{_libpq_quote(v)}'" for k, v in parts.items() if v != "")


@dataclasses.dataclass(frozen=True)
class StoreSettings:
    url: str
    s3_endpoint_url: str
    s3_region: str
    s3_max_connections: int
    fetch_concurrency: int
    read_timeout_seconds: float


@dataclasses.dataclass(frozen=True)
class CacheSettings:
    l1_bytes: int
    ttl_seconds: int
    max_entry_bytes: int


@dataclasses.dataclass(frozen=True)
class RedisSettings:
    url: str
    cluster: bool
    timeout_seconds: float
    max_connections: int
    pool_wait_seconds: float
    retry_seconds: float
    warn_interval_seconds: float


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    jwt_key: str


@dataclasses.dataclass(frozen=True)
class IngestSettings:
    block_samples: int
    gzip_level: int
    upload_concurrency: int


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    data_dir: str


@dataclasses.dataclass(frozen=True)
class Settings:
    server: ServerSettings
    postgres: PostgresSettings
    store: StoreSettings
    cache: CacheSettings
    redis: RedisSettings
    auth: AuthSettings
    ingest: IngestSettings
    demo: DemoSettings

    def replace(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some keys changed, e.g. ``replace(server={"port": 0})``."""
        changed = {
            name: dataclasses.replace(getattr(self, name), **values) for name, values in sections.items()
        }
        return dataclasses.replace(self, **changed)


def _libpq_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def _coerce(value: Any, target: Any, where: str) -> Any:
    """Turn a TOML value or an environment string into the field's type."""
    origin = typing.get_origin(target)
    try:
        if origin is tuple:
            if isinstance(value, str):
                value = [item.strip() for item in value.split(",") if item.strip()]
            if not isinstance(value, (list, tuple)):
                raise TypeError("expected a list")
            return tuple(str(item) for item in value)
        if target is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if target in (int, float) and isinstance(value, bool):
            raise TypeError("a boolean is not a number")
        if target is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if target is float:
            return float(value)
        if target is str:
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot read {value!r} as {getattr(target, '__name__', target)}") from exc
    raise ConfigError(f"{where}: unsupported type {target!r}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def env_names(section: str, key: str) -> list[str]:
    """Environment variables that set ``section.key``, the generic name first."""
    names = [f"STREAMING_{section.upper()}_{key.upper()}"]
    legacy = LEGACY_ENV_NAMES.get((section, key))
    if legacy and legacy not in names:
        names.append(legacy)
    return names


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the Settings object: defaults, then ``config_file``, then the environment."""
    environ = os.environ if environ is None else environ
    merged = _read_toml(DEFAULT_CONFIG_PATH)
    extra_file = config_file or environ.get("STREAMING_CONFIG")
    if extra_file:
        for section, overrides in _read_toml(Path(extra_file)).items():
            if section not in merged or not isinstance(overrides, dict):
                raise ConfigError(f"{extra_file}: unknown section [{section}]")
            unknown = set(overrides) - set(merged[section])
            if unknown:
                raise ConfigError(f"{extra_file}: unknown keys in [{section}]: {sorted(unknown)}")
            merged[section].update(overrides)

    sections: dict[str, Any] = {}
    for section, section_type in _section_types().items():
        hints = typing.get_type_hints(section_type)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(section_type):
            where = f"{section}.{field.name}"
            if field.name not in merged.get(section, {}):
                raise ConfigError(f"{DEFAULT_CONFIG_PATH} lacks {where}")
            raw = merged[section][field.name]
            for name in env_names(section, field.name):
                if name in environ:
                    raw, where = environ[name], name
                    break
            values[field.name] = _coerce(raw, hints[field.name], where)
        sections[section] = section_type(**values)
    settings = Settings(**sections)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    checks = [
        (0 <= settings.server.port <= 65535, "server.port must be 0-65535"),
        (0 <= settings.server.metrics_port <= 65535, "server.metrics_port must be 0-65535"),
        (settings.server.log_format in ("text", "json"), "server.log_format must be text or json"),
        (settings.server.parallelism >= 1, "server.parallelism must be at least 1"),
        (settings.server.query_limit >= 1, "server.query_limit must be at least 1"),
        (settings.server.max_message_queue >= 1, "server.max_message_queue must be at least 1"),
        (settings.server.cpu_workers >= 1, "server.cpu_workers must be at least 1"),
        (settings.server.throttle_items >= 1, "server.throttle_items must be at least 1"),
        (settings.server.throttle_period_seconds > 0, "server.throttle_period_seconds must be positive"),
        (
            0 < settings.server.ping_timeout_seconds <= settings.server.ping_interval_seconds,
            "server.ping_timeout_seconds must be positive and at most ping_interval_seconds",
        ),
        (settings.server.keepalive_seconds > 0, "server.keepalive_seconds must be positive"),
        (settings.server.idle_timeout_seconds > 0, "server.idle_timeout_seconds must be positive"),
        (settings.server.default_gap_threshold > 1.0, "server.default_gap_threshold must exceed 1"),
        (settings.postgres.pool_max >= max(1, settings.postgres.pool_min), "postgres.pool_max < pool_min"),
        (settings.store.fetch_concurrency >= 1, "store.fetch_concurrency must be at least 1"),
        (settings.cache.l1_bytes >= 0, "cache.l1_bytes must not be negative"),
        (settings.cache.ttl_seconds >= 1, "cache.ttl_seconds must be at least 1"),
        (settings.redis.timeout_seconds > 0, "redis.timeout_seconds must be positive"),
        (settings.redis.max_connections >= 1, "redis.max_connections must be at least 1"),
        (settings.redis.retry_seconds > 0, "redis.retry_seconds must be positive"),
        (settings.ingest.block_samples >= 1, "ingest.block_samples must be at least 1"),
        (0 <= settings.ingest.gzip_level <= 9, "ingest.gzip_level must be 0-9"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def all_keys() -> list[tuple[str, str]]:
    """Every (section, key) pair the Settings object has, for docs and tests."""
    return [
        (section, field.name)
        for section, section_type in _section_types().items()
        for field in dataclasses.fields(section_type)
    ]
