"""Overload: four times the sustainable concurrency on one worker, then back to normal.

Excess requests wait a short, bounded time for a database connection and then get
503 problem+json with Retry-After; nothing hangs; when load drops the same process
serves normally at once. Run: ``python -m bench.overload``.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import create_engine
from bench.env import bench_database
from bench.load import drive_raw, raw_request, report
from tests import factories
from tests.live import live_server

COMMAND = "python -m bench.overload"


async def _token(url: str) -> str:
    settings = Settings(env="test", database_url=url, access_token_ttl_s=3600)
    engine = create_engine(settings, url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as db:
            county = await factories.org(db, "压测县委")
            admin = await factories.admin_actor(db, settings, county)
            await db.commit()
            return admin.token
    finally:
        await engine.dispose()


async def main() -> None:
    async with bench_database("bench_overload") as url:
        token = await _token(url)
        request = [raw_request("GET", "/api/v1/audit", b"", {"Authorization": f"Bearer {token}"})]
        env = {"APP_DB_POOL_SIZE": "10", "APP_DB_MAX_OVERFLOW": "0"}
        with live_server(url, env) as base:
            normal = await drive_raw(
                base, request, label="audit list c=64", concurrency=64, duration_s=5
            )
            print(normal.line())
            over = await drive_raw(
                base, request, label="audit list c=256", concurrency=256, duration_s=8
            )
            print(over.line())
            after = await drive_raw(
                base,
                request,
                label="right after, c=16",
                concurrency=16,
                duration_s=3,
                warmup_s=0,
            )
            print(after.line())
        non_503_errors = sum(n for s, n in over.statuses.items() if s >= 300 and s != 503)
        report("overload", "c=64 throughput", normal.rps, "req/s", "sustained", COMMAND)
        report(
            "overload",
            "c=256 p99",
            over.percentile(99),
            "ms",
            "bounded (< pool timeout + work)",
            COMMAND,
        )
        report(
            "overload",
            "c=256 answered 503",
            over.statuses.get(503, 0),
            "requests",
            "503 + Retry-After only",
            COMMAND,
        )
        report(
            "overload",
            "c=256 other errors + timeouts",
            non_503_errors + over.timeouts,
            "requests",
            "0",
            COMMAND,
        )
        report("overload", "after overload ok ratio", after.ok_ratio() * 100, "%", "100", COMMAND)


if __name__ == "__main__":
    asyncio.run(main())
