"""The driver pool: asyncpg connections for statements that run without a session.

What :data:`app.core.db.ReaderDep` hands out (``request.app.state.driver_pool``), and
where the check-in batcher (app/study/batching.py) runs its shared statements.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from app.core.config import Settings
from app.core.db import connect_args, is_database_unavailable, to_driver_url


class DriverPool:
    """Connections for statements that run without a session, beside SQLAlchemy's pool.

    Its statements run in autocommit, one statement each, so they must be atomic on
    their own. Waiting longer than ``db_pool_timeout_s`` for a connection raises
    ``TimeoutError`` (503 with Retry-After, as for the engine's pool). Connections open
    on demand up to ``db_driver_pool_size``; one that broke (database restart), was
    cancelled mid-statement or was left in a transaction is closed when it comes back,
    and its place is opened anew for the next caller; one idle for five minutes is
    closed.

    Its own small pool rather than ``asyncpg.Pool``: a checkout there is two tasks and
    two timeouts (``wait_for`` on acquire, ``shield`` on release, ~30 µs of CPU, a
    tenth of ``GET /me``); here it is a list pop and push, and only a caller that has
    to wait arms a timeout. Releasing runs no reset query: the code on this pool sets no
    session state, listens to nothing and holds no cursors or advisory locks.

    Its connections plan generically (``plan_cache_mode``): its statements are written
    for that (key lookups), and the batched check-in takes arrays whose length the
    planner cannot know, so with custom plans it would be planned anew on every call,
    which costs more than running it.
    """

    IDLE_S = 300.0  # an idle connection is closed after this long

    def __init__(self, url: str, options: dict[str, Any], size: int, timeout_s: float) -> None:
        self._url = url
        self._options = options
        self._size = size
        self._timeout_s = timeout_s
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # (connection, idle since)
        self._opened = 0  # connections open, being opened, or promised to a waiter
        # A waiter gets a connection, or None: "a place is free, open one".
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closing: set[asyncio.Task[None]] = set()
        self._trim: asyncio.TimerHandle | None = None  # closes what stayed idle too long
        self._closed = False

    @classmethod
    async def open(cls, settings: Settings, url: str) -> DriverPool:
        options = connect_args(settings)
        if not settings.db_pgbouncer:  # behind it statements are unnamed: planned each time
            options["server_settings"] = {
                **options["server_settings"],
                "plan_cache_mode": "force_generic_plan",
            }
        return cls(
            to_driver_url(url), options, settings.db_driver_pool_size, settings.db_pool_timeout_s
        )

    def connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return _Checkout(self)

    async def acquire(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.exceptions.InterfaceError("the driver pool is closed")
        while self._idle:
            conn, _ = self._idle.pop()  # the most recently used: warm caches
            if not conn.is_closed():
                return conn
            self._opened -= 1
        if self._opened < self._size:
            self._opened += 1
            return await self._connect()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[asyncpg.Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        # A bare timer (a busy pool has most callers waiting: asyncio.timeout() costs
        # several times as much per wait).
        timer = loop.call_at(loop.time() + self._timeout_s, _give_up, waiter)
        try:
            conn = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._pass_on(waiter.result())  # handed over as we gave up: not ours
            else:
                waiter.cancel()
            raise
        finally:
            timer.cancel()
        return conn if conn is not None else await self._connect()

    def release(self, conn: asyncpg.Connection, *, broken: bool = False) -> None:
        if broken or self._closed or conn.is_closed() or conn.is_in_transaction():
            conn.terminate()
            self._pass_on(None)
            return
        self._pass_on(conn)

    def _pass_on(self, conn: asyncpg.Connection | None) -> None:
        """A connection (or, None, the place of one that closed) to the first caller
        still waiting, else back to the idle list (or the place freed)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            self._opened -= 1
            return
        now = time.monotonic()
        self._idle.append((conn, now))
        if self._idle[0][1] < now - self.IDLE_S:
            self._close_idle(now - self.IDLE_S)
        if self._trim is None:  # and, should the traffic stop, a timer does it
            self._trim = asyncio.get_running_loop().call_later(self.IDLE_S, self._trim_idle)

    def _trim_idle(self) -> None:
        self._trim = None
        if self._closed:
            return
        now = time.monotonic()
        self._close_idle(now - self.IDLE_S)
        if self._idle:  # again when the oldest left has been idle long enough
            wait = self._idle[0][1] + self.IDLE_S - now
            self._trim = asyncio.get_running_loop().call_later(max(wait, 0.01), self._trim_idle)

    def _close_idle(self, before: float) -> None:
        while self._idle and self._idle[0][1] < before:
            conn, _ = self._idle.pop(0)
            self._opened -= 1
            task = asyncio.get_running_loop().create_task(_close_quietly(conn))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _connect(self) -> asyncpg.Connection:
        """Open a connection in a place already counted in ``_opened``."""
        try:
            conn: asyncpg.Connection = await asyncpg.connect(self._url, **self._options)
        except BaseException:
            self._pass_on(None)
            raise
        return conn

    async def close(self) -> None:
        """Close the idle connections; those in use close when they come back."""
        self._closed = True
        if self._trim is not None:
            self._trim.cancel()
            self._trim = None
        idle, self._idle = self._idle, []
        self._opened -= len(idle)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.exceptions.InterfaceError("the driver pool is closed"))
        self._waiters.clear()
        await asyncio.gather(*(_close_quietly(conn) for conn, _ in idle), *self._closing)


def _give_up(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no database connection became free in time"))


async def _close_quietly(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=2)
    except Exception:  # a connection that broke meanwhile is done with too
        conn.terminate()


class _Checkout:
    """``async with``: a pooled connection; closed rather than reused after a break."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: DriverPool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        conn = self._conn = await self._pool.acquire()
        return conn

    async def __aexit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # A statement PostgreSQL refused leaves the connection as it was; anything else
        # (a restart, a cancellation mid-protocol, a timeout) may not have: closed.
        broken = error is not None and (
            not isinstance(error, asyncpg.PostgresError) or is_database_unavailable(error)
        )
        self._pool.release(conn, broken=broken)
