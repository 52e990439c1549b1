"""A member's outflow history, withdrawing a pending registration, and the home branch
cancelling an approved one before departure (issue 15, "Members")."""

from __future__ import annotations

from datetime import date

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.mobility.models import Outflow, OutflowEvent
from app.notify.models import Notification
from app.organization.models import DualManagementGrant
from tests import factories
from tests.api.test_mobility import (
    Clock,
    World,
    accept,
    approve,
    checkin,
    clock,
    register,
    world,
)
from tests.conftest import problem
from tests.factories import Actor

__all__ = ["clock", "world"]  # fixtures used by name


async def _post(
    client: httpx.AsyncClient, path: str, body: dict[str, object], actor: Actor
) -> httpx.Response:
    return await client.post(path, json=body, headers=actor.headers)


async def test_history_lists_every_outflow_newest_first_with_decisions(
    client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    first = await register(client, world.member)
    rejected = await _post(
        client,
        f"/api/v1/outflows/{first['id']}/reject",
        {"version": first["version"], "reason": "外出地址不详细"},
        world.branch_admin,
    )
    assert rejected.status_code == 200
    second = await register(client, world.member, destination_address="深圳市南山区科技园 A 座")
    withdrawn = await _post(
        client,
        f"/api/v1/outflows/{second['id']}/withdraw",
        {"reason": "行程推迟", "version": second["version"]},
        world.member,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    third = await approve(client, world.branch_admin, await register(client, world.member))

    # /me/outflow only knows the open one; the history keeps all three.
    response = await client.get("/api/v1/me/outflows", headers=world.member.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["id"] for i in items] == [third["id"], second["id"], first["id"]]
    assert [i["status"] for i in items] == ["active", "withdrawn", "rejected"]
    assert items[2]["reject_reason"] == "外出地址不详细"
    assert [(d["action"], d["note"]) for d in items[2]["decisions"]] == [
        ("reject", "外出地址不详细")
    ]
    assert [(d["action"], d["note"]) for d in items[1]["decisions"]] == [("withdraw", "行程推迟")]
    assert [d["action"] for d in items[0]["decisions"]] == ["approve"]
    assert items[0]["certificate_no"] == third["certificate_no"]

    # Paged with a cursor, newest first.
    page = (await client.get("/api/v1/me/outflows?limit=2", headers=world.member.headers)).json()
    assert [i["id"] for i in page["items"]] == [third["id"], second["id"]]
    rest = await client.get(
        f"/api/v1/me/outflows?limit=2&cursor={page['next_cursor']}", headers=world.member.headers
    )
    assert [i["id"] for i in rest.json()["items"]] == [first["id"]]
    assert rest.json()["next_cursor"] is None

    # Another member sees only his own (none); anonymous is 401.
    other = await client.get("/api/v1/me/outflows", headers=world.dest_admin.headers)
    assert other.status_code == 200 and other.json()["items"] == []
    assert (await client.get("/api/v1/me/outflows")).status_code == 401


async def test_member_withdraws_pending_only(
    client: httpx.AsyncClient, world: World, db: AsyncSession, settings: Settings
) -> None:
    pending = await register(client, world.member)
    v1 = {"version": pending["version"]}
    # Someone else's registration: another member cannot see it, an admin is not the owner.
    stranger = await factories.member_actor(db, settings, world.branch, "路人")
    problem(
        await _post(client, f"/api/v1/outflows/{pending['id']}/withdraw", v1, stranger),
        404,
        "outflow.not_found",
    )
    problem(
        await _post(client, f"/api/v1/outflows/{pending['id']}/withdraw", v1, world.branch_admin),
        403,
        "outflow.owner_required",
    )
    problem(
        await _post(
            client, f"/api/v1/outflows/{pending['id']}/withdraw", {"version": 7}, world.member
        ),
        409,
        "conflict.stale_version",
    )
    # The version is required, as on every transition.
    problem(
        await _post(client, f"/api/v1/outflows/{pending['id']}/withdraw", {}, world.member),
        422,
        "validation.failed",
    )
    done = await _post(client, f"/api/v1/outflows/{pending['id']}/withdraw", v1, world.member)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "withdrawn" and done.json()["version"] == 2
    row = await db.get(Outflow, pending["id"])
    assert row is not None and row.status == "withdrawn" and row.decided_at is None

    # Withdrawn is final: nothing moves it, and he may register again.
    problem(
        await _post(
            client, f"/api/v1/outflows/{pending['id']}/withdraw", {"version": 2}, world.member
        ),
        409,
        "outflow.invalid_transition",
    )
    problem(
        await _post(
            client, f"/api/v1/outflows/{pending['id']}/approve", {"version": 2}, world.branch_admin
        ),
        409,
        "outflow.invalid_transition",
    )
    again = await register(client, world.member)
    approved = await approve(client, world.branch_admin, again)
    # An approved outflow can no longer be withdrawn (the home branch cancels it).
    problem(
        await _post(
            client,
            f"/api/v1/outflows/{approved['id']}/withdraw",
            {"version": approved["version"]},
            world.member,
        ),
        409,
        "outflow.invalid_transition",
    )
    assert (await db.get(Outflow, approved["id"])).status == "active"  # type: ignore[union-attr]


async def test_home_admin_cancels_approved_outflow_before_departure(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    clock.set_day(date(2026, 3, 2))
    created = await register(client, world.member, departed_on="2026-03-20")
    pending_cancel = await _post(
        client,
        f"/api/v1/outflows/{created['id']}/cancel",
        {"version": created["version"], "reason": "尚未审批"},
        world.branch_admin,
    )
    problem(pending_cancel, 409, "outflow.invalid_transition")
    approved = await approve(client, world.branch_admin, created)
    checked = await accept(client, world, await checkin(client, world, approved))
    assert checked["checkin"]["status"] == "accepted"

    # The return route refuses a return before departure; cancel is the way back.
    early_return = await _post(
        client,
        f"/api/v1/outflows/{created['id']}/return",
        {"returned_on": "2026-03-02", "version": checked["version"]},
        world.member,
    )
    problem(early_return, 422, "outflow.returned_before_departure")

    url = f"/api/v1/outflows/{created['id']}/cancel"
    problem(
        await _post(client, url, {"version": checked["version"]}, world.branch_admin),
        422,
        "validation.failed",
    )
    problem(
        await _post(client, url, {"version": checked["version"], "reason": "x"}, world.member),
        403,
        "auth.admin_required",
    )
    problem(
        await _post(client, url, {"version": checked["version"], "reason": "x"}, world.dest_admin),
        403,
        "outflow.home_admin_required",
    )
    problem(
        await _post(client, url, {"version": checked["version"], "reason": "x"}, world.other_admin),
        404,
        "outflow.not_found",
    )
    response = await _post(
        client, url, {"version": checked["version"], "reason": "单位取消外派"}, world.branch_admin
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled" and body["cancel_reason"] == "单位取消外派"
    assert body["flags"] == [] and body["due"]["lost_contact_on"] is None
    # Co-management at the destination ends with it.
    grants = (
        await db.execute(
            select(DualManagementGrant).where(DualManagementGrant.outflow_id == created["id"])
        )
    ).scalars()
    assert all(g.ended_at is not None for g in grants)
    events = (
        await db.execute(
            select(OutflowEvent.action, OutflowEvent.note).where(
                OutflowEvent.outflow_id == created["id"]
            )
        )
    ).all()
    assert ("cancel", "单位取消外派") in events
    audit = (
        await db.execute(
            select(AuditEntry.reason).where(
                AuditEntry.action == "outflow.cancelled", AuditEntry.subject_id == created["id"]
            )
        )
    ).scalar_one()
    assert audit == "单位取消外派"
    told = (
        await db.execute(
            select(Notification.title, Notification.page).where(
                Notification.account_id == world.member.account.id,
                Notification.title == "外出登记已撤销",
            )
        )
    ).one()
    assert told.page == "pages/outflow/index"
    # Cancelled is final.
    problem(
        await _post(
            client, url, {"version": body["version"], "reason": "再次"}, world.branch_admin
        ),
        409,
        "outflow.invalid_transition",
    )
    history = (await client.get("/api/v1/me/outflows", headers=world.member.headers)).json()
    decisions = [(d["action"], d["note"]) for d in history["items"][0]["decisions"]]
    assert decisions[-1] == ("cancel", "单位取消外派")


async def test_cancel_on_or_after_departure_is_refused(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    clock.set_day(date(2026, 3, 2))
    approved = await approve(
        client, world.branch_admin, await register(client, world.member, departed_on="2026-03-05")
    )
    clock.set_day(date(2026, 3, 5))  # the departure day itself: he has left
    response = await _post(
        client,
        f"/api/v1/outflows/{approved['id']}/cancel",
        {"version": approved["version"], "reason": "取消"},
        world.branch_admin,
    )
    problem(response, 409, "outflow.already_departed")
    row = await db.get(Outflow, approved["id"])
    assert row is not None and row.status == "active" and row.cancel_reason is None
