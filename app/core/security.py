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
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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
    kid: str = ""
    # The refresh-token family (login session) the token was issued in: logging that
    # session out ends the token at once (app/identity/sessions.py).
    session_id: str | None = None


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
    if claims.session_id is not None:
        payload["sid"] = claims.session_id
    kid = settings.jwt_current_kid
    key = settings.signing_keys[kid]
    return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": kid, "typ": "at+jwt"})


@dataclass(frozen=True)
class _Verified:
    claims: TokenClaims
    exp: int
    key: str
    issuer: str
    audience: str


# Verified tokens by their exact text. A phone sends the same access token for up to
# its lifetime, and PyJWT's parsing costs ~0.3 ms a request; an HMAC over the same
# bytes with the same key gives the same answer, so only expiry and a changed key map
# need checking again. Bounded, per process.
_VERIFIED: OrderedDict[str, _Verified] = OrderedDict()
_VERIFIED_MAX = 4096


def decode_access_token(settings: Settings, token: str) -> TokenClaims:
    hit = _VERIFIED.get(token)
    if hit is not None:
        keys = settings.signing_keys
        if (
            hit.exp > time.time()
            and keys.get(hit.claims.kid) == hit.key
            and hit.issuer == settings.jwt_issuer
            and hit.audience == settings.jwt_audience
        ):
            _VERIFIED.move_to_end(token)
            return hit.claims
        del _VERIFIED[token]
    claims, exp = _verify(settings, token)
    _VERIFIED[token] = _Verified(
        claims, exp, settings.signing_keys[claims.kid], settings.jwt_issuer, settings.jwt_audience
    )
    if len(_VERIFIED) > _VERIFIED_MAX:
        _VERIFIED.popitem(last=False)
    return claims


def _verify(settings: Settings, token: str) -> tuple[TokenClaims, int]:
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
        session_id = payload.get("sid")
        if session_id is not None and not isinstance(session_id, str):
            raise unauthorized()
        claims = TokenClaims(
            account_id=int(payload["sub"]),
            kind=str(payload.get("knd", "resident")),
            member_id=int(member_id) if member_id is not None else None,
            superadmin=bool(payload.get("sa", False)),
            roles=roles,
            jti=str(payload["jti"]),
            kid=kid,
            session_id=session_id,
        )
        return claims, int(payload["exp"])
    except (TypeError, ValueError) as error:
        raise unauthorized() from error


def new_refresh_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# What a refresh hands out is kept sealed under a key derived from the refresh token
# that was presented (only its hash is stored, under another derivation), so the same
# pair can be handed again to a double-send of that token and to nobody else.
_SEAL_CONTEXT = b"branchlink refresh successor v1\x00"


def seal_with_token(token: str, data: bytes) -> bytes:
    key = hashlib.sha256(_SEAL_CONTEXT + token.encode()).digest()
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, data, _SEAL_CONTEXT)


def open_with_token(token: str, blob: bytes) -> bytes | None:
    key = hashlib.sha256(_SEAL_CONTEXT + token.encode()).digest()
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], _SEAL_CONTEXT)
    except InvalidTag:
        return None
