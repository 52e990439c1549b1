"""Refresh-token rotation, reuse detection, logout, and the race of two refreshes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.security import decode_access_token, hash_token
from app.identity.models import Account, RefreshToken
from app.identity.service import issue_token_pair
from app.organization.models import RoleAssignment
from tests import factories
from tests.conftest import problem

LOGIN = "/api/v1/auth/wechat/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def new_openid() -> str:
    """A fresh openid without digit runs (the leak scanner reads logged WeChat URLs)."""
    return "o" + uuid.uuid4().hex[:20].translate(_LETTERS)


async def login(client: httpx.AsyncClient, openid: str | None = None) -> dict[str, object]:
    oid = openid or new_openid()
    response = await client.post(LOGIN, json={"code": f"{oid}.{new_openid()[:6]}"})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def token_row(db: AsyncSession, token: object) -> RefreshToken:
    assert isinstance(token, str)
    row = (
        await db.execute(
            select(RefreshToken)
            .where(RefreshToken.token_hash == hash_token(token))
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return row


async def test_refresh_rotates_within_the_family(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    first = await login(client)
    response = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["token_type"] == "bearer"
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["account"] == first["account"]

    old = await token_row(db, first["refresh_token"])
    new = await token_row(db, second["refresh_token"])
    assert old.used_at is not None and old.revoked_at is None
    assert new.used_at is None and new.family_id == old.family_id
    claims = decode_access_token(settings, second["access_token"])
    assert claims.account_id == first["account"]["id"]  # type: ignore[index]

    third = await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


async def test_reusing_a_spent_token_revokes_the_family(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    first = await login(client)
    other_login = await login(client, openid=None)
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()

    # Presented again by another client (a double-send of the same client within the
    # grace window is answered with the same pair: tests/api/test_sessions.py).
    reused = await client.post(
        REFRESH, json={"refresh_token": first["refresh_token"]}, headers={"User-Agent": "thief"}
    )
    problem(reused, 401, "auth.refresh_reused")

    # The revocation survived the 401: the newest token of the family is dead too.
    newest = await token_row(db, second["refresh_token"])
    assert newest.revoked_at is not None
    family = (
        (await db.execute(select(RefreshToken).where(RefreshToken.family_id == newest.family_id)))
        .scalars()
        .all()
    )
    assert len(family) == 2 and all(t.revoked_at is not None for t in family)
    problem(
        await client.post(REFRESH, json={"refresh_token": second["refresh_token"]}),
        401,
        "auth.invalid_refresh",
    )
    # Another user's session is untouched.
    ok = await client.post(REFRESH, json={"refresh_token": other_login["refresh_token"]})
    assert ok.status_code == 200


async def test_unknown_and_expired_tokens_are_401(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    problem(
        await client.post(REFRESH, json={"refresh_token": "rt_not-a-real-token"}),
        401,
        "auth.invalid_refresh",
    )
    first = await login(client)
    row = await token_row(db, first["refresh_token"])
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id)
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    problem(
        await client.post(REFRESH, json={"refresh_token": first["refresh_token"]}),
        401,
        "auth.invalid_refresh",
    )
    assert (await token_row(db, first["refresh_token"])).used_at is None


async def test_refresh_body_is_validated(client: httpx.AsyncClient) -> None:
    problem(await client.post(REFRESH, json={}), 422, "validation.failed")
    problem(
        await client.post(REFRESH, json={"refresh_token": "x", "account_id": 1}),
        422,
        "validation.failed",
    )


async def test_disabled_account_cannot_refresh(client: httpx.AsyncClient, db: AsyncSession) -> None:
    first = await login(client)
    await db.execute(
        update(Account)
        .where(Account.id == first["account"]["id"])  # type: ignore[index]
        .values(disabled_at=datetime.now(UTC))
    )
    problem(
        await client.post(REFRESH, json={"refresh_token": first["refresh_token"]}),
        403,
        "auth.account_disabled",
    )
    assert (await token_row(db, first["refresh_token"])).revoked_at is not None


async def test_new_tokens_reflect_removed_roles(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await factories.org(db, "角色县委")
    m = await factories.member(db, settings, county, "孙八")
    role = await factories.grant(db, m, county, "org_admin")
    oid = new_openid()
    await factories.account(db, member=m, openid=oid)
    first = await login(client, oid)
    assert first["account"]["kind"] == "admin"  # type: ignore[index]
    await db.execute(delete(RoleAssignment).where(RoleAssignment.id == role.id))
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    assert second["account"]["kind"] == "member"
    assert decode_access_token(settings, second["access_token"]).roles == ()


async def test_logout_revokes_the_presented_family_only(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    oid = new_openid()
    phone = await login(client, oid)
    tablet = await login(client, oid)
    headers = {"Authorization": f"Bearer {phone['access_token']}"}
    response = await client.post(
        LOGOUT, json={"refresh_token": phone["refresh_token"]}, headers=headers
    )
    assert response.status_code == 204 and response.content == b""
    assert (await token_row(db, phone["refresh_token"])).revoked_at is not None
    assert (await token_row(db, tablet["refresh_token"])).revoked_at is None
    problem(
        await client.post(REFRESH, json={"refresh_token": phone["refresh_token"]}),
        401,
        "auth.invalid_refresh",
    )


async def test_logout_without_body_revokes_every_family(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    oid = new_openid()
    phone = await login(client, oid)
    tablet = await login(client, oid)
    response = await client.post(
        LOGOUT, headers={"Authorization": f"Bearer {tablet['access_token']}"}
    )
    assert response.status_code == 204
    for session in (phone, tablet):
        assert (await token_row(db, session["refresh_token"])).revoked_at is not None


async def test_logout_ignores_another_users_token(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    mine = await login(client)
    theirs = await login(client)
    response = await client.post(
        LOGOUT,
        json={"refresh_token": theirs["refresh_token"]},
        headers={"Authorization": f"Bearer {mine['access_token']}"},
    )
    assert response.status_code == 204
    assert (await token_row(db, theirs["refresh_token"])).revoked_at is None
    assert (await token_row(db, mine["refresh_token"])).revoked_at is None


async def test_logout_needs_a_token(client: httpx.AsyncClient) -> None:
    problem(await client.post(LOGOUT), 401, "auth.missing_token")
    problem(
        await client.post(LOGOUT, headers={"Authorization": "Bearer rt_nope"}),
        401,
        "auth.invalid_token",
    )


async def test_concurrent_refreshes_of_one_token_from_different_clients_one_wins(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        acc = Account(openid=f"o-race-{uuid.uuid4().hex[:8]}")
        s.add(acc)
        await s.flush()
        pair = await issue_token_pair(s, settings, acc)
        await s.commit()

    responses = await asyncio.gather(
        *(
            committing_client.post(
                REFRESH,
                json={"refresh_token": pair.refresh_token},
                headers={"User-Agent": f"client-{n}"},
            )
            for n in range(4)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401, 401, 401], [r.text for r in responses]
    for r in responses:
        if r.status_code == 401:
            assert r.json()["code"] == "auth.refresh_reused"
    async with AsyncSession(engine) as s:
        rows = (
            (await s.execute(select(RefreshToken).where(RefreshToken.account_id == acc.id)))
            .scalars()
            .all()
        )
    # One rotation happened (two rows), and the reuse attempts revoked the family.
    assert len(rows) == 2
    assert sum(r.used_at is not None for r in rows) == 1
    assert all(r.revoked_at is not None for r in rows)
