"""Engine, sessions and the one-transaction-per-request dependency.

Services ``flush()``; only :func:`get_session` commits, after the endpoint returned and
before the response is sent, so a failed commit can never hide behind a 2xx.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import MetaData, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.core.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def to_async_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


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
        "connect_args": {
            "timeout": 5,
            "command_timeout": settings.db_statement_timeout_ms / 1000 + 5,
            "server_settings": {
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "idle_in_transaction_session_timeout": "60000",
                "application_name": "branchlink",
                "timezone": "UTC",
            },
        },
    }
    options.update(overrides)
    return create_async_engine(to_async_url(url), **options)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# Errors that mean "the database is not reachable right now" rather than a bug: the
# request gets 503 with Retry-After instead of a 500.
_UNAVAILABLE_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.QueryCanceledError,
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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit when the endpoint returns, roll back on error."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# ``scope="function"``: the commit runs right after the endpoint returns, before the
# response is sent, so a failing commit turns into an error response.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
