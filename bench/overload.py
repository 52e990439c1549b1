"""Overload: four times the sustainable concurrency on one worker, then back to normal.

Excess requests wait a short, bounded time for a database connection and then get
503 problem+json with Retry-After; nothing hangs; when load drops the same process
serves normally at once. Run: ``python -m bench.overload``.
"""

from __future__ import annotations

import asyncio

from bench.env import bench_database
from bench.load import drive_raw, raw_request, report
from tests.live import admin_token, live_server

COMMAND = "python -m bench.overload"


async def _token(url: str) -> str:
    return await admin_token(url, "压测县委")


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
