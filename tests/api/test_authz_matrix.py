"""The authorization matrix of the organisation, member, role, audit and transfer endpoints.

Generated: every caller (anonymous, resident, member, branch admin of branch A, org
admin of county A, org admin of county B, superadmin) x every endpoint x a target inside
county A and a target inside county B. The expected status follows from three rules:
no token 401; not an admin 403; an admin gets the success status when the target is in
his scope, else 404 (existence is never revealed). Each call runs in a savepoint that is
rolled back, so calls do not influence one another.

The second verb: a co-manager (admin of an organisation in a third county that co-manages
county A's member through an open dual-management grant) may *read* that member and
reveal his phone, and is refused (403) every change to him; everything else of A stays
404 for him.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.config import Settings
from app.members.models import Member
from app.organization.models import DualManagementGrant, Organization
from app.transfers.models import RelationTransfer
from tests import factories as f
from tests.support.roster import csv_bytes

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


# What the co-manager of county A's member gets on side A (on side B: 404 throughout).
CO_MANAGER_ON_A = {
    "GET /members/{id}": 200,
    "POST /members/{id}/reveal": 200,
    "PATCH /members/{id}": 403,
    "PATCH /members/{id} home_org_id": 403,
    "POST /members/{id}/reveal id_number": 403,
}


@dataclass
class Target:
    """Objects of one county: its branch, a member, a second member, a role there."""

    county: int
    branch: int
    member: int
    candidate: int
    role: int
    # Relation transfers of two more members of the branch to a group under it (so the
    # branch's admins are both its home and its receiving side): one requested, one
    # approved.
    receiving: int = 0
    transfer: int = 0
    approved: int = 0


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    targets: dict[str, Target]


async def _world(db: AsyncSession, settings: Settings) -> World:
    targets: dict[str, Target] = {}
    branches: dict[str, Organization] = {}
    counties: dict[str, Organization] = {}
    for side in ("A", "B"):
        county = await f.org(db, f"{side}县委")
        town = await f.org(db, f"{side}镇党委", parent=county, kind="committee")
        branch = await f.org(db, f"{side}村党支部", parent=town)
        member = await f.member(db, settings, branch, f"{side}党员")
        candidate = await f.member(db, settings, branch, f"{side}入党积极分子转正")
        deputy = await f.member(db, settings, branch, f"{side}组织委员")
        role = await f.grant(db, deputy, branch, "branch_admin")
        await record(db, actor_account_id=None, action="test.seed", org_id=branch.id)
        targets[side] = Target(county.id, branch.id, member.id, candidate.id, role.id)
        await _transfers(db, settings, targets[side], branch, side)
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
    # A destination organisation co-manages A's member (as after an accepted check-in).
    destination = await f.org(db, "C流入地商圈党委", region_code="440305")
    db.add(DualManagementGrant(member_id=targets["A"].member, org_id=destination.id))
    headers["co_manager_A"] = (await f.admin_actor(db, settings, destination)).headers
    return World(headers, targets)


async def _transfers(
    db: AsyncSession, settings: Settings, target: Target, branch: Organization, side: str
) -> None:
    group = await f.org(db, f"{side}村第一党小组", parent=branch)
    target.receiving = group.id
    for name, status in (("requested", "requested"), ("approved", "approved")):
        moving = await f.member(db, settings, branch, f"{side}转出党员{name}")
        transfer = RelationTransfer(
            member_id=moving.id,
            from_org_id=branch.id,
            to_org_id=group.id,
            status=status,
            reason="权限矩阵测试",
            letter_no="L-1" if status == "approved" else None,
            version=1 if status == "requested" else 2,
        )
        db.add(transfer)
        await db.flush()
        setattr(target, "transfer" if status == "requested" else "approved", transfer.id)


Call = Callable[[httpx.AsyncClient, dict[str, str], Target], Awaitable[httpx.Response]]


def _import_file() -> dict[str, Any]:
    content = csv_bytes([["新党员", f.unique_id_number()]], headers=["姓名", "身份证号"])
    return {"file": ("roster.csv", content, "text/csv")}


# name -> (call on a target, success status)
TARGETED: dict[str, tuple[Call, int]] = {
    "GET /orgs/{id}": (lambda c, h, t: c.get(f"/api/v1/orgs/{t.branch}", headers=h), 200),
    "PATCH /orgs/{id}": (
        lambda c, h, t: c.patch(f"/api/v1/orgs/{t.branch}", json={"address": "村委会"}, headers=h),
        200,
    ),
    "GET /orgs/{id}/children": (
        lambda c, h, t: c.get(f"/api/v1/orgs/{t.branch}/children", headers=h),
        200,
    ),
    "GET /orgs/{id}/subtree": (
        lambda c, h, t: c.get(f"/api/v1/orgs/{t.branch}/subtree", headers=h),
        200,
    ),
    "POST /orgs": (
        lambda c, h, t: c.post(
            "/api/v1/orgs",
            json={"name": "新党小组", "kind": "branch", "parent_id": t.branch},
            headers=h,
        ),
        201,
    ),
    "GET /orgs/{id}/roles": (
        lambda c, h, t: c.get(f"/api/v1/orgs/{t.branch}/roles", headers=h),
        200,
    ),
    "POST /orgs/{id}/roles": (
        lambda c, h, t: c.post(
            f"/api/v1/orgs/{t.branch}/roles",
            json={"member_id": t.candidate, "role": "branch_admin"},
            headers=h,
        ),
        201,
    ),
    "DELETE /orgs/{id}/roles/{role_id}": (
        lambda c, h, t: c.delete(f"/api/v1/orgs/{t.branch}/roles/{t.role}", headers=h),
        204,
    ),
    "GET /members?org_id": (
        lambda c, h, t: c.get("/api/v1/members", params={"org_id": t.branch}, headers=h),
        200,
    ),
    "POST /members": (
        lambda c, h, t: c.post(
            "/api/v1/members",
            json={"name": "新党员", "id_number": f.unique_id_number(), "home_org_id": t.branch},
            headers=h,
        ),
        201,
    ),
    "GET /members/{id}": (lambda c, h, t: c.get(f"/api/v1/members/{t.member}", headers=h), 200),
    "PATCH /members/{id}": (
        lambda c, h, t: c.patch(
            f"/api/v1/members/{t.member}", json={"version": 1, "name": "改名"}, headers=h
        ),
        200,
    ),
    "PATCH /members/{id} home_org_id": (
        lambda c, h, t: c.patch(
            f"/api/v1/members/{t.member}",
            json={"version": 1, "home_org_id": t.branch},
            headers=h,
        ),
        200,
    ),
    "POST /members/{id}/reveal": (
        lambda c, h, t: c.post(
            f"/api/v1/members/{t.member}/reveal",
            json={"field": "phone", "reason": "权限矩阵测试"},
            headers=h,
        ),
        200,
    ),
    "POST /members/{id}/reveal id_number": (
        lambda c, h, t: c.post(
            f"/api/v1/members/{t.member}/reveal",
            json={"field": "id_number", "reason": "权限矩阵测试"},
            headers=h,
        ),
        200,
    ),
    "POST /members/import?org_id": (
        lambda c, h, t: c.post(
            "/api/v1/members/import", params={"org_id": t.branch}, files=_import_file(), headers=h
        ),
        200,
    ),
    "GET /audit?org_id": (
        lambda c, h, t: c.get("/api/v1/audit", params={"org_id": t.branch}, headers=h),
        200,
    ),
    "GET /transfers?org_id": (
        lambda c, h, t: c.get("/api/v1/transfers", params={"org_id": t.branch}, headers=h),
        200,
    ),
    "GET /transfers/{id}": (
        lambda c, h, t: c.get(f"/api/v1/transfers/{t.transfer}", headers=h),
        200,
    ),
    "POST /transfers": (
        lambda c, h, t: c.post(
            "/api/v1/transfers",
            json={"member_id": t.candidate, "to_org_id": t.receiving, "reason": "矩阵"},
            headers=h,
        ),
        201,
    ),
    "POST /transfers/{id}/approve": (
        lambda c, h, t: c.post(
            f"/api/v1/transfers/{t.transfer}/approve",
            json={"version": 1, "letter_no": "L-2"},
            headers=h,
        ),
        200,
    ),
    "POST /transfers/{id}/reject": (
        lambda c, h, t: c.post(
            f"/api/v1/transfers/{t.transfer}/reject",
            json={"version": 1, "reason": "矩阵"},
            headers=h,
        ),
        200,
    ),
    "POST /transfers/{id}/withdraw": (
        lambda c, h, t: c.post(
            f"/api/v1/transfers/{t.transfer}/withdraw", json={"version": 1}, headers=h
        ),
        200,
    ),
    "POST /transfers/{id}/accept": (
        lambda c, h, t: c.post(
            f"/api/v1/transfers/{t.approved}/accept", json={"version": 2}, headers=h
        ),
        200,
    ),
    "POST /transfers/{id}/refuse": (
        lambda c, h, t: c.post(
            f"/api/v1/transfers/{t.approved}/refuse",
            json={"version": 2, "reason": "矩阵"},
            headers=h,
        ),
        200,
    ),
}

# Endpoints open to members for their own objects: another caller who is no admin of
# the object's side cannot see it (404), rather than being refused for his role.
NOT_ADMIN: dict[str, int] = {
    "GET /transfers/{id}": 404,
    "POST /transfers/{id}/withdraw": 404,
}

UNTARGETED: dict[str, Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]] = {
    "GET /members": lambda c, h: c.get("/api/v1/members", headers=h),
    "GET /members/import/template": lambda c, h: c.get(
        "/api/v1/members/import/template", headers=h
    ),
    "GET /audit": lambda c, h: c.get("/api/v1/audit", headers=h),
    "GET /orgs": lambda c, h: c.get("/api/v1/orgs", headers=h),
    "GET /transfers": lambda c, h: c.get("/api/v1/transfers", headers=h),
    "POST /auth/console/tickets/{ticket}/confirm": lambda c, h: _confirm_ticket(c, h),
}
# Untargeted endpoints whose success is not 200.
UNTARGETED_SUCCESS = {"POST /auth/console/tickets/{ticket}/confirm": 204}


async def _confirm_ticket(c: httpx.AsyncClient, h: dict[str, str]) -> httpx.Response:
    """The mini-program confirms a console login ticket (any admin, for himself)."""
    ticket = (await c.post("/api/v1/auth/console/tickets")).json()["ticket"]
    return await c.post(f"/api/v1/auth/console/tickets/{ticket}/confirm", headers=h)


# Open to every logged-in account (residents included): only anonymous is refused.
EVERYONE: dict[str, Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]] = {
    "GET /orgs/directory": lambda c, h: c.get(
        "/api/v1/orgs/directory", params={"near": "23.13,113.33"}, headers=h
    ),
}


def expected(caller: str, side: str | None, success: int, name: str = "") -> int:
    if caller == "co_manager_A":
        if side is None:
            return success
        return CO_MANAGER_ON_A.get(name, 404) if side == "A" else 404
    if caller == "anonymous":
        return 401
    if caller not in ADMIN_SEES:
        return NOT_ADMIN.get(name, 403)
    if side is None or side in ADMIN_SEES[caller]:
        return success
    return 404


async def test_authorization_matrix(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await _world(db, settings)
    table: list[tuple[str, str, str, int, int]] = []

    async def run(make: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        savepoint = await db.begin_nested()
        try:
            return await make()
        finally:
            await savepoint.rollback()

    for caller in CALLERS:
        headers = world.headers[caller]
        for name, (call, success) in TARGETED.items():
            for side, target in world.targets.items():
                response = await run(lambda: call(client, headers, target))
                want = expected(caller, side, success, name)
                table.append((caller, name, side, want, response.status_code))
                if response.status_code >= 400:
                    assert response.headers["content-type"] == "application/problem+json"
        for name, untargeted in UNTARGETED.items():
            response = await run(lambda: untargeted(client, headers))
            success = UNTARGETED_SUCCESS.get(name, 200)
            table.append((caller, name, "-", expected(caller, None, success), response.status_code))
        for name, anyone in EVERYONE.items():
            response = await run(lambda: anyone(client, headers))
            want = 401 if caller == "anonymous" else 200
            table.append((caller, name, "-", want, response.status_code))

    wrong = [row for row in table if row[3] != row[4]]
    report = "\n".join(f"{c:15} {e:35} {s}  expected {w}  got {g}" for c, e, s, w, g in wrong)
    assert not wrong, "authorization matrix mismatches:\n" + report
    assert len(table) == len(CALLERS) * (len(TARGETED) * 2 + len(UNTARGETED) + len(EVERYONE))


async def test_lists_never_include_other_subtrees(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await _world(db, settings)
    orgs = (await db.execute(select(Organization.id, Organization.name))).all()
    side_of_org = {org_id: name[0] for org_id, name in orgs}
    homes = (await db.execute(select(Member.id, Member.home_org_id))).all()
    sides_of_member = {member_id: side_of_org[home] for member_id, home in homes}

    for caller, sides in ADMIN_SEES.items():
        headers = world.headers[caller]
        members = await client.get("/api/v1/members", params={"limit": 100}, headers=headers)
        seen = {sides_of_member[m["id"]] for m in members.json()["items"]}
        assert seen - {"C"} == sides, (caller, seen)

        audit = await client.get("/api/v1/audit", params={"limit": 100}, headers=headers)
        audit_sides = {
            side_of_org[e["org_id"]] for e in audit.json()["items"] if e["org_id"] is not None
        }
        assert audit_sides == sides, (caller, audit_sides)

        transfers = await client.get("/api/v1/transfers", params={"limit": 100}, headers=headers)
        moved = {
            side_of_org[t[end]["id"]]
            for t in transfers.json()["items"]
            for end in ("from_org", "to_org")
        }
        assert moved == sides, (caller, moved)

        tops = await client.get("/api/v1/orgs", params={"limit": 100}, headers=headers)
        top_sides = {side_of_org[o["id"]] for o in tops.json()["items"]}
        assert top_sides - ({"C"} if caller == "superadmin" else set()) == sides, caller

        for side, target in world.targets.items():
            subtree = await client.get(f"/api/v1/orgs/{target.county}/subtree", headers=headers)
            if caller == "branch_admin_A" and side == "A":
                # The county itself is above him: not visible, so neither is its subtree.
                assert subtree.status_code == 404
            elif side in sides:
                names = {side_of_org[o["id"]] for o in subtree.json()["items"]}
                assert names == {side}
            else:
                assert subtree.status_code == 404

    # The co-manager reads his own organisation and the one co-managed member of A.
    headers = world.headers["co_manager_A"]
    members = await client.get("/api/v1/members", params={"limit": 100}, headers=headers)
    seen_ids = {m["id"] for m in members.json()["items"]}
    assert {sides_of_member[m] for m in seen_ids} == {"A", "C"}
    assert {m for m in seen_ids if sides_of_member[m] == "A"} == {world.targets["A"].member}
    audit = await client.get("/api/v1/audit", params={"limit": 100}, headers=headers)
    assert all(side_of_org[e["org_id"]] == "C" for e in audit.json()["items"])
    transfers = await client.get("/api/v1/transfers", headers=headers)
    assert transfers.json()["items"] == []
