"""Access tokens (JWT, RFC 8725 hygiene) and refresh-token material.

* The algorithm is pinned (HS256); the token's ``alg`` header is never trusted.
* ``kid`` is looked up in a fixed key map; keys stay in the map during a rotation
  overlap so tokens signed by the previous key keep working until they expire.
* Required claims: ``iss``, ``aud``, ``exp``, ``iat``, ``jti``, ``sub``, ``typ``.
* Refresh tokens are opaque random strings; only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

from app.core.config import Settings
from app.core.errors import AppError

ALGORITHM = "HS256"
ACCESS_TYPE = "access"


def unauthorized(
    detail: str = "登录已失效，请重新登录", code: str = "auth.invalid_token"
) -> AppError:
    return AppError(code, 401, detail, headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class RoleClaim:
    role: str
    org_id: int


@dataclass(frozen=True)
class TokenClaims:
    account_id: int
    kind: str
    member_id: int | None
    superadmin: bool
    roles: tuple[RoleClaim, ...] = field(default_factory=tuple)
    jti: str = ""


def issue_access_token(settings: Settings, claims: TokenClaims) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(claims.account_id),
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_ttl_s,
        "jti": uuid.uuid4().hex,
        "typ": ACCESS_TYPE,
        "knd": claims.kind,
        "mid": claims.member_id,
        "sa": claims.superadmin,
        "rol": [[r.role, r.org_id] for r in claims.roles],
    }
    kid = settings.jwt_current_kid
    key = settings.signing_keys[kid]
    return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": kid, "typ": "at+jwt"})


def decode_access_token(settings: Settings, token: str) -> TokenClaims:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise unauthorized() from error
    kid = header.get("kid")
    keys = settings.signing_keys
    if not isinstance(kid, str) or kid not in keys:
        raise unauthorized()
    try:
        payload = jwt.decode(
            token,
            keys[kid],
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti", "typ"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError as error:
        raise unauthorized("登录已过期，请刷新令牌", "auth.token_expired") from error
    except jwt.PyJWTError as error:
        raise unauthorized() from error
    if payload.get("typ") != ACCESS_TYPE:
        raise unauthorized()
    try:
        roles = tuple(RoleClaim(str(r), int(o)) for r, o in payload.get("rol", []))
        member_id = payload.get("mid")
        return TokenClaims(
            account_id=int(payload["sub"]),
            kind=str(payload.get("knd", "resident")),
            member_id=int(member_id) if member_id is not None else None,
            superadmin=bool(payload.get("sa", False)),
            roles=roles,
            jti=str(payload["jti"]),
        )
    except (TypeError, ValueError) as error:
        raise unauthorized() from error


def new_refresh_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
