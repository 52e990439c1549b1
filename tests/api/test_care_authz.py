"""The authorization matrix of the care endpoints, generated like the one of the
organisation endpoints: every caller x every endpoint x a target in county A and in
county B. No token 401; not an admin 403 (404 where a member may read his own: a case
that is not his); an admin gets the success status inside his scope and 404 outside
it. The co-manager of A's member serves him: he reads A's case and logs help, is
refused (403) closing and reopening it, and finds nothing else of A."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.organization.models import DualManagementGrant
from tests import factories as f
from tests.clock import Clock
from tests.support.care import API

CALLERS = (
    "anonymous",
    "resident",
    "member",
    "branch_admin_A",
    "org_admin_A",
    "org_admin_B",
    "superadmin",
    "co_manager_A",
)
ADMIN_SEES = {
    "branch_admin_A": {"A"},
    "org_admin_A": {"A"},
    "org_admin_B": {"B"},
    "superadmin": {"A", "B"},
}
CO_MANAGER_ON_A = {
    "GET /care/cases/{id}": 200,
    "POST /care/cases/{id}/help": 201,
    "POST /care/cases/{id}/close": 403,
    "POST /care/cases/{id}/reopen": 403,
    "POST /care/cases member_id": 201,
}


@dataclass
class Target:
    branch: int
    member: int
    campaign: int
    case: int
    closed_case: int


Call = Callable[[httpx.AsyncClient, dict[str, str], Target], Awaitable[httpx.Response]]


async def _world(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> tuple[dict[str, dict[str, str]], dict[str, Target]]:
    targets: dict[str, Target] = {}
    branches = {}
    counties = {}
    for side in ("A", "B"):
        county = await f.org(db, f"{side}县委")
        branch = await f.org(db, f"{side}村党支部", parent=county)
        admin = await f.admin_actor(db, settings, county)
        member = await f.member(db, settings, branch, f"{side}困难党员")
        campaign = await client.post(
            f"{API}/campaigns",
            json={
                "org_id": branch.id,
                "title": "重阳问候",
                "message": "敬老爱老",
                "audience": "all_members",
                "festival": "double_ninth",
            },
            headers=admin.headers,
        )
        cases = []
        for _ in range(2):
            created = await client.post(
                f"{API}/cases",
                json={"member_id": member.id, "kind": "illness", "description": "住院治疗"},
                headers=admin.headers,
            )
            cases.append(created.json())
        await client.post(
            f"{API}/cases/{cases[1]['id']}/close", json={"version": 1}, headers=admin.headers
        )
        targets[side] = Target(
            branch.id, member.id, campaign.json()["id"], cases[0]["id"], cases[1]["id"]
        )
        branches[side], counties[side] = branch, county
    destination = await f.org(db, "C流入地商圈党委", region_code="440305")
    db.add(DualManagementGrant(member_id=targets["A"].member, org_id=destination.id))
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
        "co_manager_A": (await f.admin_actor(db, settings, destination)).headers,
    }
    return headers, targets


# name -> (call, success status, a member gets 404 instead of 403)
TARGETED: dict[str, tuple[Call, int, bool]] = {
    "POST /care/campaigns": (
        lambda c, h, t: c.post(
            f"{API}/campaigns",
            json={
                "org_id": t.branch,
                "title": "春节问候",
                "message": "新春快乐",
                "audience": "mobile_members",
                "festival": "spring_festival",
            },
            headers=h,
        ),
        201,
        False,
    ),
    "GET /care/campaigns?org_id": (
        lambda c, h, t: c.get(f"{API}/campaigns", params={"org_id": t.branch}, headers=h),
        200,
        False,
    ),
    "GET /care/campaigns/{id}": (
        lambda c, h, t: c.get(f"{API}/campaigns/{t.campaign}", headers=h),
        200,
        False,
    ),
    "POST /care/campaigns/{id}/cancel": (
        lambda c, h, t: c.post(
            f"{API}/campaigns/{t.campaign}/cancel", json={"version": 1}, headers=h
        ),
        200,
        False,
    ),
    "POST /care/cases member_id": (
        lambda c, h, t: c.post(
            f"{API}/cases",
            json={"member_id": t.member, "kind": "family", "description": "子女上学困难"},
            headers=h,
        ),
        201,
        False,
    ),
    "GET /care/cases?org_id": (
        lambda c, h, t: c.get(f"{API}/cases", params={"org_id": t.branch}, headers=h),
        200,
        False,
    ),
    "GET /care/cases/stats?org_id": (
        lambda c, h, t: c.get(f"{API}/cases/stats", params={"org_id": t.branch}, headers=h),
        200,
        False,
    ),
    "GET /care/cases/export?org_id": (
        lambda c, h, t: c.get(f"{API}/cases/export", params={"org_id": t.branch}, headers=h),
        200,
        False,
    ),
    "GET /care/cases/{id}": (
        lambda c, h, t: c.get(f"{API}/cases/{t.case}", headers=h),
        200,
        True,
    ),
    "POST /care/cases/{id}/help": (
        lambda c, h, t: c.post(
            f"{API}/cases/{t.case}/help",
            json={"given_on": "2026-12-01", "form": "visit"},
            headers=h,
        ),
        201,
        False,
    ),
    "POST /care/cases/{id}/close": (
        lambda c, h, t: c.post(f"{API}/cases/{t.case}/close", json={"version": 1}, headers=h),
        200,
        False,
    ),
    "POST /care/cases/{id}/reopen": (
        lambda c, h, t: c.post(
            f"{API}/cases/{t.closed_case}/reopen", json={"version": 2}, headers=h
        ),
        200,
        False,
    ),
}

UNTARGETED: dict[str, Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]] = {
    "GET /care/campaigns": lambda c, h: c.get(f"{API}/campaigns", headers=h),
    "GET /care/cases": lambda c, h: c.get(f"{API}/cases", headers=h),
    "GET /care/cases/stats": lambda c, h: c.get(f"{API}/cases/stats", headers=h),
    "GET /care/cases/export": lambda c, h: c.get(f"{API}/cases/export", headers=h),
}


def expected(caller: str, side: str, success: int, name: str, member_404: bool) -> int:
    if caller == "anonymous":
        return 401
    if caller == "co_manager_A":
        return CO_MANAGER_ON_A.get(name, 404) if side == "A" else 404
    if caller not in ADMIN_SEES:
        # A member reads only his own cases (another's: 404); admin moves are 403.
        return 404 if member_404 else 403
    return success if side in ADMIN_SEES[caller] else 404


async def test_care_authorization_matrix(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    clock.set_day(date(2026, 12, 1))
    headers, targets = await _world(client, db, settings)
    table: list[tuple[str, str, str, int, int]] = []

    async def run(make: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        savepoint = await db.begin_nested()
        try:
            return await make()
        finally:
            await savepoint.rollback()

    for caller in CALLERS:
        h = headers[caller]
        for name, (call, success, member_404) in TARGETED.items():
            for side, target in targets.items():
                response = await run(lambda: call(client, h, target))
                want = expected(caller, side, success, name, member_404)
                table.append((caller, name, side, want, response.status_code))
                if response.status_code >= 400:
                    assert response.headers["content-type"] == "application/problem+json"
        for name, untargeted in UNTARGETED.items():
            response = await run(lambda: untargeted(client, h))
            want = 401 if caller == "anonymous" else 200
            if caller in ("resident", "member"):
                want = 403
            table.append((caller, name, "-", want, response.status_code))

    wrong = [row for row in table if row[3] != row[4]]
    report = "\n".join(f"{c:15} {e:40} {s}  expected {w}  got {g}" for c, e, s, w, g in wrong)
    assert not wrong, "care authorization mismatches:\n" + report
    assert len(table) == len(CALLERS) * (len(TARGETED) * 2 + len(UNTARGETED))


async def test_care_lists_never_include_other_subtrees(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    clock.set_day(date(2026, 12, 1))
    headers, targets = await _world(client, db, settings)
    side_of_case = {t.case: s for s, t in targets.items()} | {
        t.closed_case: s for s, t in targets.items()
    }
    side_of_campaign = {t.campaign: s for s, t in targets.items()}
    for caller, sides in ADMIN_SEES.items():
        h = headers[caller]
        cases = (await client.get(f"{API}/cases", headers=h)).json()["items"]
        assert {side_of_case[c["id"]] for c in cases} == sides, caller
        campaigns = (await client.get(f"{API}/campaigns", headers=h)).json()["items"]
        assert {side_of_campaign[c["id"]] for c in campaigns} == sides, caller
        stats = (await client.get(f"{API}/cases/stats", headers=h)).json()
        assert stats["open"] == len(sides) and stats["closed"] == len(sides), caller
    co = (await client.get(f"{API}/cases", headers=headers["co_manager_A"])).json()["items"]
    assert {c["id"] for c in co} == {targets["A"].case, targets["A"].closed_case}
    co_campaigns = (await client.get(f"{API}/campaigns", headers=headers["co_manager_A"])).json()
    assert co_campaigns["items"] == []
