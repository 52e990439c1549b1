"""Study check-in throughput against a bare ``INSERT … RETURNING``: ``python -m bench.checkin``.

On one scratch database, uvicorn processes with one worker each: the app, and the
bare endpoint of :mod:`bench._bare` (asyncpg pool, one INSERT, no auth, no rules), and
the same bare endpoint running the app's award path alone, batcher and statement (the
ceiling the app could reach with free HTTP handling). All get the same load (64
keep-alive connections, same duration, same client) and the same pool size. Every
check-in request is a real one: a JWT of the session's member, a new session and
``client_event_id`` per request, the rule/cap/ledger statement (caps are reached
quickly, as on a busy day, which does not make the statement cheaper).

Target: check-in requests/s ≥ 0.5 × bare, p99 < 100 ms at 64 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from app.core.config import Settings
from app.core.security import TokenClaims, hash_token, issue_access_token, new_refresh_token
from bench._bare import TABLE_DDL, bare_server
from bench.env import bench_database
from bench.load import LoadResult, drive, drive_raw, raw_post, report
from bench.seed import seed
from bench.seed.orders import seed_accounts
from tests.live import live_server

COMMAND = "python -m bench.checkin"
KINDS = ("article", "video", "vr_hall", "quiz")


async def _prepare(
    url: str, members: int, sessions: int, history: int, *, durable: bool
) -> tuple[list[int], dict[int, str]]:
    """Members with ``history`` earlier ledger rows (so the planner sees tables as they
    are on a working day, not empty), one global item per kind, ``sessions`` sessions
    started 10 minutes ago."""
    seeded = await seed(url, members, credits=history)
    settings = Settings(env="test", database_url=url, access_token_ttl_s=3600)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(TABLE_DDL)
        # Seeded ledger rows use their own ids as study source ids: start sessions above.
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('study_sessions', 'id'), "
            "(SELECT coalesce(max(source_id), 0) + 1 FROM credit_ledger))"
        )
        if not durable:
            # Both servers then measure their own work, not this VM's fsync latency
            # (every request of both is exactly one commit either way).
            database = await conn.fetchval("SELECT current_database()")
            await conn.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off')
        item_ids = [
            await conn.fetchval(
                "INSERT INTO study_items (title, kind, url, min_seconds, points) "
                "VALUES ($1, $2, $3, 60, 1) RETURNING id",
                f"基准{kind}",
                kind,
                f"https://example.org/{kind}",
            )
            for kind in KINDS
        ]
        started = datetime.now(UTC) - timedelta(minutes=10)
        expires = datetime.now(UTC) + timedelta(days=30)
        member_ids = seeded.member_ids
        rows = await conn.fetch(
            "INSERT INTO study_sessions (member_id, item_id, started_at) "
            "SELECT ($1::bigint[])[1 + g % $2], ($3::bigint[])[1 + g % 4], $4 "
            "FROM generate_series(0, $5 - 1) AS g RETURNING id",
            member_ids,
            len(member_ids),
            item_ids,
            started,
            sessions,
        )
        session_ids = sorted(r["id"] for r in rows)
        owners = await conn.fetch(
            "SELECT id, member_id FROM study_sessions WHERE id = ANY($1)", session_ids
        )
        # Each member signed in as phones do: an account bound to him and an open login
        # session (refresh-token family) that his access token names.
        accounts = await seed_accounts(conn, seeded, len(member_ids))
        account_of = dict(
            await conn.fetch("SELECT member_id, id FROM accounts WHERE id = ANY($1)", accounts)
        )
        family_of = {m: uuid.uuid4() for m in member_ids}
        await conn.copy_records_to_table(
            "refresh_tokens",
            records=[
                (family_of[m], account_of[m], hash_token(new_refresh_token()), expires)
                for m in member_ids
            ],
            columns=["family_id", "account_id", "token_hash", "expires_at"],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    tokens = {
        m: issue_access_token(
            settings,
            TokenClaims(
                account_id=account_of[m],
                kind="member",
                member_id=m,
                superadmin=False,
                session_id=str(family_of[m]),
            ),
        )
        for m in member_ids
    }
    owner = {r["id"]: r["member_id"] for r in owners}
    return session_ids, {s: tokens[owner[s]] for s in session_ids}


def _print(result: LoadResult) -> None:
    print(result.line(), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=150_000)
    parser.add_argument("--history", type=int, default=200_000, help="earlier ledger rows")
    parser.add_argument("--pool", type=int, default=20, help="DB pool size of both servers")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator: minimal keep-alive client (default) or bench.load's httpx",
    )
    parser.add_argument(
        "--durable", action="store_true", help="keep synchronous_commit on (disk-bound)"
    )
    args = parser.parse_args()

    async with bench_database("bench_checkin") as url:
        session_ids, tokens = await _prepare(
            url, args.members, args.sessions, args.history, durable=args.durable
        )
        print(f"synchronous_commit {'on' if args.durable else 'off'}", flush=True)
        bodies = [
            (
                f'{{"session_id":{s},"client_event_id":"bench-{s}"}}'.encode(),
                {"Authorization": f"Bearer {tokens[s]}", "Content-Type": "application/json"},
            )
            for s in session_ids
        ]
        json_headers = {"Content-Type": "application/json"}
        # Sessions are claimed once: the statement-only run gets a third of them, the
        # app the rest, so neither replays the other's check-ins (a cheaper path).
        split = len(bodies) // 3
        load = {"concurrency": args.concurrency, "duration_s": args.duration}
        print(f"client {args.client}", flush=True)

        async def measure(
            base: str, path: str, requests: list[tuple[bytes, dict[str, str]]], label: str
        ) -> LoadResult:
            """Drive ``requests`` (body, headers) at ``path`` with the chosen client."""
            if args.client == "raw":
                raw = [raw_post(path, body, headers) for body, headers in requests]
                return await drive_raw(base, raw, label=label, **load)

            async def one(client: httpx.AsyncClient, n: int) -> httpx.Response:
                body, headers = requests[n % len(requests)]
                return await client.post(path, content=body, headers=headers)

            return await drive(base, one, label=label, **load)

        unsigned = [(body, json_headers) for body, _ in bodies]
        with bare_server(url, args.pool) as base:
            baseline = await measure(base, "/checkins", unsigned, "bare INSERT RETURNING")
        _print(baseline)
        with bare_server(url, args.pool, mode="checkin") as base:
            statement = await measure(base, "/checkins", unsigned[:split], "bare award statement")
        _print(statement)
        env = {
            "APP_DB_POOL_SIZE": str(args.pool),
            "APP_DB_MAX_OVERFLOW": "0",
            "APP_DB_DRIVER_POOL_SIZE": str(args.pool),
        }
        with live_server(url, env) as base:
            full = await measure(
                base, "/api/v1/study/checkins", bodies[split:], "study check-in (full)"
            )
        _print(full)

        conn = await asyncpg.connect(url)
        try:
            ledger = await conn.fetchval("SELECT count(*) FROM credit_ledger")
            over_cap = await conn.fetchval(
                "SELECT count(*) FROM credit_daily d WHERE d.points > 30 "
                "OR d.article > 6 OR d.video > 6 OR d.vr_hall > 4 OR d.quiz > 10"
            )
        finally:
            await conn.close()
        ratio = full.rps / baseline.rps if baseline.rps else 0.0
        ceiling = statement.rps / baseline.rps if baseline.rps else 0.0
        print(
            f"ratio check-in/bare = {ratio:.2f} (target ≥ 0.50); "
            f"check-in p99 {full.percentile(99):.1f} ms (target < 100 ms); "
            f"ledger rows {ledger}, daily rows over a cap: {over_cap}; "
            f"ok ratio {full.ok_ratio():.3f}; "
            f"the award statement alone, without the app, reaches {ceiling:.2f} × bare",
            flush=True,
        )
        report("checkin", "bare insert", baseline.rps, "req/s", "baseline", COMMAND)
        report("checkin", "bare p99", baseline.percentile(99), "ms", "", COMMAND)
        report("checkin", "award statement alone", statement.rps, "req/s", "ceiling", COMMAND)
        report("checkin", "check-in", full.rps, "req/s", "≥ 0.5 × bare", COMMAND)
        report("checkin", "check-in p50", full.percentile(50), "ms", "", COMMAND)
        report("checkin", "check-in p99", full.percentile(99), "ms", "< 100 ms", COMMAND)
        report("checkin", "check-in / bare", ratio, "×", "≥ 0.5", COMMAND)


if __name__ == "__main__":
    asyncio.run(main())
