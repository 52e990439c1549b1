"""Demo study data for ``make run``: items of the demo county and a few days of credits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.config import Settings
from app.core.db import driver_connection
from app.demo_names import DEMO_COUNTY
from app.members.models import Member
from app.organization.models import Organization
from app.study import repository as repo
from app.study import service
from app.study.models import StudyItem

DEMO_ITEMS = (
    ("学习贯彻党的二十届三中全会精神（全文）", "article", "https://www.12371.cn/", 180, 1),
    ("微党课：流动党员如何过好组织生活", "video", "https://www.12371.cn/dxfx/", 300, 1),
    ("红岩革命纪念馆 VR 展厅", "vr_hall", "/pages/study/vr?hall=hongyan", 240, 2),
    ("每日答题：党章党规", "quiz", "/pages/study/quiz?set=daily", 60, 2),
)


async def seed(session: AsyncSession, settings: Settings) -> None:
    """Items for the demo county and a 5-day check-in streak for the demo member."""
    if not settings.demo_data or settings.env == "prod":
        return
    county = (
        await session.execute(select(Organization).where(Organization.name == DEMO_COUNTY))
    ).scalar_one_or_none()
    if county is None:
        return
    exists = (
        await session.execute(select(StudyItem.id).where(StudyItem.org_id == county.id))
    ).first()
    if exists:
        return
    await service.ensure_default_rules(session)
    items = []
    for title, kind, url, min_seconds, points in DEMO_ITEMS:
        row = StudyItem(
            org_id=county.id,
            title=title,
            kind=kind,
            url=url,
            min_seconds=min_seconds,
            points=points,
        )
        session.add(row)
        items.append(row)
    await session.flush()

    member = (
        await session.execute(select(Member).where(Member.name == "王建国"))
    ).scalar_one_or_none()
    if member is None:
        return
    conn = await driver_connection(session)
    now = clock.now()
    for days_ago in range(5, 0, -1):
        for item in items[: 2 + days_ago % 3]:
            started = now - timedelta(days=days_ago, minutes=30)
            session_id = await repo.insert_session(
                session, member_id=member.id, item_id=item.id, started_at=started
            )
            finished = started + timedelta(seconds=item.min_seconds + 30)
            await repo.award_study(
                conn,
                repo.StudyClaim(
                    member_id=member.id,
                    session_id=session_id,
                    client_event_id=f"demo-{session_id}",
                    at=finished,
                    day=clock.shanghai_day(finished),
                ),
            )
