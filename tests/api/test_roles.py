"""Admin roles: who may grant what where, audit, and immediate effect of a revoke."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.organization.models import Organization, RoleAssignment
from tests import factories as f
from tests.conftest import problem


async def _tree(db: AsyncSession) -> dict[str, Organization]:
    county = await f.org(db, "岳池县委")
    town = await f.org(db, "石垭镇党委", parent=county, kind="committee")
    village = await f.org(db, "花园村党支部", parent=town)
    other = await f.org(db, "邻县县委")
    return {"county": county, "town": town, "village": village, "other": other}


async def test_grant_list_revoke_round_trip(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    secretary = await f.member(db, settings, t["village"], "张秀英")
    url = f"/api/v1/orgs/{t['village'].id}/roles"

    granted = await client.post(
        url, json={"member_id": secretary.id, "role": "branch_admin"}, headers=admin.headers
    )
    assert granted.status_code == 201, granted.text
    role = granted.json()
    assert role["member_name"] == "张秀英" and role["org_id"] == t["village"].id
    assert role["granted_by_account_id"] == admin.account.id
    row = await db.get(RoleAssignment, role["id"])
    assert row is not None and row.role == "branch_admin" and row.member_id == secretary.id

    listed = await client.get(url, headers=admin.headers)
    assert [r["id"] for r in listed.json()["items"]] == [role["id"]]

    # The new secretary logs in and administers the village (and only it).
    acc = await f.account(db, member=secretary)
    as_secretary = await f.login(db, settings, acc, secretary)
    mine = await client.get(
        "/api/v1/members", params={"org_id": t["village"].id}, headers=as_secretary.headers
    )
    assert secretary.id in [m["id"] for m in mine.json()["items"]]
    problem(
        await client.get(f"/api/v1/orgs/{t['town'].id}", headers=as_secretary.headers),
        404,
        "org.not_found",
    )

    problem(
        await client.post(
            url, json={"member_id": secretary.id, "role": "branch_admin"}, headers=admin.headers
        ),
        409,
        "role.already_granted",
    )
    revoked = await client.delete(f"{url}/{role['id']}", headers=admin.headers)
    assert revoked.status_code == 204 and revoked.content == b""
    assert await db.get(RoleAssignment, role["id"]) is None
    # Her token still says branch_admin, but scope re-reads roles: no access any more.
    problem(
        await client.get("/api/v1/members", headers=as_secretary.headers),
        403,
        "auth.admin_required",
    )
    problem(
        await client.delete(f"{url}/{role['id']}", headers=admin.headers), 404, "role.not_found"
    )
    actions = (
        await db.execute(
            select(AuditEntry.action, AuditEntry.subject_id, AuditEntry.detail)
            .where(AuditEntry.action.like("role.%"))
            .order_by(AuditEntry.id)
        )
    ).all()
    assert [(a, s, d["role"]) for a, s, d in actions] == [
        ("role.granted", secretary.id, "branch_admin"),
        ("role.revoked", secretary.id, "branch_admin"),
    ]


async def test_branch_admin_may_grant_only_branch_admin(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    branch = await f.admin_actor(db, settings, t["village"], role="branch_admin")
    deputy = await f.member(db, settings, t["village"], "组织委员")
    url = f"/api/v1/orgs/{t['village'].id}/roles"
    problem(
        await client.post(
            url, json={"member_id": deputy.id, "role": "org_admin"}, headers=branch.headers
        ),
        403,
        "role.forbidden",
    )
    ok = await client.post(
        url, json={"member_id": deputy.id, "role": "branch_admin"}, headers=branch.headers
    )
    assert ok.status_code == 201

    county_admin = await f.admin_actor(db, settings, t["county"])
    town_role = await client.post(
        f"/api/v1/orgs/{t['town'].id}/roles",
        json={"member_id": deputy.id, "role": "org_admin"},
        headers=county_admin.headers,
    )
    assert town_role.status_code == 201
    # ... and he cannot take an org_admin role away either.
    problem(
        await client.delete(
            f"/api/v1/orgs/{t['village'].id}/roles/{town_role.json()['id']}",
            headers=branch.headers,
        ),
        404,
        "role.not_found",
    )
    village_org_admin = await client.post(
        url, json={"member_id": deputy.id, "role": "org_admin"}, headers=county_admin.headers
    )
    problem(
        await client.delete(f"{url}/{village_org_admin.json()['id']}", headers=branch.headers),
        403,
        "role.forbidden",
    )
    n = await db.execute(select(func.count()).where(RoleAssignment.member_id == deputy.id))
    assert n.scalar_one() == 3


async def test_grants_stay_inside_the_subtree(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    town_admin = await f.admin_actor(db, settings, t["town"])
    inside = await f.member(db, settings, t["village"], "村民党员")
    outside = await f.member(db, settings, t["other"], "外县党员")
    problem(
        await client.post(
            f"/api/v1/orgs/{t['county'].id}/roles",
            json={"member_id": inside.id, "role": "org_admin"},
            headers=town_admin.headers,
        ),
        404,
        "org.not_found",
    )
    problem(
        await client.post(
            f"/api/v1/orgs/{t['village'].id}/roles",
            json={"member_id": outside.id, "role": "branch_admin"},
            headers=town_admin.headers,
        ),
        404,
        "member.not_found",
    )
    bad = await client.post(
        f"/api/v1/orgs/{t['village'].id}/roles",
        json={"member_id": inside.id, "role": "superadmin"},
        headers=town_admin.headers,
    )
    assert problem(bad, 422, "validation.failed")["errors"][0]["field"] == "role"
    problem(await client.get(f"/api/v1/orgs/{t['village'].id}/roles"), 401, "auth.missing_token")
    resident = await f.resident_actor(db, settings)
    problem(
        await client.get(f"/api/v1/orgs/{t['village'].id}/roles", headers=resident.headers),
        403,
        "auth.admin_required",
    )
    outsider = await f.admin_actor(db, settings, t["other"])
    problem(
        await client.get(f"/api/v1/orgs/{t['village'].id}/roles", headers=outsider.headers),
        404,
        "org.not_found",
    )
    superadmin = await f.superadmin_actor(db, settings)
    top = await client.post(
        f"/api/v1/orgs/{t['county'].id}/roles",
        json={"member_id": outside.id, "role": "org_admin"},
        headers=superadmin.headers,
    )
    assert top.status_code == 201 and top.json()["granted_by_account_id"] == superadmin.account.id


async def test_concurrent_identical_grants_give_one_role(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        county = await f.org(s, "县委")
        admin = await f.admin_actor(s, settings, county)
        target = await f.member(s, settings, county, "候选人")
        await s.commit()
    body = {"member_id": target.id, "role": "branch_admin"}
    results = await asyncio.gather(
        *(
            committing_client.post(
                f"/api/v1/orgs/{county.id}/roles", json=body, headers=admin.headers
            )
            for _ in range(3)
        )
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409]
    async with AsyncSession(engine) as s:
        n = await s.execute(select(func.count()).where(RoleAssignment.member_id == target.id))
        assert n.scalar_one() == 1
