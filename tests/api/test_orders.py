"""Service orders through the HTTP API: submission, reads and scope, the life cycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.core.pagination import Page
from app.orders.models import ServiceOrder, ServiceOrderEvent, ServiceOrderOrg
from app.orders.repository import own_orders
from app.orders.schemas import OrderOut
from app.orders.views import order_out
from app.organization.models import Organization
from app.wechat.simulator import WeChatSimulator
from tests import factories as f
from tests.api.test_order_helpers import (
    act,
    count,
    moved,
    notifications,
    order_body,
    submit,
    who,
    world,
)
from tests.clock import Clock
from tests.conftest import TransactionSource, problem
from tests.leakscan import FINDINGS

# ------------------------------------------------------------------ submission


async def test_member_submits_order_with_due_dates_from_sla(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    before = datetime.now(UTC)
    body = await submit(client, w.submitter, w.village)
    assert body["status"] == "submitted"
    assert body["version"] == 1
    assert body["category"] == "life_support" and body["category_name"] == "生活帮扶"
    assert body["contact_phone"] == "138****5678"
    assert body["needs_review"] is False and body["mine"] is True
    submitted = datetime.fromisoformat(body["submitted_at"])
    assert submitted >= before - timedelta(seconds=1)
    # 生活帮扶: accept within 24 h, resolve within 72 h (seeded defaults).
    assert datetime.fromisoformat(body["accept_due_at"]) - submitted == timedelta(hours=24)
    assert datetime.fromisoformat(body["due_at"]) - submitted == timedelta(hours=72)
    assert [(e["action"], e["to_status"]) for e in body["timeline"]] == [("submit", "submitted")]

    row = await db.get(ServiceOrder, body["id"])
    assert row is not None and row.org_id == w.village.id
    assert row.submitter_member_id == w.submitter.member_id
    assert b"13812345678" not in row.contact_phone_enc
    trail = await count(db, ServiceOrderOrg, ServiceOrderOrg.order_id == row.id)
    assert trail == 1
    # The branch's admins hear about it (outbox, not inline).
    assert len(await notifications(db, w.village_admin.account_id, "order_assigned")) == 1


async def test_resident_submits_by_category_name_and_phone_never_leaks(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    body = await submit(
        client, w.resident, w.village, category="政策咨询", contact_phone="+86 139-0000-1111"
    )
    assert body["category"] == "policy_consulting"
    assert body["contact_phone"] == "139****1111"
    listed = await client.get("/api/v1/orders", headers=w.village_admin.headers)
    assert "13900001111" not in listed.text


async def test_submission_validation(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    h = w.submitter.headers
    bad = await client.post(
        "/api/v1/orders", json=order_body(w.village, contact_phone="12345"), headers=h
    )
    assert problem(bad, 422, "validation.failed")["errors"][0]["field"] == "contact_phone"
    extra = await client.post(
        "/api/v1/orders", json=order_body(w.village, status="resolved"), headers=h
    )
    assert problem(extra, 422, "validation.failed")["errors"][0]["field"] == "status"
    half = await client.post("/api/v1/orders", json=order_body(w.village, lon=None), headers=h)
    problem(half, 422, "validation.failed")
    unknown = await client.post(
        "/api/v1/orders", json=order_body(w.village, category="nope"), headers=h
    )
    problem(unknown, 422, "order.category_not_found")
    no_org = await client.post(
        "/api/v1/orders", json=order_body(w.village, org_id=99999999), headers=h
    )
    problem(no_org, 422, "order.org_not_found")
    problem(
        await client.post("/api/v1/orders", json=order_body(w.village)), 401, "auth.missing_token"
    )
    assert await count(db, ServiceOrder) == 0


async def test_content_check_risky_review_and_unavailable(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, simulator: WeChatSimulator
) -> None:
    w = await world(db, settings)
    risky = await client.post(
        "/api/v1/orders",
        json=order_body(w.village, description="这里有违禁内容"),
        headers=w.submitter.headers,
    )
    problem(risky, 422, "content.risky")
    assert await count(db, ServiceOrder) == 0

    review = await submit(client, w.submitter, w.village, title="待审的标题")
    assert review["needs_review"] is True and review["review_reason"] == "content_review"

    simulator.fail_next("msg_sec_check", "http500", "http500", "http500")
    down = await submit(client, w.submitter, w.village)
    assert down["status"] == "submitted"
    assert down["needs_review"] is True and down["review_reason"] == "content_check_unavailable"

    clean = await submit(client, w.submitter, w.village)
    assert clean["needs_review"] is False
    listed = await client.get("/api/v1/orders?needs_review=true", headers=w.village_admin.headers)
    assert {o["id"] for o in listed.json()["items"]} == {review["id"], down["id"]}


async def test_submission_is_idempotent(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    headers = {**w.submitter.headers, "Idempotency-Key": "order-1"}
    first = await client.post("/api/v1/orders", json=order_body(w.village), headers=headers)
    again = await client.post("/api/v1/orders", json=order_body(w.village), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert await count(db, ServiceOrder) == 1
    other = await client.post(
        "/api/v1/orders", json=order_body(w.village, title="另一件事情"), headers=headers
    )
    problem(other, 422, "idempotency.key_reused")


# ------------------------------------------------------------------ reads and scope


async def test_reads_are_scoped(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    mine = await submit(client, w.submitter, w.village)
    theirs = await submit(client, w.resident, w.other_branch)
    url = f"/api/v1/orders/{mine['id']}"

    problem(await client.get(url), 401, "auth.missing_token")
    problem(await client.get("/api/v1/orders"), 401, "auth.missing_token")
    for reader in (w.submitter, w.village_admin, w.town_admin, w.county_admin):
        assert (await client.get(url, headers=reader.headers)).status_code == 200
    for outsider in (w.other_admin, w.stranger, w.resident):
        problem(await client.get(url, headers=outsider.headers), 404, "order.not_found")

    def ids(response: httpx.Response) -> set[int]:
        assert response.status_code == 200, response.text
        return {o["id"] for o in response.json()["items"]}

    assert ids(await client.get("/api/v1/orders", headers=w.county_admin.headers)) == {mine["id"]}
    assert ids(await client.get("/api/v1/orders", headers=w.other_admin.headers)) == {theirs["id"]}
    assert ids(await client.get("/api/v1/orders", headers=w.stranger.headers)) == set()
    assert ids(await client.get("/api/v1/orders?mine=true", headers=w.submitter.headers)) == {
        mine["id"]
    }
    # An admin's own submissions, not his subtree's, with mine=true.
    assert (
        ids(await client.get("/api/v1/orders?mine=true", headers=w.county_admin.headers)) == set()
    )
    other_subtree = await client.get(
        f"/api/v1/orders?org_id={w.other_branch.id}", headers=w.county_admin.headers
    )
    problem(other_subtree, 404, "org.not_found")
    assert ids(
        await client.get(f"/api/v1/orders?org_id={w.town.id}", headers=w.county_admin.headers)
    ) == {mine["id"]}


async def test_list_filters_and_pagination(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    created = [await submit(client, w.submitter, w.village) for _ in range(5)]
    await moved(client, w.village_admin, created[0], "accept")
    seen: list[int] = []
    cursor = None
    while True:
        url = "/api/v1/orders?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=w.village_admin.headers)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted((o["id"] for o in created), reverse=True)
    accepted = await client.get("/api/v1/orders?status=accepted", headers=w.village_admin.headers)
    assert [o["id"] for o in accepted.json()["items"]] == [created[0]["id"]]
    problem(
        await client.get("/api/v1/orders?limit=101", headers=w.village_admin.headers),
        422,
        "validation.failed",
    )
    problem(
        await client.get("/api/v1/orders?cursor=%%%", headers=w.village_admin.headers),
        422,
        "pagination.invalid_cursor",
    )


# ------------------------------------------------------------------ the life cycle


async def test_full_life_cycle_with_timeline_notifications_and_time_bank(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await world(db, settings)
    order = await submit(client, w.submitter, w.village)
    order = await moved(client, w.village_admin, order, "accept", note="已安排")
    assert order["status"] == "accepted" and order["version"] == 2 and order["accepted_at"]
    order = await moved(client, w.village_admin, order, "start")
    assert order["status"] == "in_progress"
    clock.advance(hours=3)
    order = await moved(
        client,
        w.village_admin,
        order,
        "resolve",
        note="已上门修好水管",
        volunteer_member_id=w.volunteer.member_id,
        hours=2.5,
    )
    assert order["status"] == "resolved" and order["reply"] == "已上门修好水管"
    assert order["hours"] == 2.5 and order["volunteer_member_id"] == w.volunteer.member_id

    rated = await client.post(
        f"/api/v1/orders/{order['id']}/rating",
        json={"score": 5, "comment": "很及时", "version": order["version"]},
        headers=w.submitter.headers,
    )
    assert rated.status_code == 200, rated.text
    order = rated.json()
    assert order["status"] == "closed" and order["rating"]["score"] == 5
    assert [
        (e["action"], e["from_status"], e["to_status"], e["actor_role"]) for e in order["timeline"]
    ] == [
        ("submit", None, "submitted", "submitter"),
        ("accept", "submitted", "accepted", "admin"),
        ("start", "accepted", "in_progress", "admin"),
        ("resolve", "in_progress", "resolved", "admin"),
        ("rate", "resolved", "closed", "submitter"),
    ]
    assert order["timeline"][1]["actor_account_id"] == w.village_admin.account_id
    assert order["timeline"][1]["note"] == "已安排"

    # The submitter heard about each change the organisation made (not about his own rating).
    told = await notifications(db, w.submitter.account_id, "order_status")
    assert [n.data["phrase2"] for n in told] == ["已受理", "办理中", "已办结"]
    assert all(len(n.data["thing1"]) <= 20 for n in told)

    # The volunteer was credited.
    bank = (await client.get("/api/v1/me/time-bank", headers=w.volunteer.headers)).json()
    assert bank["balance"] == 2.5 and bank["hours_earned"] == 2.5
    assert bank["entries"][0]["order_id"] == order["id"]
    # ... and may now read the order assigned to him.
    assert (
        await client.get(f"/api/v1/orders/{order['id']}", headers=w.volunteer.headers)
    ).status_code == 200

    again = await client.post(
        f"/api/v1/orders/{order['id']}/rating",
        json={"score": 1, "version": order["version"]},
        headers=w.submitter.headers,
    )
    problem(again, 409, "order.already_rated")


async def test_transfer_moves_order_and_keeps_sender_read_access(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    order = await submit(client, w.submitter, w.village)
    first_submitted_at = order["submitted_at"]
    assert order["received_at"] == first_submitted_at
    order = await moved(client, w.village_admin, order, "accept")
    missing_reason = await client.post(
        f"/api/v1/orders/{order['id']}/transitions",
        json={"action": "transfer", "version": order["version"], "to_org_id": w.other_branch.id},
        headers=w.village_admin.headers,
    )
    problem(missing_reason, 422, "order.note_required")
    same = await act(client, w.village_admin, order, "transfer", to_org_id=w.village.id)
    problem(same, 422, "order.transfer_target_invalid")

    later = datetime.now(UTC)
    order = await moved(
        client, w.village_admin, order, "transfer", to_org_id=w.other_branch.id, note="户籍在外县"
    )
    assert order["status"] == "submitted" and order["org_id"] == w.other_branch.id
    assert order["accepted_at"] is None and order["version"] == 3
    # The receiving organisation's clock is its own field; the first submission stays.
    assert datetime.fromisoformat(order["received_at"]) >= later - timedelta(seconds=1)
    assert order["submitted_at"] == first_submitted_at
    assert datetime.fromisoformat(order["submitted_at"]) < later
    assert datetime.fromisoformat(order["due_at"]) - datetime.fromisoformat(
        order["received_at"]
    ) == timedelta(hours=72)
    transfer, arrive = order["timeline"][-2:]
    assert (transfer["action"], transfer["from_status"], transfer["to_status"]) == (
        "transfer",
        "accepted",
        "transferred",
    )
    assert transfer["note"] == "户籍在外县"
    assert (transfer["from_org_id"], transfer["to_org_id"]) == (w.village.id, w.other_branch.id)
    assert (arrive["action"], arrive["from_status"], arrive["to_status"]) == (
        "arrive",
        "transferred",
        "submitted",
    )

    # The target's admins gain it and can act; the sender keeps read access only.
    assert (
        await client.get(f"/api/v1/orders/{order['id']}", headers=w.other_admin.headers)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/orders/{order['id']}", headers=w.village_admin.headers)
    ).status_code == 200
    problem(await act(client, w.village_admin, order, "accept"), 403, "order.action_forbidden")
    order = await moved(client, w.other_admin, order, "accept")
    assert order["status"] == "accepted"
    trail = await db.execute(
        select(ServiceOrderOrg.org_id).where(ServiceOrderOrg.order_id == order["id"])
    )
    assert set(trail.scalars()) == {w.village.id, w.other_branch.id}
    assert len(await notifications(db, w.other_admin.account_id, "order_assigned")) == 1
    phrases = [
        n.data["phrase2"] for n in await notifications(db, w.submitter.account_id, "order_status")
    ]
    assert phrases == ["已受理", "已转办", "已受理"]


async def test_cancel_reject_reopen_rules(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    cancelled = await moved(
        client, w.submitter, await submit(client, w.submitter, w.village), "cancel"
    )
    assert cancelled["status"] == "cancelled"

    order = await submit(client, w.resident, w.village)
    no_reason = await client.post(
        f"/api/v1/orders/{order['id']}/transitions",
        json={"action": "reject", "version": 1},
        headers=w.village_admin.headers,
    )
    problem(no_reason, 422, "order.note_required")
    rejected = await moved(client, w.village_admin, order, "reject", note="不属于本支部职责")
    assert rejected["status"] == "rejected" and rejected["reject_reason"] == "不属于本支部职责"

    order = await submit(client, w.submitter, w.village)
    for action in ("accept", "start", "resolve"):
        order = await moved(client, w.village_admin, order, action)
    reopened = await moved(client, w.submitter, order, "reopen", note="又漏了")
    assert reopened["status"] == "in_progress" and reopened["resolved_at"] is None
    order = await moved(client, w.village_admin, reopened, "resolve", note="彻底换管")
    # Resolved more than 7 days ago: the reopen window has closed.
    await db.execute(
        update(ServiceOrder)
        .where(ServiceOrder.id == order["id"])
        .values(resolved_at=datetime.now(UTC) - timedelta(days=7, minutes=1))
    )
    await db.commit()
    problem(await act(client, w.submitter, order, "reopen"), 409, "order.reopen_window_closed")
    stale = await act(client, w.submitter, {**order, "version": order["version"] - 1}, "reopen")
    problem(stale, 409, "conflict.stale_version")


async def test_resolve_guards(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    other_branch = await db.get(Organization, w.other_branch.id)
    assert other_branch is not None
    outsider = who(await f.member_actor(db, settings, other_branch, "外县党员"))
    await db.commit()
    order = await submit(client, w.submitter, w.village)
    for action in ("accept", "start"):
        order = await moved(client, w.village_admin, order, action)
    problem(
        await act(client, w.village_admin, order, "resolve", hours=1),
        422,
        "order.hours_need_volunteer",
    )
    problem(
        await act(
            client,
            w.village_admin,
            order,
            "resolve",
            volunteer_member_id=outsider.member_id,
            hours=1,  # type: ignore[union-attr]
        ),
        422,
        "order.volunteer_invalid",
    )
    problem(
        await act(client, w.village_admin, order, "resolve", hours=-1), 422, "validation.failed"
    )
    problem(await act(client, w.village_admin, order, "fly"), 422, "validation.failed")
    events = await count(db, ServiceOrderEvent, ServiceOrderEvent.order_id == order["id"])
    assert events == 3


async def test_reveal_contact_phone_is_audited(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    order = await submit(client, w.submitter, w.village)
    url = f"/api/v1/orders/{order['id']}/reveal"
    shown = await client.post(url, json={"reason": "电话联系"}, headers=w.village_admin.headers)
    assert shown.status_code == 200 and shown.json()["value"] == "13812345678"
    # The audited reveal is the one path allowed to carry the full number.
    assert FINDINGS.take() == []
    problem(
        await client.post(url, json={"reason": "看看"}, headers=w.submitter.headers),
        403,
        "order.action_forbidden",
    )
    problem(
        await client.post(url, json={"reason": "看看"}, headers=w.other_admin.headers),
        404,
        "order.not_found",
    )
    entries = await db.execute(
        select(AuditEntry).where(AuditEntry.action == "order.reveal_contact_phone")
    )
    (entry,) = entries.scalars().all()
    assert entry.actor_account_id == w.village_admin.account_id and entry.reason == "电话联系"
    assert "13812345678" not in str(entry.detail)


async def test_own_orders_body_is_the_models_json(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    """``GET /orders?mine=true`` shapes its page as plain dicts and serializes it once
    (app/core/responses.py): its bytes are what ``Page[OrderOut]`` makes of the rows."""
    w = await world(db, settings)
    closed = await submit(client, w.submitter, w.village, address=None, lat=None, lon=None)
    closed = await moved(client, w.village_admin, closed, "accept")
    closed = await moved(client, w.village_admin, closed, "start")
    clock.advance(hours=2)
    closed = await moved(
        client,
        w.village_admin,
        closed,
        "resolve",
        note="已修好",
        volunteer_member_id=w.volunteer.member_id,
        hours=1.5,
    )
    rated = await client.post(
        f"/api/v1/orders/{closed['id']}/rating",
        json={"score": 4, "version": closed["version"]},
        headers=w.submitter.headers,
    )
    assert rated.status_code == 200, rated.text
    late = await submit(client, w.submitter, w.village)
    clock.advance(hours=30)  # past the 24 h to accept: overdue
    fresh = await submit(client, w.submitter, w.village, lat=30.0, lon=106.0)

    first = await client.get("/api/v1/orders?mine=true&limit=2", headers=w.submitter.headers)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    body = first.json()
    assert [o["id"] for o in body["items"]] == [fresh["id"], late["id"]]
    assert [o["overdue"] for o in body["items"]] == [False, True]
    rest = await client.get(
        "/api/v1/orders",
        params={"mine": "true", "limit": 2, "cursor": body["next_cursor"]},
        headers=w.submitter.headers,
    )
    assert [o["id"] for o in rest.json()["items"]] == [closed["id"]]
    assert rest.json()["items"][0]["rating"]["score"] == 4
    assert rest.json()["items"][0]["hours"] == 1.5 and rest.json()["items"][0]["lat"] is None

    stored = (
        await db.scalars(
            select(ServiceOrder)
            .where(ServiceOrder.submitter_account_id == w.submitter.account_id)
            .order_by(ServiceOrder.id.desc())
        )
    ).all()
    now = clock.now
    mine = w.submitter.account_id
    expected = Page[OrderOut](
        items=[order_out(o, mine, now) for o in stored[:2]], next_cursor=body["next_cursor"]
    )
    assert first.content == expected.model_dump_json().encode()
    expected = Page[OrderOut](items=[order_out(stored[2], mine, now)])
    assert rest.content == expected.model_dump_json().encode()
    # The statement's leading columns are the model's fields (each item is its row).
    rows = await own_orders(
        TransactionSource(db),
        mine,
        status=None,
        category=None,
        needs_review=None,
        after_id=None,
        limit=1,
    )
    fields = tuple(OrderOut.model_fields)
    assert tuple(rows[0].keys())[: len(fields)] == fields
    # The scoped list (an admin's) is the model's JSON too.
    scoped = await client.get("/api/v1/orders", headers=w.village_admin.headers)
    assert {o["id"] for o in scoped.json()["items"]} == {closed["id"], late["id"], fresh["id"]}
    assert Page[OrderOut].model_validate_json(scoped.content).model_dump_json().encode() == (
        scoped.content
    )
