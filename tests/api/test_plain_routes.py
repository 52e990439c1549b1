"""Plain requests (no Origin, no Idempotency-Key) of ``GET /me``, ``/me/credits``,
``/me/notifications`` and ``/activities`` take the plain route (app/core/routing.py); a
browser's take the documented one. Both answer alike, errors included."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests import factories as f

BROWSER = {"Origin": "https://console.example.org"}


def _comparable(response: httpx.Response) -> tuple[int, str, Any]:
    body = response.json()
    if isinstance(body, dict):
        body.pop("instance", None)
        body.pop("request_id", None)
    return response.status_code, response.headers["content-type"], body


async def _both(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    plain = await client.get(path, headers=headers)
    browser = await client.get(path, headers={**headers, **BROWSER})
    return plain, browser


async def test_me_and_credits_answer_alike_on_both_routes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await f.org(db, "县委")
    branch = await f.org(db, "支部", parent=county)
    member = await f.member_actor(db, settings, branch)
    admin = await f.admin_actor(db, settings, county)
    resident = await f.resident_actor(db, settings)
    for actor in (member, admin, resident):
        plain, browser = await _both(client, "/api/v1/me", actor.headers)
        assert plain.status_code == 200, plain.text
        assert _comparable(plain) == _comparable(browser)
    me = (await client.get("/api/v1/me", headers=admin.headers)).json()
    assert me["account"]["kind"] == "admin"
    assert [r["org"]["id"] for r in me["roles"]] == [county.id]
    plain, browser = await _both(client, "/api/v1/me/credits", member.headers)
    assert plain.status_code == 200 and plain.json()["total"] == 0
    assert _comparable(plain) == _comparable(browser)


async def test_errors_are_the_same_on_both_routes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    resident = await f.resident_actor(db, settings)
    for path, headers, status, code in (
        ("/api/v1/me", {}, 401, "auth.missing_token"),
        ("/api/v1/me", {"Authorization": "Bearer nope"}, 401, "auth.invalid_token"),
        ("/api/v1/me/credits", {}, 401, "auth.missing_token"),
        ("/api/v1/me/credits", resident.headers, 403, "auth.member_required"),
    ):
        plain, browser = await _both(client, path, headers)
        assert plain.status_code == status and plain.json()["code"] == code
        assert _comparable(plain) == _comparable(browser)


async def test_query_parameters_parse_and_fail_alike_on_both_routes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    for path in (
        "/api/v1/me/notifications?limit=5&unread=true",
        "/api/v1/me/notifications?limit=0",
        "/api/v1/me/notifications?limit=abc",
        "/api/v1/me/notifications?cursor=bad",
        "/api/v1/me/notifications?unread=perhaps",
        "/api/v1/activities?limit=3",
        "/api/v1/activities?kind=nonsense",
        "/api/v1/activities?starts_from=2026-12-01T00:00:00",
        "/api/v1/activities?org_id=-1",
        "/api/v1/activities?starts_from=2026-12-01T00:00:00%2B08:00&limit=2",
    ):
        plain, browser = await _both(client, path, member.headers)
        assert plain.status_code in (200, 400, 422), (path, plain.text)
        assert _comparable(plain) == _comparable(browser), path
