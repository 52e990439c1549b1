"""Demo relation transfers for ``make run``: one in each state.

==========================  =====================================================
何文斌 (``demo-mobile.1``)  requested by himself to 天河 (he is ``transfer_suggested``):
                            waits for the county to approve
梁秀兰                      approved by the county (letter 吴组转〔2026〕001号):
                            waits for 天河 to accept
黄志明                      completed: 天河 accepted, his home is 天河 now
苏建华                      refused by 天河
吴美玲                      rejected by the county, later asked again and withdrew
==========================  =====================================================

All start in the demo village (吴阳镇蛤岭村党支部); the county's admins act for the home
side (the village is below them), 天河商圈党委's for the receiving side.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.config import Settings
from app.demo_names import DEMO_COUNTY, DEMO_DISTRICT, DEMO_VILLAGE
from app.identity.models import Account
from app.identity.principal import Principal
from app.identity.validators import id_check_digit
from app.members.models import Member
from app.members.service import create_member
from app.organization.models import Organization
from app.organization.scope import Scope
from app.transfers import service
from app.transfers.models import RelationTransfer
from app.transfers.schemas import TransferCreate

NEW_PEOPLE = {  # name -> (birth, order of the ID number)
    "梁秀兰": (date(1987, 4, 12), 61),
    "黄志明": (date(1979, 8, 3), 71),
    "苏建华": (date(1990, 2, 26), 81),
    "吴美玲": (date(1994, 10, 9), 92),
}


def _id_number(birth: date, order: int) -> str:
    first17 = f"440883{birth:%Y%m%d}{order:03d}"
    return first17 + id_check_digit(first17)


async def seed(session: AsyncSession, settings: Settings) -> None:
    if not settings.demo_data or settings.env == "prod":
        return
    if (await session.execute(select(RelationTransfer.id).limit(1))).first() is not None:
        return
    found = await session.execute(
        select(Organization.name, Organization).where(
            Organization.name.in_([DEMO_COUNTY, DEMO_DISTRICT, DEMO_VILLAGE])
        )
    )
    orgs = {name: org for name, org in found.tuples()}
    rows = await session.execute(
        select(Member.name, Member.id, Account.id)
        .join(Account, Account.member_id == Member.id)
        .where(Member.name.in_(["张秀英", "何文斌"]))
    )
    accounts = {name: (member_id, account_id) for name, member_id, account_id in rows.tuples()}
    if len(orgs) < 3 or len(accounts) < 2:
        return
    county, district, village = orgs[DEMO_COUNTY], orgs[DEMO_DISTRICT], orgs[DEMO_VILLAGE]
    members = {"何文斌": accounts["何文斌"][0]}
    for index, (name, (birth, order)) in enumerate(NEW_PEOPLE.items()):
        member = await create_member(
            session,
            settings,
            name=name,
            id_number=_id_number(birth, order),
            phone=f"1380001{index:04d}",
            home_org_id=village.id,
            joined_on=date(2012 + index, 7, 1),
        )
        members[name] = member.id

    secretary = Principal(accounts["张秀英"][1], "admin", None, False, ())
    home = Scope(secretary, (county.path,))
    receiving = Scope(secretary, (district.path,))
    now = clock.now()

    def ago(days: int) -> datetime:
        return now - timedelta(days=days)

    async def ask(name: str, to: Organization, reason: str, days: int) -> int:
        return await service.request(
            session,
            home,
            TransferCreate(member_id=members[name], to_org_id=to.id, reason=reason),
            ago(days),
        )

    async def act(scope: Scope, transfer_id: int, action: str, days: int, **more: str) -> None:
        version = (
            await session.execute(
                select(RelationTransfer.version).where(RelationTransfer.id == transfer_id)
            )
        ).scalar_one()
        await service.act(
            session, scope, transfer_id, action, version=version, now=ago(days), **more
        )

    # 何文斌 asks himself, from the mini-program.
    he = Principal(accounts["何文斌"][1], "member", members["何文斌"], False, ())
    await service.request(
        session,
        Scope(he, ()),
        TransferCreate(to_org_id=district.id, reason="在广州天河定居工作已满半年"),
        ago(1),
    )
    liang = await ask("梁秀兰", district, "随配偶在广州天河定居", 12)
    await act(home, liang, "approve", 10, letter_no="吴组转〔2026〕001号")
    huang = await ask("黄志明", district, "在天河商圈创业，长期居住", 40)
    await act(home, huang, "approve", 38, letter_no="吴组转〔2026〕002号")
    await act(receiving, huang, "accept", 30, reason="已核对介绍信，同意接收")
    su = await ask("苏建华", district, "在天河务工", 25)
    await act(home, su, "approve", 24, letter_no="吴组转〔2026〕003号")
    await act(receiving, su, "refuse", 20, reason="工作单位不在本商圈，请转入居住地社区党组织")
    wu = await ask("吴美玲", district, "外出务工", 60)
    await act(home, wu, "reject", 58, reason="外出时间不足 6 个月，请办理流动党员外出登记")
    again = await ask("吴美玲", district, "在天河务工已满半年", 8)
    await act(home, again, "withdraw", 6, reason="本人改变计划")
    await session.flush()
