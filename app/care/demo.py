"""Demo care for ``make run``: greetings scheduled for the next Mid-Autumn (mobile
members) and Spring Festival (all members) of the county, and three hardship cases of
the demo village, made through the services as an admin and a member would:

==========  ===================================================================
王建国      (demo member) asked for help himself: illness, a visit logged, open
刘芳        recorded by the branch secretary: family, a visit and 2,000 yuan of
            党员众筹, open
陈志强      (商会党支部) financial, 1,000 yuan of funds, closed
==========  ===================================================================
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.care import campaigns, cases
from app.care.models import CareCampaign
from app.care.schemas import CampaignIn, CareCloseIn, CaseIn, HelpIn
from app.core import clock
from app.core.config import Settings
from app.demo_names import DEMO_COUNTY, DEMO_VILLAGE
from app.identity.models import Account
from app.identity.principal import Principal
from app.members.models import Member
from app.organization.models import Organization
from app.organization.scope import Scope


async def _principal(session: AsyncSession, openid: str, kind: str = "admin") -> Principal:
    account = (await session.execute(select(Account).where(Account.openid == openid))).scalar_one()
    return Principal(
        account_id=account.id, kind=kind, member_id=account.member_id, superadmin=False, roles=()
    )


async def seed(session: AsyncSession, settings: Settings) -> None:
    if not settings.demo_data or settings.env == "prod":
        return
    if (await session.execute(select(CareCampaign.id).limit(1))).first():
        return
    county = (
        await session.execute(select(Organization).where(Organization.name == DEMO_COUNTY))
    ).scalar_one_or_none()
    if county is None:
        return
    members = dict(
        (
            await session.execute(
                select(Member.name, Member.id).where(Member.name.in_(("王建国", "刘芳", "陈志强")))
            )
        )
        .tuples()
        .all()
    )
    today = clock.today()
    admin = Scope(await _principal(session, "demo-admin"), (county.path,))
    village = (
        await session.execute(select(Organization).where(Organization.name == DEMO_VILLAGE))
    ).scalar_one()
    secretary = Scope(await _principal(session, "demo-secretary"), (village.path,))
    member = Scope(await _principal(session, "demo-member", "member"), ())

    for festival, audience, title, message in (
        ("mid_autumn", "mobile_members", "中秋节问候", "月圆人团圆，家乡党组织挂念在外的您。"),
        ("spring_festival", "all_members", "春节慰问", "新春佳节，向全体党员致以节日问候！"),
    ):
        await campaigns.create_campaign(
            session,
            admin,
            CampaignIn(
                org_id=county.id,
                title=title,
                message=message,
                audience=audience,
                festival=festival,
            ),
            today,
        )

    own = await cases.create_case(
        session,
        settings,
        member,
        CaseIn(kind="illness", description="腰椎手术后需休养三个月，暂无收入。"),
        today - timedelta(days=20),
    )
    await cases.add_help(
        session,
        settings,
        secretary,
        own.id,
        HelpIn(given_on=today - timedelta(days=15), form="visit", note="支部书记入户走访"),
        today,
    )
    family = await cases.create_case(
        session,
        settings,
        secretary,
        CaseIn(member_id=members["刘芳"], kind="family", description="丈夫病故，两个孩子上学。"),
        today - timedelta(days=60),
    )
    for help_in in (
        HelpIn(given_on=today - timedelta(days=55), form="visit", note="送去慰问品"),
        HelpIn(given_on=today - timedelta(days=30), form="crowdfunding", amount_yuan=2000),
    ):
        await cases.add_help(session, settings, secretary, family.id, help_in, today)
    closed = await cases.create_case(
        session,
        settings,
        admin,
        CaseIn(member_id=members["陈志强"], kind="financial", description="生意失败，负债。"),
        today - timedelta(days=120),
    )
    helped = await cases.add_help(
        session,
        settings,
        admin,
        closed.id,
        HelpIn(given_on=today - timedelta(days=100), form="funds", amount_yuan=1000),
        today,
    )
    await cases.close_case(
        session, settings, admin, closed.id, CareCloseIn(version=helped.version, note="已恢复经营")
    )
