"""Demo orders for ``make run``: one waiting at the demo village, one resolved and rated
with a volunteer's hours in the time bank, and a reward the county offers for hours."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.config import Settings
from app.identity.models import Account
from app.members.models import Member
from app.orders import service
from app.orders.models import ServiceOrder, TimeBankReward
from app.orders.schemas import OrderCreate
from app.organization.models import Organization

FIRST_TITLE = "老人家中水管漏水，请帮忙联系维修"


async def seed(session: AsyncSession, settings: Settings) -> None:
    if not settings.demo_data or settings.env == "prod":
        return
    # Imported here: app.demo wires this module in, a top-level import would be circular.
    from app.demo import DEMO_COUNTY, DEMO_VILLAGE

    if (
        await session.execute(select(ServiceOrder.id).where(ServiceOrder.title == FIRST_TITLE))
    ).first():
        return
    orgs = {
        name: org_id
        for name, org_id in await session.execute(
            select(Organization.name, Organization.id).where(
                Organization.name.in_((DEMO_COUNTY, DEMO_VILLAGE))
            )
        )
    }
    accounts = {
        openid: (account_id, member_id)
        for openid, account_id, member_id in await session.execute(
            select(Account.openid, Account.id, Account.member_id).where(
                Account.openid.in_(("demo-resident", "demo-member", "demo-secretary"))
            )
        )
    }
    volunteer = (
        await session.execute(select(Member.id).where(Member.name == "刘芳"))
    ).scalar_one_or_none()
    if len(orgs) < 2 or len(accounts) < 3 or volunteer is None:
        return
    village, county = orgs[DEMO_VILLAGE], orgs[DEMO_COUNTY]
    now = clock.now()

    resident_account, _ = accounts["demo-resident"]
    await service.create_order(
        session,
        settings,
        account_id=resident_account,
        member_id=None,
        data=OrderCreate(
            category="life_support",
            title=FIRST_TITLE,
            description="蛤岭村三组独居老人家中厨房水管漏水两天，老人行动不便。",
            address="吴阳镇蛤岭村三组",
            lat=21.4283,
            lon=110.7789,
            contact_phone="13800001111",
            org_id=village,
        ),
        review=None,
        now=now - timedelta(hours=3),
    )

    member_account, member_id = accounts["demo-member"]
    secretary_account, _ = accounts["demo-secretary"]
    order = await service.create_order(
        session,
        settings,
        account_id=member_account,
        member_id=member_id,
        data=OrderCreate(
            category="policy_consulting",
            title="在外务工如何转接组织关系",
            description="本人在广州务工，想了解流动党员组织关系转接需要哪些材料。",
            contact_phone="13800002222",
            org_id=village,
        ),
        review=None,
        now=now - timedelta(days=2),
    )
    steps: list[tuple[str, str, str | None]] = [
        ("accept", service.ADMIN, "已受理，安排专人解答"),
        ("start", service.ADMIN, None),
        ("resolve", service.ADMIN, "已电话说明所需材料，并由志愿者协助准备介绍信"),
        ("rate", service.SUBMITTER, "解答很耐心"),
    ]
    for hour, (action, role, note) in enumerate(steps, start=1):
        await service.apply(
            session,
            service.Move(
                order=order,
                action=action,
                role=role,
                actor_account_id=secretary_account if role == service.ADMIN else member_account,
                now=now - timedelta(days=2) + timedelta(hours=hour),
                note=note,
                volunteer_member_id=volunteer if action == "resolve" else None,
                hours=Decimal("2.0") if action == "resolve" else None,
                score=5 if action == "rate" else None,
            ),
        )
    session.add(
        TimeBankReward(
            org_id=county,
            name="爱心超市兑换券",
            description="凭券到村爱心超市兑换日用品一份",
            hours=Decimal("2.0"),
            stock=50,
            created_by_account_id=secretary_account,
        )
    )
    await session.flush()
