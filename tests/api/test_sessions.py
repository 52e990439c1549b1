"""Sessions end at once, and a phone's double-sent refresh does not end them.

* Logout, a disabled account and a removed role end access on the next request, in
  every process: two app instances stand for two replicas, each with its own cache and
  listener, and the change is made through the other one (or by plain SQL).
* A granted role works on the next request.
* While a process's listener is down it trusts nothing cached.
* The same refresh token sent twice by the same client within the grace window gets
  the same pair; from elsewhere or later it still revokes the login.

These run with real commits: notifications are delivered at commit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.security import hash_token
from app.identity.models import Account, RefreshToken
from app.identity.service import issue_token_pair
from app.main import create_app
from app.organization.models import Organization
from tests import factories as f
from tests.conftest import problem

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
PHONE = {"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50 miniProgram"}


@asynccontextmanager
async def _replica(settings: Settings, engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    """Another process of the same deployment: own cache, own listener."""
    application = create_app(settings, engine=engine)
    async with application.router.lifespan_context(application):
        await _listening(application)
        yield application


async def _listening(app: FastAPI) -> None:
    async with asyncio.timeout(10):
        while not app.state.sessions.trusted:  # noqa: ASYNC110 - another task's state
            await asyncio.sleep(0.01)


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def _notified(app: FastAPI, change: Awaitable[Any]) -> Any:
    """Run ``change`` and wait until ``app``'s listener has heard of it."""
    heard = app.state.sessions.changed
    result = await change
    async with asyncio.timeout(5):
        await heard.wait()
    return result


@dataclass
class People:
    county: Organization
    admin: f.Actor
    member: f.Actor


@pytest.fixture
async def people(committing_app: FastAPI, engine: AsyncEngine, settings: Settings) -> People:
    """A county, its admin and a member, committed; the app listening for changes."""
    async with AsyncSession(engine, expire_on_commit=False) as db:
        county = await f.org(db, "会话县委")
        admin = await f.admin_actor(db, settings, county, name="县管理员")
        member = await f.member_actor(db, settings, county, "会话党员")
        await db.commit()
    await _listening(committing_app)
    return People(county, admin, member)


async def test_logout_ends_access_at_once_in_every_process(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings, people: People
) -> None:
    member = people.member
    async with (
        _replica(settings, engine) as other,
        _client(other) as b,
        _client(committing_app) as a,
    ):
        assert (await b.get("/api/v1/me", headers=member.headers)).status_code == 200
        assert other.state.sessions.get(member.account.id, _sid(other, member)) is not None
        logout = await _notified(other, a.post(LOGOUT, headers=member.headers))
        assert logout.status_code == 204
        for replica in (a, b):
            problem(
                await replica.get("/api/v1/me", headers=member.headers),
                401,
                "auth.session_ended",
            )
        # The lean check-in path asks the same question.
        checkin = await b.post(
            "/api/v1/study/checkins",
            json={"session_id": 1, "client_event_id": "after-logout"},
            headers=member.headers,
        )
        problem(checkin, 401, "auth.session_ended")


def _sid(app: FastAPI, actor: f.Actor) -> str | None:
    from app.core.security import decode_access_token

    return decode_access_token(app.state.settings, actor.token).session_id


async def test_disabling_an_account_by_sql_ends_access_at_once(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings, people: People
) -> None:
    member = people.member
    async with _client(committing_app) as a:
        assert (await a.get("/api/v1/me/credits", headers=member.headers)).status_code == 200

        async def disable() -> None:
            async with engine.begin() as conn:
                await conn.execute(
                    update(Account)
                    .where(Account.id == member.account.id)
                    .values(disabled_at=text("now()"))
                )

        await _notified(committing_app, disable())
        problem(
            await a.get("/api/v1/me/credits", headers=member.headers),
            403,
            "auth.account_disabled",
        )


async def test_removed_role_stops_and_granted_role_works_on_the_next_request(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings, people: People
) -> None:
    admin, member, county = people.admin, people.member, people.county
    async with (
        _replica(settings, engine) as other,
        _client(other) as b,
        _client(committing_app) as a,
    ):
        # The member's token carries no role; the grant works on his next request.
        problem(await b.get("/api/v1/members", headers=member.headers), 403, "auth.admin_required")
        assert member.member is not None
        granted = await _notified(
            other,
            a.post(
                f"/api/v1/orgs/{county.id}/roles",
                json={"member_id": member.member.id, "role": "branch_admin"},
                headers=admin.headers,
            ),
        )
        assert granted.status_code == 201, granted.text
        listed = await b.get("/api/v1/members", headers=member.headers)
        assert listed.status_code == 200, listed.text
        assert member.member.id in {m["id"] for m in listed.json()["items"]}
        me = (await b.get("/api/v1/me", headers=member.headers)).json()
        assert me["account"]["kind"] == "admin"
        # Removed again: refused at once, though his token is the same.
        revoked = await _notified(
            other,
            a.delete(
                f"/api/v1/orgs/{county.id}/roles/{granted.json()['id']}", headers=admin.headers
            ),
        )
        assert revoked.status_code == 204
        problem(await b.get("/api/v1/members", headers=member.headers), 403, "auth.admin_required")
        me = (await b.get("/api/v1/me", headers=member.headers)).json()
        assert me["account"]["kind"] == "member"


async def test_with_the_listener_down_nothing_cached_is_trusted(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings, people: People
) -> None:
    member = people.member
    sessions = committing_app.state.sessions
    async with _client(committing_app) as a:
        assert (await a.get("/api/v1/me", headers=member.headers)).status_code == 200
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'branchlink-auth-listener'"
                )
            )
        async with asyncio.timeout(10):
            while sessions.trusted:  # noqa: ASYNC110 - another task's state
                await asyncio.sleep(0.01)
        # A change the listener cannot hear about: the next request reads it anyway.
        async with engine.begin() as conn:
            await conn.execute(
                update(RefreshToken)
                .where(RefreshToken.account_id == member.account.id)
                .values(revoked_at=text("now()"))
            )
        problem(await a.get("/api/v1/me", headers=member.headers), 401, "auth.session_ended")
        # It reconnects by itself and starts from an empty cache.
        await _listening(committing_app)
        assert sessions.get(member.account.id, _sid(committing_app, member)) is None


# -- refresh double-sends -------------------------------------------------------------


async def _account_pair(engine: AsyncEngine, settings: Settings) -> tuple[int, str]:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        acc = Account(openid=f"o-double-{uuid.uuid4().hex[:8]}")
        s.add(acc)
        await s.flush()
        pair = await issue_token_pair(s, settings, acc)
        await s.commit()
    return acc.id, pair.refresh_token


async def _family(engine: AsyncEngine, account_id: int) -> list[RefreshToken]:
    async with AsyncSession(engine) as s:
        rows = await s.execute(
            select(RefreshToken)
            .where(RefreshToken.account_id == account_id)
            .order_by(RefreshToken.id)
        )
        return list(rows.scalars())


async def test_a_concurrent_double_send_gets_one_pair_and_keeps_the_login(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    account_id, refresh = await _account_pair(engine, settings)
    answers = await asyncio.gather(
        *(
            committing_client.post(REFRESH, json={"refresh_token": refresh}, headers=PHONE)
            for _ in range(5)
        )
    )
    assert [r.status_code for r in answers] == [200] * 5, [r.text for r in answers]
    pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in answers}
    assert len(pairs) == 1  # the same new pair, five times
    rows = await _family(engine, account_id)
    assert len(rows) == 2 and all(r.revoked_at is None for r in rows)  # one rotation
    (access, newest) = pairs.pop()
    assert rows[1].token_hash == hash_token(newest)
    # The login goes on with the new pair.
    me = await committing_client.get("/api/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200
    following = await committing_client.post(REFRESH, json={"refresh_token": newest}, headers=PHONE)
    assert following.status_code == 200


async def test_reuse_after_the_window_or_from_elsewhere_still_revokes(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    for late in (True, False):
        account_id, refresh = await _account_pair(engine, settings)
        first = await committing_client.post(
            REFRESH, json={"refresh_token": refresh}, headers=PHONE
        )
        assert first.status_code == 200
        if late:
            # The grace window (APP_REFRESH_REUSE_GRACE_S, 30 s) has passed.
            async with engine.begin() as conn:
                await conn.execute(
                    update(RefreshToken)
                    .where(RefreshToken.token_hash == hash_token(refresh))
                    .values(used_at=RefreshToken.used_at - text("interval '31 seconds'"))
                )
            again = await committing_client.post(
                REFRESH, json={"refresh_token": refresh}, headers=PHONE
            )
        else:
            again = await committing_client.post(
                REFRESH, json={"refresh_token": refresh}, headers={"User-Agent": "curl/8.0"}
            )
        problem(again, 401, "auth.refresh_reused")
        rows = await _family(engine, account_id)
        assert len(rows) == 2 and all(r.revoked_at is not None for r in rows), late
        newest = first.json()["refresh_token"]
        problem(
            await committing_client.post(REFRESH, json={"refresh_token": newest}, headers=PHONE),
            401,
            "auth.invalid_refresh",
        )


async def test_a_late_copy_after_the_new_pair_was_used_gets_nothing_and_revokes_nothing(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    account_id, refresh = await _account_pair(engine, settings)
    first = (
        await committing_client.post(REFRESH, json={"refresh_token": refresh}, headers=PHONE)
    ).json()
    second = await committing_client.post(
        REFRESH, json={"refresh_token": first["refresh_token"]}, headers=PHONE
    )
    assert second.status_code == 200
    late = await committing_client.post(REFRESH, json={"refresh_token": refresh}, headers=PHONE)
    problem(late, 401, "auth.invalid_refresh")
    rows = await _family(engine, account_id)
    assert len(rows) == 3 and all(r.revoked_at is None for r in rows)


@pytest.mark.parametrize("grace", [0])
async def test_the_window_is_a_setting(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings, grace: int
) -> None:
    committing_app.state.settings = settings.model_copy(update={"refresh_reuse_grace_s": grace})
    account_id, refresh = await _account_pair(engine, settings)
    async with _client(committing_app) as a:
        assert (
            await a.post(REFRESH, json={"refresh_token": refresh}, headers=PHONE)
        ).status_code == 200
        problem(
            await a.post(REFRESH, json={"refresh_token": refresh}, headers=PHONE),
            401,
            "auth.refresh_reused",
        )
    assert all(r.revoked_at is not None for r in await _family(engine, account_id))
