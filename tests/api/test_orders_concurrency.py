"""Races with real parallel connections: one order moved by many, one balance drained by
many, the escalation job on two instances."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.notify.models import Notification
from app.orders.jobs import escalate_overdue_orders
from app.orders.models import ServiceOrder, ServiceOrderEvent, TimeBankAccount, TimeBankEntry
from tests.api.test_order_helpers import World, moved, submit, world
from tests.clock import Clock


async def _world(engine: AsyncEngine, settings: Settings) -> World:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        return await world(session, settings)


async def test_parallel_transitions_on_one_order_move_it_once(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    w = await _world(engine, settings)
    client = committing_client
    order = await submit(client, w.submitter, w.village)
    url = f"/api/v1/orders/{order['id']}/transitions"

    async def attempt(action: str, n: int) -> httpx.Response:
        actor = w.submitter if action == "cancel" else w.village_admin
        note = {"note": f"第{n}次"} if action == "reject" else {}
        return await client.post(
            url, json={"action": action, "version": 1, **note}, headers=actor.headers
        )

    actions = ["accept", "reject", "cancel"] * 4
    responses = await asyncio.gather(*(attempt(a, n) for n, a in enumerate(actions)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: len(actions) - 1}, [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
        "conflict.stale_version",
        "order.invalid_transition",
    }
    async with AsyncSession(engine) as session:
        row = await session.get(ServiceOrder, order["id"])
        assert row is not None and row.version == 2 and row.status == winner["status"]
        moves = (
            await session.execute(
                select(func.count()).where(
                    ServiceOrderEvent.order_id == order["id"], ServiceOrderEvent.action != "submit"
                )
            )
        ).scalar_one()
        assert moves == 1


async def test_parallel_redemptions_never_overdraw(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, clock: Clock
) -> None:
    w = await _world(engine, settings)
    client = committing_client
    order = await submit(client, w.submitter, w.village)
    for action in ("accept", "start"):
        order = await moved(client, w.village_admin, order, action)
    clock.advance(hours=5)
    await moved(
        client,
        w.village_admin,
        order,
        "resolve",
        volunteer_member_id=w.volunteer.member_id,
        hours=5,
    )

    async def redeem(n: int, key: str | None = None) -> httpx.Response:
        headers = {**w.volunteer.headers, **({"Idempotency-Key": key} if key else {})}
        return await client.post(
            "/api/v1/time-bank/redemptions",
            json={"reward": "爱心超市兑换券", "hours": 1},
            headers=headers,
        )

    responses = await asyncio.gather(*(redeem(n) for n in range(12)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 5, 409: 7}, [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "time_bank.insufficient_balance"
    }
    assert sorted(r.json()["balance"] for r in responses if r.status_code == 201) == [
        0,
        1,
        2,
        3,
        4,
    ]
    async with AsyncSession(engine) as session:
        account = await session.get(TimeBankAccount, w.volunteer.member_id)
        assert account is not None
        assert (account.balance, account.hours_earned, account.hours_redeemed) == (
            Decimal("0.0"),
            Decimal("5.0"),
            Decimal("5.0"),
        )
        ledger = (
            await session.execute(
                select(TimeBankEntry.hours).where(TimeBankEntry.member_id == w.volunteer.member_id)
            )
        ).scalars()
        assert sorted(ledger) == [Decimal("-1.0")] * 5 + [Decimal("5.0")]


async def test_parallel_retries_of_one_redemption_take_effect_once(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, clock: Clock
) -> None:
    w = await _world(engine, settings)
    client = committing_client
    order = await submit(client, w.submitter, w.village)
    for action in ("accept", "start"):
        order = await moved(client, w.village_admin, order, action)
    clock.advance(hours=3)
    await moved(
        client,
        w.village_admin,
        order,
        "resolve",
        volunteer_member_id=w.volunteer.member_id,
        hours=3,
    )
    headers = {**w.volunteer.headers, "Idempotency-Key": "redeem-once"}
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/v1/time-bank/redemptions",
                json={"reward": "理发券", "hours": 2},
                headers=headers,
            )
            for _ in range(5)
        )
    )
    assert {r.status_code for r in responses} == {201}
    assert {r.json()["entry"]["id"] for r in responses} == {responses[0].json()["entry"]["id"]}
    async with AsyncSession(engine) as session:
        account = await session.get(TimeBankAccount, w.volunteer.member_id)
        assert account is not None and account.balance == Decimal("1.0")


async def test_escalation_on_two_instances_escalates_each_order_once(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    w = await _world(engine, settings)
    ids = [(await submit(committing_client, w.submitter, w.village))["id"] for _ in range(6)]
    now = datetime.now(UTC)
    async with AsyncSession(engine) as session:
        await session.execute(
            update(ServiceOrder)
            .where(ServiceOrder.id.in_(ids))
            .values(accept_due_at=now - timedelta(hours=1))
        )
        await session.commit()

    async def instance() -> int:
        async with AsyncSession(engine) as session, session.begin():
            return await escalate_overdue_orders(session, now, batch=4)

    first = await asyncio.gather(instance(), instance())
    second = await asyncio.gather(instance(), instance())
    assert sum(first) + sum(second) == 6
    async with AsyncSession(engine) as session:
        events = (
            await session.execute(
                select(func.count()).where(ServiceOrderEvent.action == "escalate")
            )
        ).scalar_one()
        told = (
            await session.execute(
                select(func.count()).where(
                    Notification.account_id == w.town_admin.account_id,
                    Notification.title == "诉求超时督办",
                )
            )
        ).scalar_one()
    assert events == 6 and told == 6
