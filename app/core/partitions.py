"""Monthly partitions of the history tables: created ahead, old ones detached.

Three tables grow with every day of use and are read almost only by their recent
months, so they are partitioned by month (declarative ``PARTITION BY RANGE``):

* ``credit_ledger`` by ``day`` (the Asia/Shanghai day of the award);
* ``notifications`` by ``created_at``;
* ``outbox_history`` by ``finished_at``: outbox jobs that were done for 30 days, moved
  out of the live queue ``outbox_jobs`` by ``notify.purge_finished``.

A month's partition is ``<table>_pYYYYMM`` and covers that Asia/Shanghai calendar month
(timestamps from ``YYYY-MM-01 00:00+08``). ``<table>_default`` catches any row no
month partition covers (a clock far ahead, a job that did not run): nothing is ever
refused for want of a partition. The scheduled job ``core.create_partitions``
(:func:`create_ahead`) creates the current month and the next ``AHEAD`` months once a
month; if the default partition already holds rows of a month being created, they are
moved into it in the same transaction.

Old months are taken out with ``python -m app partitions detach --before 2025-01``
(:func:`detach_before`): each partition entirely before that month is detached and
stays a plain table (to archive with ``pg_dump -t`` and then drop); the data in it no
longer shows in the application. Detaching ledger months does not make old study
sessions claimable again: the claims (``credit_claims``) are not partitioned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

# Months created ahead of the current one.
AHEAD = 3
# DDL waits at most this long for its lock (behind a long transaction), then fails
# and is tried again later, instead of making every writer queue behind it.
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class Partitioned:
    table: str
    column: str
    is_date: bool  # a date column (bounds are days), else timestamptz (bounds at +08)


TABLES = (
    Partitioned("credit_ledger", "day", is_date=True),
    Partitioned("notifications", "created_at", is_date=False),
    Partitioned("outbox_history", "finished_at", is_date=False),
)
# Every partition's name, attached or detached: migrations' autogenerate leaves them be.
NAME = re.compile(
    r"^(?P<table>" + "|".join(t.table for t in TABLES) + r")_(?P<part>p(?P<month>\d{6})|default)$"
)


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def parse_month(value: str) -> date:
    """``2025-01`` (or ``202501``) → 2025-01-01; ValueError otherwise."""
    match = re.fullmatch(r"(\d{4})-?(\d{2})", value.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"not a month (YYYY-MM): {value!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y%m}"


def _bound(spec: Partitioned, month: date) -> str:
    # Constants built from a date, never from input.
    return f"'{month.isoformat()}'" if spec.is_date else f"'{month.isoformat()} 00:00:00+08'"


def _range(spec: Partitioned, month: date) -> str:
    return f"FROM ({_bound(spec, month)}) TO ({_bound(spec, add_months(month, 1))})"


async def _partitions(conn: AsyncConnection | AsyncSession, table: str) -> list[str]:
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:table AS regclass) ORDER BY c.relname"
        ),
        {"table": table},
    )
    return [r[0] for r in rows]


async def create_month(
    conn: AsyncConnection | AsyncSession, spec: Partitioned, month: date
) -> bool:
    """Create ``spec``'s partition of ``month`` unless it exists; rows of that month that
    the default partition holds move into it. True if it was created."""
    name = partition_name(spec.table, month)
    if name in await _partitions(conn, spec.table):
        return False
    default = f"{spec.table}_default"
    lo, hi = _bound(spec, month), _bound(spec, add_months(month, 1))
    stray = (
        await conn.execute(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {default} "  # noqa: S608 - constants only
                f"WHERE {spec.column} >= {lo} AND {spec.column} < {hi})"
            )
        )
    ).scalar_one()
    if not stray:
        await conn.execute(
            text(f"CREATE TABLE {name} PARTITION OF {spec.table} FOR VALUES {_range(spec, month)}")
        )
        return True
    # The new partition may not overlap rows in the default one: take the default out,
    # create the month, move its rows in through the parent, put the default back.
    await conn.execute(text(f"ALTER TABLE {spec.table} DETACH PARTITION {default}"))
    await conn.execute(
        text(f"CREATE TABLE {name} PARTITION OF {spec.table} FOR VALUES {_range(spec, month)}")
    )
    await conn.execute(
        text(
            f"WITH moved AS (DELETE FROM {default} "  # noqa: S608 - constants only
            f"WHERE {spec.column} >= {lo} AND {spec.column} < {hi} RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        )
    )
    await conn.execute(text(f"ALTER TABLE {spec.table} ATTACH PARTITION {default} DEFAULT"))
    return True


async def create_ahead(session: AsyncSession, today: date, *, ahead: int = AHEAD) -> str:
    """The current month's and the next ``ahead`` months' partitions of every
    partitioned table (the scheduled job ``core.create_partitions``)."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    created = []
    first = month_start(today)
    for spec in TABLES:
        for n in range(ahead + 1):
            month = add_months(first, n)
            if await create_month(session, spec, month):
                created.append(partition_name(spec.table, month))
    return f"created {', '.join(created)}" if created else "nothing to create"


async def detach_before(session: AsyncSession, before: date) -> list[str]:
    """Detach every month partition that ends on or before ``before`` (a month's first
    day); returns the detached tables' names. They stay as plain tables."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    detached = []
    for spec in TABLES:
        for name in await _partitions(session, spec.table):
            match = NAME.match(name)
            if match is None or match.group("month") is None:
                continue
            month = date(int(match.group("month")[:4]), int(match.group("month")[4:]), 1)
            if add_months(month, 1) <= before:
                await session.execute(text(f"ALTER TABLE {spec.table} DETACH PARTITION {name}"))
                detached.append(name)
    return detached


async def listing(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(table, partition, estimated rows) of every attached partition."""
    out = []
    for spec in TABLES:
        for name in await _partitions(session, spec.table):
            rows = (
                await session.execute(
                    text("SELECT reltuples::bigint FROM pg_class WHERE oid = CAST(:n AS regclass)"),
                    {"n": name},
                )
            ).scalar_one()
            out.append((spec.table, name, max(int(rows), 0)))
    return out
