"""Who may read a package: HS256 JSON Web Tokens signed with JWT_KEY (checks off when no key is set)."""

from __future__ import annotations

import time
from typing import Any

import jwt

from streaming.errors import Forbidden, Unauthorized


def bearer_token(authorization_header: str | None, session_parameter: str | None) -> str | None:
    """The token from ``Authorization: Bearer ...`` or the ``session`` query parameter."""
    if authorization_header:
        scheme, _, token = authorization_header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return session_parameter or None


def authorize(token: str | None, package_id: str, jwt_key: str) -> dict[str, Any]:
    """The token's claims if it may read ``package_id``; raise Unauthorized or Forbidden otherwise.

    A token may carry a ``packages`` claim (a list of package ids); without it, it may read any
    package. With no ``jwt_key`` configured, nothing is checked.
    """
    if not jwt_key:
        return {}
    if not token:
        raise Unauthorized("a session token is required (session= parameter or Authorization: Bearer)")
    try:
        claims = jwt.decode(token, jwt_key, algorithms=["HS256"])
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the session token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"the session token is not valid: {exc}") from exc
    allowed = claims.get("packages")
    if allowed is not None and (
        not isinstance(allowed, list) or not all(isinstance(item, str) for item in allowed)
    ):
        raise Unauthorized("the session token's packages claim must be a list of package ids")
    if allowed is not None and package_id not in allowed:
        raise Forbidden(f"the session token does not grant access to {package_id}")
    return claims


def issue_token(jwt_key: str, subject: str, packages: list[str] | None, ttl_seconds: float) -> str:
    """An HS256 session token for ``subject``, limited to ``packages`` if given, valid ``ttl_seconds``."""
    if not jwt_key:
        raise ValueError("no JWT_KEY configured: tokens are not checked, so none is needed")
    if not ttl_seconds > 0:
        raise ValueError(f"--ttl must be positive, got {ttl_seconds:g}")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + int(ttl_seconds)}
    if packages:
        claims["packages"] = list(packages)
    return jwt.encode(claims, jwt_key, algorithm="HS256")
