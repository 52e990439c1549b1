"""Study items, sessions, check-ins (single and offline batch) through the HTTP API."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.study.models import CreditLedger, StudyItem, StudySession
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

ITEMS = "/api/v1/study/items"
SESSIONS = "/api/v1/study/sessions"
CHECKINS = "/api/v1/study/checkins"
BATCH = "/api/v1/study/checkins/batch"


# Items


async def test_admin_creates_item_and_subtree_members_see_it(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, rules: None
) -> None:
    county = await f.org(db, "县委")
    branch = await f.org(db, "村支部", parent=county)
    other = await f.org(db, "外县")
    admin = await f.admin_actor(db, settings, county)
    inside = await f.member_actor(db, settings, branch, "王建国")
    outside = await f.member_actor(db, settings, other, "刘芳")

    await db.commit()  # the setup survives rollbacks of failing requests
    body = {
        "title": "红色家书",
        "kind": "vr_hall",
        "url": "https://example.org/vr/1",
        "min_seconds": 120,
        "org_id": county.id,
    }
    created = await client.post(ITEMS, json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    data = created.json()
    # points omitted: the vr_hall rule's points (2).
    assert data["points"] == 2 and data["org_id"] == county.id and data["kind"] == "vr_hall"
    assert (await db.get(StudyItem, data["id"])) is not None

    seen = await client.get(ITEMS, headers=inside.headers)
    assert [i["id"] for i in seen.json()["items"]] == [data["id"]]
    assert (await client.get(ITEMS, headers=outside.headers)).json()["items"] == []


async def test_superadmin_item_is_global(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, rules: None
) -> None:
    root = await f.superadmin_actor(db, settings)
    somewhere = await f.member_actor(db, settings, await f.org(db, "任意支部"))
    await db.commit()  # the setup survives rollbacks of failing requests
    body = {"title": "每日答题", "kind": "quiz", "url": "/pages/quiz/index", "min_seconds": 30}
    created = await client.post(ITEMS, json=body, headers=root.headers)
    assert created.status_code == 201 and created.json()["org_id"] is None
    listed = await client.get(ITEMS, params={"kind": "quiz"}, headers=somewhere.headers)
    assert [i["title"] for i in listed.json()["items"]] == ["每日答题"]


async def test_item_create_rules(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, rules: None
) -> None:
    county = await f.org(db, "县委")
    other = await f.org(db, "外县")
    admin = await f.admin_actor(db, settings, county)
    member = await f.member_actor(db, settings, county)
    county_id, other_id = county.id, other.id
    await db.commit()  # the setup survives rollbacks of failing requests
    body = {"title": "t", "kind": "article", "url": "https://e.org/a", "min_seconds": 60}
    problem(await client.post(ITEMS, json=body), 401, "auth.missing_token")
    problem(
        await client.post(ITEMS, json={**body, "org_id": county_id}, headers=member.headers),
        403,
        "auth.admin_required",
    )
    problem(
        await client.post(ITEMS, json={**body, "org_id": other_id}, headers=admin.headers),
        404,
        "study.org_not_found",
    )
    bad = problem(
        await client.post(
            ITEMS,
            json={**body, "org_id": county_id, "kind": "game", "id": 5},
            headers=admin.headers,
        ),
        422,
        "validation.failed",
    )
    assert {e["field"] for e in bad["errors"]} == {"kind", "id"}
    assert (await db.execute(select(func.count()).select_from(StudyItem))).scalar_one() == 0


async def test_items_list_pages_and_needs_a_token(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    made = [await item(db, branch, title=f"第{n}课") for n in range(5)]
    await db.commit()  # the setup survives rollbacks of failing requests
    problem(await client.get(ITEMS), 401, "auth.missing_token")
    first = (await client.get(ITEMS, params={"limit": 3}, headers=member.headers)).json()
    second = (
        await client.get(
            ITEMS, params={"limit": 3, "cursor": first["next_cursor"]}, headers=member.headers
        )
    ).json()
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert ids == sorted((m.id for m in made), reverse=True)
    assert second["next_cursor"] is None
    problem(
        await client.get(ITEMS, params={"cursor": "bad"}, headers=member.headers),
        422,
        "pagination.invalid_cursor",
    )


# Sessions


async def test_session_uses_server_time_and_item_scope(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock
) -> None:
    branch = await f.org(db, "支部")
    other = await f.org(db, "外县")
    member = await f.member_actor(db, settings, branch)
    mine = await item(db, branch, min_seconds=90)
    theirs = await item(db, other)
    mid, mine_id, theirs_id = member_id(member), mine.id, theirs.id
    await db.commit()  # the setup survives rollbacks of failing requests
    problem(await client.post(SESSIONS, json={"item_id": mine_id}), 401, "auth.missing_token")
    started = await client.post(SESSIONS, json={"item_id": mine_id}, headers=member.headers)
    assert started.status_code == 201, started.text
    data = started.json()
    assert datetime.fromisoformat(data["started_at"]) == NOON
    assert data["min_seconds"] == 90
    row = await db.get(StudySession, data["session_id"])
    assert row is not None and row.started_at == NOON and row.member_id == mid
    problem(
        await client.post(SESSIONS, json={"item_id": theirs_id}, headers=member.headers),
        404,
        "study.item_not_found",
    )
    resident = await f.resident_actor(db, settings)
    problem(
        await client.post(SESSIONS, json={"item_id": mine_id}, headers=resident.headers),
        403,
        "auth.member_required",
    )


# Check-ins


async def test_too_short_then_enough(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    video = await item(db, branch, kind="video", min_seconds=300)
    mid = member_id(member)
    await db.commit()  # the setup survives rollbacks of failing requests
    started = await client.post(SESSIONS, json={"item_id": video.id}, headers=member.headers)
    session_id = started.json()["session_id"]

    noon_clock.advance(seconds=100)
    early = problem(
        await client.post(
            CHECKINS,
            json={"session_id": session_id, "client_event_id": "evt-1"},
            headers=member.headers,
        ),
        422,
        "study.too_short",
    )
    assert early["seconds_remaining"] == 200 and early["points_awarded"] == 0
    assert await ledger_points(db, mid) == (0, 0)

    noon_clock.advance(seconds=200)
    done = await client.post(
        CHECKINS,
        json={"session_id": session_id, "client_event_id": "evt-2"},
        headers=member.headers,
    )
    assert done.status_code == 200, done.text
    assert done.json() == {
        "checkin_id": done.json()["checkin_id"],
        "points_awarded": 1,
        "daily_points": 1,
        "daily_cap_reached": False,
        "replayed": False,
    }
    assert await ledger_points(db, mid) == (1, 1)


async def test_repeats_return_the_first_result_and_never_earn_twice(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    article = await item(db, branch, min_seconds=0, points=1)
    one = await session_at(db, member.member, article, NOON - timedelta(minutes=5))
    two = await session_at(db, member.member, article, NOON - timedelta(minutes=5))

    mid = member_id(member)
    await db.commit()  # the setup survives rollbacks of failing requests
    body = {"session_id": one.id, "client_event_id": "phone-42"}
    first = (await client.post(CHECKINS, json=body, headers=member.headers)).json()
    again = (await client.post(CHECKINS, json=body, headers=member.headers)).json()
    # The same session under another event id, and the same event id for another session.
    same_session = (
        await client.post(
            CHECKINS, json={"session_id": one.id, "client_event_id": "x"}, headers=member.headers
        )
    ).json()
    same_event = (
        await client.post(CHECKINS, json={**body, "session_id": two.id}, headers=member.headers)
    ).json()
    assert first["replayed"] is False and first["points_awarded"] == 1
    for replay in (again, same_session, same_event):
        assert replay["replayed"] is True
        assert {k: replay[k] for k in ("checkin_id", "points_awarded", "daily_points")} == {
            k: first[k] for k in ("checkin_id", "points_awarded", "daily_points")
        }
    assert await ledger_points(db, mid) == (1, 1)


async def test_idempotency_key_replays_the_response(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    article = await item(db, branch, min_seconds=0)
    sess = await session_at(db, member.member, article, NOON - timedelta(minutes=1))
    headers = {**member.headers, "Idempotency-Key": "k-123"}
    mid = member_id(member)
    await db.commit()  # the setup survives rollbacks of failing requests
    body = {"session_id": sess.id, "client_event_id": "e-1"}
    first = await client.post(CHECKINS, json=body, headers=headers)
    second = await client.post(CHECKINS, json=body, headers=headers)
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json() == first.json() and first.json()["replayed"] is False
    problem(
        await client.post(CHECKINS, json={**body, "client_event_id": "e-2"}, headers=headers),
        422,
        "idempotency.key_reused",
    )
    assert await ledger_points(db, mid) == (1, 1)


async def test_checkin_of_someone_elses_session_is_404(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    branch = await f.org(db, "支部")
    owner = await f.member_actor(db, settings, branch, "甲")
    thief = await f.member_actor(db, settings, branch, "乙")
    article = await item(db, branch, min_seconds=0)
    sess = await session_at(db, owner.member, article, NOON - timedelta(minutes=1))
    mid = member_id(thief)
    await db.commit()  # the setup survives rollbacks of failing requests
    body = {"session_id": sess.id, "client_event_id": "e-1"}
    problem(await client.post(CHECKINS, json=body), 401, "auth.missing_token")
    problem(
        await client.post(CHECKINS, json=body, headers=thief.headers),
        404,
        "study.session_not_found",
    )
    assert await ledger_points(db, mid) == (0, 0)


# Offline batch


async def test_batch_judges_each_event_and_keeps_the_order(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    quiz = await item(db, branch, kind="quiz", min_seconds=60, points=2)
    started = NOON - timedelta(hours=3)
    sessions = [await session_at(db, member.member, quiz, started) for _ in range(4)]

    mid = member_id(member)
    await db.commit()  # the setup survives rollbacks of failing requests

    def event(index: int, name: str, when: datetime) -> dict[str, object]:
        session_id = sessions[index].id if index >= 0 else 987654321
        return {"session_id": session_id, "client_event_id": name, "occurred_at": when.isoformat()}

    events = [
        event(0, "a", started + timedelta(minutes=5)),
        event(1, "b", NOON + timedelta(hours=1)),  # the phone claims a time in the future
        event(2, "c", started - timedelta(minutes=1)),  # before the session started
        event(3, "d", started + timedelta(seconds=30)),  # only 30 s of the 60 needed
        event(0, "a", started + timedelta(minutes=6)),  # a repeat inside the same batch
        event(-1, "e", started + timedelta(minutes=5)),  # a session that does not exist
        event(1, "f", NOON - timedelta(days=8)),  # too old to be credited
    ]
    response = await client.post(BATCH, json={"events": events}, headers=member.headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["client_event_id"] for r in results] == ["a", "b", "c", "d", "a", "e", "f"]
    assert [(r["status"], r["code"]) for r in results] == [
        ("accepted", None),
        ("rejected", "study.future_time"),
        ("rejected", "study.before_session"),
        ("rejected", "study.too_short"),
        ("duplicate", None),
        ("rejected", "study.session_not_found"),
        ("rejected", "study.event_too_old"),
    ]
    assert (
        results[0]["points_awarded"] == 2 and results[4]["checkin_id"] == results[0]["checkin_id"]
    )
    assert results[3]["seconds_remaining"] == 30
    assert response.json()["points_awarded"] == 2
    assert await ledger_points(db, mid) == (1, 2)
    # The claimed time decides the credited day (Asia/Shanghai).
    event = (await db.execute(select(CreditLedger))).scalar_one()
    assert event.day.isoformat() == "2026-03-10"


async def test_batch_limits_and_auth(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    member = await f.member_actor(db, settings, await f.org(db, "支部"))
    event = {"session_id": 1, "client_event_id": "x", "occurred_at": NOON.isoformat()}
    await db.commit()  # the setup survives rollbacks of failing requests
    problem(await client.post(BATCH, json={"events": [event]}), 401, "auth.missing_token")
    too_many = problem(
        await client.post(BATCH, json={"events": [event] * 101}, headers=member.headers),
        422,
        "validation.failed",
    )
    assert too_many["errors"][0]["field"] == "events"
    naive = problem(
        await client.post(
            BATCH,
            json={"events": [{**event, "occurred_at": "2026-03-10T12:00:00"}]},
            headers=member.headers,
        ),
        422,
        "validation.failed",
    )
    assert naive["errors"][0]["field"] == "events.0.occurred_at"
    # Times at the edge of the calendar are a validation error, never a 500.
    edge = problem(
        await client.post(
            BATCH,
            json={"events": [{**event, "occurred_at": "0001-01-01T00:00:00+08:00"}]},
            headers=member.headers,
        ),
        422,
        "validation.failed",
    )
    assert edge["errors"][0]["field"] == "events.0.occurred_at"
    huge = problem(
        await client.post(
            CHECKINS, json={"session_id": 2**70, "client_event_id": "x"}, headers=member.headers
        ),
        422,
        "validation.failed",
    )
    assert huge["errors"][0]["field"] == "session_id"
