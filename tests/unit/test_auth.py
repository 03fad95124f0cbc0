"""Session tokens: HS256 JWTs, an optional packages claim (pure, no server)."""

from __future__ import annotations

import time

import jwt
import pytest

from streaming.auth import authorize, bearer_token
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
