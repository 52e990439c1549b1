"""``Idempotency-Key`` for writes a flaky mobile network may repeat.

The key row is inserted in the request's own transaction, so:

* the first request's response is stored atomically with its effects;
* a concurrent duplicate blocks on the unique index until the first commits, then
  replays its response (or proceeds if the first rolled back);
* the same key with another body is 422 ``idempotency.key_reused``.

Keys are scoped by caller and route and kept 24 h (a worker job purges older ones).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from sqlalchemy import DateTime, Integer, LargeBinary, String, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.responses import Response

from app.core.db import Base, ConnectionSource, InTransaction, SessionDep
from app.core.errors import AppError
from app.core.responses import model_response
from app.core.routing import PLAIN_SUBSTITUTES

RETENTION = "24 hours"


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[Any | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


def key_reused() -> AppError:
    return AppError(
        "idempotency.key_reused", 422, "同一个幂等键已用于不同的请求内容，请换一个新的幂等键"
    )


class Idempotency:
    """Per-request handle. ``run()`` replays a stored response or runs and stores."""

    def __init__(self, session: AsyncSession, scope: str, key: str | None, body: bytes) -> None:
        self.session = session
        self.scope = scope
        self.key = key
        self.request_hash = hashlib.sha256(body).digest() if key is not None else b""

    def source(self, reader: ConnectionSource) -> ConnectionSource:
        """Where a one-statement write runs: on ``reader`` (the driver pool, its own
        transaction) without a key, in the request's transaction beside the key's row
        with one."""
        return reader if self.key is None else InTransaction(self.session)

    async def run(
        self, action: Callable[[], Awaitable[Any]], *, status_code: int = 200
    ) -> Response:
        if self.key is None:
            result = await action()
            if isinstance(result, BaseModel):
                return model_response(result, status_code)
            return _json(status_code, jsonable_encoder(result))
        claimed = await self.session.execute(
            insert(IdempotencyKey)
            .values(scope=self.scope, key=self.key, request_hash=self.request_hash)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if claimed.first() is None:
            row = (
                await self.session.execute(
                    select(IdempotencyKey).where(
                        IdempotencyKey.scope == self.scope,
                        IdempotencyKey.key == self.key,
                        IdempotencyKey.created_at > func.now() - text(f"interval '{RETENTION}'"),
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                # Expired entry not yet purged: take it over.
                await self.session.execute(
                    delete(IdempotencyKey).where(
                        IdempotencyKey.scope == self.scope, IdempotencyKey.key == self.key
                    )
                )
                return await self.run(action, status_code=status_code)
            if row.request_hash != self.request_hash:
                raise key_reused()
            replay = _json(row.status_code or 200, row.response)
            replay.headers["Idempotent-Replayed"] = "true"
            return replay
        result = jsonable_encoder(await action())
        await self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.scope == self.scope, IdempotencyKey.key == self.key)
            .values(status_code=status_code, response=result)
        )
        return _json(status_code, result)


def _json(status_code: int, content: Any) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


async def get_idempotency(
    request: Request,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="同一写操作重试时使用相同的键，24 小时内返回首次结果",
        ),
    ] = None,
) -> Idempotency:
    auth = request.headers.get("authorization", "")
    caller = hashlib.sha256(auth.encode()).hexdigest()[:32]
    subject = getattr(request.state, "account_id", None)
    scope = f"{subject or caller}:{request.method}:{request.url.path}"
    body = await request.body()
    return Idempotency(session, scope, idempotency_key, body)


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency, scope="function")]


class _Keyless(Idempotency):
    """The handle of a request without ``Idempotency-Key`` on a plain route
    (app/core/routing.py): it runs the action and stores nothing, so it has no session."""

    def __init__(self) -> None:  # no session: ``session`` is never set, never used
        self.scope = ""
        self.key = None
        self.request_hash = b""


async def _keyless(_request: Request) -> Idempotency:
    return _Keyless()


PLAIN_SUBSTITUTES[get_idempotency] = _keyless


async def purge_expired(session: AsyncSession) -> int:
    result = await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < func.now() - text(f"interval '{RETENTION}'")
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
