"""Demo orders for ``make run``: one in every state, and a reward the county offers.

At the demo village: one waiting to be accepted, one past its acceptance deadline
(escalated to the county, as the 15-minute job does), one accepted, one in progress,
one resolved and awaiting the submitter's rating, one resolved and rated (closed, with
the volunteer's hours in the time bank), one closed automatically 7 days after its
resolution, one rejected, one cancelled by the resident; one transferred to the county.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.config import Settings
from app.demo_names import DEMO_COUNTY, DEMO_VILLAGE
from app.identity.models import Account
from app.members.models import Member
from app.orders import jobs, service
from app.orders.models import ServiceOrder, TimeBankReward
from app.orders.schemas import OrderCreate
from app.organization.models import Organization

FIRST_TITLE = "老人家中水管漏水，请帮忙联系维修"


async def seed(session: AsyncSession, settings: Settings) -> None:
    if not settings.demo_data or settings.env == "prod":
        return
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
                # Two hours a step: the volunteer's 2 hours fit between start and resolve.
                now=now - timedelta(days=2) + timedelta(hours=2 * hour),
                note=note,
                volunteer_member_id=volunteer if action == "resolve" else None,
                hours=Decimal("2.0") if action == "resolve" else None,
                score=5 if action == "rate" else None,
            ),
        )
    await _more_states(
        session,
        settings,
        now=now,
        village=village,
        county=county,
        resident=resident_account,
        member=(member_account, member_id),
        secretary=secretary_account,
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


# title, category, submitter ("resident" or "member"), hours ago, then the moves:
# (action, hours after submission, note); a transfer goes to the county.
MORE: tuple[tuple[str, str, str, int, tuple[tuple[str, int, str | None], ...]], ...] = (
    ("村道路灯损坏，夜间出行不便", "life_support", "resident", 30, ()),
    (
        "外出务工人员子女入学政策咨询",
        "employment",
        "member",
        26,
        (("accept", 1, "已受理，联系教育部门了解政策"),),
    ),
    (
        "返乡创业贷款申请指导",
        "employment",
        "resident",
        50,
        (("accept", 2, None), ("start", 4, None)),
    ),
    (
        "申请流动党员活动证补办",
        "org_relation",
        "member",
        40,
        (("accept", 2, None), ("start", 3, None), ("resolve", 20, "已补办活动证并邮寄")),
    ),
    (
        "帮助孤寡老人代购药品",
        "life_support",
        "resident",
        24 * 10,
        (("accept", 1, None), ("start", 2, None), ("resolve", 24, "志愿者已代购并送药上门")),
    ),
    (
        "邻里宅基地纠纷请求调解",
        "legal_aid",
        "resident",
        50,
        (("reject", 3, "属于村民委员会调解范围，已告知向村调解委员会申请"),),
    ),
    ("咨询医保异地报销流程", "policy_consulting", "resident", 6, (("cancel", 1, None),)),
    (
        "在广州的组织关系如何转回吴川",
        "org_relation",
        "member",
        20,
        (("transfer", 2, "涉及县内组织关系转接，转县委组织部办理"),),
    ),
)


async def _more_states(
    session: AsyncSession,
    settings: Settings,
    *,
    now: datetime,
    village: int,
    county: int,
    resident: int,
    member: tuple[int, int | None],
    secretary: int,
) -> None:
    """The orders of :data:`MORE`, then what the scheduled jobs would have done by now."""
    for title, category, who, hours_ago, moves in MORE:
        submitted = now - timedelta(hours=hours_ago)
        account_id, member_id = (resident, None) if who == "resident" else member
        order = await service.create_order(
            session,
            settings,
            account_id=account_id,
            member_id=member_id,
            data=OrderCreate(
                category=category,
                title=title,
                description=f"{title}。",
                address="吴阳镇蛤岭村",
                contact_phone="13800003333",
                org_id=village,
            ),
            review=None,
            now=submitted,
        )
        for action, after_hours, note in moves:
            submitter = action == "cancel"
            await service.apply(
                session,
                service.Move(
                    order=order,
                    action=action,
                    role=service.SUBMITTER if submitter else service.ADMIN,
                    actor_account_id=account_id if submitter else secretary,
                    now=submitted + timedelta(hours=after_hours),
                    note=note,
                    to_org_id=county if action == "transfer" else None,
                ),
            )
    await jobs.escalate_overdue_orders(session, now)
    await jobs.auto_close_resolved(session, now)
