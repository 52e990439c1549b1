"""Realistic data for benchmarks: ``python -m bench.seed --members 100000 [--url URL]``.

A county-like tree (county committee → 20 town committees → 100 general branches →
2,000 branches, plus mobile and business-district organisations), members with encrypted
personal data, and, for the domains whose tables exist, outflows with reports, credit
ledger rows and service orders. Loaded with COPY.
"""

from __future__ import annotations

import time

import asyncpg

from app.core.config import Settings
from bench.seed.base import DESTINATIONS, Seeded, now_utc
from bench.seed.credits import seed_credits
from bench.seed.mobility import seed_outflows
from bench.seed.orders import seed_orders
from bench.seed.roster import seed_members, seed_orgs

__all__ = ["DESTINATIONS", "Seeded", "now_utc", "seed"]


async def seed(
    url: str,
    members: int,
    settings: Settings | None = None,
    *,
    outflows: int = 0,
    credits: int = 0,
    orders: int = 0,
) -> Seeded:
    settings = settings or Settings(env="test", database_url=url)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        started = time.perf_counter()
        seeded = await seed_orgs(conn)
        seeded.timings["organizations"] = time.perf_counter() - started
        started = time.perf_counter()
        await seed_members(conn, settings, seeded, members)
        seeded.timings["members"] = time.perf_counter() - started
        if outflows:
            started = time.perf_counter()
            n, reports = await seed_outflows(conn, settings, seeded, outflows)
            seeded.timings[f"outflows ({n:,} + {reports:,} reports)"] = (
                time.perf_counter() - started
            )
        if credits:
            started = time.perf_counter()
            days = await seed_credits(conn, seeded, credits)
            seeded.timings[f"credits ({credits:,} + {days:,} daily)"] = (
                time.perf_counter() - started
            )
        if orders:
            started = time.perf_counter()
            trail, events = await seed_orders(conn, settings, seeded, orders)
            seeded.timings[f"orders ({orders:,}, {trail:,} trail, {events:,} events)"] = (
                time.perf_counter() - started
            )
        started = time.perf_counter()
        await conn.execute("ANALYZE")
        seeded.timings["analyze"] = time.perf_counter() - started
        return seeded
    finally:
        await conn.close()
