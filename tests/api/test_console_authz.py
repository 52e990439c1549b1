"""The console's authorization matrix, generated like the API's
(tests/api/test_authz_matrix.py, same world): every admin caller with a console session
x every page; pages of one object x a target in county A and one in county B.

Rules: without a session every page redirects to the login page; an admin gets 200 for
the list pages (filled from his scope only) and for an object in his scope, else the
404 page. The co-manager of county A's member reads that member's page (the read verb)
and nothing else of A. Members and residents cannot get a session at all.
"""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.api.test_authz_matrix import ADMIN_SEES, _world
from tests.conftest import problem
from tests.support.console import console_login

LIST_PAGES = (
    "/console/",
    "/console/approvals",
    "/console/outflows",
    "/console/members",
    "/console/orders",
    "/console/activities",
    "/console/census",
    "/console/audit",
)


async def test_console_authorization_matrix(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await _world(db, settings)
    table: list[tuple[str, str, int, int]] = []

    client.cookies.clear()
    for page in (*LIST_PAGES, f"/console/members/{world.targets['A'].member}"):
        table.append(("anonymous", page, 303, (await client.get(page)).status_code))

    for caller in (*ADMIN_SEES, "co_manager_A"):
        await console_login(client, world.headers[caller])
        for page in LIST_PAGES:
            table.append((caller, page, 200, (await client.get(page)).status_code))
        for side, target in world.targets.items():
            if caller == "co_manager_A":
                want = 200 if side == "A" else 404
            else:
                want = 200 if side in ADMIN_SEES[caller] else 404
            page = f"/console/members/{target.member}"
            response = await client.get(page)
            if response.status_code == 404:
                assert "404 · 未找到" in response.text
            table.append((caller, f"{page} ({side})", want, response.status_code))

    wrong = [row for row in table if row[2] != row[3]]
    assert not wrong, "\n".join(f"{c:15} {p:40} expected {w} got {g}" for c, p, w, g in wrong)

    # Members and residents cannot confirm a ticket, so they never hold a session.
    for caller in ("member", "resident"):
        ticket = (await client.post("/api/v1/auth/console/tickets")).json()["ticket"]
        problem(
            await client.post(
                f"/api/v1/auth/console/tickets/{ticket}/confirm", headers=world.headers[caller]
            ),
            403,
            "console.admin_required",
        )
