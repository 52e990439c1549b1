"""Credit rules and caps, Asia/Shanghai days, streaks, leaderboards, award_credits, races."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.study import service
from app.study.models import CreditDaily, CreditLedger, StudySession
from tests import factories as f
from tests.clock import Clock
from tests.conftest import problem
from tests.support.study import (
    NOON,
    daily_points,
    item,
    ledger_points,
    member_id,
    override,
    session_at,
)

CHECKINS = "/api/v1/study/checkins"
CREDITS = "/api/v1/me/credits"
BOARD = "/api/v1/study/leaderboard"


async def _checkin(client: httpx.AsyncClient, actor: f.Actor, session_id: int) -> dict[str, object]:
    response = await client.post(
        CHECKINS,
        json={"session_id": session_id, "client_event_id": f"ev-{session_id}"},
        headers=actor.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_kind_cap_then_zero_points(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    mid = member_id(member)
    # vr_hall: 2 points, cap 4 a day.
    hall = await item(db, branch, kind="vr_hall", min_seconds=0, points=3)
    sessions = [await session_at(db, member.member, hall, NOON) for _ in range(3)]
    results = [await _checkin(client, member, s.id) for s in sessions]
    assert [r["points_awarded"] for r in results] == [3, 1, 0]
    assert [r["daily_points"] for r in results] == [3, 4, 4]
    assert [r["daily_cap_reached"] for r in results] == [False, True, True]
    # Capped check-ins are recorded with 0 points (the ledger is the history).
    assert await ledger_points(db, mid) == (3, 4)
    daily = (await db.execute(select(CreditDaily).where(CreditDaily.member_id == mid))).scalar_one()
    assert (daily.points, daily.vr_hall, daily.article) == (4, 4, 0)


async def test_overall_cap_and_nearest_override_wins(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    county = await f.org(db, "县委")
    branch = await f.org(db, "支部", parent=county)
    elsewhere = await f.org(db, "别的支部", parent=county)
    # The county allows 20 quiz points, overall 8; the branch (nearer) allows 5, overall 6.
    await override(db, county, "quiz", points=2, daily_cap=20, overall_daily_cap=8)
    await override(db, branch, "quiz", points=2, daily_cap=5, overall_daily_cap=6)
    near = await f.member_actor(db, settings, branch, "近")
    far = await f.member_actor(db, settings, elsewhere, "远")
    quiz = await item(db, county, kind="quiz", min_seconds=0, points=2)
    article = await item(db, county, kind="article", min_seconds=0, points=1)

    near_quiz = [await session_at(db, near.member, quiz, NOON) for _ in range(4)]
    assert [(await _checkin(client, near, s.id))["points_awarded"] for s in near_quiz] == [
        2,
        2,
        1,
        0,
    ]
    # Each kind resolves its own rule row, overall cap included: articles fall back to
    # the global rule (overall 30), so they still earn.
    near_article = await session_at(db, near.member, article, NOON)
    assert (await _checkin(client, near, near_article.id))["points_awarded"] == 1

    far_quiz = [await session_at(db, far.member, quiz, NOON) for _ in range(5)]
    awarded = [(await _checkin(client, far, s.id))["points_awarded"] for s in far_quiz]
    # County rule: 2 each, stopped by the overall cap of 8.
    assert awarded == [2, 2, 2, 2, 0]


async def test_day_boundary_in_shanghai(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    mid = member_id(member)
    hall = await item(db, branch, kind="vr_hall", min_seconds=0, points=4)
    # 2026-03-10 23:59:30 in Shanghai is 15:59:30 UTC.
    before_midnight = datetime(2026, 3, 10, 15, 59, 30, tzinfo=UTC)
    noon_clock.now = before_midnight
    first = await session_at(db, member.member, hall, before_midnight - timedelta(minutes=1))
    second = await session_at(db, member.member, hall, before_midnight - timedelta(minutes=1))
    assert (await _checkin(client, member, first.id))["daily_cap_reached"] is True
    noon_clock.advance(seconds=45)  # 00:00:15 on the 11th: a new day, a fresh cap
    after = await _checkin(client, member, second.id)
    assert after["points_awarded"] == 4 and after["daily_points"] == 4
    assert await daily_points(db, mid) == {"2026-03-10": 4, "2026-03-11": 4}
    credits = (await client.get(CREDITS, headers=member.headers)).json()
    assert credits["today"] == 4 and credits["day"] == "2026-03-11"
    assert credits["this_month"] == 8 and credits["streak_days"] == 2


async def test_credits_totals_and_streak(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    article = await item(db, branch, min_seconds=0, points=1)
    # Earning days: Dec 31 (last year), Mar 1, then Mar 7, 8, 9, 10 (today).
    days = [
        datetime(2025, 12, 31, 4, tzinfo=UTC),
        datetime(2026, 3, 1, 4, tzinfo=UTC),
        *(datetime(2026, 3, d, 4, tzinfo=UTC) for d in (7, 8, 9, 10)),
    ]
    for moment in days:
        noon_clock.now = moment
        sess = await session_at(db, member.member, article, moment)
        await _checkin(client, member, sess.id)
    problem(await client.get(CREDITS), 401, "auth.missing_token")
    credits = (await client.get(CREDITS, headers=member.headers)).json()
    assert credits == {
        "today": 1,
        "this_month": 5,
        "this_year": 5,
        "total": 6,
        "streak_days": 4,
        "day": "2026-03-10",
    }
    noon_clock.now = datetime(2026, 3, 11, 4, tzinfo=UTC)  # nothing yet today: still alive
    assert (await client.get(CREDITS, headers=member.headers)).json()["streak_days"] == 4
    noon_clock.now = datetime(2026, 3, 12, 4, tzinfo=UTC)  # a day missed: broken
    assert (await client.get(CREDITS, headers=member.headers)).json()["streak_days"] == 0


async def test_award_credits_is_idempotent_and_capped(
    db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    branch = await f.org(db, "支部")
    m = await f.member(db, settings, branch)
    # activity: cap 10 a day.
    assert await service.award_credits(db, m.id, "activity", 7, 6, "activity") == 6
    assert await service.award_credits(db, m.id, "activity", 7, 6, "activity") == 6
    assert await service.award_credits(db, m.id, "activity", 8, 6, "activity") == 4
    assert await service.award_credits(db, m.id, "activity", 9, 6, "activity") == 0
    assert await ledger_points(db, m.id) == (3, 10)
    # One ledger entry per source, the repeat of source 7 none, the capped one with 0.
    entries = await db.execute(
        select(CreditLedger.source_id, CreditLedger.points).where(CreditLedger.member_id == m.id)
    )
    assert dict(entries.tuples().all()) == {7: 6, 8: 4, 9: 0}


# Leaderboards


async def test_leaderboard_for_admins_and_members(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock, rules: None
) -> None:
    county = await f.org(db, "县委")
    branch = await f.org(db, "支部", parent=county)
    other = await f.org(db, "外县")
    admin = await f.admin_actor(db, settings, county)
    stranger_admin = await f.admin_actor(db, settings, other, name="外县书记")
    quiz = await item(db, None, kind="quiz", min_seconds=0, points=2)
    actors = [await f.member_actor(db, settings, branch, n) for n in ("甲", "乙", "丙")]
    outsider = await f.member_actor(db, settings, other, "丁")
    for actor, count in zip([*actors, outsider], (3, 1, 3, 5), strict=True):
        for _ in range(count):
            sess = await session_at(db, actor.member, quiz, NOON)
            await _checkin(client, actor, sess.id)
    ids = [member_id(a) for a in actors]
    county_id, other_id, branch_id = county.id, other.id, branch.id
    await db.commit()

    board = await client.get(
        BOARD, params={"org_id": county_id, "period": "month", "limit": 2}, headers=admin.headers
    )
    assert board.status_code == 200, board.text
    first = board.json()
    rest = (
        await client.get(
            BOARD,
            params={"org_id": county_id, "period": "month", "cursor": first["next_cursor"]},
            headers=admin.headers,
        )
    ).json()
    ranked = [(e["rank"], e["member_id"], e["points"]) for e in first["items"] + rest["items"]]
    low, high = sorted([ids[0], ids[2]])
    assert ranked == [(1, low, 6), (1, high, 6), (3, ids[1], 2)]
    assert rest["next_cursor"] is None and first["start"] == "2026-03-01"

    problem(await client.get(BOARD, params={"org_id": county_id}), 401, "auth.missing_token")
    problem(
        await client.get(BOARD, params={"org_id": county_id}, headers=stranger_admin.headers),
        404,
        "study.org_not_found",
    )
    # A member sees only himself, ranked inside a subtree he belongs to.
    mine = (await client.get(BOARD, params={"org_id": branch_id}, headers=actors[1].headers)).json()
    assert [e["member_id"] for e in mine["items"]] == [ids[1]]
    assert mine["me"]["rank"] == 3 and mine["me"]["points"] == 2
    problem(
        await client.get(BOARD, params={"org_id": other_id}, headers=actors[1].headers),
        404,
        "study.org_not_found",
    )


# Races with real parallel connections


async def _committed_setup(
    engine: AsyncEngine, settings: Settings, sessions: int
) -> tuple[f.Actor, list[int], int]:
    async with AsyncSession(engine, expire_on_commit=False) as db:
        await service.ensure_default_rules(db)
        branch = await f.org(db, "竞态支部")
        actor = await f.member_actor(db, settings, branch)
        # article: 1 point, cap 6 a day.
        article = await item(db, branch, kind="article", min_seconds=0, points=1)
        started = datetime.now(UTC) - timedelta(minutes=5)
        ids = [(await session_at(db, actor.member, article, started)).id for _ in range(sessions)]
        mid = member_id(actor)
        await db.commit()
    return actor, ids, mid


async def test_racing_checkins_never_exceed_the_cap(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    actor, session_ids, mid = await _committed_setup(engine, settings, 12)

    async def one(session_id: int) -> httpx.Response:
        return await committing_client.post(
            CHECKINS,
            json={"session_id": session_id, "client_event_id": f"race-{session_id}"},
            headers=actor.headers,
        )

    responses = await asyncio.gather(*(one(s) for s in session_ids))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    awarded = sorted(r.json()["points_awarded"] for r in responses)
    assert sum(awarded) == 6 and awarded.count(1) == 6
    async with AsyncSession(engine) as db:
        assert await ledger_points(db, mid) == (12, 6)
        total = (
            await db.execute(select(CreditDaily.points).where(CreditDaily.member_id == mid))
        ).scalar_one()
        assert total == 6


async def test_racing_duplicates_earn_once(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    actor, session_ids, mid = await _committed_setup(engine, settings, 1)
    body = {"session_id": session_ids[0], "client_event_id": "same-event"}
    responses = await asyncio.gather(
        *(committing_client.post(CHECKINS, json=body, headers=actor.headers) for _ in range(8))
    )
    bodies = [r.json() for r in responses]
    assert all(r.status_code == 200 for r in responses), bodies
    assert {b["checkin_id"] for b in bodies} == {bodies[0]["checkin_id"]}
    assert sum(1 for b in bodies if not b["replayed"]) == 1
    async with AsyncSession(engine) as db:
        assert await ledger_points(db, mid) == (1, 1)
        rows = (await db.execute(select(func.count()).select_from(CreditLedger))).scalar_one()
        assert rows == 1
        assert (await db.get(StudySession, session_ids[0])) is not None


async def test_demo_seed_adds_items_and_a_streak(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, noon_clock: Clock
) -> None:
    from app.demo import DEMO_COUNTY
    from app.study import demo

    county = await f.org(db, DEMO_COUNTY)
    member = await f.member_actor(db, settings, county, "王建国")
    demo_settings = settings.model_copy(update={"demo_data": True})
    await demo.seed(db, demo_settings)
    await demo.seed(db, demo_settings)  # runs once
    listed = (await client.get("/api/v1/study/items", headers=member.headers)).json()
    assert len(listed["items"]) == len(demo.DEMO_ITEMS)
    credits = (await client.get(CREDITS, headers=member.headers)).json()
    assert credits["streak_days"] == 5 and credits["today"] == 0 and credits["total"] > 0
