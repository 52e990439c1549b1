"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import FastAPI, Request, Response
from prometheus_client import Gauge
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import metrics
from app.core.config import Settings
from app.core.errors import AppError, service_unavailable
from app.core.routing import DomainRouter

router = DomainRouter(tags=["service"])  # before every other: it declines in a glance

# "livesum": with several uvicorn workers (PROMETHEUS_MULTIPROC_DIR set) a scrape adds
# up the values of the live processes; each process keeps its own value current
# (sample_pools), and the files of dead processes are dropped before a scrape.
POOL_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Database connections checked out",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge("db_pool_size", "Database pool size", multiprocess_mode="livesum")
POOL_SAMPLE_INTERVAL_S = 2.0


def _sample_pools(app: FastAPI) -> None:
    engine: AsyncEngine | None = app.state.engine
    if engine is None:
        return
    pool = engine.pool
    checked_out = getattr(pool, "checkedout", None)
    size = getattr(pool, "size", None)
    if checked_out is not None and size is not None:
        POOL_IN_USE.set(checked_out())
        POOL_SIZE.set(size())


async def sample_pools(app: FastAPI) -> None:
    """This process's pool gauges, kept current while it serves (a lifespan task)."""
    while True:
        metrics.record("db_pool", lambda: _sample_pools(app))
        await asyncio.sleep(POOL_SAMPLE_INTERVAL_S)


@contextlib.asynccontextmanager
async def pool_sampling(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(sample_pools(app), name="pool-metrics")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        metrics.leave()


class Health(BaseModel):
    status: Literal["ok", "ready"]


@router.get("/healthz", response_model=Health, summary="存活检查")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, summary="就绪检查（数据库往返）")
async def readyz(request: Request) -> Health:
    engine: AsyncEngine = request.app.state.engine
    try:
        async with asyncio.timeout(2):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as error:
        raise service_unavailable("数据库暂不可用") from error
    return Health(status="ready")


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus exposition. In prod only with ``Authorization: Bearer
    <APP_METRICS_TOKEN>`` (absent without a token: use ``APP_METRICS_PORT``); elsewhere
    the token is checked when one is set."""
    settings: Settings = request.app.state.settings
    if not settings.metrics_on_api_port:
        raise AppError("http.not_found", 404, "请求的资源不存在")
    if settings.metrics_token and not metrics.bearer_matches(
        request.headers.get("authorization"), settings.metrics_token
    ):
        raise AppError(
            "metrics.unauthorized",
            401,
            "需要监控令牌",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    metrics.record("db_pool", lambda: _sample_pools(request.app))
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
