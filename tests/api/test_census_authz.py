"""The authorization matrix of the census endpoints, generated like the one of the
organisation endpoints: every caller x every endpoint x a target in county A and in
county B. No token 401; not an admin 403 (404 where members may read what they
instruct); an admin gets the success status inside his scope and 404 outside it. A
street admin sees his street's entities but not the county's rounds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests import factories as f
from tests.support.census import (
    census_day,  # noqa: F401 - autouse: 2026-12-01
    credit_code,
    entity_body,
    survey_body,
)
from tests.support.roster import csv_bytes

API = "/api/v1/census"
CALLERS = (
    "anonymous",
    "resident",
    "member",
    "street_admin_A",
    "org_admin_A",
    "org_admin_B",
    "superadmin",
)
# Which county's objects each admin sees, for targets at street and at county level.
SEES = {
    "street": {
        "street_admin_A": {"A"},
        "org_admin_A": {"A"},
        "org_admin_B": {"B"},
        "superadmin": {"A", "B"},
    },
    "county": {
        "street_admin_A": set(),
        "org_admin_A": {"A"},
        "org_admin_B": {"B"},
        "superadmin": {"A", "B"},
    },
}


@dataclass
class Target:
    county: int
    street: int
    entity: int
    round: int
    member: int
    instructor: int


async def _world(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> tuple[dict[str, dict[str, str]], dict[str, Target]]:
    targets: dict[str, Target] = {}
    streets = {}
    for side in ("A", "B"):
        county = await f.org(db, f"{side}县委")
        street = await f.org(db, f"{side}街道党工委", parent=county, kind="committee")
        admin = await f.admin_actor(db, settings, county)
        entity = await client.post(
            f"{API}/entities", json=entity_body(street), headers=admin.headers
        )
        census_round = await client.post(
            f"{API}/rounds",
            json={"org_id": county.id, "period": "2026Q4", "due_on": "2026-12-31"},
            headers=admin.headers,
        )
        member = await f.member(db, settings, street, f"{side}指导员")
        instructor = await f.member(db, settings, street, f"{side}在任指导员")
        await client.post(
            f"{API}/entities/{entity.json()['id']}/instructors",
            json={"member_id": instructor.id},
            headers=admin.headers,
        )
        targets[side] = Target(
            county.id,
            street.id,
            entity.json()["id"],
            census_round.json()["id"],
            member.id,
            instructor.id,
        )
        streets[side] = street
    headers = {
        "anonymous": {},
        "resident": (await f.resident_actor(db, settings)).headers,
        "member": (await f.member_actor(db, settings, streets["A"])).headers,
        "street_admin_A": (
            await f.admin_actor(db, settings, streets["A"], name="街道书记")
        ).headers,
        "org_admin_A": (await f.admin_actor(db, settings, await _county(db, targets["A"]))).headers,
        "org_admin_B": (await f.admin_actor(db, settings, await _county(db, targets["B"]))).headers,
        "superadmin": (await f.superadmin_actor(db, settings)).headers,
    }
    return headers, targets


async def _county(db: AsyncSession, target: Target) -> Any:
    from app.organization.models import Organization

    return await db.get(Organization, target.county)


Call = Callable[[httpx.AsyncClient, dict[str, str], Target], Awaitable[httpx.Response]]


def _registry() -> dict[str, Any]:
    content = csv_bytes(
        [[credit_code(), "新公司", "54", "511621"]],
        ["统一社会信用代码", "名称", "行业代码", "行政区划代码"],
    )
    return {"file": ("名录.csv", content, "text/csv")}


# name -> (call, success status, level of the target, members get 404 instead of 403)
TARGETED: dict[str, tuple[Call, int, str, bool]] = {
    "POST /census/entities": (
        lambda c, h, t: c.post(f"{API}/entities", json=entity_body_for(t), headers=h),
        201,
        "street",
        False,
    ),
    "GET /census/entities?org_id": (
        lambda c, h, t: c.get(f"{API}/entities", params={"org_id": t.street}, headers=h),
        200,
        "street",
        False,
    ),
    "POST /census/entities/import?org_id": (
        lambda c, h, t: c.post(
            f"{API}/entities/import", params={"org_id": t.street}, files=_registry(), headers=h
        ),
        200,
        "street",
        False,
    ),
    "GET /census/entities/{id}": (
        lambda c, h, t: c.get(f"{API}/entities/{t.entity}", headers=h),
        200,
        "street",
        True,
    ),
    "GET /census/entities/{id}/export": (
        lambda c, h, t: c.get(f"{API}/entities/{t.entity}/export", headers=h),
        200,
        "street",
        True,
    ),
    "PATCH /census/entities/{id}": (
        lambda c, h, t: c.patch(
            f"{API}/entities/{t.entity}", json={"version": 1, "staff_count": 9}, headers=h
        ),
        200,
        "street",
        False,
    ),
    "POST /census/entities/{id}/surveys": (
        lambda c, h, t: c.post(
            f"{API}/entities/{t.entity}/surveys", json=survey_body(t.round, 1), headers=h
        ),
        201,
        "street",
        True,
    ),
    "POST /census/entities/{id}/organization": (
        lambda c, h, t: c.post(
            f"{API}/entities/{t.entity}/organization",
            json={"mode": "joint", "org_id": t.street},
            headers=h,
        ),
        200,
        "street",
        False,
    ),
    "DELETE /census/entities/{id}/organization": (
        lambda c, h, t: c.delete(f"{API}/entities/{t.entity}/organization", headers=h),
        200,
        "street",
        False,
    ),
    "POST /census/entities/{id}/instructors": (
        lambda c, h, t: c.post(
            f"{API}/entities/{t.entity}/instructors", json={"member_id": t.member}, headers=h
        ),
        201,
        "street",
        False,
    ),
    "DELETE /census/entities/{id}/instructors/{member_id}": (
        lambda c, h, t: c.delete(
            f"{API}/entities/{t.entity}/instructors/{t.instructor}", headers=h
        ),
        204,
        "street",
        False,
    ),
    "POST /census/instructor-groups": (
        lambda c, h, t: c.post(
            f"{API}/instructor-groups",
            json={"group_name": "指导组", "member_ids": [t.member], "entity_ids": [t.entity]},
            headers=h,
        ),
        201,
        "street",
        False,
    ),
    "POST /census/rounds": (
        lambda c, h, t: c.post(
            f"{API}/rounds",
            json={"org_id": t.county, "period": "2027Q1", "due_on": "2027-03-31"},
            headers=h,
        ),
        201,
        "county",
        False,
    ),
    "GET /census/rounds/{id}": (
        lambda c, h, t: c.get(f"{API}/rounds/{t.round}", headers=h),
        200,
        "county",
        False,
    ),
    "POST /census/rounds/{id}/close": (
        lambda c, h, t: c.post(f"{API}/rounds/{t.round}/close", json={"version": 1}, headers=h),
        200,
        "county",
        False,
    ),
    "GET /census/stats?org_id": (
        lambda c, h, t: c.get(f"{API}/stats", params={"org_id": t.street}, headers=h),
        200,
        "street",
        False,
    ),
    "GET /census/export?org_id": (
        lambda c, h, t: c.get(f"{API}/export", params={"org_id": t.street}, headers=h),
        200,
        "street",
        False,
    ),
    "GET /census/found-members?org_id": (
        lambda c, h, t: c.get(f"{API}/found-members", params={"org_id": t.street}, headers=h),
        200,
        "street",
        False,
    ),
}

UNTARGETED: dict[
    str, tuple[Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]], bool]
] = {
    "GET /census/entities": (lambda c, h: c.get(f"{API}/entities", headers=h), False),
    "GET /census/rounds": (lambda c, h: c.get(f"{API}/rounds", headers=h), False),
    "GET /census/stats": (lambda c, h: c.get(f"{API}/stats", headers=h), False),
    "GET /census/export": (lambda c, h: c.get(f"{API}/export", headers=h), False),
    "GET /census/found-members": (lambda c, h: c.get(f"{API}/found-members", headers=h), False),
    "GET /census/me/entities": (lambda c, h: c.get(f"{API}/me/entities", headers=h), True),
}


def entity_body_for(t: Target) -> dict[str, Any]:
    from app.organization.models import Organization

    street = Organization(id=t.street)
    return entity_body(street)


def expected(caller: str, side: str | None, success: int, level: str, member_404: bool) -> int:
    if caller == "anonymous":
        return 401
    if caller not in SEES[level]:
        if member_404 and caller == "member":
            return 404
        if member_404 and caller == "resident":
            return 404
        return 403
    if side is None or side in SEES[level][caller]:
        return success
    return 404


async def test_census_authorization_matrix(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
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
        for name, (call, success, level, member_404) in TARGETED.items():
            for side, target in targets.items():
                response = await run(lambda: call(client, h, target))
                want = expected(caller, side, success, level, member_404)
                table.append((caller, name, side, want, response.status_code))
                if response.status_code >= 400:
                    assert response.headers["content-type"] == "application/problem+json"
        for name, (untargeted, members_too) in UNTARGETED.items():
            response = await run(lambda: untargeted(client, h))
            want = expected(caller, None, 200, "street", False)
            if members_too and caller != "anonymous":
                # /me/entities: any caller with a member record (superadmin has none).
                want = 403 if caller in ("resident", "superadmin") else 200
            table.append((caller, name, "-", want, response.status_code))

    wrong = [row for row in table if row[3] != row[4]]
    report = "\n".join(f"{c:15} {e:50} {s}  expected {w}  got {g}" for c, e, s, w, g in wrong)
    assert not wrong, "census authorization mismatches:\n" + report
    assert len(table) == len(CALLERS) * (len(TARGETED) * 2 + len(UNTARGETED))


async def test_lists_never_include_other_subtrees(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    headers, targets = await _world(client, db, settings)
    side_of_entity = {t.entity: side for side, t in targets.items()}
    side_of_round = {t.round: side for side, t in targets.items()}
    for caller in ("street_admin_A", "org_admin_A", "org_admin_B", "superadmin"):
        h = headers[caller]
        ledger = (await client.get(f"{API}/entities", headers=h)).json()["items"]
        assert {side_of_entity[e["id"]] for e in ledger} == SEES["street"][caller], caller
        stats = (await client.get(f"{API}/stats", headers=h)).json()
        assert stats["total"] == len(SEES["street"][caller])
        rounds = (await client.get(f"{API}/rounds", headers=h)).json()["items"]
        assert {side_of_round[r["id"]] for r in rounds} == SEES["county"][caller], caller
    anonymous = await client.get(f"{API}/entities")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "auth.missing_token"
