"""Leaderboard queries (the study repository's reads of rankings), built once per period.

What they read:

* ``day``: ``credit_daily``, the member's row of that day;
* ``month`` / ``year``: ``credit_rollup``, the member's points of that calendar month
  or year, kept by triggers on ``credit_ledger`` in the transaction that writes the
  ledger (see :class:`app.study.models.CreditRollup`).

Both are one row per member and period with an index ``(period, points DESC,
member_id)``, so a page is the top of that index, walked best first, keeping the
members whose home organisation is in the subtree: the cost grows with the page's
depth, not with the members who earned something in the period.

Ranks are ``rank()`` over points in the subtree (ties share a rank, members with no
points are not ranked). A page does not rank every member: the statement counts the
subtree's members with more points than the page's first row, and with as many, and
:func:`_ranks` derives each row's rank from those two numbers (the rows between are
all on the page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.study.schemas import Period

# Above any total: the first page's cursor.
_TOP: Final = 2**31 - 1

# (table, the condition naming one period's rows); bound parameter ``start`` is the
# period's first day. Constants only: the statements below are built from these.
_SOURCES: Final[dict[str, tuple[str, str]]] = {
    "day": ("credit_daily", "s.day = :start"),
    "month": ("credit_rollup", "s.period = 'month' AND s.start = :start"),
    "year": ("credit_rollup", "s.period = 'year' AND s.start = :start"),
}


def _in_subtree(alias: str) -> str:
    """Members of ``alias`` (a source row) whose home organisation is under ``:root``."""
    return f"""EXISTS (
        SELECT 1 FROM members m JOIN organizations o ON o.id = m.home_org_id
        WHERE m.id = {alias}.member_id AND starts_with(o.path, :root))"""  # noqa: S608


def _page_statement(period: str) -> TextClause:
    table, when = _SOURCES[period]
    when_above = when.replace("s.", "a.")
    return text(
        f"""
WITH page AS MATERIALIZED (
    SELECT s.member_id, s.points
    FROM {table} s
    WHERE {when} AND s.points > 0
      AND s.points <= :after_points AND (s.points < :after_points OR s.member_id > :after_id)
      AND {_in_subtree("s")}
    ORDER BY s.points DESC, s.member_id
    LIMIT :limit
), first AS (
    SELECT max(points) AS points FROM page
), above AS (
    SELECT count(*) FILTER (WHERE a.points > first.points) AS higher, count(*) AS at_least
    FROM first JOIN {table} a ON {when_above} AND a.points >= first.points
    WHERE {_in_subtree("a")}
)
SELECT page.member_id, page.points, m.name, above.higher, above.at_least
FROM page JOIN members m ON m.id = page.member_id CROSS JOIN above
ORDER BY page.points DESC, page.member_id
"""  # noqa: S608 - built from the constants above only
    )


def _standing_statement(period: str) -> TextClause:
    table, when = _SOURCES[period]
    when_above = when.replace("s.", "a.")
    return text(
        f"""
SELECT s.points,
       1 + (SELECT count(*) FROM {table} a
            WHERE {when_above} AND a.points > s.points AND {_in_subtree("a")}) AS rank
FROM {table} s
WHERE {when} AND s.member_id = :member_id AND s.points > 0 AND {_in_subtree("s")}
"""  # noqa: S608 - built from the constants above only
    )


PAGE: Final = {period: _page_statement(period) for period in _SOURCES}
STANDING: Final = {period: _standing_statement(period) for period in _SOURCES}


@dataclass(frozen=True, slots=True)
class Ranked:
    rank: int
    member_id: int
    points: int
    name: str


def _ranks(points: list[int], higher: int, at_least: int) -> list[int]:
    """Ranks of a page's rows (points best first). ``higher``: members of the subtree
    with more points than the first row; ``at_least``: with at least as many. A row with
    fewer points than the first one is outranked by ``at_least`` members and by the
    rows of the page between (fewer than the first, more than this row)."""
    if not points:
        return []
    first = points[0]
    return [
        higher + 1 if p == first else at_least + 1 + sum(1 for q in points if p < q < first)
        for p in points
    ]


async def page(
    session: AsyncSession,
    *,
    period: Period,
    root_path: str,
    start: date,
    after: tuple[int, int] | None,
    limit: int,
) -> list[Ranked]:
    """Up to ``limit`` ranked members of the subtree under ``root_path``, best first
    (points desc, member id), after the cursor (points, member id)."""
    after_points, after_id = after if after is not None else (_TOP, 0)
    rows = (
        await session.execute(
            PAGE[period],
            {
                "start": start,
                "root": root_path,
                "after_points": after_points,
                "after_id": after_id,
                "limit": limit,
            },
        )
    ).all()
    if not rows:
        return []
    ranks = _ranks([int(r.points) for r in rows], int(rows[0].higher), int(rows[0].at_least))
    return [
        Ranked(rank=rank, member_id=int(r.member_id), points=int(r.points), name=str(r.name))
        for rank, r in zip(ranks, rows, strict=True)
    ]


async def standing(
    session: AsyncSession, *, period: Period, member_id: int, root_path: str, start: date
) -> tuple[int | None, int]:
    """The member's (rank, points) in the subtree; rank None when he earned nothing
    there in the period."""
    row = (
        await session.execute(
            STANDING[period], {"start": start, "root": root_path, "member_id": member_id}
        )
    ).first()
    if row is None:
        return None, 0
    return int(row.rank), int(row.points)
