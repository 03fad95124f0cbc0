"""Session tokens: HS256 JWTs, an optional packages claim (pure, no server)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import jwt
import pytest

from streaming.auth import authorize, bearer_token, issue_token
from streaming.errors import Forbidden, Unauthorized

KEY = "k" * 32
PACKAGE = "N:package:1234"


def _token(claims: dict, key: str = KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def test_no_key_checks_nothing() -> None:
    assert authorize(None, PACKAGE, "") == {}
    assert authorize("garbage", PACKAGE, "") == {}


def test_a_token_for_the_package_is_accepted() -> None:
    assert authorize(_token({"sub": "a", "packages": [PACKAGE]}), PACKAGE, KEY)["sub"] == "a"
    assert authorize(_token({"sub": "b"}), PACKAGE, KEY)["sub"] == "b"  # no claim: any package


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "not.a.token",
        _token({"sub": "a"}, key="x" * 32),
        _token({"sub": "a", "exp": int(time.time()) - 60}),
        _token({"packages": PACKAGE}),  # a string would match by substring if not refused
        _token({"packages": {"N:package:1234": True}}),
        _token({"packages": [PACKAGE, 5]}),
    ],
)
def test_bad_tokens_are_unauthorized(token: str | None) -> None:
    with pytest.raises(Unauthorized):
        authorize(token, PACKAGE, KEY)


def test_another_package_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        authorize(_token({"packages": ["N:package:other"]}), PACKAGE, KEY)


def test_bearer_header_wins_over_the_session_parameter() -> None:
    assert bearer_token("Bearer abc", "def") == "abc"
    assert bearer_token("bearer  abc ", None) == "abc"
    assert bearer_token("Basic abc", "def") == "def"
    assert bearer_token(None, "") is None


def test_issued_tokens_are_accepted_for_their_packages_only() -> None:
    token = issue_token(KEY, "dr-who", [PACKAGE], 60)
    assert authorize(token, PACKAGE, KEY)["sub"] == "dr-who"
    with pytest.raises(Forbidden):
        authorize(token, "N:package:other", KEY)
    anywhere = issue_token(KEY, "ops", None, 60)
    assert authorize(anywhere, "N:package:other", KEY)["sub"] == "ops"
    with pytest.raises(ValueError, match="JWT_KEY"):
        issue_token("", "x", None, 60)
    with pytest.raises(ValueError, match="ttl"):
        issue_token(KEY, "x", None, 0)


def _token_command(args: list[str], jwt_key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JWT_KEY"}
    if jwt_key is not None:
        env["JWT_KEY"] = jwt_key
    return subprocess.run(
        [sys.executable, "-m", "streaming", "token", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_token_command_prints_a_usable_token() -> None:
    done = _token_command(["--subject", "viewer", "--package", PACKAGE, "--ttl", "120"], KEY)
    assert done.returncode == 0, done.stderr
    claims = authorize(done.stdout.strip(), PACKAGE, KEY)
    assert claims["sub"] == "viewer" and claims["packages"] == [PACKAGE]
    assert 100 <= claims["exp"] - time.time() <= 121
    refused = _token_command([], None)
    assert refused.returncode == 1 and "JWT_KEY" in refused.stderr
