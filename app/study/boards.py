"""Leaderboard queries (the study repository's reads of rankings), built once per period.

What they read:

* ``day``: ``credit_daily``, the member's row of that day;
* ``month`` / ``year``: ``credit_rollup``, the member's points of that calendar month
  or year, kept by triggers on ``credit_ledger`` in the transaction that writes the
  ledger (see :class:`app.study.models.CreditRollup`).

Both hold one row per member and period, with the primary key ``(member_id, period)``
and an index ``(period, points DESC, member_id)``. Two ways to read a subtree's top:

* a small subtree (at most :data:`SMALL_SUBTREE` members): its members, then their row
  of the period by primary key, sorted;
* a larger one: walk the period's index best first, keeping the rows whose member is in
  the subtree, and stop after the page: the cost grows with the page's depth (and with
  how rare the subtree's members are), not with the members who earned something.

Each statement holds both ways behind a one-time filter, so that one plan serves every
subtree (the plan cache cannot pick the wrong one for the next caller).

Ranks are ``rank()`` over points in the subtree (ties share a rank, members with no
points are not ranked). A page does not rank every member: the statement counts the
subtree's members with more points than the page's first row, and with at least as
many, and :func:`_ranks` derives each row's rank from those two numbers (the rows in
between are all on the page).
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

# Per period: the table, the condition naming one period's rows (alias ``s``; bound
# parameter ``start`` is the period's first day), and how a large subtree's membership
# is tested on a row: rollup rows carry the member's home organisation (``org_id``), so
# the test reads the organisations only, which the planner may hash; a day row is
# tested through the member. Constants only: the statements are built from these.
_ORG_IN_SUBTREE = """EXISTS (
        SELECT 1 FROM organizations o WHERE o.id = s.org_id AND starts_with(o.path, :root))"""
_SOURCES: Final[dict[str, tuple[str, str, str]]] = {
    "day": ("credit_daily", "s.day = :start", ""),
    "month": ("credit_rollup", "s.period = 'month' AND s.start = :start", _ORG_IN_SUBTREE),
    "year": ("credit_rollup", "s.period = 'year' AND s.start = :start", _ORG_IN_SUBTREE),
}

# A subtree with at most this many members is read the small way. Rollup rows carry the
# member's organisation, so walking them costs little per row and pays off from a few
# hundred members; day rows are tested through the member, so the small way stays
# cheaper up to larger subtrees.
SMALL_SUBTREE: dict[str, int] = {"day": 2000, "month": 500, "year": 500}

# The subtree's members, organisation by organisation through the index on
# ``members.home_org_id`` (``OFFSET 0`` keeps a lateral subquery from being flattened
# into a join that could scan every member). ``small`` stops counting one member past
# SMALL_SUBTREE (``:small``) and reads the index only; ``sub`` is read (and computed)
# only by the small way.
_SUBTREE = """sub AS MATERIALIZED (
    SELECT m.id FROM organizations o
    CROSS JOIN LATERAL (SELECT m.id FROM members m WHERE m.home_org_id = o.id OFFSET 0) AS m
    WHERE starts_with(o.path, :root)
), small AS MATERIALIZED (
    SELECT count(*) <= CAST(:small AS integer) AS yes FROM (
        SELECT 1 FROM organizations o
        CROSS JOIN LATERAL (SELECT 1 FROM members m WHERE m.home_org_id = o.id OFFSET 0) AS m
        WHERE starts_with(o.path, :root)
        LIMIT CAST(:small AS integer) + 1
    ) AS counted
)"""


def _walk_in_subtree(alias: str) -> str:
    """``alias``'s member has his home organisation under ``:root``, tested row by row:
    a scalar subquery is never turned into a join, so a walk down the index stays an
    ordered index scan that stops after the page (as an EXISTS, the planner may hash
    every member of the subtree first)."""
    return f"""(
        SELECT starts_with(o.path, :root) FROM members m
        JOIN organizations o ON o.id = m.home_org_id WHERE m.id = {alias}.member_id)"""  # noqa: S608


# Membership for counting many rows above a member: the planner picks how (row by row
# for a few rows, by hashing the subtree's members for many).
_IN_SUBTREE = """EXISTS (
        SELECT 1 FROM members m JOIN organizations o ON o.id = m.home_org_id
        WHERE m.id = s.member_id AND starts_with(o.path, :root))"""


def _rows(period: str, condition: str, *, walk: str, order: str = "") -> str:
    """The period's rows of the subtree meeting ``condition`` (on alias ``s``), the
    small way or the large way as ``small`` says; ``walk`` tests membership on the
    large side (a rollup's own test replaces it)."""
    table, when, own_test = _SOURCES[period]
    walk = own_test or walk
    # Small: each member's row by primary key (``OFFSET 0``: never a hash join that
    # would read the whole period).
    return f"""(SELECT s.member_id, s.points FROM sub CROSS JOIN LATERAL (
        SELECT s.member_id, s.points FROM {table} s
        WHERE s.member_id = sub.id AND {when} OFFSET 0) AS s
     WHERE (SELECT yes FROM small) AND {condition} {order})
    UNION ALL
    (SELECT s.member_id, s.points FROM {table} s
     WHERE NOT (SELECT yes FROM small) AND {when} AND {condition} AND {walk} {order})"""  # noqa: S608


def _page_statement(period: str) -> TextClause:
    after = (
        "s.points > 0 AND s.points <= :after_points "
        "AND (s.points < :after_points OR s.member_id > :after_id)"
    )
    walk = _walk_in_subtree("s")
    page = _rows(period, after, walk=walk, order="ORDER BY s.points DESC, s.member_id LIMIT :limit")
    above = _rows(period, "s.points >= (SELECT max(points) FROM page)", walk=walk)
    return text(
        f"""
WITH {_SUBTREE}, page AS MATERIALIZED (
    {page}
), above AS MATERIALIZED (
    SELECT count(*) FILTER (WHERE x.points > (SELECT max(points) FROM page)) AS higher,
           count(*) AS at_least
    FROM ({above}) AS x
)
SELECT page.member_id, page.points, m.name, above.higher, above.at_least
FROM page JOIN members m ON m.id = page.member_id CROSS JOIN above
ORDER BY page.points DESC, page.member_id
"""  # noqa: S608 - built from the constants above only
    )


def _standing_statement(period: str) -> TextClause:
    table, when, own_test = _SOURCES[period]
    above = _rows(period, "s.points > (SELECT points FROM me)", walk=_IN_SUBTREE)
    return text(
        f"""
WITH {_SUBTREE}, me AS MATERIALIZED (
    SELECT s.points FROM {table} s
    WHERE {when} AND s.member_id = :member_id AND s.points > 0
      AND {own_test or _walk_in_subtree("s")}
)
SELECT me.points, 1 + (SELECT count(*) FROM ({above}) AS x) AS rank FROM me
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
                "small": SMALL_SUBTREE[period],
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
            STANDING[period],
            {
                "start": start,
                "root": root_path,
                "member_id": member_id,
                "small": SMALL_SUBTREE[period],
            },
        )
    ).first()
    if row is None:
        return None, 0
    return int(row.rank), int(row.points)
