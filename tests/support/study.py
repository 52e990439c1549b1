"""Builders for the study tests: items, sessions, rules, the instant they run at (the
fixtures ``noon_clock`` and ``rules`` are in ``tests/api/conftest.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.members.models import Member
from app.organization.models import Organization
from app.study.models import CreditDaily, CreditLedger, CreditRule, StudyItem, StudySession

# 2026-03-10 12:00 in Asia/Shanghai.
NOON = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)


async def item(
    db: AsyncSession,
    org: Organization | None,
    *,
    kind: str = "article",
    min_seconds: int = 60,
    points: int = 1,
    title: str = "学习贯彻党的二十届三中全会精神",
) -> StudyItem:
    row = StudyItem(
        org_id=org.id if org else None,
        title=title,
        kind=kind,
        url="https://example.org/study/1",
        min_seconds=min_seconds,
        points=points,
    )
    db.add(row)
    await db.flush()
    return row


async def session_at(
    db: AsyncSession, member: Member | None, study_item: StudyItem, started_at: datetime
) -> StudySession:
    assert member is not None
    row = StudySession(member_id=member.id, item_id=study_item.id, started_at=started_at)
    db.add(row)
    await db.flush()
    return row


async def override(
    db: AsyncSession,
    org: Organization,
    kind: str,
    *,
    points: int,
    daily_cap: int,
    overall_daily_cap: int,
) -> None:
    db.add(
        CreditRule(
            org_id=org.id,
            kind=kind,
            points=points,
            daily_cap=daily_cap,
            overall_daily_cap=overall_daily_cap,
        )
    )
    await db.flush()


def member_id(actor: object) -> int:
    """The roster id of a test actor (read before a failing request expires the objects)."""
    member = getattr(actor, "member", None)
    assert isinstance(member, Member)
    return member.id


async def ledger_points(db: AsyncSession, member_id: int) -> tuple[int, int]:
    """(number of ledger entries, their points) of a member."""
    row = (
        await db.execute(
            select(func.count(), func.coalesce(func.sum(CreditLedger.points), 0)).where(
                CreditLedger.member_id == member_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def daily_points(db: AsyncSession, member_id: int) -> dict[str, int]:
    rows = await db.execute(
        select(CreditDaily.day, CreditDaily.points).where(CreditDaily.member_id == member_id)
    )
    return {day.isoformat(): points for day, points in rows}
