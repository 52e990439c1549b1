"""The orders demo seed runs on top of the base demo data and only once."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.demo import seed_demo
from app.members.models import Member
from app.orders import demo
from app.orders.models import ServiceOrder, TimeBankAccount, TimeBankReward
from tests.api.test_order_helpers import count, ensure_default_categories


async def test_demo_seed_adds_orders_a_credit_and_a_reward(
    db: AsyncSession, settings: Settings
) -> None:
    demo_settings = settings.model_copy(update={"demo_data": True})
    await ensure_default_categories(db)
    await seed_demo(db, demo_settings)
    await demo.seed(db, demo_settings)
    await demo.seed(db, demo_settings)  # a second run adds nothing

    statuses = sorted((await db.execute(select(ServiceOrder.status))).scalars())
    assert statuses == [
        "accepted",
        "cancelled",
        "closed",  # rated
        "closed",  # closed 7 days after its resolution
        "in_progress",
        "rejected",
        "resolved",
        "submitted",  # waiting
        "submitted",  # overdue, escalated
        "submitted",  # transferred to the county
    ]
    volunteer = (await db.execute(select(Member.id).where(Member.name == "刘芳"))).scalar_one()
    account = await db.get(TimeBankAccount, volunteer)
    assert account is not None and account.balance == Decimal("2.0")
    assert await count(db, TimeBankReward) == 1
