"""Both scales side by side: ``python -m bench.scale [--scales 1,10]``.

Scale 1 is the county-sized seed (100,000 members, 20,000 outflows with reports,
1,000,000 credit ledger rows, 50,000 orders); scale N multiplies every volume by N.
Each scale's data set is seeded once by COPY into a database that is kept
(``bench_scale<N>`` on an embedded PostgreSQL under ``BENCH_DATA_DIR``, default
``/tmp/branchlink-bench``, or on ``DATABASE_URL``) and reused by later runs: the
database's comment records that the seed finished. Every run first upgrades the kept
database to the current migrations, so a run after new revisions measures them on the
same rows (``--reseed`` starts afresh).

The embedded server is given 1 GB of shared buffers and 32 MB of work_mem
(``SERVER_SETTINGS``) instead of the test defaults. On each scale, as the county's
org_admin through a real uvicorn process, it measures
p50/p95 of sequential requests (after a warm-up that also lets PostgreSQL settle on a
plan) for the outflow ledger page, outflow statistics, order statistics and the study
leaderboard by day, month and year; then prints one table with a column per scale.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from app.core import embedded
from bench.leaderboard import admin_token, p95
from bench.load import report
from bench.seed import seed
from tests.conftest import run_alembic
from tests.live import live_server, with_database

COMMAND = "python -m bench.scale"
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", "/tmp/branchlink-bench"))
# Scale 1: one county.
VOLUMES = {"members": 100_000, "outflows": 20_000, "credits": 1_000_000, "orders": 50_000}


@dataclass(frozen=True)
class Probe:
    label: str
    path: str  # {county} is the county's organisation id
    target_ms: float


PROBES = (
    Probe(
        "outflow ledger page (flag=lost_contact)",
        "/api/v1/outflows?org_id={county}&flag=lost_contact&limit=20",
        100,
    ),
    Probe("outflow statistics", "/api/v1/outflows/stats?org_id={county}", 100),
    Probe("order statistics", "/api/v1/orders/stats?org_id={county}", 100),
    Probe("leaderboard day", "/api/v1/study/leaderboard?org_id={county}&period=day", 50),
    Probe("leaderboard month", "/api/v1/study/leaderboard?org_id={county}&period=month", 50),
    Probe("leaderboard year", "/api/v1/study/leaderboard?org_id={county}&period=year", 50),
)


# The kept server is configured for data sets of this size, as a deployment would be
# (the embedded default, 128 MB of shared buffers and 4 MB of work_mem, is for tests):
# scale 10 is about 6 GB on disk. A DATABASE_URL server keeps its own settings.
SERVER_SETTINGS = {"shared_buffers": "1GB", "work_mem": "32MB"}


async def _server_url() -> str:
    external = os.environ.get("DATABASE_URL")
    if external:
        return external.replace("postgresql+asyncpg://", "postgresql://")
    # "stop": the server stops when this process leaves; its data directory stays.
    url = embedded.start(DATA_DIR, cleanup_mode="stop")
    conn = await asyncpg.connect(url)
    try:
        current = {name: await conn.fetchval(f"SHOW {name}") for name in SERVER_SETTINGS}
        if current == SERVER_SETTINGS:
            return url
        for name, value in SERVER_SETTINGS.items():
            await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    finally:
        await conn.close()
    embedded.restart(DATA_DIR)  # shared_buffers takes effect at start only
    return url


async def _seed_info(admin: str, name: str) -> dict[str, object] | None:
    conn = await asyncpg.connect(admin)
    try:
        comment = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            name,
        )
    finally:
        await conn.close()
    if not comment:
        return None
    info: dict[str, object] = json.loads(comment)
    return info


async def _recreate(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def kept_database(scale: int, *, reseed: bool = False) -> tuple[str, Mapping[str, object]]:
    """The URL of the seeded database of ``scale`` (seeding it first if need be) and what
    the seed recorded (county id, volumes, seconds per part)."""
    server = await _server_url()
    admin = with_database(server, "postgres")
    name = f"bench_scale{scale}"
    url = with_database(server, name)
    info = None if reseed else await _seed_info(admin, name)
    if info is None:
        await _recreate(admin, name)
        await asyncio.to_thread(run_alembic, url, "upgrade", "head")
        volumes = {k: v * scale for k, v in VOLUMES.items()}
        print(f"scale {scale}: seeding {volumes} into {name} (kept for later runs)", flush=True)
        started = time.perf_counter()
        members = volumes.pop("members")
        seeded = await seed(url, members, **volumes)
        for what, seconds in seeded.timings.items():
            print(f"  seed {what:<52} {seconds:7.1f} s", flush=True)
        info = {
            "scale": scale,
            "county_id": seeded.county_id,
            "seeded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seed_seconds": round(time.perf_counter() - started, 1),
        }
        conn = await asyncpg.connect(admin)
        try:
            literal = json.dumps(info).replace("'", "''")
            await conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{literal}'")
        finally:
            await conn.close()
    else:
        # New revisions since the seed run on the kept rows (and are timed).
        started = time.perf_counter()
        await asyncio.to_thread(run_alembic, url, "upgrade", "head")
        print(f"scale {scale}: kept {name} upgraded in {time.perf_counter() - started:.1f} s")
    return url, info


async def measure(
    scale: int, requests: int, *, reseed: bool = False
) -> dict[str, tuple[float, float]]:
    """p50 and p95 (ms) of each probe on the data set of ``scale``."""
    url, info = await kept_database(scale, reseed=reseed)
    county = int(str(info["county_id"]))
    token = await admin_token(url, county)
    headers = {"Authorization": f"Bearer {token}"}
    results: dict[str, tuple[float, float]] = {}
    with live_server(url) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for probe in PROBES:
                path = probe.path.format(county=county)
                # Beyond the first five executions PostgreSQL may switch to a generic plan.
                await timed(client, path, headers, 7, budget_s=15)
                times = await timed(client, path, headers, requests, budget_s=45)
                results[probe.label] = (statistics.median(times), p95(times))
                print(
                    f"scale {scale:>2} {probe.label:<42} p50 {results[probe.label][0]:7.1f} ms"
                    f"  p95 {results[probe.label][1]:7.1f} ms",
                    flush=True,
                )
                report(
                    "scale",
                    f"{probe.label} p50, scale {scale}",
                    results[probe.label][0],
                    "ms",
                    f"< {probe.target_ms:.0f} ms",
                    f"{COMMAND} --scales {scale}",
                )
    return results


async def timed(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], n: int, *, budget_s: float
) -> list[float]:
    """Sorted latencies (ms) of up to ``n`` sequential requests; a slow one stops after
    ``budget_s`` (at least three requests), so a missed target does not take an hour."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < n and (len(times) < 3 or time.perf_counter() < deadline):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return sorted(times)


def table(scales: list[int], figures: dict[int, dict[str, tuple[float, float]]]) -> str:
    head = " | ".join(f"scale {s} p50 / p95" for s in scales)
    lines = [
        f"| measurement (county subtree) | target | {head} |",
        "| --- | --- | " + " | ".join("---" for _ in scales) + " |",
    ]
    for probe in PROBES:
        cells = []
        for s in scales:
            p50, p95_ = figures[s][probe.label]
            flag = "" if p50 < probe.target_ms else " **missed**"
            cells.append(f"{p50:.1f} / {p95_:.1f} ms{flag}")
        lines.append(f"| {probe.label} | < {probe.target_ms:.0f} ms | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scales", default="1", help="comma-separated, e.g. 1,10")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--reseed", action="store_true", help="seed again from scratch")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    figures = {s: await measure(s, args.requests, reseed=args.reseed) for s in scales}
    print()
    print(table(scales, figures))


if __name__ == "__main__":
    asyncio.run(main())
