"""Orders for secretaries and volunteers (issue 15, "Secretaries"): a volunteer assigned
on accept or start sees his work list; a transfer keeps the resident's first submission
time, so response-time statistics count from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.orders.models import ServiceOrder
from tests import factories as f
from tests.api.test_order_helpers import Who, act, moved, notifications, submit, who, world
from tests.clock import Clock
from tests.conftest import problem


async def _assigned(client: httpx.AsyncClient, actor: Who) -> list[int]:
    response = await client.get("/api/v1/orders?assigned=me", headers=actor.headers)
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["items"]]


async def test_volunteer_assigned_on_accept_or_start_sees_his_list(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await world(db, settings)
    first = await submit(client, w.submitter, w.village)
    second = await submit(client, w.resident, w.village, title="楼道灯坏了")
    untouched = await submit(client, w.submitter, w.village, title="咨询低保政策")

    first = await moved(
        client, w.village_admin, first, "accept", volunteer_member_id=w.volunteer.member_id
    )
    assert first["volunteer_member_id"] == w.volunteer.member_id
    second = await moved(client, w.village_admin, second, "accept")
    assert second["volunteer_member_id"] is None
    second = await moved(
        client, w.village_admin, second, "start", volunteer_member_id=w.volunteer.member_id
    )
    assert (second["status"], second["volunteer_member_id"]) == (
        "in_progress",
        w.volunteer.member_id,
    )

    assert await _assigned(client, w.volunteer) == [second["id"], first["id"]]
    # The submitter's own list is not his assignment list; other members see none.
    assert await _assigned(client, w.submitter) == []
    assert await _assigned(client, w.resident) == []
    assert untouched["id"] not in await _assigned(client, w.village_admin)
    # He can open the order, and was told with the page that opens it.
    opened = await client.get(f"/api/v1/orders/{first['id']}", headers=w.volunteer.headers)
    assert opened.status_code == 200 and opened.json()["title"] == first["title"]
    told = await notifications(db, w.volunteer.account_id, "order_assigned")
    assert [(n.title, n.page) for n in told] == [
        ("您被指派办理服务诉求", f"pages/orders/detail?id={first['id']}"),
        ("您被指派办理服务诉求", f"pages/orders/detail?id={second['id']}"),
    ]

    # Resolving keeps the assigned volunteer and credits his hours.
    first = await moved(client, w.village_admin, first, "start")
    assert first["volunteer_member_id"] == w.volunteer.member_id
    clock.advance(hours=2)  # hours served cannot exceed the time in progress
    resolved = await moved(
        client,
        w.village_admin,
        first,
        "resolve",
        volunteer_member_id=w.volunteer.member_id,
        hours=1.5,
    )
    assert resolved["hours"] == 1.5
    bank = (await client.get("/api/v1/me/time-bank", headers=w.volunteer.headers)).json()
    assert float(bank["balance"]) == 1.5
    problem(
        await client.get("/api/v1/orders?assigned=you", headers=w.volunteer.headers),
        422,
        "validation.failed",
    )


async def test_volunteer_outside_the_admins_scope_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    outsider = await f.member_actor(db, settings, await f.org(db, "别县县委"), "外人")
    outsider_id = outsider.member.id if outsider.member else 0
    await db.commit()
    order = await submit(client, w.submitter, w.village)
    refused = await act(client, w.village_admin, order, "accept", volunteer_member_id=outsider_id)
    problem(refused, 422, "order.volunteer_invalid")
    row = await db.get(ServiceOrder, order["id"], populate_existing=True)
    assert row is not None and (row.status, row.volunteer_member_id) == ("submitted", None)
    assert await _assigned(client, who(outsider)) == []
    # Nobody volunteers on his own order (separation of duties in the time bank).
    himself = await act(
        client, w.village_admin, order, "accept", volunteer_member_id=w.submitter.member_id
    )
    problem(himself, 422, "order.volunteer_is_submitter")
    row = await db.get(ServiceOrder, order["id"], populate_existing=True)
    assert row is not None and (row.status, row.volunteer_member_id) == ("submitted", None)


async def test_transfer_keeps_first_submission_and_stats_count_from_it(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    order = await submit(client, w.submitter, w.other_branch)
    first_submitted = order["submitted_at"]
    order = await moved(
        client, w.other_admin, order, "transfer", to_org_id=w.village.id, note="属地办理"
    )
    assert order["submitted_at"] == first_submitted
    assert order["received_at"] > first_submitted and order["org_id"] == w.village.id
    order = await moved(client, w.village_admin, order, "accept")

    # Deterministic clocks: submitted at t0, arrived after 5 h, accepted after 6 h.
    t0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
    await db.execute(
        update(ServiceOrder)
        .where(ServiceOrder.id == order["id"])
        .values(
            created_at=t0,
            submitted_at=t0,
            received_at=t0 + timedelta(hours=5),
            accepted_at=t0 + timedelta(hours=6),
        )
    )
    await db.commit()
    stats = (
        await client.get(
            f"/api/v1/orders/stats?org_id={w.village.id}", headers=w.village_admin.headers
        )
    ).json()
    # From the resident's first submission (6 h), not from the arrival here (1 h).
    assert stats["time_to_accept"] == {"count": 1, "mean_hours": 6.0, "p90_hours": 6.0}
