"""All queries of the study domain.

The award (check-in) is the hot path: one statement, one round trip, compiled once for
asyncpg and run on the driver connection, so asyncpg reuses its prepared statement and
PostgreSQL its plan. Its steps, as CTEs:

1. ``src``: the session with its item and the member's home organisation path
   (or, for other sources, the member and the given points);
2. ``prev``: an earlier event of this member with the same ``client_event_id`` or the
   same session (replays return it, nothing else happens);
3. ``ok``: ``src`` if nothing earlier exists and enough time passed;
4. ``rule``: the credit rule of the nearest organisation on the member's path, else
   the global one;
5. ``ev``: claim the event. ``ON CONFLICT DO NOTHING`` against the unique indexes on
   (member, source, source_id) and (member, client_event_id): a racing duplicate waits
   for the first to commit, then claims nothing and earns nothing;
6. ``d``: add the award to the member's row of that day with an UPSERT. The row lock
   of ``ON CONFLICT DO UPDATE`` serialises a member's awards of one day, and the SET
   expressions read the latest committed row, so the caps hold under concurrency:
   the database decides, not a read in Python;
7. ``l``: append the ledger entry with the points actually awarded.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    SQLColumnExpression,
    and_,
    cast,
    false,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import DriverStatement
from app.identity.scope import Scope
from app.members.models import Member
from app.organization.models import Organization
from app.study.models import CREDIT_KINDS, CreditDaily, CreditRule, StudyItem, StudySession

# The points of the kind of this event in the daily row ``cd`` before this award.
# Every SQL fragment below is built from constants only (CREDIT_KINDS), never from input.
_KIND_TOTAL = "CASE (SELECT kind FROM ev) {whens} END".format(  # noqa: S608
    whens=" ".join(f"WHEN '{k}' THEN cd.{k}" for k in CREDIT_KINDS)
)
# What this award adds: the requested points, limited by what is left under the kind's
# cap and under the overall cap, computed on the locked, latest version of the row.
_AWARD = "GREATEST(0, LEAST(EXCLUDED.last_awarded, {kind_cap}, {overall_cap}))".format(
    kind_cap=f"(SELECT daily_cap FROM rule) - {_KIND_TOTAL}",  # noqa: S608
    overall_cap="(SELECT overall_daily_cap FROM rule) - cd.points",
)
_KIND_SET = ",\n        ".join(
    f"{k} = cd.{k} + CASE WHEN (SELECT kind FROM ev) = '{k}' THEN {_AWARD} ELSE 0 END"  # noqa: S608
    for k in CREDIT_KINDS
)
_KIND_INSERT = ", ".join(f"CASE WHEN ev.kind = '{k}' THEN a.v ELSE 0 END" for k in CREDIT_KINDS)
_KIND_RETURN = "CASE (SELECT kind FROM ev) {whens} END".format(  # noqa: S608
    whens=" ".join(f"WHEN '{k}' THEN cd.{k}" for k in CREDIT_KINDS)
)

_AWARD_TAIL = f"""
ok AS (
    SELECT src.* FROM src
    WHERE NOT EXISTS (SELECT 1 FROM prev)
      AND src.at >= src.started_at + make_interval(secs => src.min_seconds)
),
rule AS (
    SELECT r.daily_cap, r.overall_daily_cap
    FROM ok
    JOIN credit_rules r ON r.kind = ok.kind
    LEFT JOIN organizations ro ON ro.id = r.org_id
    WHERE r.org_id IS NULL OR starts_with(ok.path, ro.path)
    ORDER BY ro.depth DESC NULLS LAST
    LIMIT 1
),
ev AS (
    INSERT INTO credit_events
        (member_id, source, source_id, client_event_id, kind, day, occurred_at)
    SELECT ok.member_id, ok.source, ok.source_id, ok.client_event_id, ok.kind, ok.day, ok.at
    FROM ok, rule
    ON CONFLICT DO NOTHING
    RETURNING id, member_id, kind, day
),
d AS (
    INSERT INTO credit_daily AS cd
        (member_id, day, points, {", ".join(CREDIT_KINDS)}, last_awarded)
    SELECT ev.member_id, ev.day, a.v, {_KIND_INSERT}, a.v
    FROM ev CROSS JOIN LATERAL (
        SELECT GREATEST(0, LEAST(ok.points, rule.daily_cap, rule.overall_daily_cap)) AS v
        FROM ok, rule
    ) AS a
    ON CONFLICT (member_id, day) DO UPDATE SET
        points = cd.points + {_AWARD},
        {_KIND_SET},
        last_awarded = {_AWARD}
    RETURNING cd.points, cd.last_awarded,
        ({_KIND_RETURN} >= (SELECT daily_cap FROM rule)
         OR cd.points >= (SELECT overall_daily_cap FROM rule)) AS cap_reached
),
l AS (
    INSERT INTO credit_ledger (event_id, member_id, kind, points, day, daily_points, cap_reached)
    SELECT ev.id, ev.member_id, ev.kind, d.last_awarded, ev.day, d.points, d.cap_reached
    FROM ev, d
    RETURNING event_id, points, daily_points, cap_reached
)
SELECT src.member_id IS NOT NULL AS found, src.started_at, src.min_seconds,
       l.event_id AS new_id, l.points AS new_points, l.daily_points AS new_daily,
       l.cap_reached AS new_cap,
       prev.event_id AS prev_id, prev.points AS prev_points, prev.daily_points AS prev_daily,
       prev.cap_reached AS prev_cap
FROM (SELECT 1) AS one
LEFT JOIN src ON true
LEFT JOIN prev ON true
LEFT JOIN l ON true
"""  # noqa: S608

_PREV_COLUMNS = "e.id AS event_id, l.points, l.daily_points, l.cap_reached"

STUDY_CHECKIN = text(
    f"""
WITH src AS (
    SELECT s.member_id, 'study'::varchar AS source, s.id AS source_id, s.started_at,
           i.kind, i.points, i.min_seconds, o.path,
           CAST(:client_event_id AS varchar) AS client_event_id,
           CAST(:at AS timestamptz) AS at, CAST(:day AS date) AS day
    FROM study_sessions s
    JOIN study_items i ON i.id = s.item_id
    JOIN members m ON m.id = s.member_id
    JOIN organizations o ON o.id = m.home_org_id
    WHERE s.id = CAST(:session_id AS bigint) AND s.member_id = CAST(:member_id AS bigint)
),
prev AS (
    SELECT {_PREV_COLUMNS}
    FROM credit_events e JOIN credit_ledger l ON l.event_id = e.id
    WHERE e.member_id = CAST(:member_id AS bigint)
      AND (e.client_event_id = CAST(:client_event_id AS varchar)
           OR (e.source = 'study' AND e.source_id = CAST(:session_id AS bigint)))
    ORDER BY e.id
    LIMIT 1
),
{_AWARD_TAIL}"""  # noqa: S608
)

OTHER_AWARD = text(
    f"""
WITH src AS (
    SELECT m.id AS member_id, CAST(:source AS varchar) AS source,
           CAST(:source_id AS bigint) AS source_id, CAST(:at AS timestamptz) AS started_at,
           CAST(:kind AS varchar) AS kind, CAST(:points AS integer) AS points,
           0 AS min_seconds, o.path, NULL::varchar AS client_event_id,
           CAST(:at AS timestamptz) AS at, CAST(:day AS date) AS day
    FROM members m
    JOIN organizations o ON o.id = m.home_org_id
    WHERE m.id = CAST(:member_id AS bigint)
),
prev AS (
    SELECT {_PREV_COLUMNS}
    FROM credit_events e JOIN credit_ledger l ON l.event_id = e.id
    WHERE e.member_id = CAST(:member_id AS bigint)
      AND e.source = CAST(:source AS varchar) AND e.source_id = CAST(:source_id AS bigint)
),
{_AWARD_TAIL}"""  # noqa: S608
)

FIND_STUDY_EVENT = text(
    f"""
SELECT {_PREV_COLUMNS}
FROM credit_events e JOIN credit_ledger l ON l.event_id = e.id
WHERE e.member_id = CAST(:member_id AS bigint)
  AND (e.client_event_id = CAST(:client_event_id AS varchar)
       OR (e.source = 'study' AND e.source_id = CAST(:session_id AS bigint)))
ORDER BY e.id
LIMIT 1
"""  # noqa: S608
)


# Compiled once for asyncpg: the award runs on a driver-pool connection on the hot path
# and on the session's own connection elsewhere (app.core.db.driver_connection).
_STUDY_CHECKIN = DriverStatement.of(STUDY_CHECKIN)
_OTHER_AWARD = DriverStatement.of(OTHER_AWARD)
_FIND_STUDY_EVENT = DriverStatement.of(FIND_STUDY_EVENT)


@dataclass(frozen=True)
class AwardRow:
    found: bool
    started_at: datetime | None
    min_seconds: int | None
    new_id: int | None
    new_points: int | None
    new_daily: int | None
    new_cap: bool | None
    prev_id: int | None
    prev_points: int | None
    prev_daily: int | None
    prev_cap: bool | None


@dataclass(frozen=True)
class EventRow:
    event_id: int
    points: int
    daily_points: int
    cap_reached: bool


def _award_row(row: asyncpg.Record | None) -> AwardRow:
    assert row is not None  # the statement always returns its one summary row
    return AwardRow(**dict(row.items()))


async def award_study(
    conn: asyncpg.Connection,
    *,
    member_id: int,
    session_id: int,
    client_event_id: str,
    at: datetime,
    day: date,
) -> AwardRow:
    row = await _STUDY_CHECKIN.fetchrow(
        conn,
        member_id=member_id,
        session_id=session_id,
        client_event_id=client_event_id,
        at=at,
        day=day,
    )
    return _award_row(row)


async def award_other(
    conn: asyncpg.Connection,
    *,
    member_id: int,
    source: str,
    source_id: int,
    kind: str,
    points: int,
    at: datetime,
    day: date,
) -> AwardRow:
    row = await _OTHER_AWARD.fetchrow(
        conn,
        member_id=member_id,
        source=source,
        source_id=source_id,
        kind=kind,
        points=points,
        at=at,
        day=day,
    )
    return _award_row(row)


async def find_study_event(
    conn: asyncpg.Connection, *, member_id: int, session_id: int, client_event_id: str
) -> EventRow | None:
    row = await _FIND_STUDY_EVENT.fetchrow(
        conn, member_id=member_id, session_id=session_id, client_event_id=client_event_id
    )
    return EventRow(**dict(row.items())) if row is not None else None


# Organisations and members


async def home_path(session: AsyncSession, member_id: int) -> str | None:
    return (
        await session.execute(
            select(Organization.path)
            .join(Member, Member.home_org_id == Organization.id)
            .where(Member.id == member_id)
        )
    ).scalar_one_or_none()


async def visible_org(session: AsyncSession, scope: Scope, org_id: int) -> Organization | None:
    return (
        await session.execute(
            select(Organization).where(
                Organization.id == org_id, scope.org_visible(Organization.id)
            )
        )
    ).scalar_one_or_none()


async def get_org(session: AsyncSession, org_id: int) -> Organization | None:
    return await session.get(Organization, org_id)


def path_ids(path: str) -> list[int]:
    """``"/1/7/42/"`` → ``[1, 7, 42]``: the organisation and its ancestors."""
    return [int(part) for part in path.strip("/").split("/") if part]


# Rules


async def rule_points(session: AsyncSession, kind: str, org_path: str | None) -> int:
    """Points of the credit rule for ``kind`` at the nearest organisation on ``org_path``."""
    ids = path_ids(org_path) if org_path else []
    row = (
        await session.execute(
            select(CreditRule.points)
            .outerjoin(Organization, Organization.id == CreditRule.org_id)
            .where(
                CreditRule.kind == kind,
                or_(CreditRule.org_id.is_(None), CreditRule.org_id.in_(ids) if ids else false()),
            )
            .order_by(Organization.depth.desc().nulls_last())
            .limit(1)
        )
    ).scalar_one_or_none()
    return int(row) if row is not None else 0


async def insert_rules(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert credit rules; a rule that exists for the same (org, kind) is left as it is."""
    await session.execute(pg_insert(CreditRule).values(rows).on_conflict_do_nothing())


# Items and sessions


def item_visibility(scope: Scope | None, home_org_path: str | None) -> ColumnElement[bool]:
    """Global items, items of the caller's home organisation and its ancestors, and,
    for admins, items of the organisations in their scope."""
    conditions: list[ColumnElement[bool]] = [StudyItem.org_id.is_(None)]
    if home_org_path:
        conditions.append(StudyItem.org_id.in_(path_ids(home_org_path)))
    if scope is not None and not scope.is_empty:
        item_org = typing.cast("SQLColumnExpression[int]", StudyItem.org_id)
        conditions.append(scope.org_visible(item_org))
    return or_(*conditions)


async def insert_item(session: AsyncSession, item: StudyItem) -> StudyItem:
    session.add(item)
    await session.flush()
    await session.refresh(item)
    return item


async def list_items(
    session: AsyncSession,
    visible: ColumnElement[bool],
    *,
    kind: str | None,
    after_id: int | None,
    limit: int,
) -> list[StudyItem]:
    stmt = select(StudyItem).where(visible)
    if kind is not None:
        stmt = stmt.where(StudyItem.kind == kind)
    if after_id is not None:
        stmt = stmt.where(StudyItem.id < after_id)
    stmt = stmt.order_by(StudyItem.id.desc()).limit(limit + 1)
    return list((await session.execute(stmt)).scalars())


async def get_item(
    session: AsyncSession, item_id: int, visible: ColumnElement[bool]
) -> StudyItem | None:
    return (
        await session.execute(select(StudyItem).where(StudyItem.id == item_id, visible))
    ).scalar_one_or_none()


async def insert_session(
    session: AsyncSession, *, member_id: int, item_id: int, started_at: datetime
) -> int:
    new_id = (
        await session.execute(
            insert(StudySession)
            .values(member_id=member_id, item_id=item_id, started_at=started_at)
            .returning(StudySession.id)
        )
    ).scalar_one()
    return int(new_id)


# Credits


async def credit_totals(
    session: AsyncSession, member_id: int, *, today: date, month_start: date, year_start: date
) -> tuple[int, int, int, int]:
    points = CreditDaily.points
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(points).filter(CreditDaily.day == today), 0),
                func.coalesce(
                    func.sum(points).filter(CreditDaily.day.between(month_start, today)), 0
                ),
                func.coalesce(
                    func.sum(points).filter(CreditDaily.day.between(year_start, today)), 0
                ),
                func.coalesce(func.sum(points), 0),
            ).where(CreditDaily.member_id == member_id)
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


async def current_streak(
    session: AsyncSession, member_id: int, *, until: date
) -> tuple[int, date | None]:
    """Length and last day of the most recent run of consecutive earning days.

    Days counted backwards get ``day + row_number`` constant along a run of consecutive
    days, and the most recent run has the largest such value.
    """
    row_number = func.row_number().over(order_by=CreditDaily.day.desc())
    days = (
        select(CreditDaily.day, (CreditDaily.day + cast(row_number, Integer)).label("grp"))
        .where(CreditDaily.member_id == member_id, CreditDaily.points > 0, CreditDaily.day <= until)
        .subquery("days")
    )
    row = (
        await session.execute(
            select(func.count(), func.max(days.c.day)).where(
                days.c.grp == select(func.max(days.c.grp)).scalar_subquery()
            )
        )
    ).one()
    return int(row[0]), row[1]


# Leaderboards


def _totals(root_path: str, start: date, end: date) -> Select[int, int]:
    """Points per member of the subtree under ``root_path`` in [start, end]."""
    total = func.sum(CreditDaily.points).label("points")
    return (
        select(CreditDaily.member_id, total)
        .join(Member, Member.id == CreditDaily.member_id)
        .join(Organization, Organization.id == Member.home_org_id)
        .where(
            CreditDaily.day.between(start, end),
            Organization.path.startswith(root_path, autoescape=True),
        )
        .group_by(CreditDaily.member_id)
        .having(total > 0)
    )


def _ranked(root_path: str, start: date, end: date) -> Any:
    totals = _totals(root_path, start, end).subquery("totals")
    return select(
        totals.c.member_id,
        totals.c.points,
        func.rank().over(order_by=totals.c.points.desc()).label("rank"),
    ).subquery("ranked")


async def leaderboard_page(
    session: AsyncSession,
    *,
    root_path: str,
    start: date,
    end: date,
    after: tuple[int, int] | None,
    limit: int,
) -> list[tuple[int, int, int, str]]:
    """(rank, member_id, points, name) ordered by points desc, member id."""
    ranked = _ranked(root_path, start, end)
    stmt = select(ranked.c.rank, ranked.c.member_id, ranked.c.points, Member.name).join(
        Member, Member.id == ranked.c.member_id
    )
    if after is not None:
        points, member_id = after
        stmt = stmt.where(
            or_(
                ranked.c.points < points,
                and_(ranked.c.points == points, ranked.c.member_id > member_id),
            )
        )
    stmt = stmt.order_by(ranked.c.points.desc(), ranked.c.member_id).limit(limit + 1)
    rows = await session.execute(stmt)
    return [(int(r), int(m), int(p), str(n)) for r, m, p, n in rows]


async def standing(
    session: AsyncSession, *, member_id: int, root_path: str, start: date, end: date
) -> tuple[int | None, int]:
    """The member's (rank, points) in the subtree; rank None when he earned nothing."""
    ranked = _ranked(root_path, start, end)
    row = (
        await session.execute(
            select(ranked.c.rank, ranked.c.points).where(ranked.c.member_id == member_id)
        )
    ).first()
    if row is None:
        return None, 0
    return int(row[0]), int(row[1])


async def member_name(session: AsyncSession, member_id: int) -> str:
    name = (
        await session.execute(select(Member.name).where(Member.id == member_id))
    ).scalar_one_or_none()
    return name or ""
