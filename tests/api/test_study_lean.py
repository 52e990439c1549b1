"""The check-in's two data paths answer alike.

One endpoint serves every check-in, through the framework like every route: without
``Idempotency-Key`` the award is shared on the driver pool (app/study/batching.py);
with a key it runs in the request's transaction beside the stored key. Results,
validation errors and auth errors must not depend on which data path served them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.pagination import MAX_ID
from app.study.batching import AwardBatcher
from app.study.models import StudySession
from tests import factories as f
from tests.clock import Clock
from tests.conftest import problem
from tests.support.study import (
    NOON,
    item,
    ledger_points,
    member_id,
    session_at,
)

CHECKINS = "/api/v1/study/checkins"
_keys = itertools.count()


class CountingSource:
    """The test's driver source, counting the connections the shared award takes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.taken = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        self.taken += 1
        async with self.inner.connection() as conn:
            yield conn

    async def close(self) -> None:
        return None


@pytest.fixture
async def source(app: FastAPI) -> CountingSource:
    counting = CountingSource(app.state.driver_pool)
    app.state.driver_pool = counting
    app.state.award_batcher = AwardBatcher(counting)
    # Accounts are kept once the process listens for changes (app/identity/sessions.py).
    async with asyncio.timeout(10):
        while not app.state.sessions.trusted:  # noqa: ASYNC110 - the listener task's state
            await asyncio.sleep(0.01)
    return counting


async def known(client: httpx.AsyncClient, source: CountingSource, actor: f.Actor) -> None:
    """Make the process know ``actor``'s account (read once per token and process, then
    kept: app/identity/sessions.py), and start counting connections afresh."""
    assert (await client.get("/api/v1/me", headers=actor.headers)).status_code == 200
    source.taken = 0


async def _both(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    lean = await client.post(CHECKINS, content=content, headers=headers)
    keyed = {**headers, "Idempotency-Key": f"parity-{next(_keys)}"}
    regular = await client.post(CHECKINS, content=content, headers=keyed)
    return lean, regular


async def _member_with_a_session(
    db: AsyncSession, settings: Settings
) -> tuple[f.Actor, StudySession]:
    """A member and his session of a 1-point article, started five minutes ago."""
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    article = await item(db, branch, min_seconds=0, points=1)
    return member, await session_at(db, member.member, article, NOON - timedelta(minutes=5))


def _comparable(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    body = response.json()
    body.pop("instance", None)
    body.pop("request_id", None)
    return response.status_code, response.headers["content-type"], body


async def test_plain_json_takes_the_lean_path_and_earns_once(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    noon_clock: Clock,
    rules: None,
    source: CountingSource,
) -> None:
    member, one = await _member_with_a_session(db, settings)
    await db.commit()
    await known(client, source, member)
    body = {"session_id": one.id, "client_event_id": "lean-1"}

    lean = await client.post(CHECKINS, json=body, headers=member.headers)
    assert source.taken == 1
    keyed = {**member.headers, "Idempotency-Key": "lean-k"}
    regular = await client.post(CHECKINS, json=body, headers=keyed)
    assert source.taken == 1  # the keyed request went through the session instead
    assert lean.status_code == regular.status_code == 200
    assert lean.headers["content-type"] == regular.headers["content-type"] == "application/json"
    assert lean.json()["replayed"] is False and regular.json() == {**lean.json(), "replayed": True}
    assert await ledger_points(db, member_id(member)) == (1, 1)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b'"x"',
        b"{}",
        b'{"session_id": 1}',
        b'{"session_id": 0, "client_event_id": "a"}',
        f'{{"session_id": {MAX_ID + 1}, "client_event_id": "a"}}'.encode(),
        b'{"session_id": "abc", "client_event_id": "a"}',
        b'{"session_id": 1, "client_event_id": ""}',
        b'{"session_id": 1, "client_event_id": "' + b"x" * 300 + b'"}',
        b'{"session_id": 1, "client_event_id": "a", "points": 99}',
        b'{"session_id": 1.5, "client_event_id": "a"}',
        b'{"session_id": NaN, "client_event_id": "a"}',
        b'{"session_id": 1, "client_event_id": "\xff"}',
        b"[" * 10_000 + b"]" * 10_000,  # nested deeper than the parser recurses
        b'{"session_id": 1, "client_event_id": "a", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    ],
)
async def test_bad_bodies_get_the_same_problem_on_both_paths(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    source: CountingSource,
    content: bytes,
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    await known(client, source, member)
    headers = {**member.headers, "Content-Type": "application/json"}
    lean, regular = await _both(client, content, headers)
    assert lean.status_code in (400, 422), lean.text
    assert _comparable(lean) == _comparable(regular)
    assert source.taken == 0  # rejected before a connection was taken


async def test_json_nested_10000_deep_is_the_same_400_on_both_paths(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, source: CountingSource
) -> None:
    member, study = await _member_with_a_session(db, settings)
    await known(client, source, member)
    deep = b"[" * 10_000 + b"]" * 10_000
    content = b'{"session_id": %d, "client_event_id": "deep", "x": %s}' % (study.id, deep)
    headers = {**member.headers, "Content-Type": "application/json"}
    lean, regular = await _both(client, content, headers)
    assert problem(lean, 400, "request.bad")["detail"] == "请求格式错误"
    assert _comparable(lean) == _comparable(regular)
    assert source.taken == 0
    assert member.member is not None
    assert await ledger_points(db, member.member.id) == (0, 0)


async def test_auth_errors_are_the_same_on_both_paths(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, source: CountingSource
) -> None:
    resident = await f.resident_actor(db, settings)  # signed in, not bound to a member
    await known(client, source, resident)
    content = b'{"session_id": 1, "client_event_id": "a"}'
    json_only = {"Content-Type": "application/json"}
    for headers, status, code in (
        (json_only, 401, "auth.missing_token"),
        ({**json_only, "Authorization": "Bearer not-a-token"}, 401, "auth.invalid_token"),
        ({**json_only, **resident.headers}, 403, "auth.member_required"),
    ):
        lean, regular = await _both(client, content, headers)
        problem(lean, status, code)
        assert _comparable(lean) == _comparable(regular)
    assert source.taken == 0


async def test_other_content_types_take_the_regular_path(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, source: CountingSource
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    await known(client, source, member)
    content = b'{"session_id": 1, "client_event_id": "a"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = await client.post(
            CHECKINS, content=content, headers={**member.headers, "Content-Type": content_type}
        )
        problem(response, 422, "validation.failed")
    # application/json with a charset parameter is still plain JSON: the shared award.
    response = await client.post(
        CHECKINS,
        content=content,
        headers={**member.headers, "Content-Type": "application/json; charset=utf-8"},
    )
    problem(response, 404, "study.session_not_found")
    assert source.taken == 1


async def test_browser_requests_share_the_award_too(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    noon_clock: Clock,
    rules: None,
    source: CountingSource,
) -> None:
    """A request with ``Origin`` is served by the same endpoint and data path (CORS is
    the middleware's, for every request alike)."""
    member, one = await _member_with_a_session(db, settings)
    await known(client, source, member)
    body = {"session_id": one.id, "client_event_id": "from-a-browser"}
    headers = {**member.headers, "Origin": "https://admin.example.org"}
    response = await client.post(CHECKINS, json=body, headers=headers)
    assert response.status_code == 200 and response.json()["points_awarded"] == 1
    assert source.taken == 1
    assert await ledger_points(db, member_id(member)) == (1, 1)


async def test_dependency_overrides_apply_to_plain_requests(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """The plain route resolves the endpoint's dependencies through the app's overrides,
    as FastAPI does for the documented route."""
    from app.core.errors import forbidden
    from app.identity.principal import get_member_principal

    async def nobody() -> None:
        raise forbidden("auth.member_required", "请先绑定党员身份")

    member, one = await _member_with_a_session(db, settings)
    app.dependency_overrides[get_member_principal] = nobody
    try:
        content = b'{"session_id": %d, "client_event_id": "overridden"}' % one.id
        headers = {**member.headers, "Content-Type": "application/json"}
        lean, regular = await _both(client, content, headers)
    finally:
        del app.dependency_overrides[get_member_principal]
    problem(lean, 403, "auth.member_required")
    assert _comparable(lean) == _comparable(regular)
    assert await ledger_points(db, member_id(member)) == (0, 0)
