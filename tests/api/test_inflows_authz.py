"""The authorization matrix of the inflow endpoints, generated like the one of the
organisation endpoints (tests/api/test_authz_matrix.py): every caller x every endpoint x
a target in county A and one in county B, each call in a rolled-back savepoint.

Rules: no token 401. Admin endpoints (the ledger, decisions, reveals): not an admin 403;
an admin gets the success status inside his scope, 404 outside. One declaration read or
withdrawn (``caller``: its declarant's or an admin's): anyone else 404. Declaring and
one's own list (``everyone``): every logged-in account."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests import factories as f
from tests.support.inflows import (
    declaration,
    inflow_day,  # noqa: F401 - autouse: 2026-12-01
)

API = "/api/v1/inflows"
CALLERS = (
    "anonymous",
    "resident",
    "member",
    "branch_admin_A",
    "org_admin_A",
    "org_admin_B",
    "superadmin",
)
ADMIN_SEES = {
    "branch_admin_A": {"A"},
    "org_admin_A": {"A"},
    "org_admin_B": {"B"},
    "superadmin": {"A", "B"},
}


@dataclass
class Target:
    org: int  # the listed branch the declaration was made at
    inflow: int


Call = Callable[[httpx.AsyncClient, dict[str, str], Target], Awaitable[httpx.Response]]

# name -> (call, success status for an admin in scope, kind)
TARGETED: dict[str, tuple[Call, int, str]] = {
    "GET /inflows?org_id": (
        lambda c, h, t: c.get(API, params={"org_id": t.org}, headers=h),
        200,
        "admin",
    ),
    "GET /inflows/stats?org_id": (
        lambda c, h, t: c.get(f"{API}/stats", params={"org_id": t.org}, headers=h),
        200,
        "admin",
    ),
    "GET /inflows/export?org_id": (
        lambda c, h, t: c.get(f"{API}/export", params={"org_id": t.org}, headers=h),
        200,
        "admin",
    ),
    "GET /inflows/{id}": (lambda c, h, t: c.get(f"{API}/{t.inflow}", headers=h), 200, "caller"),
    "POST /inflows/{id}/verify": (
        lambda c, h, t: c.post(f"{API}/{t.inflow}/verify", json={"version": 1}, headers=h),
        200,
        "admin",
    ),
    "POST /inflows/{id}/reject": (
        lambda c, h, t: c.post(
            f"{API}/{t.inflow}/reject", json={"version": 1, "note": "查无此人"}, headers=h
        ),
        200,
        "admin",
    ),
    "POST /inflows/{id}/reveal": (
        lambda c, h, t: c.post(
            f"{API}/{t.inflow}/reveal", json={"field": "phone", "reason": "矩阵测试"}, headers=h
        ),
        200,
        "admin",
    ),
    # Only the declarant withdraws: an admin who sees the row is refused.
    "POST /inflows/{id}/withdraw": (
        lambda c, h, t: c.post(f"{API}/{t.inflow}/withdraw", json={"version": 1}, headers=h),
        403,
        "caller",
    ),
}
UNTARGETED: dict[str, Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]] = {
    "GET /inflows": lambda c, h: c.get(API, headers=h),
    "GET /inflows/stats": lambda c, h: c.get(f"{API}/stats", headers=h),
    "GET /inflows/export": lambda c, h: c.get(f"{API}/export", headers=h),
}


def expected(caller: str, side: str | None, success: int, kind: str) -> int:
    if caller == "anonymous":
        return 401
    admin = caller in ADMIN_SEES
    if not admin:
        return 403 if kind == "admin" else 404
    if side is None or side in ADMIN_SEES[caller]:
        return success
    return 404


async def test_inflow_authorization_matrix(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    targets: dict[str, Target] = {}
    branches = {}
    counties = {}
    for side in ("A", "B"):
        county = await f.org(db, f"{side}县委")
        town = await f.org(db, f"{side}商圈党委", parent=county, kind="committee")
        branch = await f.org(db, f"{side}流动党员党支部", parent=town, listed=True)
        declarant = await f.resident_actor(db, settings)
        created = await client.post(API, json=declaration(branch), headers=declarant.headers)
        assert created.status_code == 201, created.text
        targets[side] = Target(branch.id, created.json()["id"])
        branches[side], counties[side] = branch, county
    headers = {
        "anonymous": {},
        "resident": (await f.resident_actor(db, settings)).headers,
        "member": (await f.member_actor(db, settings, branches["A"])).headers,
        "branch_admin_A": (
            await f.admin_actor(db, settings, branches["A"], role="branch_admin")
        ).headers,
        "org_admin_A": (await f.admin_actor(db, settings, counties["A"])).headers,
        "org_admin_B": (await f.admin_actor(db, settings, counties["B"])).headers,
        "superadmin": (await f.superadmin_actor(db, settings)).headers,
    }
    everyone: dict[str, Callable[[dict[str, str]], Awaitable[httpx.Response]]] = {
        "POST /inflows": lambda h: client.post(API, json=declaration(branches["B"]), headers=h),
        "GET /me/inflows": lambda h: client.get("/api/v1/me/inflows", headers=h),
    }
    table: list[tuple[str, str, str, int, int]] = []

    async def run(make: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        savepoint = await db.begin_nested()
        try:
            return await make()
        finally:
            await savepoint.rollback()

    for caller in CALLERS:
        h = headers[caller]
        for name, (call, success, kind) in TARGETED.items():
            for side, target in targets.items():
                response = await run(lambda: call(client, h, target))
                table.append(
                    (
                        caller,
                        name,
                        side,
                        expected(caller, side, success, kind),
                        response.status_code,
                    )
                )
                if response.status_code >= 400:
                    assert response.headers["content-type"] == "application/problem+json"
        for name, untargeted in UNTARGETED.items():
            response = await run(lambda: untargeted(client, h))
            table.append(
                (caller, name, "-", expected(caller, None, 200, "admin"), response.status_code)
            )
        for name, anyone in everyone.items():
            response = await run(lambda: anyone(h))
            want = 401 if caller == "anonymous" else (201 if name.startswith("POST") else 200)
            table.append((caller, name, "-", want, response.status_code))

    wrong = [row for row in table if row[3] != row[4]]
    report = "\n".join(f"{c:15} {e:30} {s}  expected {w}  got {g}" for c, e, s, w, g in wrong)
    assert not wrong, "authorization matrix mismatches:\n" + report
    assert len(table) == len(CALLERS) * (len(TARGETED) * 2 + len(UNTARGETED) + len(everyone))
