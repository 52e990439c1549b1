"""Escalation and auto-close jobs, statistics per subtree, per-organisation SLAs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.orders.jobs import auto_close_resolved, escalate_overdue_orders
from app.orders.models import ServiceOrder, ServiceOrderEvent
from tests.api.test_order_helpers import moved, notifications, submit, world
from tests.conftest import problem


async def _set(db: AsyncSession, order_id: int, **values: object) -> None:
    await db.execute(update(ServiceOrder).where(ServiceOrder.id == order_id).values(**values))
    await db.commit()


# ------------------------------------------------------------------ jobs


async def test_escalation_flags_overdue_once_and_tells_parent_admins(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    now = datetime.now(UTC)
    late = await submit(client, w.submitter, w.village)
    on_time = await submit(client, w.submitter, w.village)
    done = await submit(client, w.submitter, w.village)
    done = await moved(client, w.village_admin, done, "reject", note="重复提交")
    # Not accepted within its accept SLA; the rejected one is closed business.
    await _set(db, late["id"], accept_due_at=now - timedelta(minutes=1))
    await _set(db, done["id"], accept_due_at=now - timedelta(minutes=1))

    assert await escalate_overdue_orders(db, now) == 1
    row = await db.get(ServiceOrder, late["id"], populate_existing=True)
    assert row is not None and row.escalated_at == now
    untouched = await db.get(ServiceOrder, on_time["id"], populate_existing=True)
    assert untouched is not None and untouched.escalated_at is None
    # The parent (镇党委) admins are told, not the branch's own.
    told = await notifications(db, w.town_admin.account_id, "order_assigned")
    assert [n.title for n in told] == ["诉求超时督办"]
    assert await notifications(db, w.village_admin.account_id, "order_assigned") != []
    assert all(
        n.title != "诉求超时督办"
        for n in await notifications(db, w.village_admin.account_id, "order_assigned")
    )
    event = (
        await db.execute(
            select(ServiceOrderEvent).where(
                ServiceOrderEvent.order_id == late["id"], ServiceOrderEvent.action == "escalate"
            )
        )
    ).scalar_one()
    assert (event.actor_role, event.from_org_id, event.to_org_id) == (
        "system",
        w.village.id,
        w.town.id,
    )
    # The handling organisation (the branch) is told its order is overdue, with the page.
    overdue = await notifications(db, w.village_admin.account_id, "order_overdue")
    assert [(n.title, n.page) for n in overdue] == [
        ("诉求已超时", f"pages/orders/detail?id={late['id']}")
    ]
    assert "超过受理时限" in overdue[0].body
    assert await notifications(db, w.town_admin.account_id, "order_overdue") == []
    # Idempotent: a second run (or a second instance) finds nothing new.
    assert await escalate_overdue_orders(db, now + timedelta(minutes=5)) == 0
    assert len(await notifications(db, w.town_admin.account_id, "order_assigned")) == 1
    assert len(await notifications(db, w.village_admin.account_id, "order_overdue")) == 1

    # Overdue shows on the order; a transfer restarts the clock and clears the flag.
    shown = (await client.get(f"/api/v1/orders/{late['id']}", headers=w.submitter.headers)).json()
    assert shown["overdue"] is True and shown["escalated_at"] is not None
    moved_on = await moved(
        client, w.village_admin, shown, "transfer", to_org_id=w.other_branch.id, note="外县办理"
    )
    assert moved_on["escalated_at"] is None and moved_on["overdue"] is False


async def test_auto_close_after_seven_days(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    now = datetime.now(UTC)
    orders = []
    for _ in range(2):
        order = await submit(client, w.submitter, w.village)
        for action in ("accept", "start", "resolve"):
            order = await moved(client, w.village_admin, order, action)
        orders.append(order)
    old, recent = orders
    await _set(db, old["id"], resolved_at=now - timedelta(days=7, seconds=1))
    await _set(db, recent["id"], resolved_at=now - timedelta(days=6))

    assert await auto_close_resolved(db, now) == 1
    closed = await db.get(ServiceOrder, old["id"], populate_existing=True)
    kept = await db.get(ServiceOrder, recent["id"], populate_existing=True)
    assert closed is not None and closed.status == "closed" and closed.closed_at == now
    assert closed.version == old["version"] + 1
    assert kept is not None and kept.status == "resolved"
    assert await auto_close_resolved(db, now) == 0
    detail = (await client.get(f"/api/v1/orders/{old['id']}", headers=w.submitter.headers)).json()
    last = detail["timeline"][-1]
    assert (last["action"], last["to_status"], last["actor_role"]) == ("close", "closed", "system")
    told = await notifications(db, w.submitter.account_id, "order_status")
    assert told[-1].data["phrase2"] == "已关闭"
    # Closed without rating: a late rating is an illegal move, not a second rating.
    late = await client.post(
        f"/api/v1/orders/{old['id']}/rating",
        json={"score": 3, "version": closed.version},
        headers=w.submitter.headers,
    )
    problem(late, 409, "order.invalid_transition")


# ------------------------------------------------------------------ statistics


async def test_stats_per_subtree_and_period(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    t0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    a = await submit(client, w.submitter, w.village)
    b = await submit(client, w.resident, w.village, category="legal_aid")
    c = await submit(client, w.submitter, w.village)
    elsewhere = await submit(client, w.resident, w.other_branch)
    for order in (a, b):
        order = await moved(client, w.village_admin, order, "accept")
    a = await moved(client, w.village_admin, {**a, "version": 2}, "start")
    a = await moved(client, w.village_admin, a, "resolve")
    rated = await client.post(
        f"/api/v1/orders/{a['id']}/rating",
        json={"score": 4, "version": a["version"]},
        headers=w.submitter.headers,
    )
    assert rated.status_code == 200
    # Deterministic clocks: accepted after 2 h and 4 h, resolved after 10 h.
    for order_id in (a["id"], b["id"], c["id"], elsewhere["id"]):
        await _set(db, order_id, created_at=t0, submitted_at=t0, received_at=t0)
    await _set(
        db,
        a["id"],
        accepted_at=t0 + timedelta(hours=2),
        resolved_at=t0 + timedelta(hours=10),
        due_at=t0 + timedelta(hours=8),
    )
    await _set(db, b["id"], accepted_at=t0 + timedelta(hours=4))
    await _set(db, c["id"], due_at=t0 + timedelta(hours=1))  # still submitted: overdue

    response = await client.get(
        f"/api/v1/orders/stats?org_id={w.town.id}", headers=w.county_admin.headers
    )
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["total"] == 3
    assert stats["by_status"] == {"closed": 1, "accepted": 1, "submitted": 1}
    assert {c["category"]: c["count"] for c in stats["by_category"]} == {
        "life_support": 2,
        "legal_aid": 1,
    }
    assert stats["overdue"] == 1 and stats["resolved_late"] == 1
    assert stats["time_to_accept"] == {"count": 2, "mean_hours": 3.0, "p90_hours": 3.8}
    assert stats["time_to_resolve"] == {"count": 1, "mean_hours": 10.0, "p90_hours": 10.0}
    assert stats["mean_rating"] == 4.0 and stats["rating_count"] == 1

    # Days are Asia/Shanghai days: 2026-03-02 09:00 belongs to 2026-03-02, not 03-01.
    day = await client.get(
        f"/api/v1/orders/stats?org_id={w.village.id}&from=2026-03-02&to=2026-03-02",
        headers=w.village_admin.headers,
    )
    assert day.json()["total"] == 3 and day.json()["from"] == "2026-03-02"
    before = await client.get(
        "/api/v1/orders/stats?from=2026-02-01&to=2026-03-01", headers=w.village_admin.headers
    )
    assert before.json()["total"] == 0

    # The whole scope without org_id; other trees, members and anonymous callers excluded.
    everything = await client.get("/api/v1/orders/stats", headers=w.other_admin.headers)
    assert everything.json()["total"] == 1
    problem(await client.get("/api/v1/orders/stats"), 401, "auth.missing_token")
    problem(
        await client.get("/api/v1/orders/stats", headers=w.submitter.headers),
        403,
        "auth.admin_required",
    )
    problem(
        await client.get(
            f"/api/v1/orders/stats?org_id={w.village.id}", headers=w.other_admin.headers
        ),
        404,
        "org.not_found",
    )


# ------------------------------------------------------------------ categories and SLAs


async def test_categories_are_configurable_per_organisation(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    problem(await client.get("/api/v1/orders/categories"), 401, "auth.missing_token")
    defaults = (await client.get("/api/v1/orders/categories", headers=w.resident.headers)).json()
    assert [c["name"] for c in defaults["items"]] == [
        "生活帮扶",
        "政策咨询",
        "就业创业",
        "法律援助",
        "组织关系",
    ]
    assert all(c["org_id"] is None for c in defaults["items"])

    body = {"org_id": w.town.id, "name": "生活帮扶", "accept_hours": 2, "resolve_hours": 10}
    configured = await client.put(
        "/api/v1/orders/categories/life_support", json=body, headers=w.town_admin.headers
    )
    assert configured.status_code == 200, configured.text
    assert configured.json()["org_id"] == w.town.id
    problem(
        await client.put(
            "/api/v1/orders/categories/life_support", json=body, headers=w.other_admin.headers
        ),
        404,
        "org.not_found",
    )
    problem(
        await client.put(
            "/api/v1/orders/categories/life_support", json=body, headers=w.submitter.headers
        ),
        403,
        "auth.admin_required",
    )
    problem(
        await client.put(
            "/api/v1/orders/categories/life_support",
            json={**body, "resolve_hours": 1},
            headers=w.town_admin.headers,
        ),
        422,
        "validation.failed",
    )

    at_village = (
        await client.get(
            f"/api/v1/orders/categories?org_id={w.village.id}", headers=w.submitter.headers
        )
    ).json()["items"]
    life = next(c for c in at_village if c["code"] == "life_support")
    assert (life["accept_hours"], life["resolve_hours"], life["org_id"]) == (2, 10, w.town.id)

    here = await submit(client, w.submitter, w.village)
    there = await submit(client, w.resident, w.other_branch)
    span = datetime.fromisoformat(here["due_at"]) - datetime.fromisoformat(here["submitted_at"])
    assert span == timedelta(hours=10)
    span = datetime.fromisoformat(there["due_at"]) - datetime.fromisoformat(there["submitted_at"])
    assert span == timedelta(hours=72)
    # A transfer recomputes due_at under the target's settings.
    arrived = await moved(
        client, w.other_admin, there, "transfer", to_org_id=w.village.id, note="属地办理"
    )
    span = datetime.fromisoformat(arrived["due_at"]) - datetime.fromisoformat(
        arrived["received_at"]
    )
    assert span == timedelta(hours=10)

    # Switching a category off for a subtree hides it there only.
    off = {**body, "active": False}
    await client.put(
        "/api/v1/orders/categories/life_support", json=off, headers=w.town_admin.headers
    )
    refused = await client.post(
        "/api/v1/orders",
        json={
            **{k: v for k, v in here.items() if k in ("title", "description")},
            "category": "life_support",
            "contact_phone": "13812345678",
            "org_id": w.village.id,
        },
        headers=w.submitter.headers,
    )
    problem(refused, 422, "order.category_not_found")
    assert (await submit(client, w.resident, w.other_branch))["category"] == "life_support"
