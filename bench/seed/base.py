"""What every part of the benchmark data shares: the seeded ids, id reservation, times."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

import asyncpg

from app.core.clock import SHANGHAI

REGION = "440883"
DESTINATIONS = ["440106", "440305", "440304", "440604", "441302", "460106", "450103", "310115"]


@dataclass
class Seeded:
    county_id: int
    org_ids: list[int] = field(default_factory=list)
    branch_ids: list[int] = field(default_factory=list)
    member_ids: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


async def next_ids(conn: asyncpg.Connection, table: str, n: int) -> list[int]:
    rows = await conn.fetch(
        f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id "
        "FROM generate_series(1, $1)",
        n,
    )
    return [r["id"] for r in rows]


async def reserve_ids(conn: asyncpg.Connection, table: str, n: int) -> range:
    """``n`` consecutive ids taken from the table's identity sequence in one round trip."""
    first = await conn.fetchval(
        f"SELECT setval(seq, nextval(seq) + $1 - 1) - $1 + 1 "
        f"FROM CAST(pg_get_serial_sequence('{table}', 'id') AS regclass) AS seq",
        n,
    )
    return range(first, first + n)


def random_moment(
    day: date, rng: random.Random, start_hour: int = 7, end_hour: int = 22
) -> datetime:
    """A moment of an Asia/Shanghai day, as an aware timestamp."""
    moment = datetime.combine(day, clock(0), tzinfo=SHANGHAI)
    return moment + timedelta(seconds=rng.randint(start_hour * 3600, end_hour * 3600 - 1))


def now_utc() -> datetime:
    return datetime.now(UTC)
