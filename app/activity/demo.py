"""Demo activities for ``make run``: a themed party day on site, an online class, a
meeting of the chamber-of-commerce branch in Guangzhou, and the demo member's sign-up;
an activity whose sign-in is open now, and yesterday's meeting with its roll."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.models import Activity, ActivityAttendance, ActivitySignup
from app.core import clock
from app.core.config import Settings
from app.demo_names import DEMO_CHAMBER, DEMO_COUNTY, DEMO_VILLAGE
from app.members.models import Member
from app.organization.models import Organization

DEMO_MEMBER = "王建国"


def _at(days: int, hour: int, now: datetime) -> datetime:
    """``days`` from today (Asia/Shanghai) at ``hour``:00 local time, in UTC."""
    day = now.astimezone(clock.SHANGHAI).date() + timedelta(days=days)
    return datetime.combine(day, time(hour), tzinfo=clock.SHANGHAI).astimezone(UTC)


async def seed(session: AsyncSession, settings: Settings) -> None:
    if not settings.demo_data or settings.env == "prod":
        return
    orgs = {
        name: org
        for name, org in (
            await session.execute(
                select(Organization.name, Organization).where(
                    Organization.name.in_([DEMO_COUNTY, DEMO_VILLAGE, DEMO_CHAMBER])
                )
            )
        ).tuples()
    }
    if len(orgs) < 3:
        return
    existing = await session.execute(
        select(Activity.id).where(Activity.org_id.in_([o.id for o in orgs.values()])).limit(1)
    )
    if existing.first() is not None:
        return
    now = clock.now()
    village = orgs[DEMO_VILLAGE]
    theme_day = Activity(
        org_id=village.id,
        title="主题党日：重温入党誓词",
        kind="theme_day",
        description="地点：蛤岭村党群服务中心。请佩戴党徽，现场扫码或定位签到。",
        starts_at=_at(3, 9, now),
        ends_at=_at(3, 11, now),
        checkin_opens_at=_at(3, 9, now) - timedelta(minutes=30),
        checkin_closes_at=_at(3, 10, now),
        online=False,
        lat=village.lat or 21.4283,
        lon=village.lon or 110.7790,
        radius_m=300,
        capacity=40,
        signup_count=1,
        credit_points=5,
    )
    online_class = Activity(
        org_id=orgs[DEMO_COUNTY].id,
        title="在线党课：学习党的二十届三中全会精神",
        kind="online_class",
        description="全县党员（含外出流动党员）在线学习，课程开放期间签到有效。",
        starts_at=_at(1, 20, now),
        ends_at=_at(1, 21, now),
        checkin_opens_at=_at(1, 20, now),
        checkin_closes_at=_at(1, 21, now),
        online=True,
        credit_points=3,
    )
    chamber = orgs[DEMO_CHAMBER]
    meeting = Activity(
        org_id=chamber.id,
        title="吴川商会（广州）党支部党员大会",
        kind="branch_meeting",
        description="通报支部工作，交流在外经商务工情况。",
        starts_at=_at(5, 19, now),
        ends_at=_at(5, 21, now),
        checkin_opens_at=_at(5, 19, now) - timedelta(minutes=30),
        checkin_closes_at=_at(5, 20, now),
        online=False,
        lat=chamber.lat or 23.1247,
        lon=chamber.lon or 113.3612,
        radius_m=500,
    )
    session.add_all([theme_day, online_class, meeting])
    await session.flush()
    member_id = (
        await session.execute(
            select(Member.id).where(Member.name == DEMO_MEMBER, Member.home_org_id == village.id)
        )
    ).scalar_one_or_none()
    if member_id is None:
        theme_day.signup_count = 0
    else:
        session.add(ActivitySignup(activity_id=theme_day.id, member_id=member_id))
    await session.flush()
    await _now_and_past(session, village, now)


async def _now_and_past(session: AsyncSession, village: Organization, now: datetime) -> None:
    """An activity whose sign-in window is open now (show the rotating QR code) and
    yesterday's meeting with its roll: one member attended, one signed up and stayed away."""
    lat, lon = village.lat or 21.4283, village.lon or 110.7790
    cleanup = Activity(
        org_id=village.id,
        title="志愿服务：村道环境整治",
        kind="volunteer",
        description="党员志愿者清理村道垃圾、整治乱堆放。现场扫码签到。",
        starts_at=now - timedelta(minutes=30),
        ends_at=now + timedelta(hours=2),
        checkin_opens_at=now - timedelta(minutes=45),
        checkin_closes_at=now + timedelta(hours=1),
        online=False,
        lat=lat,
        lon=lon,
        radius_m=300,
        credit_points=2,
    )
    meeting = Activity(
        org_id=village.id,
        title="支部党员大会：讨论发展党员",
        kind="branch_meeting",
        description="三会一课。地点：蛤岭村党群服务中心。",
        starts_at=_at(-1, 15, now),
        ends_at=_at(-1, 17, now),
        checkin_opens_at=_at(-1, 15, now) - timedelta(minutes=30),
        checkin_closes_at=_at(-1, 16, now),
        online=False,
        lat=lat,
        lon=lon,
        radius_m=300,
    )
    session.add_all([cleanup, meeting])
    await session.flush()
    found = await session.execute(
        select(Member.name, Member.id).where(
            Member.home_org_id == village.id, Member.name.in_(["张秀英", "杨国华"])
        )
    )
    members = {name: member_id for name, member_id in found.tuples()}
    for member_id in members.values():
        session.add(ActivitySignup(activity_id=meeting.id, member_id=member_id))
    meeting.signup_count = len(members)
    if "张秀英" in members:
        session.add(
            ActivityAttendance(
                activity_id=meeting.id,
                member_id=members["张秀英"],
                method="location",
                lat=lat,
                lon=lon,
                distance_m=0.0,
                attended_at=meeting.starts_at - timedelta(minutes=10),
            )
        )
    await session.flush()
