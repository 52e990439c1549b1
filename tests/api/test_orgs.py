"""The organisation tree: create, read, edit, list children/subtree, move subtrees."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.organization.models import Organization
from tests import factories as f
from tests.conftest import problem


async def _tree(db: AsyncSession) -> dict[str, Organization]:
    county = await f.org(db, "岳池县委")
    town = await f.org(db, "石垭镇党委", parent=county, kind="committee")
    village = await f.org(db, "花园村党支部", parent=town)
    other = await f.org(db, "邻县县委")
    return {"county": county, "town": town, "village": village, "other": other}


async def test_admin_creates_child_and_reads_it(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    body = {
        "name": "岳池县驻深圳流动党员党支部",
        "kind": "branch",
        "parent_id": t["county"].id,
        "host": "mobile",
        "region_code": "440305",
        "address": "广东省深圳市南山区",
        "lat": 22.5333,
        "lon": 113.9305,
    }
    created = await client.post("/api/v1/orgs", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["path"] == f"{t['county'].path}{out['id']}/"
    assert out["depth"] == 1 and out["version"] == 1
    assert {k: out[k] for k in body} == body

    got = await client.get(f"/api/v1/orgs/{out['id']}", headers=admin.headers)
    assert got.json()["name"] == body["name"]
    row = await db.get(Organization, out["id"])
    assert row is not None and row.host == "mobile" and row.depth == 1
    audit = (
        await db.execute(select(AuditEntry).where(AuditEntry.action == "org.created"))
    ).scalar_one()
    assert audit.subject_id == out["id"] and audit.actor_account_id == admin.account.id


async def test_create_validates_region_parent_and_root(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    base = {"name": "新支部", "kind": "branch", "parent_id": t["town"].id}
    bad_region = await client.post(
        "/api/v1/orgs", json=base | {"region_code": "999999"}, headers=admin.headers
    )
    body = problem(bad_region, 422, "org.invalid_region_code")
    assert body["errors"][0]["field"] == "region_code"
    problem(
        await client.post(
            "/api/v1/orgs", json=base | {"parent_id": t["other"].id}, headers=admin.headers
        ),
        404,
        "org.parent_not_found",
    )
    problem(
        await client.post("/api/v1/orgs", json=base | {"parent_id": None}, headers=admin.headers),
        403,
        "org.root_requires_superadmin",
    )
    bad = await client.post(
        "/api/v1/orgs", json=base | {"kind": "club", "path": "/1/"}, headers=admin.headers
    )
    fields = {e["field"] for e in problem(bad, 422, "validation.failed")["errors"]}
    assert fields == {"kind", "path"}
    count = (await db.execute(select(func.count()).select_from(Organization))).scalar_one()
    assert count == 4

    root = await client.post(
        "/api/v1/orgs",
        json={"name": "新县委", "kind": "committee", "parent_id": None},
        headers=(await f.superadmin_actor(db, settings)).headers,
    )
    assert root.status_code == 201 and root.json()["depth"] == 0
    assert root.json()["path"] == f"/{root.json()['id']}/"


async def test_create_is_idempotent(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    body = {"name": "幂等支部", "kind": "branch", "parent_id": t["town"].id}
    headers = admin.headers | {"Idempotency-Key": "org-create-1"}
    first = await client.post("/api/v1/orgs", json=body, headers=headers)
    again = await client.post("/api/v1/orgs", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    n = await db.execute(select(func.count()).where(Organization.name == "幂等支部"))
    assert n.scalar_one() == 1


async def test_get_is_scoped(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    branch = await f.admin_actor(db, settings, t["village"], role="branch_admin")
    member = await f.member_actor(db, settings, t["village"])
    assert (await client.get(f"/api/v1/orgs/{t['village'].id}")).status_code == 401
    problem(
        await client.get(f"/api/v1/orgs/{t['village'].id}", headers=member.headers),
        403,
        "auth.admin_required",
    )
    ok = await client.get(f"/api/v1/orgs/{t['village'].id}", headers=branch.headers)
    assert ok.json()["id"] == t["village"].id
    for outside in (t["town"], t["county"], t["other"]):
        problem(
            await client.get(f"/api/v1/orgs/{outside.id}", headers=branch.headers),
            404,
            "org.not_found",
        )
    problem(
        await client.get("/api/v1/orgs/987654321", headers=branch.headers), 404, "org.not_found"
    )


async def test_patch_edits_fields_and_checks_version(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    url = f"/api/v1/orgs/{t['village'].id}"
    done = await client.patch(
        url,
        json={"name": "花园村第一党支部", "address": "花园村村委会", "version": 1},
        headers=admin.headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["name"] == "花园村第一党支部" and done.json()["version"] == 2
    problem(
        await client.patch(url, json={"name": "旧版本", "version": 1}, headers=admin.headers),
        409,
        "conflict.stale_version",
    )
    problem(
        await client.patch(url, json={"region_code": "000000"}, headers=admin.headers),
        422,
        "org.invalid_region_code",
    )
    problem(
        await client.patch(url, json={"name": None}, headers=admin.headers),
        422,
        "validation.failed",
    )
    cleared = await client.patch(url, json={"address": None}, headers=admin.headers)
    assert cleared.json()["address"] is None and cleared.json()["version"] == 3
    await db.refresh(t["village"])
    assert t["village"].name == "花园村第一党支部" and t["village"].version == 3
    outsider = await f.admin_actor(db, settings, t["other"])
    problem(
        await client.patch(url, json={"name": "越权"}, headers=outsider.headers),
        404,
        "org.not_found",
    )


async def test_children_and_subtree_are_paginated_in_order(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    branches = [await f.org(db, f"支部{i}", parent=t["town"]) for i in range(5)]
    admin = await f.admin_actor(db, settings, t["county"])

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await client.get(
            f"/api/v1/orgs/{t['town'].id}/children", params=params, headers=admin.headers
        )
        seen += [o["id"] for o in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted([t["village"].id] + [b.id for b in branches])

    sub = await client.get(
        f"/api/v1/orgs/{t['county'].id}/subtree", params={"limit": 100}, headers=admin.headers
    )
    paths = [o["path"] for o in sub.json()["items"]]
    assert paths == sorted(paths) and len(paths) == 8
    assert all(p.startswith(t["county"].path) for p in paths)
    assert t["other"].path not in paths
    assert [o["depth"] for o in sub.json()["items"]][:2] == [0, 1]

    first = await client.get(
        f"/api/v1/orgs/{t['county'].id}/subtree", params={"limit": 3}, headers=admin.headers
    )
    rest = await client.get(
        f"/api/v1/orgs/{t['county'].id}/subtree",
        params={"limit": 100, "cursor": first.json()["next_cursor"]},
        headers=admin.headers,
    )
    assert [o["path"] for o in first.json()["items"] + rest.json()["items"]] == paths
    problem(
        await client.get(
            f"/api/v1/orgs/{t['county'].id}/subtree",
            params={"cursor": "not-a-cursor"},
            headers=admin.headers,
        ),
        422,
        "pagination.invalid_cursor",
    )
    problem(
        await client.get(
            f"/api/v1/orgs/{t['county'].id}/children", params={"limit": 101}, headers=admin.headers
        ),
        422,
        "validation.failed",
    )
    assert (await client.get(f"/api/v1/orgs/{t['county'].id}/children")).status_code == 401
    assert (await client.get(f"/api/v1/orgs/{t['county'].id}/subtree")).status_code == 401
    outsider = await f.admin_actor(db, settings, t["other"])
    for what in ("children", "subtree"):
        problem(
            await client.get(f"/api/v1/orgs/{t['county'].id}/{what}", headers=outsider.headers),
            404,
            "org.not_found",
        )


async def test_move_rewrites_the_whole_subtree(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    town2 = await f.org(db, "乔家镇党委", parent=t["county"], kind="committee")
    group = await f.org(db, "党小组", parent=t["village"])
    admin = await f.admin_actor(db, settings, t["county"])

    moved = await client.post(
        f"/api/v1/orgs/{t['village'].id}/move",
        json={"parent_id": town2.id, "version": 1},
        headers=admin.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["parent_id"] == town2.id and moved.json()["version"] == 2
    assert moved.json()["path"] == f"{town2.path}{t['village'].id}/"
    rows = {
        o.id: o
        for o in (
            await db.execute(select(Organization).execution_options(populate_existing=True))
        ).scalars()
    }
    assert rows[group.id].path == f"{town2.path}{t['village'].id}/{group.id}/"
    assert rows[group.id].depth == 3 and rows[t["village"].id].depth == 2
    assert rows[t["town"].id].path == t["town"].path  # untouched

    problem(
        await client.post(
            f"/api/v1/orgs/{t['village'].id}/move",
            json={"parent_id": t["town"].id, "version": 1},
            headers=admin.headers,
        ),
        409,
        "conflict.stale_version",
    )
    problem(
        await client.post(
            f"/api/v1/orgs/{town2.id}/move",
            json={"parent_id": group.id, "version": 1},
            headers=admin.headers,
        ),
        422,
        "org.move_into_descendant",
    )
    problem(
        await client.post(
            f"/api/v1/orgs/{town2.id}/move",
            json={"parent_id": town2.id, "version": 1},
            headers=admin.headers,
        ),
        422,
        "org.move_into_descendant",
    )
    audit = (
        await db.execute(select(AuditEntry).where(AuditEntry.action == "org.moved"))
    ).scalar_one()
    assert audit.detail["nodes"] == 2 and audit.detail["to_parent_id"] == town2.id


async def test_move_needs_scope_over_both_parents(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    town2 = await f.org(db, "乔家镇党委", parent=t["county"], kind="committee")
    town_admin = await f.admin_actor(db, settings, t["town"])
    # New parent outside his subtree: it does not exist for him.
    problem(
        await client.post(
            f"/api/v1/orgs/{t['village'].id}/move",
            json={"parent_id": town2.id, "version": 1},
            headers=town_admin.headers,
        ),
        404,
        "org.parent_not_found",
    )
    # Under a node of his own subtree: that would be a cycle.
    inner = await f.org(db, "镇机关党支部", parent=t["town"])
    problem(
        await client.post(
            f"/api/v1/orgs/{t['town'].id}/move",
            json={"parent_id": inner.id, "version": 1},
            headers=town_admin.headers,
        ),
        422,
        "org.move_into_descendant",
    )
    # Admin of the village and of the other town, but not of the village's parent.
    two_hats = await f.admin_actor(db, settings, t["village"], role="branch_admin")
    assert two_hats.member is not None
    await f.grant(db, two_hats.member, town2, "org_admin")
    problem(
        await client.post(
            f"/api/v1/orgs/{t['village'].id}/move",
            json={"parent_id": town2.id, "version": 1},
            headers=two_hats.headers,
        ),
        403,
        "org.move_forbidden",
    )
    problem(
        await client.patch(
            f"/api/v1/orgs/{t['town'].id}",
            json={"parent_id": t["other"].id},
            headers=town_admin.headers,
        ),
        404,
        "org.parent_not_found",
    )
    sibling = await f.org(db, "村二支部", parent=t["town"])
    problem(
        await client.post(
            f"/api/v1/orgs/{sibling.id}/move",
            json={"parent_id": t["village"].id, "version": 1},
            headers=(await f.admin_actor(db, settings, sibling)).headers,
        ),
        404,
        "org.parent_not_found",
    )
    county_admin = await f.admin_actor(db, settings, t["county"])
    problem(
        await client.post(
            f"/api/v1/orgs/{t['county'].id}/move",
            json={"parent_id": t["other"].id, "version": 1},
            headers=county_admin.headers,
        ),
        404,
        "org.parent_not_found",
    )
    superadmin = await f.superadmin_actor(db, settings)
    merged = await client.post(
        f"/api/v1/orgs/{t['county'].id}/move",
        json={"parent_id": t["other"].id, "version": 1},
        headers=superadmin.headers,
    )
    assert merged.status_code == 200
    village = await client.get(f"/api/v1/orgs/{t['village'].id}", headers=superadmin.headers)
    assert village.json()["path"].startswith(t["other"].path)
    assert village.json()["depth"] == 3
    # The county admin's scope follows the move: his subtree is still his.
    still = await client.get(f"/api/v1/orgs/{t['village'].id}", headers=county_admin.headers)
    assert still.status_code == 200


async def test_move_via_patch_parent_id(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    town2 = await f.org(db, "乔家镇党委", parent=t["county"], kind="committee")
    admin = await f.admin_actor(db, settings, t["county"])
    done = await client.patch(
        f"/api/v1/orgs/{t['village'].id}",
        json={"parent_id": town2.id, "name": "花园村党支部（迁）", "version": 1},
        headers=admin.headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["parent_id"] == town2.id and done.json()["version"] == 2
    assert done.json()["name"] == "花园村党支部（迁）"
    problem(
        await client.patch(
            f"/api/v1/orgs/{t['town'].id}", json={"parent_id": None}, headers=admin.headers
        ),
        403,
        "org.root_requires_superadmin",
    )


async def test_concurrent_crossing_moves_never_make_a_cycle(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        root = await f.org(s, "县委")
        a = await f.org(s, "甲镇", parent=root, kind="committee")
        b = await f.org(s, "乙镇", parent=root, kind="committee")
        sa = await f.superadmin_actor(s, settings)
        await s.commit()

    async def move(node: Organization, under: Organization) -> httpx.Response:
        return await committing_client.post(
            f"/api/v1/orgs/{node.id}/move",
            json={"parent_id": under.id, "version": 1},
            headers=sa.headers,
        )

    first, second = await asyncio.gather(move(a, b), move(b, a))
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 422], (first.text, second.text)
    async with AsyncSession(engine) as s:
        rows = {o.id: o for o in (await s.execute(select(Organization))).scalars()}
    # Exactly one is now under the other, and every path is consistent with parent_id.
    for org in rows.values():
        if org.parent_id is None:
            assert org.path == f"/{org.id}/"
        else:
            assert org.path == f"{rows[org.parent_id].path}{org.id}/"
