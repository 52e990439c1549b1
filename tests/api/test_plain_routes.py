"""Plain requests (no Origin, no Idempotency-Key) of ``GET /me``, ``/me/credits``,
``/me/notifications`` and ``/activities`` take the plain route (app/core/routing.py); a
browser's take the documented one. Both answer alike, errors included."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.study.models import StudySession
from tests import factories as f
from tests.api.test_order_helpers import submit, world
from tests.support.study import item

BROWSER = {"Origin": "https://console.example.org"}


def _comparable(response: httpx.Response) -> tuple[int, str, Any]:
    body = response.json()
    if isinstance(body, dict):
        body.pop("instance", None)
        body.pop("request_id", None)
    return response.status_code, response.headers["content-type"], body


async def both_routes(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    """``path`` as a phone asks (the plain route) and as a browser (the documented one)."""
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
        plain, browser = await both_routes(client, "/api/v1/me", actor.headers)
        assert plain.status_code == 200, plain.text
        assert _comparable(plain) == _comparable(browser)
    me = (await client.get("/api/v1/me", headers=admin.headers)).json()
    assert me["account"]["kind"] == "admin"
    assert [r["org"]["id"] for r in me["roles"]] == [county.id]
    plain, browser = await both_routes(client, "/api/v1/me/credits", member.headers)
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
        plain, browser = await both_routes(client, path, headers)
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
        plain, browser = await both_routes(client, path, member.headers)
        assert plain.status_code in (200, 400, 422), (path, plain.text)
        assert _comparable(plain) == _comparable(browser), path


async def test_study_session_starts_alike_on_both_routes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """``POST /study/sessions`` from a phone (plain JSON) takes the plain route, from a
    browser the documented one: the same session is started, the same errors given."""
    branch = await f.org(db, "支部")
    other = await f.org(db, "另一支部")
    member = await f.member_actor(db, settings, branch)
    resident = await f.resident_actor(db, settings)
    article = await item(db, branch, min_seconds=90)
    foreign = await item(db, other)
    await db.commit()
    path = "/api/v1/study/sessions"
    plain = await client.post(path, json={"item_id": article.id}, headers=member.headers)
    browser = await client.post(
        path, json={"item_id": article.id}, headers={**member.headers, **BROWSER}
    )
    assert plain.status_code == browser.status_code == 201, plain.text
    assert plain.headers["content-type"] == browser.headers["content-type"]
    started = [plain.json(), browser.json()]
    assert [(s["item_id"], s["min_seconds"]) for s in started] == [(article.id, 90)] * 2
    assert member.member is not None
    rows = (
        await db.scalars(select(StudySession.id).where(StudySession.member_id == member.member.id))
    ).all()
    assert sorted(rows) == sorted(s["session_id"] for s in started)
    for content, headers in (
        (b'{"item_id": %d}' % foreign.id, member.headers),
        (b'{"item_id": 999999999}', member.headers),
        (b'{"item_id": 0}', member.headers),
        (b"{}", member.headers),
        (b"{", member.headers),
        (b'{"item_id": %d, "x": 1}' % article.id, member.headers),
        (b'{"item_id": %d}' % article.id, resident.headers),
        (b'{"item_id": %d}' % article.id, {}),
    ):
        json_headers = {**headers, "Content-Type": "application/json"}
        plain = await client.post(path, content=content, headers=json_headers)
        browser = await client.post(path, content=content, headers={**json_headers, **BROWSER})
        assert plain.status_code in (400, 401, 403, 404, 422), (content, plain.text)
        assert _comparable(plain) == _comparable(browser), content
    assert (
        await db.scalar(
            select(func.count()).select_from(StudySession).where(StudySession.item_id == foreign.id)
        )
        == 0
    )


async def test_orders_answer_alike_on_both_routes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """``GET /orders`` from a phone takes the plain route: the caller's own orders on the
    driver pool, every other query in his scope through the session it opens then; a
    browser's takes the documented route. Pages and errors are the same."""
    w = await world(db, settings)
    mine = await submit(client, w.submitter, w.village)
    await submit(client, w.submitter, w.village, title="路灯不亮")
    await submit(client, w.stranger, w.village)
    for actor, path in (
        (w.submitter, "/api/v1/orders?mine=true"),
        (w.submitter, "/api/v1/orders?mine=true&limit=1"),
        (w.submitter, "/api/v1/orders?mine=true&status=submitted&category=life_support"),
        (w.submitter, "/api/v1/orders?mine=true&needs_review=false"),
        (w.submitter, "/api/v1/orders?mine=true&status=closed"),
        (w.submitter, "/api/v1/orders?mine=true&cursor=bad"),
        (w.submitter, "/api/v1/orders?mine=true&status=nonsense"),
        (w.submitter, "/api/v1/orders?mine=true&limit=0"),
        (w.submitter, f"/api/v1/orders?mine=true&org_id={w.village.id}"),
        (w.submitter, f"/api/v1/orders?mine=true&org_id={w.other_county.id}"),
        (w.submitter, "/api/v1/orders"),
        (w.submitter, "/api/v1/orders?assigned=me"),
        (w.submitter, "/api/v1/orders?mine=true&assigned=me"),
        (w.village_admin, "/api/v1/orders"),
        (w.village_admin, "/api/v1/orders?limit=1"),
        (w.village_admin, f"/api/v1/orders?org_id={w.village.id}&status=submitted"),
        (w.village_admin, f"/api/v1/orders?org_id={w.other_county.id}"),
        (w.village_admin, "/api/v1/orders?mine=perhaps"),
        (w.county_admin, "/api/v1/orders?mine=true"),
        (w.resident, "/api/v1/orders?mine=true"),
    ):
        plain, browser = await both_routes(client, path, actor.headers)
        assert plain.status_code in (200, 404, 422), (path, plain.text)
        assert _comparable(plain) == _comparable(browser), path
    plain, _ = await both_routes(client, "/api/v1/orders?mine=true", w.submitter.headers)
    assert len(plain.json()["items"]) == 2 and plain.json()["items"][1]["id"] == mine["id"]
    plain, _ = await both_routes(client, "/api/v1/orders", w.village_admin.headers)
    assert len(plain.json()["items"]) == 3
    unauthenticated, browser = await both_routes(client, "/api/v1/orders?mine=true", {})
    assert unauthenticated.status_code == 401
    assert _comparable(unauthenticated) == _comparable(browser)
