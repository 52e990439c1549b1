"""All queries of the study domain.

The award (check-in) is the hot path: one statement, one round trip, compiled once for
asyncpg and run on the driver connection, so asyncpg reuses its prepared statement and
PostgreSQL its plan. It takes its requests as ``req`` rows, either one (scalar
parameters) or many at once (arrays, at most one per member: see
:mod:`app.study.batching`); everything after ``req`` is the same statement. Its steps,
as CTEs, each row of ``req`` on its own:

1. ``src``: the session with its item and the member's home organisation path
   (or, for other sources, the member and the given points);
2. ``prev``: an earlier ledger entry of this member with the same ``client_event_id``
   or the same session (replays return it, nothing else happens);
3. ``ok``: ``src`` if nothing earlier exists and enough time passed;
4. ``rule``: the credit rule of the nearest organisation on the member's path, else
   the global one, and the points the request asks for;
5. ``d``: add the award to the member's row of that day with an UPSERT. The row lock
   of ``ON CONFLICT DO UPDATE`` serialises a member's awards of one day, and the SET
   sub-select reads the latest committed row, so the caps hold under concurrency:
   the database decides, not a read in Python;
6. ``l``: append the ledger entry with the points actually awarded (the ledger is
   partitioned by month);
7. ``c``: its claim in ``credit_claims`` (not partitioned). Its unique indexes
   (member, source, source_id) and (member, client_event_id) are the claim: a racing
   duplicate that ``prev`` could not see yet fails on them, and the statement is
   rolled back whole, daily total included; run again, it sees that one in ``prev``
   (which reads the claims) and answers its result (:func:`_award`).
"""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
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
from app.members.models import Member
from app.organization.models import Organization, path_ids
from app.organization.scope import Scope
from app.study.models import CREDIT_KINDS, CreditDaily, CreditRule, StudyItem, StudySession

# Every SQL fragment below is built from constants only (CREDIT_KINDS), never from input.


def _kind_column(row: str, kind: str) -> str:
    """``row``'s column of the kind ``kind`` (an SQL expression naming a credit kind)."""
    whens = " ".join(f"WHEN '{k}' THEN {row}.{k}" for k in CREDIT_KINDS)
    return f"CASE {kind} {whens} END"


_KINDS = ", ".join(CREDIT_KINDS)
_FIRST_AWARD = ", ".join(
    f"CASE WHEN rule.kind = '{k}' THEN rule.first ELSE 0 END" for k in CREDIT_KINDS
)
_NEXT_AWARD = ", ".join(
    f"cd.{k} + CASE WHEN r.kind = '{k}' THEN a.v ELSE 0 END" for k in CREDIT_KINDS
)

_AWARD_TAIL = f"""
ok AS (
    SELECT src.* FROM src
    WHERE NOT EXISTS (SELECT 1 FROM prev WHERE prev.n = src.n)
      AND src.at >= src.started_at + make_interval(secs => src.min_seconds)
),
rule AS (
    SELECT ok.n, ok.member_id, ok.kind, ok.points AS asked, r.daily_cap, r.overall_daily_cap,
           GREATEST(0, LEAST(ok.points, r.daily_cap, r.overall_daily_cap)) AS first
    FROM ok CROSS JOIN LATERAL (
        SELECT r.daily_cap, r.overall_daily_cap
        FROM credit_rules r
        LEFT JOIN organizations ro ON ro.id = r.org_id
        WHERE r.kind = ok.kind AND (r.org_id IS NULL OR starts_with(ok.path, ro.path))
        ORDER BY ro.depth DESC NULLS LAST
        LIMIT 1
    ) AS r
),
d AS (
    INSERT INTO credit_daily AS cd (member_id, day, points, {_KINDS}, last_awarded)
    SELECT ok.member_id, ok.day, rule.first, {_FIRST_AWARD}, rule.first
    FROM ok JOIN rule ON rule.n = ok.n
    ON CONFLICT (member_id, day) DO UPDATE SET (points, {_KINDS}, last_awarded) = (
        -- What this award adds: the points asked, limited by what is left under the
        -- kind's cap and the overall cap on the locked, latest version of the row.
        SELECT cd.points + a.v, {_NEXT_AWARD}, a.v
        FROM rule r CROSS JOIN LATERAL (
            SELECT GREATEST(0, LEAST(
                r.asked,
                r.daily_cap - {_kind_column("cd", "r.kind")},
                r.overall_daily_cap - cd.points
            )) AS v
        ) AS a
        WHERE r.member_id = EXCLUDED.member_id
    )
    RETURNING cd.*
),
l AS (
    INSERT INTO credit_ledger (member_id, day, source, source_id, client_event_id, kind,
                               points, daily_points, cap_reached, occurred_at)
    SELECT ok.member_id, ok.day, ok.source, ok.source_id, ok.client_event_id, ok.kind,
           d.last_awarded, d.points,
           {_kind_column("d", "ok.kind")} >= rule.daily_cap
               OR d.points >= rule.overall_daily_cap,
           ok.at
    FROM ok JOIN rule ON rule.n = ok.n JOIN d ON d.member_id = ok.member_id
    RETURNING id, member_id, day, points, daily_points, cap_reached
),
c AS (
    INSERT INTO credit_claims (member_id, source, source_id, client_event_id, ledger_id, day,
                               points, daily_points, cap_reached)
    SELECT ok.member_id, ok.source, ok.source_id, ok.client_event_id, l.id, l.day,
           l.points, l.daily_points, l.cap_reached
    FROM ok JOIN l ON l.member_id = ok.member_id
)
SELECT req.n, src.n IS NOT NULL AS found, src.started_at, src.min_seconds,
       l.id AS new_id, l.points AS new_points, l.daily_points AS new_daily,
       l.cap_reached AS new_cap,
       prev.id AS prev_id, prev.points AS prev_points, prev.daily_points AS prev_daily,
       prev.cap_reached AS prev_cap
FROM req
LEFT JOIN src ON src.n = req.n
LEFT JOIN prev ON prev.n = req.n
LEFT JOIN l ON l.member_id = req.member_id
ORDER BY req.n
"""  # noqa: S608

# ``prev`` reads the claims (one unpartitioned table), not the partitioned ledger.
_LEDGER_COLUMNS = "l.ledger_id AS id, l.points, l.daily_points, l.cap_reached"

_STUDY = f"""
src AS (
    SELECT req.n, s.member_id, 'study'::varchar AS source, s.id AS source_id, s.started_at,
           i.kind, i.points, i.min_seconds, o.path, req.client_event_id, req.at, req.day
    FROM req
    JOIN study_sessions s ON s.id = req.session_id AND s.member_id = req.member_id
    JOIN study_items i ON i.id = s.item_id
    JOIN members m ON m.id = s.member_id
    JOIN organizations o ON o.id = m.home_org_id
),
prev AS (
    SELECT req.n, p.* FROM req CROSS JOIN LATERAL (
        SELECT {_LEDGER_COLUMNS}
        FROM credit_claims l
        WHERE l.member_id = req.member_id
          AND (l.client_event_id = req.client_event_id
               OR (l.source = 'study' AND l.source_id = req.session_id))
        ORDER BY l.ledger_id
        LIMIT 1
    ) AS p
),
{_AWARD_TAIL}"""  # noqa: S608

STUDY_AWARD = text(
    f"""
WITH req AS (
    SELECT CAST(:member_id AS bigint) AS member_id, CAST(:session_id AS bigint) AS session_id,
           CAST(:client_event_id AS varchar) AS client_event_id,
           CAST(:at AS timestamptz) AS at, CAST(:day AS date) AS day, 1::bigint AS n
),
{_STUDY}"""
)

STUDY_AWARDS = text(
    f"""
WITH req AS (
    SELECT * FROM unnest(
        CAST(:member_ids AS bigint[]), CAST(:session_ids AS bigint[]),
        CAST(:client_event_ids AS varchar[]), CAST(:ats AS timestamptz[]),
        CAST(:days AS date[])
    ) WITH ORDINALITY AS r(member_id, session_id, client_event_id, at, day, n)
),
{_STUDY}"""  # noqa: S608
)

OTHER_AWARD = text(
    f"""
WITH req AS (
    SELECT CAST(:member_id AS bigint) AS member_id, CAST(:source AS varchar) AS source,
           CAST(:source_id AS bigint) AS source_id, CAST(:kind AS varchar) AS kind,
           CAST(:points AS integer) AS points, CAST(:at AS timestamptz) AS at,
           CAST(:day AS date) AS day, 1::bigint AS n
),
src AS (
    SELECT req.n, m.id AS member_id, req.source, req.source_id, req.at AS started_at,
           req.kind, req.points, 0 AS min_seconds, o.path, NULL::varchar AS client_event_id,
           req.at, req.day
    FROM req
    JOIN members m ON m.id = req.member_id
    JOIN organizations o ON o.id = m.home_org_id
),
prev AS (
    SELECT req.n, {_LEDGER_COLUMNS}
    FROM req JOIN credit_claims l
      ON l.member_id = req.member_id AND l.source = req.source AND l.source_id = req.source_id
),
{_AWARD_TAIL}"""  # noqa: S608
)

# Compiled once for asyncpg: the awards run on a driver-pool connection on the hot path
# and on the session's own connection elsewhere (app.core.db.driver_connection).
_STUDY_AWARD = DriverStatement.of(STUDY_AWARD)
_STUDY_AWARDS = DriverStatement.of(STUDY_AWARDS)
_OTHER_AWARD = DriverStatement.of(OTHER_AWARD)


@dataclass(frozen=True, slots=True)
class StudyClaim:
    """One study check-in to judge and award: ``at`` is when it happened (the server's
    clock, or the phone's for offline events), ``day`` its Asia/Shanghai day."""

    member_id: int
    session_id: int
    client_event_id: str
    at: datetime
    day: date


@dataclass(frozen=True, slots=True)
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


def _award_row(row: asyncpg.Record) -> AwardRow:
    return AwardRow(
        found=row["found"],
        started_at=row["started_at"],
        min_seconds=row["min_seconds"],
        new_id=row["new_id"],
        new_points=row["new_points"],
        new_daily=row["new_daily"],
        new_cap=row["new_cap"],
        prev_id=row["prev_id"],
        prev_points=row["prev_points"],
        prev_daily=row["prev_daily"],
        prev_cap=row["prev_cap"],
    )


@asynccontextmanager
async def _atomic(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Inside a transaction, a savepoint: a duplicate's unique violation then undoes
    only the award, not the caller's transaction. A driver-pool connection runs each
    statement in its own transaction already."""
    if not conn.is_in_transaction():
        yield
        return
    async with conn.transaction():
        yield


async def _award(statement: DriverStatement, conn: asyncpg.Connection, **params: Any) -> AwardRow:
    """Run an award statement for one request. A duplicate racing on another connection
    that committed first makes it fail on the ledger's unique indexes, with nothing
    written; run again, the statement sees that one (``prev``) and answers its result."""
    try:
        async with _atomic(conn):
            row = await statement.fetchrow(conn, **params)
    except asyncpg.UniqueViolationError:
        async with _atomic(conn):
            row = await statement.fetchrow(conn, **params)
    assert row is not None  # the statement always returns a row per request
    return _award_row(row)


async def award_study(conn: asyncpg.Connection, claim: StudyClaim) -> AwardRow:
    """Award one check-in (a racing duplicate comes back as a replay of the first)."""
    return await _award(
        _STUDY_AWARD,
        conn,
        member_id=claim.member_id,
        session_id=claim.session_id,
        client_event_id=claim.client_event_id,
        at=claim.at,
        day=claim.day,
    )


async def award_studies(conn: asyncpg.Connection, claims: Sequence[StudyClaim]) -> list[AwardRow]:
    """Award several check-ins, at most one per member, in one statement (results in
    the same order). Raises what the statement raised, e.g. ``UniqueViolationError``
    when one of them raced a duplicate: then nothing was written, and the caller
    awards them one by one (:func:`award_study`)."""
    members = {claim.member_id for claim in claims}
    if len(members) != len(claims):
        raise ValueError("award_studies takes at most one claim per member")
    rows = await _STUDY_AWARDS.fetch(
        conn,
        member_ids=[claim.member_id for claim in claims],
        session_ids=[claim.session_id for claim in claims],
        client_event_ids=[claim.client_event_id for claim in claims],
        ats=[claim.at for claim in claims],
        days=[claim.day for claim in claims],
    )
    return [_award_row(row) for row in rows]


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
    """Award ``points`` of ``kind`` for (source, source_id), once per member."""
    return await _award(
        _OTHER_AWARD,
        conn,
        member_id=member_id,
        source=source,
        source_id=source_id,
        kind=kind,
        points=points,
        at=at,
        day=day,
    )


# Organisations and members


async def home_path(session: AsyncSession, member_id: int) -> str | None:
    return (
        await session.execute(
            select(Organization.path)
            .join(Member, Member.home_org_id == Organization.id)
            .where(Member.id == member_id)
        )
    ).scalar_one_or_none()


async def get_org(session: AsyncSession, org_id: int) -> Organization | None:
    return await session.get(Organization, org_id)


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


# Leaderboards


# (The leaderboards' queries are in app.study.boards.)


async def member_name(session: AsyncSession, member_id: int) -> str:
    name = (
        await session.execute(select(Member.name).where(Member.id == member_id))
    ).scalar_one_or_none()
    return name or ""


async def participation(
    session: AsyncSession, scope: Scope, start: date, end: date
) -> tuple[int, int]:
    """Members of the caller's subtrees, and how many of them earned study credits
    between ``start`` and ``end`` (inclusive)."""
    studied = (
        select(CreditDaily.member_id)
        .where(CreditDaily.day >= start, CreditDaily.day <= end)
        .where(CreditDaily.member_id == Member.id)
        .exists()
    )
    row = (
        await session.execute(
            select(func.count(), func.count().filter(studied)).where(
                scope.org_visible(Member.home_org_id)
            )
        )
    ).one()
    return int(row[0]), int(row[1])
