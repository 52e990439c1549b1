"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import os
from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    generate_latest,
    multiprocess,
)
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import service_unavailable

router = APIRouter(tags=["service"])

# "livesum": with several uvicorn workers (PROMETHEUS_MULTIPROC_DIR set) the scrape
# adds up the live processes' values.
POOL_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Database connections checked out",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge("db_pool_size", "Database pool size", multiprocess_mode="livesum")


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
async def metrics(request: Request) -> Response:
    pool = request.app.state.engine.pool
    POOL_IN_USE.set(pool.checkedout())
    POOL_SIZE.set(pool.size())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several worker processes: aggregate their files, not just this process.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
