"""Separation of duties in the time bank (issue 14, "Medium"): an admin filed an order
himself, handled it, named himself volunteer with 1,000 hours. Now the submitter never
handles nor volunteers, the volunteer is someone the handling organisation may serve,
the hours are capped per category and by the time in progress, and every credit is
audited."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.orders.models import ServiceOrder, TimeBankAccount
from app.organization.models import Organization
from tests import factories as f
from tests.api.test_order_helpers import (
    act,
    in_progress,
    moved,
    submit,
    who,
    world,
)
from tests.clock import Clock
from tests.conftest import problem


async def balance(db: AsyncSession, member_id: int | None) -> Decimal:
    account = await db.get(TimeBankAccount, member_id, populate_existing=True)
    return account.balance if account is not None else Decimal(0)


async def test_the_submitter_never_handles_nor_volunteers(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await world(db, settings)
    # The village secretary files a request at his own branch ...
    order = await submit(client, w.village_admin, w.village)
    for action in ("accept", "reject", "transfer"):
        problem(
            await act(client, w.village_admin, order, action, to_org_id=w.town.id),
            403,
            "order.own_order",
        )
    status = (
        await db.execute(select(ServiceOrder.status).where(ServiceOrder.id == order["id"]))
    ).scalar_one()
    assert status == "submitted"
    # ... the town handles it, and cannot credit him for his own request.
    order = await in_progress(client, clock, w.town_admin, order, 3)
    problem(
        await act(
            client,
            w.town_admin,
            order,
            "resolve",
            volunteer_member_id=w.village_admin.member_id,
            hours=2,
        ),
        422,
        "order.volunteer_is_submitter",
    )
    assert await balance(db, w.village_admin.member_id) == 0
    resolved = await moved(
        client, w.town_admin, order, "resolve", volunteer_member_id=w.volunteer.member_id, hours=2
    )
    assert resolved["hours"] == 2.0
    assert await balance(db, w.volunteer.member_id) == Decimal("2.0")


async def test_the_volunteer_is_someone_the_handling_organisation_serves(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await world(db, settings)
    town = await db.get(Organization, w.town.id)
    assert town is not None
    sibling = await f.org(db, "邻村支部", parent=town)
    neighbour = who(await f.member_actor(db, settings, sibling, "邻村党员"))
    await db.commit()
    # The county admin handles a village order: the county is his, the neighbour village
    # is not the village's to serve.
    order = await submit(client, w.submitter, w.village)
    order = await in_progress(client, clock, w.county_admin, order, 3)
    problem(
        await act(
            client,
            w.county_admin,
            order,
            "resolve",
            volunteer_member_id=neighbour.member_id,
            hours=1,
        ),
        422,
        "order.volunteer_invalid",
    )
    assert await balance(db, neighbour.member_id) == 0


async def test_hours_are_capped_by_category_and_by_time_in_progress(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await world(db, settings)
    order = await submit(client, w.submitter, w.village)
    for action in ("accept", "start"):
        order = await moved(client, w.village_admin, order, action)
    volunteer = w.volunteer.member_id

    def resolve(hours: float) -> object:
        return act(
            client, w.village_admin, order, "resolve", volunteer_member_id=volunteer, hours=hours
        )

    # Just started: not even one hour can have been served.
    body = problem(await resolve(1), 422, "order.hours_over_elapsed")
    assert body["elapsed_hours"] < 0.1
    clock.advance(hours=1000)
    body = problem(await resolve(1000), 422, "order.hours_over_cap")
    assert body["max_hours"] == 8
    assert await balance(db, volunteer) == 0

    # A category may set a lower cap for its subtree.
    configured = await client.put(
        "/api/v1/orders/categories/life_support",
        json={
            "org_id": w.village.id,
            "name": "生活帮扶",
            "accept_hours": 24,
            "resolve_hours": 72,
            "max_hours_per_resolve": 2,
        },
        headers=w.village_admin.headers,
    )
    assert configured.status_code == 200, configured.text
    assert configured.json()["max_hours_per_resolve"] == 2
    second = await submit(client, w.submitter, w.village)
    second = await in_progress(client, clock, w.village_admin, second, 5)
    problem(
        await act(
            client, w.village_admin, second, "resolve", volunteer_member_id=volunteer, hours=3
        ),
        422,
        "order.hours_over_cap",
    )
    await moved(client, w.village_admin, second, "resolve", volunteer_member_id=volunteer, hours=2)
    assert await balance(db, volunteer) == Decimal("2.0")


async def test_every_credit_is_audited(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await world(db, settings)
    order = await submit(client, w.submitter, w.village)
    order = await in_progress(client, clock, w.village_admin, order, 2)
    await moved(
        client,
        w.village_admin,
        order,
        "resolve",
        volunteer_member_id=w.volunteer.member_id,
        hours=1.5,
    )
    [entry] = (
        await db.execute(select(AuditEntry).where(AuditEntry.action == "time_bank.credited"))
    ).scalars()
    assert entry.actor_account_id == w.village_admin.account_id
    assert (entry.subject_type, entry.subject_id) == ("member", w.volunteer.member_id)
    assert entry.org_id == w.village.id
    assert entry.detail == {"order_id": order["id"], "hours": "1.5", "balance": "1.5"}
    listed = await client.get("/api/v1/audit", headers=w.county_admin.headers)
    assert "time_bank.credited" in [e["action"] for e in listed.json()["items"]]
