"""Study credit ledger rows and the daily aggregates they add up to, by COPY."""

from __future__ import annotations

import random
from datetime import timedelta

import asyncpg

from app.core.clock import shanghai_day
from bench.seed.base import (
    Seeded,
    now_utc,
    random_moment,
    reserve_ids,
)

# ------------------------------------------------------------------ study credits

# Per kind: (points per event, daily cap), as the 0007 migration's default rules.
CREDIT_RULES = {
    "article": (1, 6),
    "video": (1, 6),
    "vr_hall": (2, 4),
    "quiz": (2, 10),
    "activity": (5, 10),
}
OVERALL_DAILY_CAP = 30
CREDIT_KIND_WEIGHTS = [40, 30, 8, 20, 2]
# Rows per COPY: 10,000,000 ledger rows at scale 10 do not fit in memory at once.
CHUNK = 500_000


async def seed_credits(conn: asyncpg.Connection, seeded: Seeded, count: int) -> int:
    """``count`` ledger rows over the last 365 days and the credit_daily rows they add
    up to (those first: each ledger row references its day row). The awards replay the
    check-in statement's rule (points capped per kind and overall per day,
    ``cap_reached`` and ``daily_points`` as it returns them), so credit_daily equals the
    ledger summed per member and day.
    About a third of the members study, some nearly every day. Returns daily rows."""
    rng = random.Random(13)
    today = shanghai_day(now_utc())
    kinds = list(CREDIT_RULES)
    active = rng.sample(seeded.member_ids, max(1, len(seeded.member_ids) // 3))
    used: dict[int, set[int]] = {}
    ledger_ids = iter(await reserve_ids(conn, "credit_ledger", count))
    ledger: list[tuple[object, ...]] = []
    daily: list[tuple[object, ...]] = []
    written = 0
    days = 0
    full = 0
    while written + len(ledger) < count and full < len(active):
        for member_id in active:
            if written + len(ledger) >= count:
                break
            if len(ledger) >= CHUNK:
                # A member's days are complete here: their day rows go in before the
                # ledger rows that reference them, and memory stays bounded at scale.
                written += await _copy(conn, daily, ledger)
                days += len(daily)
                daily, ledger = [], []
            taken = used.setdefault(member_id, set())
            free = 365 - len(taken)
            if free == 0:
                continue
            # Heavy-tailed engagement: most study a few days, some almost every day.
            want = min(free, int(rng.paretovariate(1.5) * 2))
            offsets = [d for d in rng.sample(range(365), min(365, want * 2)) if d not in taken]
            for offset in offsets[:want]:
                if written + len(ledger) >= count:
                    break
                taken.add(offset)
                if len(taken) == 365:
                    full += 1
                day = today - timedelta(days=offset)
                per_kind = dict.fromkeys(kinds, 0)
                total = 0
                awarded = 0
                for _ in range(rng.randint(1, 12)):
                    if written + len(ledger) >= count:
                        break
                    kind = rng.choices(kinds, CREDIT_KIND_WEIGHTS)[0]
                    points, cap = CREDIT_RULES[kind]
                    awarded = max(0, min(points, cap - per_kind[kind], OVERALL_DAILY_CAP - total))
                    per_kind[kind] += awarded
                    total += awarded
                    at = random_moment(day, rng)
                    ledger_id = next(ledger_ids)
                    ledger.append(
                        (
                            ledger_id,
                            member_id,
                            day,
                            "study",
                            ledger_id,  # its study session's id, as good as any unique one
                            kind,
                            awarded,
                            total,
                            per_kind[kind] >= cap or total >= OVERALL_DAILY_CAP,
                            at,
                            at,
                        )
                    )
                daily.append((member_id, day, total, *per_kind.values(), awarded))
    await _copy(conn, daily, ledger)
    return days + len(daily)


async def _copy(
    conn: asyncpg.Connection, daily: list[tuple[object, ...]], ledger: list[tuple[object, ...]]
) -> int:
    """COPY day rows, then the ledger rows that reference them; returns ledger rows."""
    kinds = list(CREDIT_RULES)
    await conn.copy_records_to_table(
        "credit_daily",
        records=daily,
        columns=["member_id", "day", "points", *kinds, "last_awarded"],
    )
    await conn.copy_records_to_table(
        "credit_ledger",
        records=ledger,
        columns=[
            "id",
            "member_id",
            "day",
            "source",
            "source_id",
            "kind",
            "points",
            "daily_points",
            "cap_reached",
            "occurred_at",
            "created_at",
        ],
    )
    # Each entry's claim (member, source, source_id) with its result, as the check-in
    # statement writes it.
    await conn.copy_records_to_table(
        "credit_claims",
        records=[(r[1], r[3], r[4], r[0], r[2], r[6], r[7], r[8]) for r in ledger],
        columns=[
            "member_id",
            "source",
            "source_id",
            "ledger_id",
            "day",
            "points",
            "daily_points",
            "cap_reached",
        ],
    )
    return len(ledger)
