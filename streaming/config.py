"""One frozen Settings object built from conf/default.toml, an optional TOML file and the environment.

Precedence, lowest first: ``conf/default.toml`` (every key and its default), the file named by
``--config`` or ``STREAMING_CONFIG``, then environment variables. Every key can be set as
``STREAMING_<SECTION>_<KEY>`` (for example ``STREAMING_SERVER_PORT``); the reference service's
variable names (``TIMESERIES_PORT``, ``DATA_POSTGRES_HOST``, ...) are accepted too.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
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
            # Whole seconds; libpq reads 0 as "wait forever", so a fraction rounds up.
            "connect_timeout": str(max(1, math.ceil(self.connect_timeout_seconds))),
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


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_KINDS = {int: "a whole number", float: "a finite number", str: "a string", bool: "true or false"}


def _coerce(value: Any, target: Any, where: str) -> Any:
    """Turn a TOML value or an environment string into the field's type. Strict: a TOML float for
    an integer key, a list for a string, "1_000", "inf" or "nan" are refused, not converted."""
    origin = typing.get_origin(target)
    kind = "a list of strings" if origin is tuple else _KINDS.get(target, str(target))
    try:
        if origin is tuple:
            if isinstance(value, str):
                value = [item.strip() for item in value.split(",") if item.strip()]
            if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
                raise TypeError("expected a list of strings")
            return tuple(value)
        if target is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off", ""):
                    return False
            raise ValueError(value)
        if target in (int, float) and isinstance(value, bool):
            raise TypeError("a boolean is not a number")
        if target is int:
            if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
                return int(value.strip())
            if isinstance(value, int):
                return value
            raise ValueError(value)
        if target is float:
            if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
                value = float(value.strip())
            if isinstance(value, (int, float)) and math.isfinite(value):
                return float(value)
            raise ValueError(value)
        if target is str:
            if isinstance(value, str):
                return value
            raise TypeError("expected a string")
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{where}: cannot read {value!r} as {kind}") from exc
    raise ConfigError(f"{where}: unsupported type {target!r}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"configuration file {path} is a directory, not a TOML file") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not UTF-8 text: {exc}") from exc
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
    origins: dict[str, str] = {}  # "section.key" -> the file or variable that set it, if not the defaults
    extra_file = config_file or environ.get("STREAMING_CONFIG")
    if extra_file:
        for section, overrides in _read_toml(Path(extra_file)).items():
            if section not in merged or not isinstance(overrides, dict):
                raise ConfigError(f"{extra_file}: unknown section [{section}]")
            unknown = set(overrides) - set(merged[section])
            if unknown:
                raise ConfigError(f"{extra_file}: unknown keys in [{section}]: {sorted(unknown)}")
            merged[section].update(overrides)
            origins.update({f"{section}.{key}": str(extra_file) for key in overrides})

    sections: dict[str, Any] = {}
    for section, section_type in _section_types().items():
        hints = typing.get_type_hints(section_type)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(section_type):
            key = f"{section}.{field.name}"
            if field.name not in merged.get(section, {}):
                raise ConfigError(f"{DEFAULT_CONFIG_PATH} lacks {key}")
            raw = merged[section][field.name]
            where = f"{key} (in {origins[key]})" if key in origins else key
            for name in env_names(section, field.name):
                if name in environ:
                    raw, where = environ[name], name
                    origins[key] = name
                    break
            values[field.name] = _coerce(raw, hints[field.name], where)
        sections[section] = section_type(**values)
    settings = Settings(**sections)
    _validate(settings, origins)
    return settings


def _at_least(minimum: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: value >= minimum), f"must be at least {minimum:g}"


def _between(low: int, high: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: low <= value <= high), f"must be {low}-{high}"


_POSITIVE: tuple[Callable[[Any], bool], str] = ((lambda value: value > 0), "must be positive")
_LOG_LEVELS = sorted(name for name, level in logging.getLevelNamesMapping().items() if level)

# One rule per number (and per closed-set string): every key a typo could break is checked here.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "server.port": _between(0, 65535),
    "server.parallelism": _at_least(1),
    "server.query_limit": _at_least(1),
    "server.idle_timeout_seconds": _POSITIVE,
    "server.default_gap_threshold": ((lambda value: value > 1.0), "must exceed 1"),
    "server.max_message_queue": _at_least(1),
    "server.keepalive_seconds": _POSITIVE,
    "server.ping_interval_seconds": _POSITIVE,
    "server.ping_timeout_seconds": _POSITIVE,
    "server.throttle_items": _at_least(1),
    "server.throttle_period_seconds": _POSITIVE,
    "server.cpu_workers": _at_least(1),
    "server.inline_samples": _at_least(0),
    "server.log_level": (
        (lambda value: value.upper() in _LOG_LEVELS),
        f"must be one of {', '.join(_LOG_LEVELS)}",
    ),
    "server.log_format": ((lambda value: value in ("text", "json")), "must be text or json"),
    "server.metrics_port": _between(0, 65535),
    "postgres.port": _between(1, 65535),
    "postgres.pool_min": _at_least(0),
    "postgres.pool_max": _at_least(1),
    # libpq takes whole seconds up to INT_MAX; more than a day is a typo.
    "postgres.connect_timeout_seconds": (
        (lambda value: 0 < value <= 86400),
        "must be positive and at most 86400 seconds",
    ),
    "store.s3_max_connections": _at_least(1),
    "store.fetch_concurrency": _at_least(1),
    "store.read_timeout_seconds": _POSITIVE,
    "cache.l1_bytes": _at_least(0),
    "cache.ttl_seconds": _at_least(1),
    "cache.max_entry_bytes": _at_least(0),
    "redis.timeout_seconds": _POSITIVE,
    "redis.max_connections": _at_least(1),
    "redis.pool_wait_seconds": _at_least(0),
    "redis.retry_seconds": _POSITIVE,
    "redis.warn_interval_seconds": _at_least(0),
    "ingest.block_samples": _at_least(1),
    "ingest.gzip_level": _between(0, 9),
    "ingest.upload_concurrency": _at_least(1),
}


def _validate(settings: Settings, origins: Mapping[str, str] | None = None) -> None:
    """ConfigError naming the key (and the file or variable that set it) for a value out of range."""
    origins = origins or {}

    def fail(key: str, rule: str, value: Any) -> None:
        source = f" (set by {origins[key]})" if key in origins else ""
        raise ConfigError(f"{key} {rule}, got {value!r}{source}")

    for key, (ok, rule) in _RULES.items():
        section, name = key.split(".")
        value = getattr(getattr(settings, section), name)
        if not ok(value):
            fail(key, rule, value)
    server, postgres = settings.server, settings.postgres
    if server.ping_timeout_seconds > server.ping_interval_seconds:
        fail(
            "server.ping_timeout_seconds",
            "must be at most server.ping_interval_seconds",
            server.ping_timeout_seconds,
        )
    if postgres.pool_max < postgres.pool_min:
        fail("postgres.pool_max", "must be at least postgres.pool_min", postgres.pool_max)


def all_keys() -> list[tuple[str, str]]:
    """Every (section, key) pair the Settings object has, for docs and tests."""
    return [
        (section, field.name)
        for section, section_type in _section_types().items()
        for field in dataclasses.fields(section_type)
    ]
