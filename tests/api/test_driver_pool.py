"""The driver pool (app/core/db.py ``DriverPool``) on the test server: reuse, the size
bound and its timeout, waiters served in turn, and what comes back broken is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.core.config import Settings
from app.core.db import is_database_unavailable
from app.core.driver_pool import DriverPool


@pytest.fixture
async def small(settings: Settings) -> AsyncIterator[DriverPool]:
    """Two connections at most; waiting for one gives up after 0.3 s."""
    assert settings.database_url
    two = settings.model_copy(update={"db_driver_pool_size": 2, "db_pool_timeout_s": 0.3})
    pool = await DriverPool.open(two, settings.database_url)
    try:
        yield pool
    finally:
        await pool.close()


async def _backend(conn: asyncpg.Connection) -> int:
    pid: int = await conn.fetchval("SELECT pg_backend_pid()")
    return pid


async def test_a_connection_is_reused_and_the_pool_stays_within_its_size(
    small: DriverPool,
) -> None:
    async with small.connection() as conn:
        first = await _backend(conn)
    async with small.connection() as conn:
        assert await _backend(conn) == first  # the one just released, not a new one
    async with small.connection() as a, small.connection() as b:
        assert {await _backend(a), await _backend(b)} >= {first}
        with pytest.raises(TimeoutError) as waited:
            async with small.connection():
                pass
    assert is_database_unavailable(waited.value)  # 503 with Retry-After
    async with small.connection() as conn:  # the timed-out waiter left nothing behind
        assert await conn.fetchval("SELECT 1") == 1


async def test_waiters_get_connections_in_turn(small: DriverPool) -> None:
    order: list[int] = []

    async def query(n: int) -> None:
        async with small.connection() as conn:
            await conn.fetchval("SELECT pg_sleep(0.05)")
            order.append(n)

    await asyncio.gather(*(query(n) for n in range(8)))  # 8 callers, 2 connections
    assert sorted(order) == list(range(8))
    pids = set()
    for _ in range(3):
        async with small.connection() as conn:
            pids.add(await _backend(conn))
    assert len(pids) == 1


async def test_a_refused_statement_keeps_the_connection(small: DriverPool) -> None:
    async with small.connection() as conn:
        first = await _backend(conn)
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with small.connection() as conn:
            await conn.fetchval("SELECT 1 / 0")
    async with small.connection() as conn:
        assert await _backend(conn) == first


async def test_a_cancelled_statement_closes_the_connection(small: DriverPool) -> None:
    async with small.connection() as conn:
        first = await _backend(conn)

    async def slow() -> None:
        async with small.connection() as conn:
            await conn.fetchval("SELECT pg_sleep(5)")

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with small.connection() as conn:
        assert await _backend(conn) != first  # a new connection in its place
        assert await conn.fetchval("SELECT 1") == 1


async def test_a_connection_left_in_a_transaction_is_closed(small: DriverPool) -> None:
    async with small.connection() as conn:
        first = await _backend(conn)
        await conn.execute("BEGIN")
        await conn.execute("CREATE TEMP TABLE left_open (x int)")
    async with small.connection() as conn:
        assert await _backend(conn) != first
        assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open')") is None


async def test_idle_connections_close_after_a_while(
    small: DriverPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with small.connection() as a, small.connection() as b:
        old = {await _backend(a), await _backend(b)}
    monkeypatch.setattr(DriverPool, "IDLE_S", 0.1)
    await asyncio.sleep(0.2)
    async with small.connection():  # the newer of the two, still idle-listed
        pass
    await asyncio.sleep(0.05)  # its release closed the one idle too long
    async with small.connection() as a, small.connection() as b:
        now = {await _backend(a), await _backend(b)}
    assert len(now & old) == 1


async def test_idle_connections_close_when_the_traffic_stops(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.database_url
    monkeypatch.setattr(DriverPool, "IDLE_S", 0.2)
    pool = await DriverPool.open(settings, settings.database_url)
    try:
        async with pool.connection() as a, pool.connection() as b:
            pass
        assert not a.is_closed() and not b.is_closed()
        for _ in range(50):  # no request comes: the timer closes them
            await asyncio.sleep(0.05)
            if a.is_closed() and b.is_closed():
                break
        assert a.is_closed() and b.is_closed()
        async with pool.connection() as conn:  # and the pool opens anew
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_a_closed_pool_refuses_and_closes_what_comes_back(settings: Settings) -> None:
    assert settings.database_url
    pool = await DriverPool.open(settings, settings.database_url)
    async with pool.connection() as conn:
        await pool.close()
    assert conn.is_closed()
    with pytest.raises(asyncpg.InterfaceError):
        async with pool.connection():
            pass
