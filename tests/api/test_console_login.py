"""The web console's QR login: tickets, confirmation by an admin's bearer token, the
poll that turns a confirmed ticket into a session once, and sessions that end at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.identity.models import Account, ConsoleSession
from app.organization.models import RoleAssignment
from tests import factories as f
from tests.clock import Clock
from tests.conftest import problem
from tests.support.console import console_login


async def _ticket(client: httpx.AsyncClient) -> str:
    created = await client.post("/api/v1/auth/console/tickets")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["qr_content"] == f"branchlink://console-login?ticket={body['ticket']}"
    assert body["expires_in"] == 120
    return str(body["ticket"])


async def test_scan_confirm_poll_gives_one_session(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    org = await f.org(db, "扫码县委")
    admin = await f.admin_actor(db, settings, org)
    ticket = await _ticket(client)

    pending = await client.get(f"/api/v1/auth/console/tickets/{ticket}")
    assert pending.json()["status"] == "pending"
    assert "bl_console" not in pending.cookies

    # Not logged in, not an admin: refused; the ticket stays pending.
    problem(
        await client.post(f"/api/v1/auth/console/tickets/{ticket}/confirm"),
        401,
        "auth.missing_token",
    )
    member = await f.member_actor(db, settings, org)
    problem(
        await client.post(f"/api/v1/auth/console/tickets/{ticket}/confirm", headers=member.headers),
        403,
        "console.admin_required",
    )

    confirmed = await client.post(
        f"/api/v1/auth/console/tickets/{ticket}/confirm", headers=admin.headers
    )
    assert confirmed.status_code == 204
    problem(
        await client.post(f"/api/v1/auth/console/tickets/{ticket}/confirm", headers=admin.headers),
        409,
        "console.ticket_used",
    )
    poll_secret = client.cookies["bl_console_poll"]
    polled = await client.get(f"/api/v1/auth/console/tickets/{ticket}")
    assert polled.json() == {"status": "confirmed", "expires_in": 8 * 3600, "redirect": "/console/"}
    cookie = polled.headers["set-cookie"]
    assert "bl_console=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    rows = (await db.execute(select(ConsoleSession.account_id))).scalars().all()
    assert rows == [admin.account.id]

    # Once: the poll secret is dropped with the answer, and even replayed it finds the
    # ticket used up; no second session appears.
    problem(
        await client.get(f"/api/v1/auth/console/tickets/{ticket}"), 404, "console.ticket_not_found"
    )
    again = await client.get(
        f"/api/v1/auth/console/tickets/{ticket}",
        headers={"Cookie": f"bl_console_poll={poll_secret}"},
    )
    assert again.json()["status"] == "expired"
    assert len((await db.execute(select(ConsoleSession.id))).all()) == 1

    page = await client.get("/console/")
    assert page.status_code == 200
    assert "工作台" in page.text and admin.member is not None and admin.member.name in page.text


async def test_only_the_browser_that_asked_can_poll(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    org = await f.org(db, "偷看县委")
    admin = await f.admin_actor(db, settings, org)
    ticket = await _ticket(client)
    await client.post(f"/api/v1/auth/console/tickets/{ticket}/confirm", headers=admin.headers)
    client.cookies.clear()  # another browser, which saw the QR code
    problem(
        await client.get(f"/api/v1/auth/console/tickets/{ticket}"), 404, "console.ticket_not_found"
    )
    assert (await db.execute(select(ConsoleSession.id))).first() is None


async def test_expired_ticket(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    org = await f.org(db, "过期县委")
    admin = await f.admin_actor(db, settings, org)
    ticket = await _ticket(client)
    clock.advance(seconds=121)
    assert (await client.get(f"/api/v1/auth/console/tickets/{ticket}")).json()["status"] == (
        "expired"
    )
    problem(
        await client.post(f"/api/v1/auth/console/tickets/{ticket}/confirm", headers=admin.headers),
        410,
        "console.ticket_expired",
    )
    problem(
        await client.post(
            "/api/v1/auth/console/tickets/unknown-ticket-0000/confirm", headers=admin.headers
        ),
        404,
        "console.ticket_not_found",
    )


async def test_anonymous_console_pages_go_to_login(client: httpx.AsyncClient) -> None:
    for path in ("/console/", "/console/outflows", "/console/members/1", "/console/audit"):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/login"
    login = await client.get("/console/login")
    assert login.status_code == 200
    assert "<svg" in login.text and "扫描" in login.text
    assert "bl_console_poll=" in login.headers["set-cookie"]


async def test_logout_ends_the_session(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    org = await f.org(db, "退出县委")
    admin = await f.admin_actor(db, settings, org)
    csrf = await console_login(client, admin.headers)

    # Without the CSRF token the form is refused and nothing changes.
    refused = await client.post("/console/logout", data={})
    assert refused.status_code == 403 and "console.csrf_failed" in refused.text
    assert (await client.get("/console/")).status_code == 200

    out = await client.post("/console/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    revoked = (await db.execute(select(ConsoleSession.revoked_at))).scalar_one()
    assert revoked is not None
    assert (await client.get("/console/")).status_code == 303


async def _listening(app: FastAPI) -> None:
    async with asyncio.timeout(10):
        while not app.state.sessions.trusted:  # noqa: ASYNC110 - another task's state
            await asyncio.sleep(0.01)


async def _committed(app: FastAPI, engine: AsyncEngine, statement: Any) -> None:
    """Run ``statement`` in its own transaction and wait until the app heard of it."""
    heard = app.state.sessions.changed
    async with engine.begin() as conn:
        await conn.execute(statement)
    async with asyncio.timeout(5):
        await heard.wait()


async def test_role_removal_and_disabling_end_the_session_at_once(
    committing_app: FastAPI,
    committing_client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as db:
        county = await f.org(db, "撤职县委")
        first = await f.admin_actor(db, settings, county, name="甲管理员")
        second = await f.admin_actor(db, settings, county, name="乙管理员")
        await db.commit()
    await _listening(committing_app)
    client = committing_client
    assert first.member is not None

    await console_login(client, first.headers)
    assert (await client.get("/console/")).status_code == 200
    await _committed(
        committing_app,
        engine,
        delete(RoleAssignment).where(RoleAssignment.member_id == first.member.id),
    )
    assert (await client.get("/console/")).status_code == 303
    async with engine.connect() as conn:
        ended = (
            await conn.execute(
                select(ConsoleSession.revoked_at).where(
                    ConsoleSession.account_id == first.account.id
                )
            )
        ).scalar_one()
    assert ended is not None

    await console_login(client, second.headers)
    await _committed(
        committing_app,
        engine,
        update(Account).where(Account.id == second.account.id).values(disabled_at=func.now()),
    )
    assert (await client.get("/console/outflows")).status_code == 303


async def test_logout_everywhere_through_the_api_ends_console_sessions(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    org = await f.org(db, "全退县委")
    admin = await f.admin_actor(db, settings, org)
    await console_login(client, admin.headers)
    assert (await client.post("/api/v1/auth/logout", headers=admin.headers)).status_code == 204
    assert (await db.execute(select(ConsoleSession.revoked_at))).scalar_one() is not None
    assert (await client.get("/console/")).status_code == 303


async def test_old_tickets_and_ended_sessions_are_purged(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    from app.identity import console_login as logins
    from app.identity.models import ConsoleTicket

    org = await f.org(db, "清理县委")
    admin = await f.admin_actor(db, settings, org)
    await console_login(client, admin.headers)  # one ticket used, one open session
    await _ticket(client)  # one ticket never scanned
    now = clock.now
    assert await logins.purge(db, now) == 0
    assert await logins.purge(db, now + timedelta(days=2)) == 2  # the tickets
    assert (await db.execute(select(ConsoleSession.id))).first() is not None
    assert await logins.purge(db, now + timedelta(days=31)) == 1  # the expired session
    assert (await db.execute(select(ConsoleTicket.id))).first() is None


async def test_the_simulated_scan_logs_a_demo_admin_in_and_refuses_other_sites(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await f.org(db, "模拟县委")
    demo = await f.member(db, settings, county, "演示管理员")
    await f.grant(db, demo, county, "org_admin")
    db.add(Account(openid="demo-admin", member_id=demo.id, display_name="演示管理员"))
    await db.flush()
    login = await client.get("/console/login")
    ticket = login.text.split('data-ticket="', 1)[1].split('"', 1)[0]
    form = {"ticket": ticket, "openid": "demo-admin"}

    foreign = await client.post(
        "/console/login/simulate", data=form, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403 and "console.csrf_failed" in foreign.text
    refused = await client.post("/console/login/simulate", data={**form, "openid": "demo-member"})
    assert refused.status_code == 404
    scanned = await client.post(
        "/console/login/simulate", data=form, headers={"Origin": "http://testserver"}
    )
    assert scanned.status_code == 200, scanned.text
    polled = await client.get(f"/api/v1/auth/console/tickets/{ticket}")
    assert polled.json()["status"] == "confirmed"
    page = await client.get("/console/")
    assert page.status_code == 200 and "演示管理员" in page.text
