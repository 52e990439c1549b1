"""Access-token hygiene (RFC 8725): every forged, confused or stale token is a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import AppError
from app.core.security import (
    RoleClaim,
    TokenClaims,
    decode_access_token,
    issue_access_token,
    new_refresh_token,
)
from tests import factories
from tests.conftest import problem

CURRENT = "current-secret-" + "0123456789abcdef" * 4
PREVIOUS = "previous-secret-" + "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def keys() -> Settings:
    return Settings(
        env="test",
        jwt_keys={"k2": CURRENT, "k1": PREVIOUS},
        jwt_current_kid="k2",
        access_token_ttl_s=600,
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


CLAIMS = TokenClaims(
    account_id=42,
    kind="admin",
    member_id=7,
    superadmin=False,
    roles=(RoleClaim("org_admin", 3),),
)


def payload(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "42",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "knd": "admin",
        "mid": 7,
        "sa": False,
        "rol": [["org_admin", 3]],
    }
    for key, value in changes.items():
        if value is ...:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def sign(claims: dict[str, Any], key: Any = CURRENT, *, alg: str = "HS256", kid: Any = "k2") -> str:
    headers = {} if kid is ... else {"kid": kid}
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def hs256_by_hand(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 over any header, including ones PyJWT refuses to produce."""
    signing_input = f"{b64(header)}.{b64(claims)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def rejected(settings: Settings, token: str, code: str = "auth.invalid_token") -> None:
    with pytest.raises(AppError) as caught:
        decode_access_token(settings, token)
    assert caught.value.status == 401
    assert caught.value.code == code
    assert caught.value.headers["WWW-Authenticate"] == "Bearer"


def test_a_token_we_issued_round_trips(keys: Settings) -> None:
    token = issue_access_token(keys, CLAIMS)
    assert jwt.get_unverified_header(token)["kid"] == "k2"
    claims = decode_access_token(keys, token)
    assert (claims.account_id, claims.kind, claims.member_id, claims.roles) == (
        42,
        "admin",
        7,
        (RoleClaim("org_admin", 3),),
    )
    assert claims.jti


def test_token_of_the_previous_key_still_works_during_rotation(keys: Settings) -> None:
    old = sign(payload(keys), PREVIOUS, kid="k1")
    assert decode_access_token(keys, old).account_id == 42
    # Once the old key leaves the map, its tokens stop working.
    after = Settings(env="test", jwt_keys={"k2": CURRENT}, jwt_current_kid="k2")
    rejected(after, old)
    # And a token that claims the old kid but is signed with the new key is refused.
    rejected(keys, sign(payload(keys), CURRENT, kid="k1"))


def test_alg_none_is_refused(keys: Settings) -> None:
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k2'})}.{b64(payload(keys))}."
    rejected(keys, unsigned)
    rejected(keys, jwt.encode(payload(keys), None, algorithm="none", headers={"kid": "k2"}))


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused(keys: Settings, alg: str) -> None:
    rejected(keys, sign(payload(keys), CURRENT, alg=alg))


def test_rs256_token_is_refused(keys: Settings, rsa_key: rsa.RSAPrivateKey) -> None:
    rejected(keys, sign(payload(keys), rsa_key, alg="RS256"))


def test_hmac_signed_with_a_public_key_is_refused(
    keys: Settings, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The classic RS/HS confusion: the attacker HMACs with the (public) RSA key."""
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = hs256_by_hand({"alg": "HS256", "typ": "JWT", "kid": "k2"}, payload(keys), public_pem)
    rejected(keys, forged)


def test_wrong_key_is_refused(keys: Settings) -> None:
    rejected(keys, sign(payload(keys), "someone-elses-secret-0123456789abcdef0123"))


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "another-api"},
        {"aud": ...},
        {"iss": "evil"},
        {"iss": ...},
        {"exp": ...},
        {"iat": ...},
        {"jti": ...},
        {"sub": ...},
        {"typ": ...},
        {"typ": "refresh"},
        {"nbf": int(time.time()) + 3600},
        {"sub": "not-a-number"},
        {"rol": [["org_admin"]]},
        {"rol": "org_admin"},
        {"mid": "seven"},
    ],
    ids=lambda c: ",".join(f"{k}={'missing' if v is ... else v}" for k, v in c.items()),
)
def test_bad_claims_are_refused(keys: Settings, changes: dict[str, Any]) -> None:
    rejected(keys, sign(payload(keys, **changes)))


def test_expired_token_says_so(keys: Settings) -> None:
    past = int(time.time()) - 700
    token = sign(payload(keys, iat=past, nbf=past, exp=past + 600))
    rejected(keys, token, "auth.token_expired")


@pytest.mark.parametrize("kid", ["k9", 2, None, ...], ids=["unknown", "int", "null", "missing"])
def test_unknown_or_missing_kid_is_refused(keys: Settings, kid: Any) -> None:
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not ...:
        header["kid"] = kid
    rejected(keys, hs256_by_hand(header, payload(keys), CURRENT.encode()))
    # Sanity: the same construction with the right kid is accepted.
    good = hs256_by_hand({"alg": "HS256", "kid": "k2"}, payload(keys), CURRENT.encode())
    assert decode_access_token(keys, good).account_id == 42


def test_tampered_payload_is_refused(keys: Settings) -> None:
    header, _, signature = sign(payload(keys)).split(".")
    escalated = b64(payload(keys, sa=True, sub="1"))
    rejected(keys, f"{header}.{escalated}.{signature}")


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b", new_refresh_token(), "x" * 5000],
    ids=["empty", "word", "three-parts", "two-parts", "refresh-token", "huge"],
)
def test_garbage_is_refused(keys: Settings, token: str) -> None:
    rejected(keys, token)


# -- the same through the API -------------------------------------------------------------

Forger = Callable[[Settings], str]


def _expired(s: Settings) -> str:
    past = int(time.time()) - 700
    return jwt.encode(
        payload(s, iat=past, nbf=past, exp=past + 600),
        s.signing_keys[s.jwt_current_kid],
        algorithm="HS256",
        headers={"kid": s.jwt_current_kid},
    )


def _signed(s: Settings, alg: str = "HS256", **changes: Any) -> str:
    return jwt.encode(
        payload(s, **changes),
        s.signing_keys[s.jwt_current_kid],
        algorithm=alg,
        headers={"kid": s.jwt_current_kid},
    )


API_CASES: dict[str, tuple[Forger, str]] = {
    "alg-none": (
        lambda s: f"{b64({'alg': 'none', 'kid': s.jwt_current_kid})}.{b64(payload(s))}.",
        "auth.invalid_token",
    ),
    "hs512": (lambda s: _signed(s, "HS512"), "auth.invalid_token"),
    "wrong-aud": (lambda s: _signed(s, aud="other"), "auth.invalid_token"),
    "wrong-iss": (lambda s: _signed(s, iss="other"), "auth.invalid_token"),
    "no-exp": (lambda s: _signed(s, exp=...), "auth.invalid_token"),
    "expired": (_expired, "auth.token_expired"),
    "unknown-kid": (
        lambda s: jwt.encode(
            payload(s), s.signing_keys[s.jwt_current_kid], algorithm="HS256", headers={"kid": "zz"}
        ),
        "auth.invalid_token",
    ),
    "refresh-as-access": (lambda s: new_refresh_token(), "auth.invalid_token"),
    "typ-refresh": (lambda s: _signed(s, typ="refresh"), "auth.invalid_token"),
}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("case", list(API_CASES))
async def test_api_refuses_bad_tokens(
    client: httpx.AsyncClient, settings: Settings, case: str
) -> None:
    forge, code = API_CASES[case]
    response = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {forge(settings)}"}
    )
    problem(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_api_accepts_a_token_of_the_previous_kid(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    resident = await factories.resident_actor(db, settings)
    rotated = settings.model_copy(
        update={
            "jwt_keys": {
                "new": "fresh-secret-0123456789abcdef0123456789abcd",
                **settings.signing_keys,
            },
            "jwt_current_kid": "new",
        }
    )
    original = app.state.settings
    app.state.settings = rotated
    try:
        old = await client.get("/api/v1/me", headers=resident.headers)
        fresh_token = issue_access_token(
            rotated,
            TokenClaims(resident.account.id, "resident", None, False),
        )
        fresh = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh_token}"})
    finally:
        app.state.settings = original
    assert old.status_code == 200 and old.json()["account"]["id"] == resident.account.id
    assert fresh.status_code == 200
    assert jwt.get_unverified_header(fresh_token)["kid"] == "new"
