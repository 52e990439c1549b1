"""Restart survival: PostgreSQL restarts under write load; the app copes by itself.

* every request that got a 2xx is in the database afterwards;
* during the outage, errors are 503 problem+json with ``Retry-After`` (no 500, no hang);
* the same process serves normally again within seconds of the database coming back.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import embedded
from app.core.config import Settings
from app.core.db import create_engine
from tests import factories
from tests.conftest import run_alembic
from tests.live import live_server

pytestmark = pytest.mark.slow

WRITERS = 9
OUTAGE_S = 2.0
SESSIONS = 20_000  # more than the check-ins of a run, so none is a replay


async def _seed(url: str) -> dict[str, str]:
    settings = Settings(env="test", database_url=url, access_token_ttl_s=3600)
    engine = create_engine(settings, url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as db:
            county = await factories.org(db, "重启测试县委")
            admin = await factories.admin_actor(db, settings, county)
            resident = await factories.resident_actor(db, settings)
            member = await factories.member_actor(db, settings, county, "学习者")
            await db.commit()
        assert member.member is not None
        conn = await asyncpg.connect(url)
        try:
            item = await conn.fetchval(
                "INSERT INTO study_items (title, kind, url, min_seconds, points) "
                "VALUES ('重启学习', 'article', 'https://example.org/a', 0, 1) RETURNING id"
            )
            await conn.execute(
                "INSERT INTO study_sessions (member_id, item_id, started_at) "
                "SELECT $1, $2, now() - interval '10 minutes' FROM generate_series(1, $3)",
                member.member.id,
                item,
                SESSIONS,
            )
            first_session = await conn.fetchval("SELECT min(id) FROM study_sessions")
        finally:
            await conn.close()
        return {
            "admin": admin.token,
            "resident": resident.token,
            "member": member.token,
            "county_id": str(county.id),
            "first_session": str(first_session),
        }
    finally:
        await engine.dispose()


def _org(tokens: dict[str, str], name: str) -> tuple[str, dict[str, object], str]:
    body = {"name": name, "kind": "branch", "parent_id": int(tokens["county_id"])}
    return "/api/v1/orgs", body, tokens["admin"]


def _order(tokens: dict[str, str], name: str) -> tuple[str, dict[str, object], str]:
    body = {
        "category": "life_support",
        "title": name,
        "description": "老人独居，需要上门帮助",
        "contact_phone": "13800000000",
        "org_id": int(tokens["county_id"]),
    }
    return "/api/v1/orders", body, tokens["resident"]


_sessions = itertools.count()


def _checkin(tokens: dict[str, str], name: str) -> tuple[str, dict[str, object], str]:
    # The lean path: a driver-pool connection, not a SQLAlchemy session.
    session_id = int(tokens["first_session"]) + next(_sessions) % SESSIONS
    body = {"session_id": session_id, "client_event_id": name}
    return "/api/v1/study/checkins", body, tokens["member"]


# (kind, request builder, SQL returning the names that were written)
WRITES = {
    "org": (_org, "SELECT name FROM organizations"),
    "order": (_order, "SELECT title AS name FROM service_orders"),
    "checkin": (_checkin, "SELECT client_event_id AS name FROM credit_ledger"),
}


async def _writer(
    client: httpx.AsyncClient,
    n: int,
    tokens: dict[str, str],
    stop: asyncio.Event,
    results: list[tuple[str, str, int, float, httpx.Response | None]],
) -> None:
    i = 0
    kinds = list(WRITES)
    while not stop.is_set():
        i += 1
        kind = kinds[(n + i) % len(kinds)]
        name = f"restart-{kind}-{n}-{i}"
        path, body, token = WRITES[kind][0](tokens, name)
        started = time.monotonic()
        try:
            response = await client.post(
                path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            results.append((kind, name, response.status_code, started, response))
        except httpx.TimeoutException:
            results.append((kind, name, -1, started, None))
        await asyncio.sleep(0.01)


async def test_writes_survive_a_database_restart() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="branchlink-restart-"))
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp))
    url = embedded.start(tmp, database="restart", cleanup_mode="delete")
    try:
        await asyncio.to_thread(run_alembic, url, "upgrade", "head")
        tokens = await _seed(url)
        results: list[tuple[str, str, int, float, httpx.Response | None]] = []
        restart_window: dict[str, float] = {}
        with live_server(url, {"APP_DB_POOL_TIMEOUT_S": "2"}) as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                stop = asyncio.Event()
                writers = [
                    asyncio.create_task(_writer(client, n, tokens, stop, results))
                    for n in range(WRITERS)
                ]
                await asyncio.sleep(1.5)

                def _restart() -> None:
                    restart_window["down"] = time.monotonic()
                    embedded.restart(tmp, pause_s=OUTAGE_S)
                    restart_window["up"] = time.monotonic()

                await asyncio.to_thread(_restart)  # the writers keep going meanwhile
                await asyncio.sleep(4)
                stop.set()
                await asyncio.gather(*writers)

        ok = [r for r in results if 200 <= r[2] < 300]
        failed = [r for r in results if not 200 <= r[2] < 300]
        assert ok and failed, (
            f"the restart should have been felt: {len(ok)} ok, {len(failed)} failed"
        )
        server_log = live_server.last_log  # type: ignore[attr-defined]
        errors = [line for line in server_log.splitlines() if '"level": "error"' in line]
        for kind, _name, status, _, response in failed:
            assert status == 503, f"{kind}: expected 503 during the outage, got {status}: {errors}"
            assert response is not None
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers.get("retry-after")
        # Recovery: the first success after the database was back, within seconds.
        after = [r for r in ok if r[3] >= restart_window["up"]]
        assert {r[0] for r in after} == set(WRITES), "every kind of write works again"
        recovery = min(r[3] for r in after) - restart_window["up"]
        assert recovery < 5, f"recovered only after {recovery:.1f}s"
        # Every acknowledged write is in the database.
        conn = await asyncpg.connect(url)
        try:
            written = {
                kind: {r["name"] for r in await conn.fetch(sql)}
                for kind, (_, sql) in WRITES.items()
            }
        finally:
            await conn.close()
        missing = [r[1] for r in ok if r[1] not in written[r[0]]]
        assert not missing, f"acknowledged writes lost: {missing[:5]}"
        print(
            f"restart: {len(ok)} acknowledged writes kept, {len(failed)} answered 503, "
            f"recovered {recovery:.2f}s after the database came back"
        )
    finally:
        embedded.stop(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
