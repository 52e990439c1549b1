"""Every member-facing endpoint beside a bare asyncpg endpoint: ``python -m bench.endpoints``.

One scratch database (bench.seed: a county, members, outflows, credit history, service
orders), one uvicorn worker of the app and one of the bare app of :mod:`bench._bare`
(an asyncpg pool, no framework, no auth, no rules) with the same pool size. For each
endpoint of the table, in one run and interleaved (bare, app, bare, app...), ``wrk``
(Debian package; one thread, ``-c64``) drives the bare endpoint returning the same
number of rows (or, for writes, the bare ``INSERT … RETURNING``), then the endpoint
itself, each for ``--duration`` seconds. Every request is a real one: the JWT of one of
``--callers`` members with an open login session, the study check-in on a new session
each time. Printed per endpoint: requests/s, p99, the ratio to bare, and the app's CPU
time per request (user + system time of the uvicorn process from /proc, over the
requests it served).

Targets (issue 13): member-facing ≥ 0.5 × bare with p99 < 50 ms; the admin ledger
page ≥ 0.3 × bare; the check-in ≥ 1.0 × the bare insert with ``synchronous_commit`` on
(the default here; ``--async-commit`` turns it off for both); < 1 ms of app CPU per
request. On a shared machine the absolute figures move; the ratios of one run are
what counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from app.core.config import Settings
from app.core.security import TokenClaims, hash_token, issue_access_token, new_refresh_token
from bench._bare import ROWS_DDL, TABLE_DDL, uvicorn_process
from bench.env import bench_database
from bench.load import report
from bench.seed import seed
from bench.stacks import summarise

COMMAND = "python -m bench.endpoints"
API = "/api/v1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    rows: int  # what the bare endpoint returns alongside (0: the bare INSERT)
    target: float  # ratio to bare
    admin: bool = False
    body: str | None = None  # a Lua expression of the body (``n``: the request counter)


@dataclass
class Figures:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    cpu_ms_per_request: float
    db_cpu_ms_per_request: float | None  # the PostgreSQL server's, when it runs here

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class World:
    tokens: list[str]
    admin_token: str
    county_id: int
    item_id: int
    first_session: int
    sessions: int
    orders_per_caller: int


async def _prepare(url: str, args: argparse.Namespace) -> World:
    seeded = await seed(
        url, args.members, outflows=args.outflows, credits=args.credits, orders=args.orders
    )
    settings = Settings(env="test", database_url=url, access_token_ttl_s=3600)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(TABLE_DDL)
        await conn.execute(ROWS_DDL)
        if args.async_commit:
            database = await conn.fetchval("SELECT current_database()")
            await conn.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off')
        # Callers: members bound to accounts (bench.seed's order submitters), those with
        # the most orders first, so ``GET /orders?mine=true`` has a page to show.
        callers = await conn.fetch(
            "SELECT a.id AS account_id, a.member_id FROM accounts a "
            "JOIN service_orders o ON o.submitter_account_id = a.id "
            "WHERE a.member_id IS NOT NULL GROUP BY a.id "
            "ORDER BY count(*) DESC, a.id LIMIT $1",
            args.callers + 1,
        )
        admin, callers = callers[0], callers[1:]
        orders_per_caller = await conn.fetchval(
            "SELECT least(20, min(n)) FROM (SELECT count(*) AS n FROM service_orders "
            "WHERE submitter_account_id = ANY($1) GROUP BY submitter_account_id) AS c",
            [c["account_id"] for c in callers],
        )
        await conn.execute(
            "INSERT INTO role_assignments (org_id, member_id, role) VALUES ($1, $2, 'org_admin')",
            seeded.county_id,
            admin["member_id"],
        )
        # Their inboxes: 25 notifications each (the page shows 20).
        await conn.execute(
            "INSERT INTO notifications (account_id, template, title, body, data, page) "
            "SELECT a, 'outflow_approved', '外出登记已通过', "
            "'您的外出登记已通过审批，请按时报到。', "
            "jsonb_build_object('outflow_id', g), '/pages/outflow/index' "
            "FROM unnest($1::bigint[]) AS a, generate_series(1, 25) AS g",
            [c["account_id"] for c in callers],
        )
        # The county's activity menu, seen by every member under it: 12 coming activities.
        starts = datetime.now(UTC) + timedelta(days=1)
        await conn.execute(
            "INSERT INTO activities (org_id, title, kind, description, starts_at, ends_at, "
            "checkin_opens_at, checkin_closes_at, online) "
            "SELECT $1, '主题党日 ' || g, 'theme_day', '学习与讨论', s, s + interval '2 hours', "
            "s, s + interval '2 hours', true "
            "FROM generate_series(1, 12) AS g, "
            "LATERAL (SELECT $2::timestamptz + g * interval '1 day' AS s) AS t",
            seeded.county_id,
            starts,
        )
        item_id = await conn.fetchval(
            "INSERT INTO study_items (title, kind, url, min_seconds, points) "
            "VALUES ('基准文章', 'article', 'https://example.org/a', 60, 1) RETURNING id"
        )
        # Check-in sessions with known ids: session first + k belongs to caller k % callers
        # (the wrk script computes the owner's token from the session id).
        member_ids = [c["member_id"] for c in callers]
        first = await conn.fetchval("SELECT coalesce(max(source_id), 0) + 1000 FROM credit_ledger")
        first = max(
            first, await conn.fetchval("SELECT coalesce(max(id), 0) + 1 FROM study_sessions")
        )
        await conn.execute(
            "INSERT INTO study_sessions (id, member_id, item_id, started_at) "
            "SELECT $1 + g, ($2::bigint[])[1 + g % $3], $4, $5 "
            "FROM generate_series(0, $6 - 1) AS g",
            first,
            member_ids,
            len(member_ids),
            item_id,
            datetime.now(UTC) - timedelta(minutes=10),
            args.sessions,
        )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('study_sessions', 'id'), $1)",
            first + args.sessions + 1,
        )
        expires = datetime.now(UTC) + timedelta(days=30)
        everyone = [*callers, admin]
        families = {c["account_id"]: uuid.uuid4() for c in everyone}
        await conn.copy_records_to_table(
            "refresh_tokens",
            records=[(families[a], a, hash_token(new_refresh_token()), expires) for a in families],
            columns=["family_id", "account_id", "token_hash", "expires_at"],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()

    def token(row: asyncpg.Record, kind: str) -> str:
        claims = TokenClaims(
            account_id=row["account_id"],
            kind=kind,
            member_id=row["member_id"],
            superadmin=False,
            session_id=str(families[row["account_id"]]),
        )
        return issue_access_token(settings, claims)

    return World(
        tokens=[token(c, "member") for c in callers],
        admin_token=token(admin, "admin"),
        county_id=seeded.county_id,
        item_id=item_id,
        first_session=first,
        sessions=args.sessions,
        orders_per_caller=int(orders_per_caller or 0),
    )


def _endpoints(world: World) -> list[Endpoint]:
    orders = max(world.orders_per_caller, 1)
    return [
        Endpoint("GET /me", "GET", f"{API}/me", 1, 0.5),
        Endpoint("GET /activities (10)", "GET", f"{API}/activities?limit=10", 10, 0.5),
        Endpoint("GET /me/credits", "GET", f"{API}/me/credits", 1, 0.5),
        Endpoint("GET /me/notifications (20)", "GET", f"{API}/me/notifications", 20, 0.5),
        Endpoint("GET /orders?mine=true", "GET", f"{API}/orders?mine=true", orders, 0.5),
        Endpoint(
            "POST /study/sessions",
            "POST",
            f"{API}/study/sessions",
            0,
            0.5,
            body=f"'{{\"item_id\":{world.item_id}}}'",
        ),
        Endpoint(
            "GET /outflows (admin, 20)",
            "GET",
            f"{API}/outflows?org_id={world.county_id}&limit=20",
            20,
            0.3,
            admin=True,
        ),
        Endpoint(
            "POST /study/checkins",
            "POST",
            f"{API}/study/checkins",
            0,
            1.0,
            body=(
                "'{\"session_id\":' .. (first + n) .. "
                "',\"client_event_id\":\"bench-' .. (first + n) .. '\"}'"
            ),
        ),
    ]


_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
    .. '"non_2xx":%d,"socket_errors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


def _script(endpoint: Endpoint | None, world: World, rows: int, offset: int) -> str:
    """The wrk script of one measurement: the app's ``endpoint``, or (None) the bare one."""
    if endpoint is None:
        if rows:
            return (
                f"local n = 0\nrequest = function()\n  n = n + 1\n"
                f"  return wrk.format('GET', '/rows/{rows}?' .. (n % 1000))\nend\n" + _DONE
            )
        return (
            f"local n = {offset}\nrequest = function()\n  n = n + 1\n"
            "  return wrk.format('POST', '/checkins', {['Content-Type']='application/json'}, "
            "'{\"session_id\":' .. n .. ',\"client_event_id\":\"bare-' .. n .. '\"}')\nend\n"
            + _DONE
        )
    tokens = [world.admin_token] if endpoint.admin else world.tokens
    lines = ["local tokens = {"]
    lines += [f"  'Bearer {t}'," for t in tokens]
    lines += [
        "}",
        f"local first = {world.first_session}",
        f"local n = {offset}",
        "request = function()",
        "  n = n + 1",
        # Session first + k belongs to caller k % callers (see _prepare).
        "  local headers = {['Authorization'] = tokens[1 + n % #tokens]}",
    ]
    if endpoint.body is not None:
        lines += [
            "  headers['Content-Type'] = 'application/json'",
            f"  return wrk.format('{endpoint.method}', '{endpoint.path}', headers, "
            f"{endpoint.body})",
        ]
    else:
        lines.append(f"  return wrk.format('{endpoint.method}', '{endpoint.path}', headers)")
    lines.append("end")
    return "\n".join(lines) + "\n" + _DONE


def _cpu_seconds(pid: int, *, children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:  # cutime, cstime: of the children that ended
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _postgres_cpu_seconds(postmaster: int | None) -> float | None:
    """CPU time of the PostgreSQL server on this machine (postmaster, its backends and
    helpers, and those that ended), or None when it runs elsewhere."""
    if postmaster is None:
        return None
    try:
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        total = _cpu_seconds(postmaster, children=True)
    except OSError:
        return None
    for child in children:
        try:
            total += _cpu_seconds(int(child))
        except OSError:  # ended meanwhile: counted in the postmaster's cutime from now
            continue
    return total


async def _postmaster(url: str) -> int | None:
    conn = await asyncpg.connect(url)
    try:
        directory = await conn.fetchval("SHOW data_directory")
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()
    try:
        return int((Path(directory) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # a server elsewhere


def _wrk(
    base: str, script: Path, args: argparse.Namespace, pid: int, profile: Path | None = None
) -> Figures:
    spy = None
    if profile is not None:
        # Collapsed stacks of the app while wrk drives it (py-spy needs ptrace rights).
        spy = subprocess.Popen(
            [args.py_spy, "record", "-p", str(pid), "-d", str(args.duration), "-r", "200",
             "-f", "raw", "-o", str(profile), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    before = _cpu_seconds(pid)
    db_before = _postgres_cpu_seconds(args.postmaster)
    completed = subprocess.run(
        ["wrk", "-t1", f"-c{args.concurrency}", f"-d{args.duration}s", "--timeout", "10s",
         "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    used = _cpu_seconds(pid) - before
    db_after = _postgres_cpu_seconds(args.postmaster)
    db_used = db_after - db_before if db_after is not None and db_before is not None else None
    if spy is not None:
        spy.wait(30)
    line = next(x for x in completed.stdout.splitlines() if x.startswith("WRK "))
    data = json.loads(line[4:])
    requests = int(data["requests"])
    return Figures(
        requests=requests,
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        non_2xx=int(data["non_2xx"]),
        socket_errors=int(data["socket_errors"]),
        cpu_ms_per_request=used * 1000 / requests if requests else float("nan"),
        db_cpu_ms_per_request=db_used * 1000 / requests if requests and db_used else None,
    )


def _warm(base: str, script: Path, args: argparse.Namespace) -> None:
    subprocess.run(
        ["wrk", "-t1", "-c8", "-d1s", "-s", str(script), base],
        capture_output=True,
        check=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=1, help="bare/app pairs per endpoint")
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--outflows", type=int, default=5_000)
    parser.add_argument("--credits", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=30_000)
    parser.add_argument("--callers", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=120_000)
    parser.add_argument("--pool", type=int, default=20, help="DB pool size of both servers")
    parser.add_argument("--only", nargs="*", default=None, help="endpoint names to run")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="directory: py-spy's collapsed stacks of the app per endpoint (--py-spy)",
    )
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    parser.add_argument(
        "--async-commit", action="store_true", help="synchronous_commit off for both servers"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench.endpoints needs wrk (apt-get install wrk)")

    async with bench_database("bench_endpoints") as url:
        world = await _prepare(url, args)
        args.postmaster = await _postmaster(url)
        print(
            f"synchronous_commit {'off' if args.async_commit else 'on'}; "
            f"{len(world.tokens)} callers, {world.orders_per_caller} orders each at least; "
            f"wrk -t1 -c{args.concurrency}, {args.duration} s per measurement",
            flush=True,
        )
        env = {
            "DATABASE_URL": url,
            "APP_ENV": "test",
            "APP_WECHAT_SIMULATOR": "true",
            "APP_DEMO_DATA": "false",
            "APP_DB_POOL_SIZE": str(args.pool),
            "APP_DB_MAX_OVERFLOW": "0",
            "APP_DB_DRIVER_POOL_SIZE": str(args.pool),
        }
        bare_env = {
            "BENCH_BARE_DSN": url,
            "BENCH_BARE_POOL": str(args.pool),
            "BENCH_BARE_MODE": "insert",
        }
        scripts = Path(tempfile.mkdtemp(prefix="bench-endpoints-"))
        rows: list[tuple[Endpoint, Figures, Figures]] = []
        # Bare inserts take session ids of their own; app requests walk the sessions.
        offsets = {"bare": 10_000_000, "app": 0}
        try:
            with (
                uvicorn_process("app.main:create_app", env, "--factory") as app,
                uvicorn_process("bench._bare:app", bare_env) as bare,
            ):
                for endpoint in _endpoints(world):
                    if args.only and endpoint.name not in args.only:
                        continue
                    for _ in range(args.rounds):
                        bare_script = scripts / "bare.lua"
                        bare_script.write_text(_script(None, world, endpoint.rows, offsets["bare"]))
                        app_script = scripts / "app.lua"
                        app_script.write_text(_script(endpoint, world, 0, offsets["app"]))
                        _warm(bare.base, bare_script, args)
                        base_figures = _wrk(bare.base, bare_script, args, bare.pid)
                        offsets["bare"] += base_figures.requests + 100_000
                        checkins = endpoint.name == "POST /study/checkins"
                        if not checkins:  # sessions are checked in once, none for warming
                            _warm(app.base, app_script, args)
                        profile = None
                        if args.profile is not None:
                            args.profile.mkdir(parents=True, exist_ok=True)
                            slug = "".join(c if c.isalnum() else "_" for c in endpoint.name)
                            profile = args.profile / f"{slug}.txt"
                        app_figures = _wrk(app.base, app_script, args, app.pid, profile)
                        if checkins:
                            offsets["app"] += app_figures.requests + 64
                        rows.append((endpoint, base_figures, app_figures))
                        _print_row(endpoint, base_figures, app_figures)
                        if profile is not None and profile.exists():
                            print(summarise(profile), flush=True)
                        if offsets["app"] >= world.sessions:
                            raise SystemExit("out of check-in sessions: raise --sessions")
        finally:
            shutil.rmtree(scripts, ignore_errors=True)
    _print_table(rows)


def _ratio(bare: Figures, app: Figures) -> float:
    return app.rps / bare.rps if bare.rps else 0.0


def _verdict(endpoint: Endpoint, bare: Figures, app: Figures) -> str:
    misses = []
    if _ratio(bare, app) < endpoint.target:
        misses.append(f"ratio < {endpoint.target}")
    if not endpoint.admin and not endpoint.name.startswith("POST") and app.p99_ms >= 50:
        misses.append("p99 ≥ 50 ms")
    if app.cpu_ms_per_request >= 1.0:
        misses.append("CPU ≥ 1 ms")
    if app.non_2xx or app.socket_errors:
        misses.append(f"{app.non_2xx} non-2xx, {app.socket_errors} socket errors")
    return "ok" if not misses else "MISSED: " + ", ".join(misses)


def _ms(value: float | None) -> str:
    return f"{value:.2f} ms" if value is not None else "n/a"


def _print_row(endpoint: Endpoint, bare: Figures, app: Figures) -> None:
    print(
        f"{endpoint.name:<28} app {app.rps:7.0f} req/s p50 {app.p50_ms:5.1f} p99 {app.p99_ms:7.1f} "
        f"max {app.max_ms:7.1f} ms "
        f"cpu {app.cpu_ms_per_request:5.2f} ms db {_ms(app.db_cpu_ms_per_request)} | "
        f"bare({endpoint.rows or 'insert'}) {bare.rps:7.0f} req/s p99 {bare.p99_ms:6.1f} ms "
        f"cpu {bare.cpu_ms_per_request:5.2f} ms db {_ms(bare.db_cpu_ms_per_request)} | "
        f"ratio {_ratio(bare, app):4.2f} (≥ {endpoint.target}) {_verdict(endpoint, bare, app)}",
        flush=True,
    )


def _print_table(rows: list[tuple[Endpoint, Figures, Figures]]) -> None:
    """CPU per request: the uvicorn process's and PostgreSQL's (all its processes) over
    the requests served, for the app and for its bare neighbour."""
    print()
    print(
        "| endpoint | req/s | p99 | app CPU / req | its DB CPU / req | bare req/s | "
        "bare CPU / req | bare DB CPU / req | ratio | target | |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for endpoint, bare, app in rows:
        print(
            f"| {endpoint.name} | {app.rps:.0f} | {app.p99_ms:.1f} ms | "
            f"{app.cpu_ms_per_request:.2f} ms | {_ms(app.db_cpu_ms_per_request)} | "
            f"{bare.rps:.0f} ({endpoint.rows or 'insert'}) | {bare.cpu_ms_per_request:.2f} ms | "
            f"{_ms(bare.db_cpu_ms_per_request)} | {_ratio(bare, app):.2f} | "
            f"≥ {endpoint.target} | {_verdict(endpoint, bare, app)} |"
        )
    for endpoint, bare, app in rows:
        report("endpoints", f"{endpoint.name} / bare", _ratio(bare, app), "×",
               f"≥ {endpoint.target}", COMMAND)  # fmt: skip
        report("endpoints", f"{endpoint.name} p99", app.p99_ms, "ms", "", COMMAND)
        report("endpoints", f"{endpoint.name} app CPU", app.cpu_ms_per_request, "ms/req",
               "< 1 ms", COMMAND)  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
