"""Settings: conf/default.toml, then a --config file, then the environment (streaming/config.py)."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

import psycopg2.extensions
import pytest

from streaming.config import (
    DEFAULT_CONFIG_PATH,
    LEGACY_ENV_NAMES,
    ConfigError,
    PostgresSettings,
    Settings,
    all_keys,
    load_settings,
)

DEFAULT_TOML = Path(__file__).resolve().parents[2] / "conf" / "default.toml"


def _defaults() -> dict:
    with DEFAULT_TOML.open("rb") as handle:
        return tomllib.load(handle)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "override.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_config_path_is_the_repository_file() -> None:
    assert DEFAULT_CONFIG_PATH.resolve() == DEFAULT_TOML


def test_defaults_are_the_toml_values_for_every_key() -> None:
    settings = load_settings(environ={})
    defaults = _defaults()
    section_names = {f.name for f in dataclasses.fields(Settings)}
    assert section_names == set(defaults)
    for section, values in defaults.items():
        group = getattr(settings, section)
        assert {f.name for f in dataclasses.fields(group)} == set(values), section
        for key, value in values.items():
            actual = getattr(group, key)
            if isinstance(value, list):
                assert actual == tuple(value), f"{section}.{key}"
            else:
                assert actual == value, f"{section}.{key}"
                assert type(actual) is type(value) or (isinstance(value, int) and type(actual) is float)
    assert sorted(all_keys()) == sorted((s, k) for s, values in defaults.items() for k in values)


def test_field_types() -> None:
    settings = load_settings(environ={})
    assert isinstance(settings.server.port, int)
    assert isinstance(settings.server.idle_timeout_seconds, float)
    assert isinstance(settings.server.keepalive_seconds, float)
    assert isinstance(settings.server.allowed_origins, tuple)
    assert isinstance(settings.postgres.connect_timeout_seconds, float)
    assert isinstance(settings.store.read_timeout_seconds, float)


def _other_values(default: object) -> list[tuple[str, object]]:
    """(environment string, expected value) candidates that differ from ``default``."""
    if isinstance(default, bool):
        return [("false" if default else "true", not default)]
    if isinstance(default, int):
        return [(str(default + 1), default + 1), (str(default - 1), default - 1)]
    if isinstance(default, float):
        return [(str(default + 1.5), default + 1.5), (str(default / 2), default / 2)]
    if isinstance(default, tuple):
        return [("https://a.example, https://b.example", ("https://a.example", "https://b.example"))]
    return [("DEBUG", "DEBUG"), ("json", "json"), ("value-x", "value-x")]


@pytest.mark.parametrize(("section", "key"), all_keys())
def test_generic_environment_name_overrides_every_key(section: str, key: str) -> None:
    default = getattr(getattr(load_settings(environ={}), section), key)
    name = f"STREAMING_{section.upper()}_{key.upper()}"
    rejected = []
    for raw, expected in _other_values(default):
        try:
            settings = load_settings(environ={name: raw})
        except ConfigError as exc:  # a range rule (e.g. ping timeout <= interval) may refuse one value
            assert "cannot read" not in str(exc), f"{name}={raw!r} could not be read: {exc}"
            rejected.append(str(exc))
            continue
        assert getattr(getattr(settings, section), key) == expected
        assert type(getattr(getattr(settings, section), key)) is type(default)
        return
    pytest.fail(f"every override of {name} was refused: {rejected}")


REFERENCE_NAMES = [
    ("TIMESERIES_PORT", "server", "port", "9090", 9090),
    ("TIMESERIES_ADDRESS", "server", "address", "127.0.0.1", "127.0.0.1"),
    ("PARALLELISM", "server", "parallelism", "3", 3),
    ("QUERY_LIMIT", "server", "query_limit", "5000", 5000),
    ("IDLE_TIMEOUT", "server", "idle_timeout_seconds", "12.5", 12.5),
    ("DEFAULT_GAP_THRESHOLD", "server", "default_gap_threshold", "3.5", 3.5),
    ("MAX_MESSAGE_QUEUE", "server", "max_message_queue", "42", 42),
    ("DATA_POSTGRES_HOST", "postgres", "host", "db.internal", "db.internal"),
    ("DATA_POSTGRES_PORT", "postgres", "port", "6543", 6543),
    ("DATA_POSTGRES_DATABASE", "postgres", "database", "timeseries", "timeseries"),
    ("DATA_POSTGRES_USER", "postgres", "user", "reader", "reader"),
    ("DATA_POSTGRES_PASSWORD", "postgres", "password", "s3cr'et", "s3cr'et"),
    ("JWT_KEY", "auth", "jwt_key", "hs256-key", "hs256-key"),
    ("STREAMING_STORE_URL", "store", "url", "s3://bucket/prefix/", "s3://bucket/prefix/"),
    (
        "STREAMING_S3_ENDPOINT_URL",
        "store",
        "s3_endpoint_url",
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9000",
    ),
    ("STREAMING_REDIS_URL", "redis", "url", "redis://cache:6379/2", "redis://cache:6379/2"),
]


@pytest.mark.parametrize(("name", "section", "key", "raw", "expected"), REFERENCE_NAMES)
def test_reference_environment_names(name: str, section: str, key: str, raw: str, expected: object) -> None:
    settings = load_settings(environ={name: raw})
    assert getattr(getattr(settings, section), key) == expected
    assert type(getattr(getattr(settings, section), key)) is type(expected)
    # Nothing else changed.
    defaults = load_settings(environ={})
    restored = dataclasses.replace(
        getattr(settings, section), **{key: getattr(getattr(defaults, section), key)}
    )
    assert restored == getattr(defaults, section)


@pytest.mark.parametrize(("section", "key"), sorted(LEGACY_ENV_NAMES))
def test_every_reference_name_in_the_table_overrides(section: str, key: str) -> None:
    name = LEGACY_ENV_NAMES[(section, key)]
    default = getattr(getattr(load_settings(environ={}), section), key)
    raw, expected = _other_values(default)[0]
    assert getattr(getattr(load_settings(environ={name: raw}), section), key) == expected


def test_generic_name_wins_over_the_reference_name() -> None:
    settings = load_settings(environ={"STREAMING_SERVER_PORT": "7001", "TIMESERIES_PORT": "7002"})
    assert settings.server.port == 7001


def test_unrelated_environment_is_ignored() -> None:
    assert load_settings(environ={"PORT": "1", "STREAMING_NOPE_X": "2", "HOME": "/x"}) == load_settings(
        environ={}
    )


def test_config_file_overrides_defaults_and_environment_overrides_the_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        [server]
        port = 9999
        parallelism = 4
        allowed_origins = ["https://viewer.example"]

        [postgres]
        host = "file-host"

        [store]
        url = "file:///tmp/blocks/"
        """,
    )
    from_file = load_settings(config_file=path, environ={})
    assert from_file.server.port == 9999
    assert from_file.server.parallelism == 4
    assert from_file.server.allowed_origins == ("https://viewer.example",)
    assert from_file.postgres.host == "file-host"
    assert from_file.store.url == "file:///tmp/blocks/"
    # Keys the file does not name keep their defaults.
    assert from_file.server.query_limit == _defaults()["server"]["query_limit"]

    both = load_settings(
        config_file=path, environ={"TIMESERIES_PORT": "1234", "STREAMING_POSTGRES_HOST": "env"}
    )
    assert both.server.port == 1234
    assert both.postgres.host == "env"
    assert both.server.parallelism == 4


def test_config_file_from_streaming_config_variable(tmp_path: Path) -> None:
    path = _write(tmp_path, "[server]\nport = 4321\n")
    assert load_settings(environ={"STREAMING_CONFIG": str(path)}).server.port == 4321


def test_default_file_is_not_modified_by_a_config_file(tmp_path: Path) -> None:
    load_settings(config_file=_write(tmp_path, "[server]\nport = 4321\n"), environ={})
    assert load_settings(environ={}).server.port == _defaults()["server"]["port"]


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("[nonsense]\nkey = 1\n", "nonsense"),
        ("[server]\nprot = 1\n", "prot"),
        ("[postgres]\nhostname = 'x'\n", "hostname"),
        ("server = 5\n", "server"),
        ("[server\nport = 1\n", ""),  # not TOML
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, mentions: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=_write(tmp_path, text), environ={})
    assert mentions in str(caught.value)


@pytest.mark.parametrize("line", ["parallelism = true", "port = false", "idle_timeout_seconds = true"])
def test_toml_boolean_for_a_number_is_a_type_error(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(config_file=_write(tmp_path, f"[server]\n{line}\n"), environ={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_settings(config_file=tmp_path / "absent.toml", environ={})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("TIMESERIES_PORT", "abc"),
        ("TIMESERIES_PORT", ""),
        ("TIMESERIES_PORT", "80.5"),
        ("PARALLELISM", "many"),
        ("IDLE_TIMEOUT", "5 minutes"),
        ("DATA_POSTGRES_PORT", "0x"),
        ("STREAMING_SERVER_QUERY_LIMIT", "1e"),
        ("STREAMING_INGEST_GZIP_LEVEL", "fast"),
    ],
)
def test_bad_environment_types_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={name: raw})
    assert name in str(caught.value)


def test_bad_type_in_the_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=_write(tmp_path, '[server]\nport = "http"\n'), environ={})
    assert "server.port" in str(caught.value)


def test_allowed_origins_from_a_comma_separated_variable() -> None:
    settings = load_settings(
        environ={"STREAMING_SERVER_ALLOWED_ORIGINS": " https://a.example ,https://b.example,, "}
    )
    assert settings.server.allowed_origins == ("https://a.example", "https://b.example")
    assert load_settings(environ={"STREAMING_SERVER_ALLOWED_ORIGINS": "*"}).server.allowed_origins == ("*",)


@pytest.mark.parametrize(
    "environ",
    [
        {"PARALLELISM": "0"},
        {"PARALLELISM": "-2"},
        {"TIMESERIES_PORT": "65536"},
        {"TIMESERIES_PORT": "-1"},
        {"QUERY_LIMIT": "0"},
        {"MAX_MESSAGE_QUEUE": "0"},
        {"STREAMING_SERVER_CPU_WORKERS": "0"},
        {"DEFAULT_GAP_THRESHOLD": "1.0"},
        {"STREAMING_POSTGRES_POOL_MIN": "5", "STREAMING_POSTGRES_POOL_MAX": "2"},
        {"STREAMING_POSTGRES_POOL_MAX": "0", "STREAMING_POSTGRES_POOL_MIN": "0"},
        {"STREAMING_STORE_FETCH_CONCURRENCY": "0"},
        {"STREAMING_INGEST_BLOCK_SAMPLES": "0"},
        {"STREAMING_INGEST_GZIP_LEVEL": "10"},
        {"STREAMING_INGEST_GZIP_LEVEL": "-1"},
    ],
)
def test_validation_errors(environ: dict) -> None:
    with pytest.raises(ConfigError):
        load_settings(environ=environ)


@pytest.mark.parametrize(
    "environ",
    [
        {"TIMESERIES_PORT": "0"},
        {"TIMESERIES_PORT": "65535"},
        {"PARALLELISM": "1"},
        {"DEFAULT_GAP_THRESHOLD": "1.01"},
    ],
)
def test_validation_limits_that_are_allowed(environ: dict) -> None:
    load_settings(environ=environ)


def test_settings_are_frozen() -> None:
    settings = load_settings(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server = settings.server  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.postgres.password = "x"  # type: ignore[misc]


def test_replace_returns_a_changed_copy() -> None:
    settings = load_settings(environ={})
    changed = settings.replace(server={"port": 1}, postgres={"host": "h", "port": 2})
    assert (changed.server.port, changed.postgres.host, changed.postgres.port) == (1, "h", 2)
    assert settings.server.port == _defaults()["server"]["port"]
    assert changed.store == settings.store


def _postgres(**changes: object) -> PostgresSettings:
    return dataclasses.replace(load_settings(environ={}).postgres, **changes)


@pytest.mark.parametrize(
    "password",
    ["it's", "back\\slash", "both ' and \\", "'\\'", "\\'", "spaces and = signs", "ünïcødé", "trailing\\"],
)
def test_dsn_quotes_passwords_for_libpq(password: str) -> None:
    postgres = _postgres(host="db.example", port=6543, database="my db", user="o'neil", password=password)
    parsed = psycopg2.extensions.parse_dsn(postgres.dsn())
    assert parsed["password"] == password
    assert parsed["host"] == "db.example"
    assert parsed["port"] == "6543"
    assert parsed["dbname"] == "my db"
    assert parsed["user"] == "o'neil"
    assert parsed["connect_timeout"] == str(int(postgres.connect_timeout_seconds))


def test_dsn_rounds_a_fractional_connect_timeout_up() -> None:
    # libpq reads connect_timeout=0 as "wait forever".
    assert (
        psycopg2.extensions.parse_dsn(_postgres(connect_timeout_seconds=0.5).dsn())["connect_timeout"] == "1"
    )
    assert (
        psycopg2.extensions.parse_dsn(_postgres(connect_timeout_seconds=2.5).dsn())["connect_timeout"] == "3"
    )


def test_dsn_leaves_out_empty_values() -> None:
    parsed = psycopg2.extensions.parse_dsn(_postgres(host="", password="").dsn())
    assert "host" not in parsed and "password" not in parsed
    assert parsed["dbname"] == _defaults()["postgres"]["database"]


def test_configured_means_a_host_was_named() -> None:
    assert not _postgres(host="").configured
    assert _postgres(host="/var/run/postgresql").configured


def _float_keys() -> list[tuple[str, str]]:
    defaults = load_settings(environ={})
    return [(s, k) for s, k in all_keys() if isinstance(getattr(getattr(defaults, s), k), float)]


def _number_keys() -> list[tuple[str, str]]:
    defaults = load_settings(environ={})
    return [(s, k) for s, k in all_keys() if type(getattr(getattr(defaults, s), k)) in (int, float)]


@pytest.mark.parametrize(("section", "key"), _float_keys())
@pytest.mark.parametrize("raw", ["inf", "-inf", "nan", "Infinity", "1e400", "1_0"])
def test_non_finite_numbers_are_refused_naming_the_variable(section: str, key: str, raw: str) -> None:
    name = f"STREAMING_{section.upper()}_{key.upper()}"
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={name: raw})
    assert name in str(caught.value)


@pytest.mark.parametrize("raw", ["inf", "nan", "-5", "0", "-0.1", "86401"])
def test_postgres_connect_timeout_must_be_a_sane_positive_number(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"STREAMING_POSTGRES_CONNECT_TIMEOUT_SECONDS": raw})
    assert "STREAMING_POSTGRES_CONNECT_TIMEOUT_SECONDS" in str(caught.value)
    load_settings(environ={"STREAMING_POSTGRES_CONNECT_TIMEOUT_SECONDS": "0.5"})


@pytest.mark.parametrize(("section", "key"), _number_keys())
def test_every_number_has_a_lower_bound(section: str, key: str) -> None:
    """-1 is wrong for every numeric setting; the message names the key and the variable."""
    name = f"STREAMING_{section.upper()}_{key.upper()}"
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={name: "-1"})
    assert f"{section}.{key}" in str(caught.value) and name in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "mentions"),
    [
        ({"STREAMING_SERVER_LOG_LEVEL": "VERBOSE"}, "server.log_level"),
        ({"STREAMING_SERVER_LOG_FORMAT": "xml"}, "server.log_format"),
        ({"TIMESERIES_PORT": "1_000"}, "TIMESERIES_PORT"),
        ({"TIMESERIES_PORT": "\u0661\u0662\u0663"}, "TIMESERIES_PORT"),
        ({"DATA_POSTGRES_PORT": "0"}, "postgres.port"),
        ({"STREAMING_REDIS_CLUSTER": "maybe"}, "STREAMING_REDIS_CLUSTER"),
    ],
)
def test_values_out_of_their_set(environ: dict, mentions: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    assert mentions in str(caught.value)


@pytest.mark.parametrize("level", ["DEBUG", "debug", "Warning", "ERROR", "critical"])
def test_log_levels_by_name(level: str) -> None:
    assert load_settings(environ={"STREAMING_SERVER_LOG_LEVEL": level}).server.log_level == level


def test_whitespace_around_environment_numbers_is_allowed() -> None:
    settings = load_settings(environ={"TIMESERIES_PORT": " 9000 ", "IDLE_TIMEOUT": " 12.5"})
    assert (settings.server.port, settings.server.idle_timeout_seconds) == (9000, 12.5)


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ('[postgres]\nhost = ["a", "b"]\n', "postgres.host"),
        ("[postgres]\nhost = 5\n", "postgres.host"),
        ("[server]\nport = 1e3\n", "server.port"),
        ("[server]\nport = 8080.0\n", "server.port"),
        ("[server]\nallowed_origins = [1, 2]\n", "server.allowed_origins"),
        ('[server]\nallowed_origins = "*"\n', ""),  # a string is a comma-separated list: allowed
        ("[redis]\ncluster = 1\n", "redis.cluster"),
        ('[redis]\ncluster = "sometimes"\n', "redis.cluster"),
        ("[server]\nidle_timeout_seconds = inf\n", "server.idle_timeout_seconds"),
        ("[server]\nidle_timeout_seconds = nan\n", "server.idle_timeout_seconds"),
        ('[server]\nlog_level = "VERBOSE"\n', "server.log_level"),
        ("[postgres]\nconnect_timeout_seconds = -5\n", "postgres.connect_timeout_seconds"),
        ("[server]\nport = {a = 1}\n", "server.port"),
    ],
)
def test_wrong_types_in_a_file_are_refused_naming_key_and_file(
    tmp_path: Path, text: str, mentions: str
) -> None:
    path = _write(tmp_path, text)
    if not mentions:
        assert load_settings(config_file=path, environ={}).server.allowed_origins == ("*",)
        return
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path, environ={})
    assert mentions in str(caught.value) and str(path) in str(caught.value)


def test_a_directory_as_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"STREAMING_CONFIG": str(tmp_path)})
    assert str(tmp_path) in str(caught.value)


def test_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[postgres]\npassword = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path, environ={})
    assert str(path) in str(caught.value) and "UTF-8" in str(caught.value)


def test_an_unreadable_config_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[server]\nport = 1\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who can read any file")
        with pytest.raises(ConfigError) as caught:
            load_settings(config_file=path, environ={})
        assert str(path) in str(caught.value)
    finally:
        path.chmod(0o600)
