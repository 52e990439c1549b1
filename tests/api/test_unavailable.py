"""A database that cannot serve the request is a 503 problem with ``Retry-After``
(``app/core/middleware.py`` answers through ``service_unavailable()``), never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import get_session
from tests import factories
from tests.conftest import problem


async def test_pool_exhausted_is_503_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await factories.admin_actor(db, settings, await factories.org(db))

    async def exhausted() -> AsyncIterator[AsyncSession]:
        raise exc.TimeoutError("QueuePool limit reached, connection timed out")
        yield db  # pragma: no cover - a generator dependency, as the real one

    app.dependency_overrides[get_session] = exhausted
    response = await client.get("/api/v1/audit", headers=admin.headers)
    body = problem(response, 503, "service.unavailable")
    assert response.headers["Retry-After"] == "2"
    assert body["detail"] == "服务暂时不可用，请稍后重试"
