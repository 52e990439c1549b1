"""The service skeleton: health, problem+json for every error, limits, transactions."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import SessionDep
from app.core.errors import AppError
from app.organization.models import Organization
from tests.conftest import problem, run_alembic


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-content-type-options"] == "nosniff"


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    problem(await client.get("/api/v1/nope"), 404, "http.not_found")


async def test_wrong_method_is_problem_json(client: httpx.AsyncClient) -> None:
    problem(await client.delete("/healthz"), 405, "http.method_not_allowed")


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    body = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/healthz",status="200"}' in body
    assert "db_pool_connections_in_use" in body


def _probe_router() -> APIRouter:
    router = APIRouter()

    @router.post("/_probe/echo")
    async def echo(payload: dict[str, int]) -> dict[str, int]:
        return payload

    @router.get("/_probe/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals 440301199001011234")

    @router.post("/_probe/write-then-fail-commit")
    async def write_then_fail(session: SessionDep) -> dict[str, str]:
        # A deferred constraint violation surfaces only at COMMIT.
        await session.execute(
            text(
                "CREATE TEMP TABLE IF NOT EXISTS probe_deferred (id int PRIMARY KEY, "
                "ref int REFERENCES probe_deferred(id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        await session.execute(text("INSERT INTO probe_deferred VALUES (1, 999)"))
        return {"status": "pretend-ok"}

    @router.post("/_probe/app-error")
    async def app_error() -> None:
        raise AppError("probe.failed", 409, "示例错误")

    return router


@pytest.fixture
def probe_app(app: FastAPI) -> FastAPI:
    app.include_router(_probe_router())
    return app


async def test_malformed_json_is_400(client: httpx.AsyncClient, probe_app: FastAPI) -> None:
    response = await client.post(
        "/_probe/echo", content=b"{not json", headers={"content-type": "application/json"}
    )
    problem(response, 400, "request.malformed_json")


async def test_validation_error_lists_fields(client: httpx.AsyncClient, probe_app: FastAPI) -> None:
    body = problem(await client.post("/_probe/echo", json={"a": "x"}), 422, "validation.failed")
    assert body["errors"][0]["field"] == "a"
    assert body["errors"][0]["message"] == "应为整数"


async def test_crash_is_500_problem_without_internals(
    client: httpx.AsyncClient, probe_app: FastAPI
) -> None:
    response = await client.get("/_probe/crash")
    body = problem(response, 500, "internal.error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] in body["detail"]


async def test_app_error_shape(client: httpx.AsyncClient, probe_app: FastAPI) -> None:
    body = problem(await client.post("/_probe/app-error"), 409, "probe.failed")
    assert body["type"].endswith("/probe.failed")
    assert body["title"] == "Conflict"


async def test_json_body_over_1_mib_is_413(client: httpx.AsyncClient, probe_app: FastAPI) -> None:
    big = b'{"a": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.post(
        "/_probe/echo", content=big, headers={"content-type": "application/json"}
    )
    problem(response, 413, "request.too_large")


async def test_chunked_body_over_limit_is_413(
    client: httpx.AsyncClient, probe_app: FastAPI
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536

    response = await client.post(
        "/_probe/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    problem(response, 413, "request.too_large")


async def test_failing_commit_is_not_2xx(
    committing_client: httpx.AsyncClient, committing_app: FastAPI
) -> None:
    committing_app.include_router(_probe_router())
    response = await committing_client.post("/_probe/write-then-fail-commit")
    assert response.status_code >= 400
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_one_transaction_per_request_rolls_back_on_error(
    committing_client: httpx.AsyncClient, committing_app: FastAPI, engine: object
) -> None:
    router = APIRouter()

    @router.post("/_probe/write-then-raise")
    async def write_then_raise(session: SessionDep) -> None:
        session.add(Organization(id=990001, name="回滚", kind="committee", path="/990001/"))
        await session.flush()
        raise AppError("probe.failed", 409, "示例错误")

    committing_app.include_router(router)
    problem(await committing_client.post("/_probe/write-then-raise"), 409, "probe.failed")
    from sqlalchemy.ext.asyncio import AsyncEngine

    assert isinstance(engine, AsyncEngine)
    async with AsyncSession(engine) as s:
        assert (
            await s.execute(select(Organization).where(Organization.id == 990001))
        ).first() is None


def test_migrations_downgrade_to_base_and_back(migrated_url: str) -> None:
    run_alembic(migrated_url, "downgrade", "base")
    run_alembic(migrated_url, "upgrade", "head")
    run_alembic(migrated_url, "check")
