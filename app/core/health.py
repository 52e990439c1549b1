"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import service_unavailable

router = APIRouter(tags=["service"])

POOL_IN_USE = Gauge("db_pool_connections_in_use", "Database connections checked out")
POOL_SIZE = Gauge("db_pool_size", "Database pool size")


class Health(BaseModel):
    status: str


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
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
