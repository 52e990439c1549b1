"""Service order statistics on 50,000 orders: ``python -m bench.order_stats``.

Seeds 100,000 members and 50,000 service orders over the last year (bench.seed, COPY:
categories, statuses, SLA clocks, trail rows, timeline events), runs the app in uvicorn
and, as the county's org_admin, measures ``GET /api/v1/orders/stats?org_id=<county>``
(counts by status and category, overdue, time to accept/resolve with p90, ratings over
the whole county subtree): sequential latency (httpx, p50/p95 over 50 requests), then
throughput at 16 connections (bench.load.drive_raw).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from bench.env import bench_database
from bench.leaderboard import admin_token, p95, sequential
from bench.load import drive_raw, raw_request, report
from bench.seed import seed
from tests.live import live_server

COMMAND = "python -m bench.order_stats"
TARGET = "fast on 50,000 orders"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    async with bench_database("bench_order_stats") as url:
        started = time.perf_counter()
        seeded = await seed(url, args.members, orders=args.orders)
        for what, seconds in seeded.timings.items():
            print(f"  seed {what:<44} {seconds:6.1f} s")
        print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
        token = await admin_token(url, seeded.county_id)
        headers = {"Authorization": f"Bearer {token}"}
        variants = {
            "county": f"/api/v1/orders/stats?org_id={seeded.county_id}",
            "county, last 30 days": f"/api/v1/orders/stats?org_id={seeded.county_id}"
            + "&from="
            + time.strftime("%Y-%m-%d", time.gmtime(time.time() - 30 * 86400)),
        }
        # One pooled connection per client connection: the throughput run measures the
        # query, not the pool's bounded wait (which answers 503 when it runs out).
        pool = {"APP_DB_POOL_SIZE": str(args.concurrency), "APP_DB_MAX_OVERFLOW": "0"}
        with live_server(url, pool) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                for label, path in variants.items():
                    # The first five executions of a prepared statement get custom plans; the
                    # server may then switch to a generic one: the warm-up shows both.
                    first, _ = await sequential(client, path, headers, 5)
                    print(f"  first 5 requests: {[round(t) for t in first]} ms (sorted)")
                    times, response = await sequential(client, path, headers, args.requests)
                    body = response.json()
                    p50 = statistics.median(times)
                    print(
                        f"order stats ({label}): p50 {p50:6.1f} ms  p95 {p95(times):6.1f} ms  "
                        f"(total {body['total']}, overdue {body['overdue']}, "
                        f"by status {body['by_status']})",
                        flush=True,
                    )
                    report("order_stats", f"{label} p50", p50, "ms", TARGET, COMMAND)
                    report("order_stats", f"{label} p95", p95(times), "ms", TARGET, COMMAND)
            result = await drive_raw(
                base,
                [raw_request("GET", variants["county"], b"", headers)],
                label="order stats county",
                concurrency=args.concurrency,
                duration_s=args.duration,
            )
            print(result.line(), flush=True)
            if result.ok_ratio() < 1.0 or result.timeouts:
                print(f"  not all 200: {dict(result.statuses)}, timeouts {result.timeouts}")
            report(
                "order_stats",
                f"county c={args.concurrency}",
                result.rps,
                "req/s",
                TARGET,
                COMMAND,
            )


if __name__ == "__main__":
    asyncio.run(main())
