"""Engine, sessions, the one-transaction-per-request dependency, and the driver pool.

Services ``flush()``; only :func:`get_session` commits, after the endpoint returned and
before the response is sent, so a failed commit can never hide behind a 2xx.

The driver pool hands out plain asyncpg connections for the statements of the hot
paths (the shared check-in award, the member-facing reads): one SQLAlchemy session per
request costs more CPU than the whole statement does in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import asyncpg
import structlog
from fastapi import Depends, Request
from sqlalchemy import MetaData, TextClause, exc, text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.core.config import Settings

log = structlog.stdlib.get_logger("app.core.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# The PostgreSQL advisory lock ``alembic upgrade`` holds (alembic/env.py): replicas that
# start together migrate one after another, and the later ones find nothing left to do.
MIGRATION_LOCK_KEY = 0x6272_616E_6368  # "branch"


def to_async_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def to_driver_url(url: str) -> str:
    """The same URL for asyncpg itself (``postgresql://``)."""
    return "postgresql://" + to_async_url(url).removeprefix("postgresql+asyncpg://")


def connect_args(settings: Settings, *, pooled: bool = True) -> dict[str, Any]:
    """asyncpg connection options of every connection, pooled by SQLAlchemy or not.

    ``pooled=False``: a connection straight to PostgreSQL (the direct URL, the replica)
    even when the pools go through PgBouncer."""
    server_settings = {"application_name": "branchlink", "timezone": "UTC"}
    if not (settings.db_pgbouncer and pooled):
        server_settings = {
            "statement_timeout": str(settings.db_statement_timeout_ms),
            "idle_in_transaction_session_timeout": "60000",
            **server_settings,
        }
    options: dict[str, Any] = {
        "timeout": 5,
        "command_timeout": settings.db_statement_timeout_ms / 1000 + 5,
        "server_settings": server_settings,
    }
    if settings.db_pgbouncer and pooled:
        # PgBouncer 1.18 refuses startup parameters it does not track (the two timeouts
        # above: set them on the role, or in its connect_query) and shares server
        # connections between transactions, so a named statement could be missing or
        # taken on the next one: no statement cache, unnamed statements only.
        options["statement_cache_size"] = 0
    return options


def pgbouncer_dialect_args(settings: Settings) -> dict[str, Any]:
    """SQLAlchemy's asyncpg adapter behind PgBouncer: no statement cache of its own, and
    the unnamed statement (``""``) instead of ``__asyncpg_stmt_N__`` names, which
    collide between clients on one server connection and pile up there. Its statements
    run inside the session's transaction, so preparing and executing one stays on one
    server connection."""
    if not settings.db_pgbouncer:
        return {}
    return {"prepared_statement_cache_size": 0, "prepared_statement_name_func": _unnamed}


def _unnamed() -> str:
    return ""


def direct_url(settings: Settings, url: str) -> str:
    """Where session-level features go (LISTEN, migrations): never through PgBouncer."""
    return settings.database_direct_url or url


def create_engine(settings: Settings, url: str, **overrides: Any) -> AsyncEngine:
    options: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_s,
        # No pre-ping: it costs a round trip on every checkout. A dead connection is
        # detected on use (503 for that request) and SQLAlchemy then invalidates the whole
        # pool, so after a database restart the app recovers on its own.
        "pool_pre_ping": False,
        "pool_recycle": 1800,
        "connect_args": {**connect_args(settings), **pgbouncer_dialect_args(settings)},
    }
    options.update(overrides)
    return create_async_engine(to_async_url(url), **options)


# The driver pool


class ConnectionSource(Protocol):
    """Where hot endpoints get an asyncpg connection (tests bind it to their transaction)."""

    def connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]: ...

    async def close(self) -> None: ...


async def driver_source(request: Request) -> ConnectionSource:
    source: ConnectionSource = request.app.state.driver_pool
    return source


class InTransaction:
    """A :class:`ConnectionSource` over a session's own connection: a driver statement
    runs inside the request's transaction (beside an Idempotency-Key's row, say)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        yield await driver_connection(self._session)

    async def close(self) -> None:
        return None


# Reads of the hot paths: one statement (DriverStatement.read_row / read_rows) on the
# driver pool, no SQLAlchemy session, no BEGIN/COMMIT round trips around it.
ReaderDep = Annotated[ConnectionSource, Depends(driver_source)]


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under ``session``, inside the session's transaction.

    For statements shared with the driver pool's endpoints (one SQL text, one way to
    run it). SQLAlchemy's asyncpg adapter sends BEGIN with its first statement, so a
    session that has not run one yet runs a trivial one first.
    """
    conn = await session.connection()
    driver: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
    if not driver.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    return driver


_record_item = asyncpg.Record.__getitem__
_object_attribute = object.__getattribute__


class Row(asyncpg.Record):  # type: ignore[misc]
    """A driver row that also reads as attributes (``row.status``), so the views that
    shape responses take it where they take a model instance.

    Columns are looked up first (``__getattribute__``, ~0.2 µs): through ``__getattr__``
    every access first failed the ordinary lookup and built an AttributeError (~0.75 µs,
    a fifth of a 9-row page of orders). The record's own methods (``get``, ``keys``...)
    are found after the column lookup misses."""

    def __getattribute__(self, name: str) -> Any:
        try:
            return _record_item(self, name)
        except KeyError:
            return _object_attribute(self, name)


_DRIVER_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class DriverStatement:
    """A ``text()`` statement compiled once for asyncpg: ``$n`` placeholders and the
    order of its named parameters (a name used twice is one placeholder)."""

    sql: str
    names: tuple[str, ...]

    @classmethod
    def of(cls, statement: TextClause) -> DriverStatement:
        compiled = statement.compile(dialect=_DRIVER_DIALECT)
        return cls(str(compiled), tuple(compiled.positiontup or ()))

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]

    async def fetchrow(self, conn: asyncpg.Connection, **params: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(self.sql, *self.args(params))
        return row

    async def fetch(self, conn: asyncpg.Connection, **params: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await conn.fetch(self.sql, *self.args(params))
        return rows

    async def read_row(self, source: ConnectionSource, **params: Any) -> Row | None:
        """One round trip on a driver-pool connection (autocommit): the whole read."""
        async with source.connection() as conn:
            row: Row | None = await conn.fetchrow(self.sql, *self.args(params), record_class=Row)
        return row

    async def read_rows(self, source: ConnectionSource, **params: Any) -> list[Row]:
        async with source.connection() as conn:
            rows: list[Row] = await conn.fetch(self.sql, *self.args(params), record_class=Row)
        return rows


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# Errors that mean "the database is not reachable right now" rather than a bug: the
# request gets 503 with Retry-After instead of a 500.
_UNAVAILABLE_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    # SQLSTATE classes 08 (connection exception: refused, broken, rejected...) and 57
    # (operator intervention: shutdown, crash, cannot connect now, cancelled).
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    # A pooled connection cut off mid-protocol by a restart ("another operation is in
    # progress"); the driver pool closes it (see _Checkout), the next request reconnects.
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 6:
        chain.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return chain


def is_invalid_input(error: BaseException) -> bool:
    """A value the database cannot take (an id beyond bigint, a year 0 timestamp...).

    Request models should reject these first; this keeps any that slip through a 422
    instead of a 500. Client-side asyncpg encoding errors and SQLSTATE class 22.
    """
    for cause in _causes(error):
        if isinstance(cause, asyncpg.exceptions._base.DataError):
            return True
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            return True
        if isinstance(cause, OverflowError):
            return True
    return False


def is_database_unavailable(error: BaseException) -> bool:
    if isinstance(error, exc.TimeoutError):  # pool exhausted
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        orig = getattr(error.orig, "__cause__", None) or error.orig
        return isinstance(orig, _UNAVAILABLE_DRIVER_ERRORS) or isinstance(
            error.orig, _UNAVAILABLE_DRIVER_ERRORS
        )
    if isinstance(error, exc.InterfaceError | exc.OperationalError):
        return True
    return isinstance(error, _UNAVAILABLE_DRIVER_ERRORS)


async def keep_after_rollback(session: AsyncSession, error: BaseException) -> bool:
    """After a failed request's rollback, write what its error must leave behind (the
    audit entry of a refused attempt). True if there was something to write."""
    write = getattr(error, "after_rollback", None)
    if write is None:
        return False
    await write(session)
    return True


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit when the endpoint returns, roll back on error
    (keeping only what the error asks to keep, see :func:`keep_after_rollback`)."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
        except BaseException as error:
            await session.rollback()
            if await keep_after_rollback(session, error):
                await session.commit()
            raise
        else:
            if session.in_transaction() or session.new or session.dirty or session.deleted:
                await session.commit()
            # else: the request never used its session (a check-in without key, say):
            # nothing to commit, and no round trip or greenlet hop for it.


# ``scope="function"``: the commit runs right after the endpoint returns, before the
# response is sent, so a failing commit turns into an error response.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


class SessionOnDemand:
    """The request's session, opened only by a request that needs one: ``get_session``
    (or the app's override of it, as FastAPI would resolve it) run as a context manager,
    so it commits when the block ends and rolls back on an error, as ``SessionDep``
    does when the endpoint returns. For an endpoint on a plain route
    (app/core/routing.py resolves no generator dependency) whose hot case reads on the
    driver pool and whose other cases need the session (``GET /orders``)."""

    def __init__(self, request: Request) -> None:
        self._request = request

    def open(self) -> AbstractAsyncContextManager[AsyncSession]:
        provide = self._request.app.dependency_overrides.get(get_session, get_session)
        takes_request = "request" in inspect.signature(provide).parameters
        session = asynccontextmanager(provide)
        return session(self._request) if takes_request else session()


async def session_on_demand(request: Request) -> SessionOnDemand:
    return SessionOnDemand(request)


SessionOnDemandDep = Annotated[SessionOnDemand, Depends(session_on_demand)]


# The streaming replica


# Seconds behind the primary: 0 when it has replayed all it received (or is no standby
# at all), else the age of the last transaction it replayed. Conservative: after a quiet
# spell the first WAL not yet replayed looks as old as the quiet spell.
_REPLICA_LAG = text(
    "SELECT CASE"
    " WHEN NOT pg_is_in_recovery() THEN 0"
    " WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0"
    " ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 1e9)"
    " END::float8"
)
# Has this transaction written anything (it has a transaction id only once it does)?
_WROTE = text("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")


class Replica:
    """A streaming replica for ledgers, statistics and leaderboards
    (``APP_DATABASE_REPLICA_URL``), trusted while its replay lags at most
    ``replica_max_lag_s``: measured at most once per ``LAG_CHECK_S`` per process; down or
    behind, reads go to the primary until the next measurement says otherwise."""

    LAG_CHECK_S = 1.0

    def __init__(self, engine: AsyncEngine, max_lag_s: float) -> None:
        self.engine = engine
        self.sessionmaker = make_sessionmaker(engine)
        # Its driver pool, for one-statement heavy reads (ReplicaReaderDep); the
        # lifespan opens it (app/core/driver_pool.py).
        self.driver: ConnectionSource | None = None
        self.max_lag_s = max_lag_s
        self.served = 0  # reads the replica answered
        self.fallbacks = 0  # reads sent to the primary because it lagged or was down
        self._fresh = False
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    @classmethod
    def open(cls, settings: Settings) -> Replica | None:
        if not settings.database_replica_url:
            return None
        engine = create_engine(settings, settings.database_replica_url)
        return cls(engine, settings.replica_max_lag_s)

    async def fresh(self) -> bool:
        if time.monotonic() - self._checked_at < self.LAG_CHECK_S:
            return self._fresh
        async with self._lock:
            if time.monotonic() - self._checked_at >= self.LAG_CHECK_S:
                self._fresh = await self._measure()
                self._checked_at = time.monotonic()
        return self._fresh

    async def _measure(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                lag = (await conn.execute(_REPLICA_LAG)).scalar_one()
        except Exception as error:  # down, refusing us, misconfigured: the primary answers
            log.warning("replica unavailable: reads go to the primary", error=type(error).__name__)
            return False
        if lag > self.max_lag_s:
            log.warning("replica lags: reads go to the primary", lag_s=round(lag, 1))
            return False
        return True

    async def close(self) -> None:
        if self.driver is not None:
            await self.driver.close()
        await self.engine.dispose()


async def _has_written(session: AsyncSession) -> bool:
    if session.new or session.dirty or session.deleted:
        return True
    if not session.in_transaction():
        return False
    return bool((await session.execute(_WROTE)).scalar_one())


async def get_read_session(request: Request, primary: SessionDep) -> AsyncIterator[AsyncSession]:
    """The session for a heavy read (ledger page, statistics, leaderboard): the replica
    when one is configured and fresh and this request has written nothing yet, else the
    request's own session on the primary. A member's own reads do not use this."""
    replica: Replica | None = getattr(request.app.state, "replica", None)
    if replica is None or await _has_written(primary):
        yield primary
        return
    if not await replica.fresh():
        replica.fallbacks += 1
        yield primary
        return
    replica.served += 1
    async with replica.sessionmaker() as session:  # read only: rolled back when closed
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


async def replica_source(request: Request) -> ConnectionSource:
    """Where a heavy read of one statement runs (the admin ledger page): the replica's
    driver pool when one is configured and fresh, else the primary's. Unlike
    :func:`get_read_session` there is nothing to check for writes: a request served by
    one autocommit statement has written nothing before it."""
    primary: ConnectionSource = request.app.state.driver_pool
    replica: Replica | None = getattr(request.app.state, "replica", None)
    if replica is None or replica.driver is None:
        return primary
    if not await replica.fresh():
        replica.fallbacks += 1
        return primary
    replica.served += 1
    return replica.driver


ReplicaReaderDep = Annotated[ConnectionSource, Depends(replica_source)]
