"""Study leaderboard on 1,000,000 ledger rows: ``python -m bench.leaderboard``.

Seeds 100,000 members and 1,000,000 credit ledger rows over the last 365 days with the
credit_daily rows they add up to (bench.seed, COPY), runs the app in uvicorn and, as the
county's org_admin, measures ``GET /api/v1/study/leaderboard?org_id=<county>&period=``
for day, month and year: sequential latency (httpx, one keep-alive connection, p50/p95
over 50 requests) and throughput at 16 connections (bench.load.drive_raw).

The day board reads credit_daily, month and year read credit_rollup (kept by triggers
on the ledger), each the top of an index ``(period, points DESC, member_id)``: the cost
of a page no longer grows with the rows of the period (docs/leaderboards.md). An
authenticated ``GET /orgs/{id}`` in the same run calibrates for the machine's load.
``--members 1000000 --credits 10000000`` runs it at ten times the county.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import create_engine
from app.organization.models import Organization
from bench.env import bench_database
from bench.load import drive_raw, raw_request, report
from bench.seed import seed
from tests import factories
from tests.live import live_server

COMMAND = "python -m bench.leaderboard"
TARGET = "< 50 ms at 1,000,000 members / 10,000,000 ledger rows"
PERIODS = ("day", "month", "year")


async def admin_token(url: str, org_id: int) -> str:
    """An org_admin of ``org_id`` (member, role row, account, access token)."""
    settings = Settings(env="test", database_url=url, access_token_ttl_s=3600)
    engine = create_engine(settings, url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as db:
            org = await db.get(Organization, org_id)
            assert org is not None
            admin = await factories.admin_actor(db, settings, org)
            await db.commit()
            return admin.token
    finally:
        await engine.dispose()


async def sequential(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], n: int
) -> tuple[list[float], httpx.Response]:
    times = []
    response = None
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    assert response is not None
    return sorted(times), response


def p95(ordered: list[float]) -> float:
    return ordered[max(0, round(len(ordered) * 0.95) - 1)]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--credits", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    async with bench_database("bench_leaderboard") as url:
        started = time.perf_counter()
        seeded = await seed(url, args.members, credits=args.credits)
        for what, seconds in seeded.timings.items():
            print(f"  seed {what:<44} {seconds:6.1f} s")
        print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
        token = await admin_token(url, seeded.county_id)
        headers = {"Authorization": f"Bearer {token}"}
        # One pooled connection per client connection: the throughput run measures the
        # query, not the pool's bounded wait (which answers 503 when it runs out).
        pool = {"APP_DB_POOL_SIZE": str(args.concurrency), "APP_DB_MAX_OVERFLOW": "0"}
        with live_server(url, pool) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                # Calibration: an authenticated admin request that reads one row (the
                # county by id), on this machine at this moment.
                reference = f"/api/v1/orgs/{seeded.county_id}"
                await sequential(client, reference, headers, 5)
                times, _ = await sequential(client, reference, headers, args.requests)
                print(f"reference GET /orgs/{{id}}  p50 {statistics.median(times):6.1f} ms")
                report(
                    "leaderboard",
                    "reference GET /orgs/{id} p50",
                    statistics.median(times),
                    "ms",
                    TARGET,
                    COMMAND,
                )
                for period in PERIODS:
                    path = f"/api/v1/study/leaderboard?org_id={seeded.county_id}&period={period}"
                    # The first five executions of a prepared statement get custom plans; the
                    # server may then switch to a generic one: the warm-up shows both.
                    first, _ = await sequential(client, path, headers, 5)
                    print(f"  first 5 requests: {[round(t) for t in first]} ms (sorted)")
                    times, response = await sequential(client, path, headers, args.requests)
                    body = response.json()
                    top = body["items"][0]["points"] if body["items"] else 0
                    p50 = statistics.median(times)
                    print(
                        f"leaderboard period={period:<5} p50 {p50:6.1f} ms  p95 "
                        f"{p95(times):6.1f} ms  ({len(body['items'])} items, top "
                        f"{top} points, {body['start']}..{body['end']})",
                        flush=True,
                    )
                    report("leaderboard", f"period={period} p50", p50, "ms", TARGET, COMMAND)
                    report("leaderboard", f"period={period} p95", p95(times), "ms", TARGET, COMMAND)
            for period in PERIODS:
                path = f"/api/v1/study/leaderboard?org_id={seeded.county_id}&period={period}"
                result = await drive_raw(
                    base,
                    [raw_request("GET", path, b"", headers)],
                    label=f"leaderboard {period}",
                    concurrency=args.concurrency,
                    duration_s=args.duration,
                )
                print(result.line(), flush=True)
                if result.ok_ratio() < 1.0 or result.timeouts:
                    print(f"  not all 200: {dict(result.statuses)}, timeouts {result.timeouts}")
                report(
                    "leaderboard",
                    f"period={period} c={args.concurrency}",
                    result.rps,
                    "req/s",
                    TARGET,
                    COMMAND,
                )


if __name__ == "__main__":
    asyncio.run(main())
