"""Dual management grants *serving*, not *owning* (issue 14, "High").

After a destination organisation accepts a member's check-in, its admins co-manage him:
they see him, the outflow they co-manage and its reports, may reveal his phone to reach
him. Only his home subtree changes his record; everything the destination does shows in
the home subtree's audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core import pii
from app.core.config import Settings
from app.members.models import Member
from tests import factories
from tests.api.test_mobility import (
    World,
    accept,
    approve,
    checkin,
    ledger_ids,
    make_world,
    register,
)
from tests.api.test_order_helpers import Org, ensure_default_categories, order_body
from tests.clock import Clock
from tests.conftest import problem


async def co_managed(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    """The world's member, with an outflow accepted at the destination."""
    o = await approve(client, world.branch_admin, await register(client, world.member))
    return await accept(client, world, await checkin(client, world, o))


async def audit_actions(client: httpx.AsyncClient, admin: factories.Actor) -> list[str]:
    response = await client.get("/api/v1/audit", params={"limit": 100}, headers=admin.headers)
    assert response.status_code == 200, response.text
    return [item["action"] for item in response.json()["items"]]


async def test_co_manager_cannot_change_the_members_record(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await make_world(db, settings)
    await co_managed(client, world)
    member_id = world.member.member.id if world.member.member else 0
    url = f"/api/v1/members/{member_id}"
    seen = await client.get(url, headers=world.dest_admin.headers)
    assert seen.status_code == 200, seen.text  # serving: he sees the member
    version = seen.json()["version"]
    before = (await db.execute(select(Member).where(Member.id == member_id))).scalar_one()
    snapshot = (before.home_org_id, before.name, before.id_number_idx, before.phone_idx)

    for change in (
        {"home_org_id": world.destination.id},
        {"name": "改名"},
        {"id_number": factories.unique_id_number()},
        {"phone": "13800138000"},
        {"status": "probationary"},
    ):
        body = problem(
            await client.patch(
                url, json={"version": version, **change}, headers=world.dest_admin.headers
            ),
            403,
            "member.home_org_required",
        )
        assert "所在党组织" in body["detail"]

    await db.refresh(before)
    assert (before.home_org_id, before.name, before.id_number_idx, before.phone_idx) == snapshot
    assert before.version == version
    # Each refused attempt is in the home branch's log, with who tried.
    log = await client.get("/api/v1/audit", headers=world.branch_admin.headers)
    refused = [e for e in log.json()["items"] if e["action"] == "member.change_refused"]
    assert len(refused) == 5
    assert {(e["actor_account_id"], e["subject_id"]) for e in refused} == {
        (world.dest_admin.account.id, member_id)
    }
    # The home side still has him, and still changes him.
    changed = await client.patch(
        url, json={"version": version, "name": "王建民"}, headers=world.branch_admin.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "王建民"


async def test_co_manager_reveals_the_phone_but_not_the_id_number(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await make_world(db, settings)
    await co_managed(client, world)
    member = world.member.member
    assert member is not None
    url = f"/api/v1/members/{member.id}/reveal"
    phone = await client.post(
        url, json={"field": "phone", "reason": "联系流动党员"}, headers=world.dest_admin.headers
    )
    assert phone.status_code == 200, phone.text
    assert phone.json()["value"] and phone.json()["value"].startswith("13")
    problem(
        await client.post(
            url, json={"field": "id_number", "reason": "核对身份"}, headers=world.dest_admin.headers
        ),
        403,
        "member.home_org_required",
    )
    reveals = (
        await db.execute(
            select(AuditEntry.detail).where(
                AuditEntry.action == "pii.reveal", AuditEntry.subject_id == member.id
            )
        )
    ).scalars()
    assert [d["field"] for d in reveals] == ["phone"]
    # The home branch sees the co-manager's reveal.
    assert "pii.reveal" in await audit_actions(client, world.branch_admin)


async def test_destination_decisions_show_in_the_home_audit(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await make_world(db, settings)
    await co_managed(client, world)
    home = await audit_actions(client, world.branch_admin)
    assert "outflow.checkin_accepted" in home
    # ... and the destination still sees its own decision.
    assert "outflow.checkin_accepted" in await audit_actions(client, world.dest_admin)
    # Nobody else does.
    assert "outflow.checkin_accepted" not in await audit_actions(client, world.other_admin)


async def test_a_refused_checkin_is_audited_on_both_sides(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await make_world(db, settings)
    o = await approve(client, world.branch_admin, await register(client, world.member))
    requested = await checkin(client, world, o)
    refused = await client.post(
        f"/api/v1/outflows/{o['id']}/destination-checkin/refuse",
        json={"version": requested["version"], "reason": "不在本商圈工作"},
        headers=world.dest_admin.headers,
    )
    assert refused.status_code == 200, refused.text
    assert "outflow.checkin_refused" in await audit_actions(client, world.branch_admin)
    assert "outflow.checkin_refused" in await audit_actions(client, world.dest_admin)


async def test_destination_sees_only_the_outflow_it_co_manages(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    clock.now = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    world = await make_world(db, settings)
    # An earlier trip, never checked in at the destination, now over.
    old = await approve(client, world.branch_admin, await register(client, world.member))
    returned = await client.post(
        f"/api/v1/outflows/{old['id']}/return",
        json={"returned_on": "2026-03-02", "version": old["version"]},
        headers=world.member.headers,
    )
    assert returned.status_code == 200, returned.text
    clock.set_day(clock.now.date().replace(day=5))
    current = await co_managed(client, world)

    assert await ledger_ids(client, world.dest_admin) == [current["id"]]
    assert await ledger_ids(client, world.dest_admin, "status=returned") == []
    problem(
        await client.get(f"/api/v1/outflows/{old['id']}", headers=world.dest_admin.headers),
        404,
        "outflow.not_found",
    )
    seen = await client.get(f"/api/v1/outflows/{current['id']}", headers=world.dest_admin.headers)
    assert seen.status_code == 200, seen.text
    # The home branch keeps both.
    assert sorted(await ledger_ids(client, world.branch_admin, "status=returned")) == [old["id"]]
    assert await ledger_ids(client, world.branch_admin, "status=active") == [current["id"]]


async def test_every_co_manager_write_is_refused_and_every_action_shows_at_home(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await make_world(db, settings)
    o = await co_managed(client, world)
    member = world.member.member
    assert member is not None
    id_number = pii.keyring(settings).decrypt(member.id_number_enc, context=pii.ID_NUMBER)
    snapshot = (member.home_org_id, member.name, member.phone_idx, member.version)
    dest = world.dest_admin.headers
    outflow = f"/api/v1/outflows/{o['id']}"

    refused = {
        "PATCH /members/{id}": await client.patch(
            f"/api/v1/members/{member.id}",
            json={"version": member.version, "home_org_id": world.destination.id},
            headers=dest,
        ),
        "reveal id_number": await client.post(
            f"/api/v1/members/{member.id}/reveal",
            json={"field": "id_number", "reason": "核对"},
            headers=dest,
        ),
        "approve": await client.post(
            f"{outflow}/approve", json={"version": o["version"]}, headers=dest
        ),
        "reject": await client.post(
            f"{outflow}/reject", json={"version": o["version"], "reason": "不批"}, headers=dest
        ),
        "return": await client.post(
            f"{outflow}/return",
            json={"returned_on": "2026-03-02", "version": o["version"]},
            headers=dest,
        ),
        "relocate": await client.post(
            f"{outflow}/relocate",
            json={
                "version": o["version"],
                "destination_region_code": "440305",
                "destination_address": "另一处",
            },
            headers=dest,
        ),
    }
    for name, response in refused.items():
        assert response.status_code in (403, 404), (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # The roster import cannot take him over either: his row is refused, nothing written.
    roster = f"姓名,身份证号\n改名,{id_number}\n".encode("utf-8-sig")
    imported = await client.post(
        "/api/v1/members/import",
        params={"org_id": world.destination.id, "partial": "true"},
        files={"file": ("roster.csv", roster, "text/csv")},
        headers=dest,
    )
    assert imported.status_code == 200, imported.text
    assert (imported.json()["created"], imported.json()["updated"]) == (0, 0)
    assert [e["field"] for e in imported.json()["errors"]] == ["身份证号"]

    await db.refresh(member)
    assert (member.home_org_id, member.name, member.phone_idx, member.version) == snapshot
    current = await client.get(outflow, headers=world.branch_admin.headers)
    assert current.json()["status"] == "active" and current.json()["version"] == o["version"]

    # What he may do (reach the member, make him an admin of the destination's mobile
    # branch) shows in the home branch's log, as does the check-in he accepted.
    reached = await client.post(
        f"/api/v1/members/{member.id}/reveal",
        json={"field": "phone", "reason": "联系"},
        headers=dest,
    )
    assert reached.status_code == 200, reached.text
    granted = await client.post(
        f"/api/v1/orgs/{world.destination.id}/roles",
        json={"member_id": member.id, "role": "branch_admin"},
        headers=dest,
    )
    assert granted.status_code == 201, granted.text
    by_co_manager = set(
        (
            await db.execute(
                select(AuditEntry.id).where(
                    AuditEntry.actor_account_id == world.dest_admin.account.id,
                    or_(
                        and_(
                            AuditEntry.subject_type == "member", AuditEntry.subject_id == member.id
                        ),
                        and_(
                            AuditEntry.subject_type == "outflow", AuditEntry.subject_id == o["id"]
                        ),
                    ),
                )
            )
        ).scalars()
    )
    assert len(by_co_manager) >= 3  # check-in accepted, phone revealed, role granted
    home = await client.get(
        "/api/v1/audit", params={"limit": 100}, headers=world.branch_admin.headers
    )
    assert by_co_manager <= {e["id"] for e in home.json()["items"]}
    # The import that tried to take him over is among them, and so is every refusal.
    actions = [e["action"] for e in home.json()["items"] if e["id"] in by_co_manager]
    assert {"pii.reveal", "role.granted", "member.id_number_conflict"} <= set(actions)
    assert actions.count("member.change_refused") == 2  # the move, the ID number
    assert actions.count("outflow.decision_refused") == 3  # approve, reject, return


async def test_a_move_stays_in_the_log_of_the_subtree_he_left(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await make_world(db, settings)
    member = world.member.member
    assert member is not None
    other_branch = await factories.org(db, "另一村党支部", parent=world.county)
    moved = await client.patch(
        f"/api/v1/members/{member.id}",
        json={"version": member.version, "home_org_id": other_branch.id},
        headers=world.county_admin.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["home_org_id"] == other_branch.id
    # The branch he left no longer sees him, but sees that he was moved, and by whom.
    problem(
        await client.get(f"/api/v1/members/{member.id}", headers=world.branch_admin.headers),
        404,
        "member.not_found",
    )
    log = await client.get("/api/v1/audit", headers=world.branch_admin.headers)
    [entry] = [e for e in log.json()["items"] if e["action"] == "member.updated"]
    assert (entry["subject_id"], entry["org_id"]) == (member.id, other_branch.id)
    assert entry["actor_account_id"] == world.county_admin.account.id


async def test_reading_his_request_phone_at_the_destination_shows_at_home(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    world = await make_world(db, settings)
    await co_managed(client, world)
    await ensure_default_categories(db)
    destination = Org(world.destination.id, world.destination.name, world.destination.path)
    filed = await client.post(
        "/api/v1/orders", json=order_body(destination), headers=world.member.headers
    )
    assert filed.status_code == 201, filed.text
    read = await client.post(
        f"/api/v1/orders/{filed.json()['id']}/reveal",
        json={"reason": "联系诉求人"},
        headers=world.dest_admin.headers,
    )
    assert read.status_code == 200, read.text
    assert "order.reveal_contact_phone" in await audit_actions(client, world.branch_admin)
    assert "order.reveal_contact_phone" in await audit_actions(client, world.dest_admin)
