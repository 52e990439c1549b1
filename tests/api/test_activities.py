"""Activities, first half: creating them, the menu (who sees what), sign-ups with
capacity, through the HTTP API. The fixtures and builders here are shared with
``test_activity_attendance.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.activity import service as activity_service
from app.activity.models import Activity, ActivitySignup
from app.activity.schemas import ActivityOut
from app.audit.models import AuditEntry
from app.core.config import Settings
from app.core.db import get_session
from app.core.pagination import Page
from app.organization.models import DualManagementGrant, Organization
from tests import factories as f
from tests.api.test_plain_routes import both_routes
from tests.conftest import TransactionSource, _build_app, problem

VILLAGE_LAT, VILLAGE_LON = 30.5392, 106.4405
# 0.0009° of latitude is about 100 m; 0.01° about 1.1 km.
NEAR = {"lat": VILLAGE_LAT + 0.0009, "lon": VILLAGE_LON}
FAR = {"lat": VILLAGE_LAT + 0.01, "lon": VILLAGE_LON}


@dataclass
class Tree:
    county: Organization
    town: Organization
    village: Organization
    sibling: Organization
    other_county: Organization
    other_branch: Organization


async def make_tree(db: AsyncSession) -> Tree:
    county = await f.org(db, "岳池县委")
    town = await f.org(db, "石垭镇党委", parent=county, kind="committee")
    village = await f.org(db, "花园村党支部", parent=town, lat=VILLAGE_LAT, lon=VILLAGE_LON)
    sibling = await f.org(db, "白庙村党支部", parent=town)
    other_county = await f.org(db, "武胜县委", region_code="511622")
    other_branch = await f.org(db, "武胜某村党支部", parent=other_county, region_code="511622")
    return Tree(county, town, village, sibling, other_county, other_branch)


@pytest.fixture
async def tree(db: AsyncSession) -> Tree:
    return await make_tree(db)


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine, db: AsyncSession) -> AsyncIterator[FastAPI]:
    """The app with one SAVEPOINT per request inside the test's transaction.

    Like production, an error response rolls back only that request's writes; the shared
    fixture rolls back the whole session, which would also undo (and expire) the test's
    own uncommitted set-up after the first 4xx. Built by the shared ``_build_app`` so the
    leak tripwire is installed.
    """
    application = _build_app(settings, engine)

    async def _session() -> AsyncIterator[AsyncSession]:
        savepoint = await db.begin_nested()
        try:
            yield db
        except BaseException:
            await savepoint.rollback()
            raise
        else:
            await savepoint.commit()

    application.dependency_overrides[get_session] = _session
    application.state.driver_pool = TransactionSource(db)
    async with application.router.lifespan_context(application):
        yield application


def in_progress(now: datetime | None = None) -> dict[str, datetime]:
    """Started 10 minutes ago; sign-in open from 15 minutes before until 30 after now."""
    now = now or datetime.now(UTC)
    return {
        "starts_at": now - timedelta(minutes=10),
        "ends_at": now + timedelta(minutes=50),
        "checkin_opens_at": now - timedelta(minutes=15),
        "checkin_closes_at": now + timedelta(minutes=30),
    }


def upcoming(hours: float = 2) -> dict[str, datetime]:
    now = datetime.now(UTC)
    start = now + timedelta(hours=hours)
    return {
        "starts_at": start,
        "ends_at": start + timedelta(hours=2),
        "checkin_opens_at": start - timedelta(minutes=30),
        "checkin_closes_at": start + timedelta(hours=1),
    }


async def make_activity(
    db: AsyncSession,
    where: Organization,
    *,
    times: dict[str, datetime] | None = None,
    online: bool = False,
    capacity: int | None = None,
    title: str = "主题党日：重温入党誓词",
    kind: str = "theme_day",
) -> Activity:
    """An activity written straight to the table (any window, also one in the past)."""
    activity = Activity(
        org_id=where.id,
        title=title,
        kind=kind,
        online=online,
        lat=None if online else VILLAGE_LAT,
        lon=None if online else VILLAGE_LON,
        radius_m=None if online else 300,
        capacity=capacity,
        **(times or in_progress()),
    )
    db.add(activity)
    await db.flush()
    await db.refresh(activity)
    return activity


def create_body(org_id: int, **overrides: Any) -> dict[str, Any]:
    times = upcoming()
    body: dict[str, Any] = {
        "title": "七一主题党日",
        "org_id": org_id,
        "kind": "theme_day",
        "starts_at": times["starts_at"].isoformat(),
        "ends_at": times["ends_at"].isoformat(),
        "checkin_opens_at": times["checkin_opens_at"].isoformat(),
        "checkin_closes_at": times["checkin_closes_at"].isoformat(),
        "lat": VILLAGE_LAT,
        "lon": VILLAGE_LON,
        "radius_m": 300,
        "online": False,
    }
    body.update(overrides)
    return body


# ---------------------------------------------------------------------------
# Creating activities
# ---------------------------------------------------------------------------


async def test_admin_creates_onsite_activity(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    admin = await f.admin_actor(db, settings, tree.town)
    response = await client.post(
        "/api/v1/activities",
        json=create_body(tree.village.id, capacity=30, credit_points=5, description="请带党徽"),
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["org_id"] == tree.village.id and body["org_name"] == "花园村党支部"
    assert body["radius_m"] == 300 and body["capacity"] == 30 and body["signup_count"] == 0
    assert body["starts_at"].endswith("Z") or body["starts_at"].endswith("+00:00")
    row = await db.get(Activity, body["id"])
    assert row is not None and row.credit_points == 5 and row.created_by_account_id
    audit = (
        await db.execute(select(AuditEntry).where(AuditEntry.action == "activity.create"))
    ).scalar_one()
    assert audit.subject_id == body["id"] and audit.org_id == tree.village.id


async def test_online_activity_needs_no_location(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    admin = await f.admin_actor(db, settings, tree.county)
    body = create_body(tree.county.id, kind="online_class", online=True)
    for field in ("lat", "lon", "radius_m"):
        body.pop(field)
    response = await client.post("/api/v1/activities", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    assert response.json()["online"] is True and response.json()["lat"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": "starts_at"}, "ends_at"),
        ({"checkin_closes_at": "checkin_opens_at"}, "checkin_closes_at"),
        ({"checkin_closes_at": "after_end"}, "checkin_closes_at"),
        ({"checkin_opens_at": "two_days_early"}, "checkin_opens_at"),
        ({"lat": None}, "lat"),
        ({"radius_m": None}, "radius_m"),
        ({"radius_m": 5}, "radius_m"),
        ({"kind": "party"}, "kind"),
        ({"capacity": 0}, "capacity"),
        ({"starts_at": "2026-07-01T09:00:00"}, "starts_at"),  # no offset
        ({"status": "published"}, "status"),  # mass assignment
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    tree: Tree,
    change: dict[str, Any],
    field: str,
) -> None:
    admin = await f.admin_actor(db, settings, tree.county)
    body = create_body(tree.village.id)
    starts = datetime.fromisoformat(body["starts_at"])
    ends = datetime.fromisoformat(body["ends_at"])
    for key, value in change.items():
        if value == "starts_at":
            value = body["starts_at"]
        elif value == "checkin_opens_at":
            value = body["checkin_opens_at"]
        elif value == "after_end":
            value = (ends + timedelta(minutes=1)).isoformat()
        elif value == "two_days_early":
            value = (starts - timedelta(days=2)).isoformat()
        body[key] = value
    response = await client.post("/api/v1/activities", json=body, headers=admin.headers)
    problem_body = problem(response, 422, "validation.failed")
    assert field in [error["field"] for error in problem_body["errors"]], problem_body
    assert (await db.execute(select(func.count()).select_from(Activity))).scalar_one() == 0


async def test_create_requires_admin_in_scope(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    body = create_body(tree.village.id)
    member = await f.member_actor(db, settings, tree.village)
    outsider = await f.admin_actor(db, settings, tree.other_county)
    sibling_admin = await f.admin_actor(db, settings, tree.sibling, "branch_admin")
    problem(await client.post("/api/v1/activities", json=body), 401, "auth.missing_token")
    problem(
        await client.post("/api/v1/activities", json=body, headers=member.headers),
        403,
        "auth.admin_required",
    )
    problem(
        await client.post("/api/v1/activities", json=body, headers=outsider.headers),
        404,
        "activity.org_not_found",
    )
    problem(
        await client.post("/api/v1/activities", json=body, headers=sibling_admin.headers),
        404,
        "activity.org_not_found",
    )


# ---------------------------------------------------------------------------
# The menu: who sees which activities
# ---------------------------------------------------------------------------


async def _titles(client: httpx.AsyncClient, headers: dict[str, str]) -> set[str]:
    response = await client.get("/api/v1/activities?limit=100", headers=headers)
    assert response.status_code == 200, response.text
    return {item["title"] for item in response.json()["items"]}


async def test_member_menu_is_home_org_and_ancestors(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    for where in (tree.county, tree.town, tree.village, tree.sibling, tree.other_branch):
        await make_activity(db, where, title=f"活动@{where.name}")
    member = await f.member_actor(db, settings, tree.village)
    assert await _titles(client, member.headers) == {
        "活动@岳池县委",
        "活动@石垭镇党委",
        "活动@花园村党支部",
    }


async def test_dual_management_guest_sees_the_co_managing_menu(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    for where in (tree.county, tree.village, tree.sibling, tree.other_county):
        await make_activity(db, where, title=f"活动@{where.name}")
    guest = await f.member_actor(db, settings, tree.other_branch, "流入党员")
    assert guest.member is not None
    grant = DualManagementGrant(member_id=guest.member.id, org_id=tree.village.id)
    db.add(grant)
    await db.flush()
    assert await _titles(client, guest.headers) == {
        "活动@武胜县委",
        "活动@岳池县委",
        "活动@花园村党支部",
    }
    grant.ended_at = datetime.now(UTC)
    await db.flush()
    assert await _titles(client, guest.headers) == {"活动@武胜县委"}


async def test_admin_sees_subtree_and_own_menu_but_not_other_subtree(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    activities = {
        where.name: await make_activity(db, where, title=f"活动@{where.name}")
        for where in (tree.county, tree.village, tree.sibling, tree.other_branch)
    }
    town_admin = await f.admin_actor(db, settings, tree.town)
    superadmin = await f.superadmin_actor(db, settings)
    # Subtree (village, sibling) plus his own menu as a member of the town (county).
    assert await _titles(client, town_admin.headers) == {
        "活动@岳池县委",
        "活动@花园村党支部",
        "活动@白庙村党支部",
    }
    other = activities["武胜某村党支部"]
    problem(
        await client.get(f"/api/v1/activities/{other.id}", headers=town_admin.headers),
        404,
        "activity.not_found",
    )
    assert len(await _titles(client, superadmin.headers)) == 4


async def test_admin_pages_through_menu_and_subtree_once_in_order(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    """The page is picked from the menu and from the administered subtrees: an admin's
    pages interleave both in start order, an activity on both sides (his own
    organisation's) comes once, and the filters hold on either side."""
    base = datetime.now(UTC) + timedelta(days=1)
    order = (tree.village, tree.county, tree.town, tree.sibling, tree.town, tree.other_branch)
    for index, where in enumerate(order):
        start = base + timedelta(days=index)
        times = {
            "starts_at": start,
            "ends_at": start + timedelta(hours=1),
            "checkin_opens_at": start,
            "checkin_closes_at": start + timedelta(minutes=30),
        }
        kind = "party_class" if index % 2 else "theme_day"
        await make_activity(db, where, title=f"活动{index}", times=times, kind=kind)
    town_admin = await f.admin_actor(db, settings, tree.town)

    async def pages(**params: Any) -> list[str]:
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            query = {**params, "limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (
                await client.get("/api/v1/activities", params=query, headers=town_admin.headers)
            ).json()
            seen += [item["title"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen
        raise AssertionError(seen)

    assert await pages() == ["活动4", "活动3", "活动2", "活动1", "活动0"]
    assert await pages(kind="party_class") == ["活动3", "活动1"]
    assert await pages(org_id=tree.town.id) == ["活动4", "活动2"]
    assert await pages(org_id=tree.other_branch.id) == []
    whole = await client.get("/api/v1/activities", headers=town_admin.headers)
    assert [item["title"] for item in whole.json()["items"]] == [
        "活动4",
        "活动3",
        "活动2",
        "活动1",
        "活动0",
    ]


async def test_get_and_list_need_a_token(
    client: httpx.AsyncClient, db: AsyncSession, tree: Tree
) -> None:
    activity = await make_activity(db, tree.village)
    problem(await client.get("/api/v1/activities"), 401, "auth.missing_token")
    problem(await client.get(f"/api/v1/activities/{activity.id}"), 401, "auth.missing_token")


async def test_member_gets_activity_with_own_state_and_not_others(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    activity = await make_activity(db, tree.village, times=upcoming())
    foreign = await make_activity(db, tree.sibling, times=upcoming())
    member = await f.member_actor(db, settings, tree.village)
    resident = await f.resident_actor(db, settings)
    got = await client.get(f"/api/v1/activities/{activity.id}", headers=member.headers)
    assert got.status_code == 200 and got.json()["my_signup_status"] is None
    await client.post(f"/api/v1/activities/{activity.id}/signups", headers=member.headers)
    got = await client.get(f"/api/v1/activities/{activity.id}", headers=member.headers)
    assert got.json()["my_signup_status"] == "signed_up" and got.json()["signup_count"] == 1
    problem(
        await client.get(f"/api/v1/activities/{foreign.id}", headers=member.headers),
        404,
        "activity.not_found",
    )
    problem(
        await client.get(f"/api/v1/activities/{activity.id}", headers=resident.headers),
        404,
        "activity.not_found",
    )


async def test_list_pages_with_cursor_and_filters(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    base = datetime.now(UTC) + timedelta(days=1)
    for index in range(5):
        start = base + timedelta(days=index)
        await make_activity(
            db,
            tree.village,
            title=f"党课{index}",
            kind="party_class" if index % 2 else "theme_day",
            times={
                "starts_at": start,
                "ends_at": start + timedelta(hours=1),
                "checkin_opens_at": start,
                "checkin_closes_at": start + timedelta(minutes=30),
            },
        )
    member = await f.member_actor(db, settings, tree.village)
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get("/api/v1/activities", params=params, headers=member.headers)
        ).json()
        seen += [item["title"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ["党课4", "党课3", "党课2", "党课1", "党课0"] and cursor is None
    kinds = await client.get(
        "/api/v1/activities", params={"kind": "party_class"}, headers=member.headers
    )
    assert [item["title"] for item in kinds.json()["items"]] == ["党课3", "党课1"]
    window = await client.get(
        "/api/v1/activities",
        params={
            "starts_from": (base + timedelta(days=1)).isoformat(),
            "starts_to": (base + timedelta(days=3)).isoformat(),
        },
        headers=member.headers,
    )
    assert [item["title"] for item in window.json()["items"]] == ["党课2", "党课1"]
    problem(
        await client.get("/api/v1/activities?limit=101", headers=member.headers),
        422,
        "validation.failed",
    )
    problem(
        await client.get("/api/v1/activities?cursor=bm9wZQ", headers=member.headers),
        422,
        "pagination.invalid_cursor",
    )


# ---------------------------------------------------------------------------
# Sign-ups
# ---------------------------------------------------------------------------


async def test_signup_is_idempotent_and_cancellable_before_start(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    activity = await make_activity(db, tree.county, times=upcoming(), capacity=10)
    member = await f.member_actor(db, settings, tree.village)
    url = f"/api/v1/activities/{activity.id}/signups"
    first = await client.post(url, headers=member.headers)
    assert first.status_code == 201 and first.json()["status"] == "signed_up"
    again = await client.post(url, headers=member.headers)
    assert again.json()["id"] == first.json()["id"]
    await db.refresh(activity)
    assert activity.signup_count == 1

    cancelled = await client.delete(f"{url}/me", headers=member.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    repeat = await client.delete(f"{url}/me", headers=member.headers)
    assert repeat.status_code == 200 and repeat.json()["status"] == "cancelled"
    await db.refresh(activity)
    assert activity.signup_count == 0

    back = await client.post(url, headers=member.headers)
    assert back.json()["id"] == first.json()["id"] and back.json()["status"] == "signed_up"
    await db.refresh(activity)
    assert activity.signup_count == 1
    rows = (await db.execute(select(ActivitySignup))).scalars().all()
    assert len(rows) == 1 and rows[0].cancelled_at is None


async def test_signup_with_idempotency_key_replays(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    activity = await make_activity(db, tree.village, times=upcoming())
    member = await f.member_actor(db, settings, tree.village)
    headers = {**member.headers, "Idempotency-Key": "signup-1"}
    url = f"/api/v1/activities/{activity.id}/signups"
    first = await client.post(url, headers=headers)
    replay = await client.post(url, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == first.json() and replay.status_code == 201


async def test_signup_rules(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    started = await make_activity(db, tree.village)
    full = await make_activity(db, tree.village, times=upcoming(), capacity=1)
    foreign = await make_activity(db, tree.sibling, times=upcoming())
    first = await f.member_actor(db, settings, tree.village, "甲")
    second = await f.member_actor(db, settings, tree.village, "乙")
    resident = await f.resident_actor(db, settings)
    problem(
        await client.post(f"/api/v1/activities/{started.id}/signups", headers=first.headers),
        422,
        "activity.signup_closed",
    )
    problem(
        await client.delete(f"/api/v1/activities/{started.id}/signups/me", headers=first.headers),
        404,
        "activity.signup_not_found",
    )
    ok = await client.post(f"/api/v1/activities/{full.id}/signups", headers=first.headers)
    assert ok.status_code == 201
    problem(
        await client.post(f"/api/v1/activities/{full.id}/signups", headers=second.headers),
        409,
        "activity.full",
    )
    problem(
        await client.post(f"/api/v1/activities/{foreign.id}/signups", headers=first.headers),
        404,
        "activity.not_found",
    )
    problem(
        await client.post(f"/api/v1/activities/{full.id}/signups", headers=resident.headers),
        403,
        "auth.member_required",
    )
    problem(await client.post(f"/api/v1/activities/{full.id}/signups"), 401, "auth.missing_token")
    count = (await db.execute(select(func.count()).select_from(ActivitySignup))).scalar_one()
    assert count == 1


async def test_cancel_after_start_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    activity = await make_activity(db, tree.village)
    member = await f.member_actor(db, settings, tree.village)
    assert member.member is not None
    db.add(ActivitySignup(activity_id=activity.id, member_id=member.member.id))
    activity.signup_count = 1
    problem(
        await client.delete(f"/api/v1/activities/{activity.id}/signups/me", headers=member.headers),
        422,
        "activity.signup_closed",
    )


async def test_capacity_holds_under_concurrent_signups(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        tree = await make_tree(session)
        activity = await make_activity(session, tree.village, times=upcoming(), capacity=3)
        members = [
            await f.member_actor(session, settings, tree.village, f"党员{i}") for i in range(8)
        ]
        await session.commit()
    url = f"/api/v1/activities/{activity.id}/signups"
    responses = await asyncio.gather(
        *(committing_client.post(url, headers=m.headers) for m in members)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [409] * 5, [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            problem(r, 409, "activity.full")
    async with AsyncSession(engine) as session:
        count = (
            await session.execute(
                select(func.count())
                .select_from(ActivitySignup)
                .where(ActivitySignup.activity_id == activity.id)
            )
        ).scalar_one()
        stored = await session.get(Activity, activity.id)
        assert count == 3 and stored is not None and stored.signup_count == 3


async def test_menu_body_is_the_models_json(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    """``GET /activities`` shapes its page as plain dicts and serializes it once
    (app/core/responses.py): its bytes are what ``Page[ActivityOut]`` makes of them."""
    member = await f.member_actor(db, settings, tree.village)
    signed = await make_activity(db, tree.village, times=upcoming(1), capacity=30)
    cancelled = await make_activity(db, tree.town, times=upcoming(2), kind="party_class")
    online = await make_activity(db, tree.county, times=upcoming(3), online=True)
    # Whole seconds: no fraction in the timestamps.
    whole = upcoming(4)
    whole = {k: v.replace(microsecond=0) for k, v in whole.items()}
    plain = await make_activity(db, tree.village, times=whole, title="志愿服务")
    await db.commit()
    for activity in (signed, cancelled):
        response = await client.post(
            f"/api/v1/activities/{activity.id}/signups", headers=member.headers
        )
        assert response.status_code in (200, 201), response.text
    cancel = await client.delete(
        f"/api/v1/activities/{cancelled.id}/signups/me", headers=member.headers
    )
    assert cancel.status_code == 200, cancel.text

    first, browser = await both_routes(client, "/api/v1/activities?limit=3", member.headers)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    body = first.json()
    assert [a["id"] for a in body["items"]] == [plain.id, online.id, cancelled.id]
    assert [a["my_signup_status"] for a in body["items"]] == [None, None, "cancelled"]
    rest = await client.get(
        "/api/v1/activities",
        params={"limit": 3, "cursor": body["next_cursor"]},
        headers=member.headers,
    )
    assert [a["my_signup_status"] for a in rest.json()["items"]] == ["signed_up"]

    names = {tree.village.id: tree.village.name, tree.town.id: tree.town.name}
    names[tree.county.id] = tree.county.name
    status = {signed.id: "signed_up", cancelled.id: "cancelled"}
    items = []
    for activity in (plain, online, cancelled, signed):
        await db.refresh(activity)
        items.append(
            activity_service._out(
                activity, names[activity.org_id], signup_status=status.get(activity.id)
            )
        )
    expected = Page[ActivityOut](items=items[:3], next_cursor=body["next_cursor"])
    assert first.content == browser.content == expected.model_dump_json().encode()
    assert rest.content == Page[ActivityOut](items=items[3:]).model_dump_json().encode()
    assert "." not in body["items"][0]["starts_at"] and body["items"][0]["starts_at"][-1] == "Z"
