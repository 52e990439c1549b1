"""Demo outflows for ``make run``: every state of the outflow and every ledger flag.

All members are of the demo village (吴阳镇蛤岭村党支部) unless noted; days count back
from the day the demo is seeded (the app's clock, so ``APP_CLOCK_OFFSET`` moves them on):

====================  ==========================================================
王建国 (demo member)  active, checked in and accepted at the 天河 business-district
                      committee (dual management), consented, reported 10 days ago:
                      no flag
刘芳                  pending: waits for the branch secretary's approval (logs in as
                      ``demo-leaving.1``); an earlier registration she withdrew
                      (``withdrawn``) is in her history
林小梅                active, check-in requested at 天河: waits for the destination
杨国华                active, approved 40 days ago, never checked in: ``checkin_overdue``
周丽娟                active, checked in, no report for 120 days: ``report_overdue``
陈国栋                active, approved 200 days ago and silent since: ``lost_contact``
                      (escalated to the county), ``checkin_overdue``,
                      ``report_overdue``, ``transfer_suggested``
何文斌                active, at one place for 200 days, reports regularly:
                      ``transfer_suggested`` only (logs in as ``demo-mobile.1``)
郑雪梅                active, check-in refused by 天河: must choose another organisation
罗永强                returned 5 days ago (the returned ledger); an earlier approved
                      outflow the branch cancelled before departure (``cancelled``)
谢春花 (机关党支部)   rejected, with the reason
====================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.config import Settings
from app.demo_names import DEMO_COUNTY, DEMO_DISTRICT
from app.identity.models import Account
from app.identity.principal import Principal
from app.members.models import Member
from app.mobility import service
from app.mobility.decisions import decide
from app.mobility.jobs import escalate_lost_contact
from app.mobility.models import Outflow
from app.mobility.schemas import OutflowCreate, ReportIn
from app.organization.models import Organization
from app.organization.scope import Scope
from app.wechat.client import WeChatClient

# Days ago of each step of an active outflow: registered, approved, check-in requested,
# check-in accepted, last report (None: not done).
Steps = tuple[int, int, int | None, int | None, int | None]
ACTIVE: dict[str, Steps] = {
    "王建国": (45, 42, 30, 29, 10),  # checked in, accepted, reporting: nothing to flag
    "林小梅": (12, 10, 2, None, None),  # her check-in waits for the destination
    "杨国华": (41, 40, None, None, None),  # no check-in within 30 days
    "周丽娟": (122, 120, 116, 115, None),  # checked in long ago, no report within 90 days
    "陈国栋": (202, 200, None, None, None),  # silent since his approval
    "何文斌": (202, 200, 195, 194, 20),  # settled for more than 183 days, reporting on time
    "郑雪梅": (20, 18, 6, None, None),  # refused below
    "罗永强": (102, 100, None, None, None),  # returned below
}
PEOPLE = (*ACTIVE, "刘芳")
OFFICE_PEOPLE = ("谢春花",)
TIANHE = (23.1330, 113.3270)  # GCJ-02, 广州市天河区
# WeChat logins (simulator codes "<openid>.1") for the member's side of two outflows:
# 刘芳's, which the demo walk (docs/demo-walk.md) takes from approval to escalation,
# and 何文斌's transfer suggestion.
LOGINS = {"刘芳": "demo-leaving", "何文斌": "demo-mobile"}


@dataclass
class _Demo:
    """Who acts in the demo and when "now" is."""

    session: AsyncSession
    settings: Settings
    wechat: WeChatClient
    now: datetime
    secretary_account_id: int
    home: Scope  # the county's admins decide for every home branch below
    destination: Scope  # the 天河 committee's admins decide check-ins there
    destination_org_id: int

    def member(self, member: Member, account: Account | None) -> Principal:
        # Members without a WeChat account are registered by the secretary for them
        # (only members with an account report or consent: that is their own act).
        account_id = account.id if account is not None else self.secretary_account_id
        return Principal(account_id, "member", member.id, False, ())

    def ago(self, days: int) -> datetime:
        return self.now - timedelta(days=days)

    async def register(
        self, who: Principal, *, days_ago: int, away_days: int = 300, to: str = "440106"
    ) -> Outflow:
        today = clock.shanghai_day(self.now)
        guangzhou = to == "440106"
        return await service.register(
            self.session,
            self.settings,
            who,
            OutflowCreate(
                destination_region_code=to,
                destination_address="广东省广州市天河区天河路 385 号"
                if guangzhou
                else "广东省深圳市南山区科技园",
                reason="work",
                departed_on=today - timedelta(days=days_ago - 2),
                expected_return_on=today + timedelta(days=away_days),
                employer="广州某电子商务有限公司" if guangzhou else None,
                contact_phone=f"138{(who.member_id or 0) % 10**8:08d}",
            ),
            self.ago(days_ago),
        )

    async def decide(
        self, outflow: Outflow, action: str, *, days_ago: int, reason: str | None = None
    ) -> None:
        """A decision of the home side, or of the destination on a check-in."""
        await decide(
            self.session,
            self.destination if action.endswith("_checkin") else self.home,
            outflow.id,
            action,
            version=outflow.version,
            now=self.ago(days_ago),
            reason=reason,
        )

    async def approve(self, outflow: Outflow, *, days_ago: int) -> None:
        await self.decide(outflow, "approve", days_ago=days_ago)

    async def check_in(self, outflow: Outflow, who: Principal, *, days_ago: int) -> None:
        await service.request_checkin(
            self.session,
            Scope(who, ()),
            outflow.id,
            org_id=self.destination_org_id,
            version=outflow.version,
            now=self.ago(days_ago),
        )

    async def accept(self, outflow: Outflow, *, days_ago: int) -> None:
        await self.decide(outflow, "accept_checkin", days_ago=days_ago)

    async def live(self, who: Principal, steps: Steps) -> Outflow:
        """Register and approve an outflow, then check in, accept and report as ``steps``
        say (days ago)."""
        registered, approved, checkin, accepted, reported = steps
        outflow = await self.register(who, days_ago=registered)
        await self.approve(outflow, days_ago=approved)
        if checkin is not None:
            await self.check_in(outflow, who, days_ago=checkin)
        if accepted is not None:
            await self.accept(outflow, days_ago=accepted)
        if reported is not None:
            await self.report(outflow, who, days_ago=reported)
        return outflow

    async def report(self, outflow: Outflow, who: Principal, *, days_ago: int) -> None:
        await service.record_consent(
            self.session, who, kind="location", granted=True, now=self.ago(days_ago + 1)
        )
        await service.add_report(
            self.session,
            Scope(who, ()),
            self.wechat,  # not called: the demo reports carry no note to check
            outflow.id,
            ReportIn(lat=TIANHE[0], lon=TIANHE[1], note=None),
            self.ago(days_ago),
        )


async def seed(session: AsyncSession, settings: Settings) -> None:
    if not settings.demo_data or settings.env == "prod":
        return
    orgs = {
        name: org
        for name, org in (
            await session.execute(
                select(Organization.name, Organization).where(
                    Organization.name.in_([DEMO_COUNTY, DEMO_DISTRICT])
                )
            )
        ).tuples()
    }
    people = {
        name: (member, account)
        for name, member, account in (
            await session.execute(
                select(Member.name, Member, Account)
                .outerjoin(Account, Account.member_id == Member.id)
                .where(Member.name.in_([*PEOPLE, *OFFICE_PEOPLE, "张秀英"]))
            )
        ).tuples()
    }
    if len(orgs) < 2 or any(name not in people for name in (*PEOPLE, *OFFICE_PEOPLE, "张秀英")):
        return
    _, secretary_account = people["张秀英"]
    if secretary_account is None or people["王建国"][1] is None:
        return
    existing = await session.execute(
        select(Outflow.id)
        .where(Outflow.member_id.in_([member.id for member, _ in people.values()]))
        .limit(1)
    )
    if existing.first() is not None:
        return
    for name, openid in LOGINS.items():
        member, account = people[name]
        if account is None:
            account = Account(openid=openid, member_id=member.id, display_name=name)
            session.add(account)
            await session.flush()
            people[name] = (member, account)

    county, district = orgs[DEMO_COUNTY], orgs[DEMO_DISTRICT]
    admin = Principal(secretary_account.id, "admin", None, False, ())
    async with httpx.AsyncClient() as http:
        demo = _Demo(
            session=session,
            settings=settings,
            wechat=WeChatClient(
                http, appid=settings.wechat_appid, secret=settings.wechat_secret, engine=None
            ),
            now=clock.now(),
            secretary_account_id=secretary_account.id,
            home=Scope(admin, (county.path,)),
            destination=Scope(admin, (district.path,)),
            destination_org_id=district.id,
        )
        who = {name: demo.member(*people[name]) for name in (*PEOPLE, *OFFICE_PEOPLE)}

        # 罗永强: an approved outflow the branch called off before he left (departing
        # 128 days ago, cancelled the day after the approval), before the one he
        # came home from (in ACTIVE).
        called_off = await demo.register(who["罗永强"], days_ago=130)
        await demo.approve(called_off, days_ago=130)
        await demo.decide(called_off, "cancel", days_ago=129, reason="用工单位取消外派计划")

        outflows = {name: await demo.live(who[name], days) for name, days in ACTIVE.items()}

        # 刘芳: withdrew a first registration (her plans changed), then registered again.
        first = await demo.register(who["刘芳"], days_ago=20)
        await service.withdraw(
            session,
            Scope(who["刘芳"], ()),
            first.id,
            version=first.version,
            reason="行程有变，暂不外出",
            now=demo.ago(19),
        )
        # 刘芳: waits for approval (to Shenzhen, leaving next week).
        await service.register(
            session,
            settings,
            who["刘芳"],
            OutflowCreate(
                destination_region_code="440305",
                destination_address="广东省深圳市南山区科技园",
                reason="business",
                departed_on=clock.shanghai_day(demo.now) + timedelta(days=7),
                expected_return_on=clock.shanghai_day(demo.now) + timedelta(days=200),
                employer=None,
                contact_phone="13800000003",
            ),
            demo.now,
        )

        # 郑雪梅: the destination refused her check-in.
        zheng = outflows["郑雪梅"]
        await demo.decide(
            zheng,
            "refuse_checkin",
            days_ago=5,
            reason="该党员工作地点不在本商圈，请选择住所附近的党组织报到",
        )

        # 罗永强: came home; the outflow is in the returned ledger.
        luo = outflows["罗永强"]
        await service.return_outflow(
            session,
            demo.home,
            luo.id,
            returned_on=clock.shanghai_day(demo.ago(5)),
            version=luo.version,
            now=demo.ago(5),
        )

        # 谢春花 (机关党支部): rejected.
        xie = await demo.register(who["谢春花"], days_ago=3, away_days=60, to="440305")
        await demo.decide(
            xie,
            "reject",
            days_ago=2,
            reason="外出时间不足 6 个月，无需办理流动党员登记，请向支部请假",
        )

    # What the morning job would have done by now: 陈国栋 is escalated to the county.
    await escalate_lost_contact(session, clock.shanghai_day(demo.now), now=demo.now)
    await session.flush()
