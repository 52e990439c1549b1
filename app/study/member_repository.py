"""The study domain's member-facing statements, one round trip each: starting a
session (item visibility decided inside the statement) and the member's credits.

Built once, run on a :class:`~app.core.db.ConnectionSource` (the driver pool, or the
request's transaction with an Idempotency-Key). The rest of the domain's SQL is in
:mod:`app.study.repository`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Boolean, bindparam, text

from app.core.db import ConnectionSource, DriverStatement, Row
from app.organization.scope import administered_sql, on_home_path_sql

# ``POST /study/sessions`` in one statement: the item if the caller may see it (global,
# of his home organisation or an ancestor, or, for admins, of their subtrees:
# :func:`item_visibility`, as SQL from the scope module), and the new session.
_START_SESSION = DriverStatement.of(
    text(
        f"""
WITH item AS (
    SELECT i.id, i.min_seconds
    FROM study_items i
    LEFT JOIN organizations io ON io.id = i.org_id
    WHERE i.id = :item_id
      AND (i.org_id IS NULL
           OR :superadmin
           OR {on_home_path_sql(":member_id", "io.path")}
           OR {administered_sql(":member_id", "io.path")})
), started AS (
    INSERT INTO study_sessions (member_id, item_id, started_at)
    SELECT :member_id, item.id, :started_at FROM item
    RETURNING id, item_id
)
SELECT started.id, started.item_id, item.min_seconds
FROM started JOIN item ON item.id = started.item_id
"""  # noqa: S608 - the scope module's SQL, no input
    ).bindparams(bindparam("superadmin", type_=Boolean))
)


async def start_session(
    source: ConnectionSource,
    *,
    member_id: int,
    superadmin: bool,
    item_id: int,
    started_at: datetime,
) -> Row | None:
    """The new session (``id``, ``item_id``, ``min_seconds``), or None if the item does
    not exist or the caller may not see it."""
    return await _START_SESSION.read_row(
        source, member_id=member_id, superadmin=superadmin, item_id=item_id, started_at=started_at
    )


# The member's credits (``GET /me/credits``): totals of today, the month, the year and
# ever, and the most recent run of consecutive earning days, in one statement. Days
# counted backwards get ``day + row_number`` constant along a run of consecutive days,
# and the most recent run has the largest such value.
_MY_CREDITS = DriverStatement.of(
    text(
        """
WITH runs AS (
    SELECT d.day, d.day + (row_number() OVER (ORDER BY d.day DESC))::int AS grp
    FROM credit_daily d
    WHERE d.member_id = :member_id AND d.points > 0 AND d.day <= :today
), last_run AS (
    SELECT count(*) AS days, max(r.day) AS last_day
    FROM runs r WHERE r.grp = (SELECT max(grp) FROM runs)
)
SELECT coalesce(sum(d.points) FILTER (WHERE d.day = :today), 0) AS today,
       coalesce(sum(d.points) FILTER (WHERE d.day BETWEEN :month_start AND :today), 0)
           AS this_month,
       coalesce(sum(d.points) FILTER (WHERE d.day BETWEEN :year_start AND :today), 0)
           AS this_year,
       coalesce(sum(d.points), 0) AS total,
       (SELECT days FROM last_run) AS streak_days,
       (SELECT last_day FROM last_run) AS streak_last_day
FROM credit_daily d
WHERE d.member_id = :member_id
"""
    )
)


@dataclass(frozen=True, slots=True)
class MyCredits:
    today: int
    this_month: int
    this_year: int
    total: int
    streak_days: int
    streak_last_day: date | None


async def my_credits(
    source: ConnectionSource, member_id: int, *, today: date, month_start: date, year_start: date
) -> MyCredits:
    row = await _MY_CREDITS.read_row(
        source, member_id=member_id, today=today, month_start=month_start, year_start=year_start
    )
    assert row is not None  # an aggregate without GROUP BY always has its row
    return MyCredits(
        today=int(row["today"]),
        this_month=int(row["this_month"]),
        this_year=int(row["this_year"]),
        total=int(row["total"]),
        streak_days=int(row["streak_days"]),
        streak_last_day=row["streak_last_day"],
    )
