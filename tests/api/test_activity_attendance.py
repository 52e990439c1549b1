"""Activities, second half: attendance (window, geofence, rotating QR), credits, the
admin's QR screen and roll call, the "starting soon" reminder and demo data."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.activity import qr
from app.activity.models import Activity, ActivityAttendance, ActivitySignup
from app.activity.service import remind_activity_starting
from app.core.config import Settings
from app.notify.models import Notification, OutboxJob
from app.organization.models import DualManagementGrant
from tests import factories as f
from tests.api.test_activities import (  # the shared fixtures and builders of this domain
    FAR,
    NEAR,
    VILLAGE_LAT,
    VILLAGE_LON,
    Tree,
    app,
    in_progress,
    make_activity,
    make_tree,
    tree,
    upcoming,
)
from tests.clock import Clock
from tests.conftest import TransactionSource, problem

__all__ = ["app", "tree"]  # fixtures used by name


# ---------------------------------------------------------------------------
# Attendance: window, geofence, QR
# ---------------------------------------------------------------------------


def settled_step(clock: Clock) -> int:
    """Stop the clock 10 seconds into the current QR step, so that the requests that
    follow run in that step (the test compares tokens of neighbouring steps)."""
    step = qr.step_of(clock.now)
    clock.now = datetime.fromtimestamp(step * qr.STEP_SECONDS + 10, UTC)
    return step


async def attendance_count(db: AsyncSession) -> int:
    return (await db.execute(select(func.count()).select_from(ActivityAttendance))).scalar_one()


async def _attend(
    client: httpx.AsyncClient, activity: Activity, actor: f.Actor, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        f"/api/v1/activities/{activity.id}/attendance", json=body, headers=actor.headers
    )


async def test_attendance_inside_window_and_radius(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    activity = await make_activity(db, tree.village)
    member = await f.member_actor(db, settings, tree.village)
    response = await _attend(client, activity, member, NEAR)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["method"] == "location" and 95 <= body["distance_m"] <= 105
    row = (await db.execute(select(ActivityAttendance))).scalar_one()
    assert member.member is not None and row.member_id == member.member.id
    assert row.lat == pytest.approx(NEAR["lat"])

    # Once per member: a repeat (even from far away, or after a retry) returns the first.
    again = await _attend(client, activity, member, FAR)
    assert again.json()["id"] == body["id"] and again.json()["distance_m"] == body["distance_m"]
    assert (
        await db.execute(select(func.count()).select_from(ActivityAttendance))
    ).scalar_one() == 1
    got = await client.get(f"/api/v1/activities/{activity.id}", headers=member.headers)
    assert got.json()["my_attended_at"] is not None


async def test_attendance_too_far_reports_distance(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    activity = await make_activity(db, tree.village)
    member = await f.member_actor(db, settings, tree.village)
    body = problem(await _attend(client, activity, member, FAR), 422, "activity.too_far")
    assert 1100 <= body["distance_m"] <= 1125 and body["radius_m"] == 300
    # Just outside the 300 m radius (about 334 m) is refused too.
    edge = {"lat": VILLAGE_LAT + 0.003, "lon": VILLAGE_LON}
    assert problem(await _attend(client, activity, member, edge), 422, "activity.too_far")[
        "distance_m"
    ] == pytest.approx(334, abs=2)
    assert (
        await db.execute(select(func.count()).select_from(ActivityAttendance))
    ).scalar_one() == 0


@pytest.mark.parametrize("when", ["before", "after"])
async def test_attendance_outside_window(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree, when: str
) -> None:
    now = datetime.now(UTC)
    shift = timedelta(hours=3) if when == "before" else -timedelta(hours=3)
    activity = await make_activity(db, tree.village, times=in_progress(now + shift))
    member = await f.member_actor(db, settings, tree.village)
    body = problem(await _attend(client, activity, member, NEAR), 422, "activity.window_closed")
    assert datetime.fromisoformat(body["checkin_opens_at"]) == activity.checkin_opens_at
    # One timestamp format in bodies and problem extensions: UTC with "Z".
    shown = (await client.get(f"/api/v1/activities/{activity.id}", headers=member.headers)).json()
    assert body["checkin_opens_at"] == shown["checkin_opens_at"]
    assert body["checkin_closes_at"].endswith("Z")
    # A valid QR token does not open a closed window either.
    token = qr.token_for(settings.qr_secret, activity.id, qr.step_of(now))
    problem(
        await _attend(client, activity, member, {"qr_token": token}),
        422,
        "activity.window_closed",
    )
    assert (
        await db.execute(select(func.count()).select_from(ActivityAttendance))
    ).scalar_one() == 0


async def test_attendance_with_fresh_qr_token_from_admin_screen(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    activity = await make_activity(db, tree.village)
    admin = await f.admin_actor(db, settings, tree.village, "branch_admin")
    shown = await client.get(f"/api/v1/activities/{activity.id}/qr", headers=admin.headers)
    assert shown.status_code == 200, shown.text
    code = shown.json()
    assert code["step_seconds"] == 30
    expires = datetime.fromisoformat(code["expires_at"])
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=30)
    assert code["qr_token"] == qr.token_for(
        settings.qr_secret, activity.id, qr.step_of(expires) - 1
    )

    member = await f.member_actor(db, settings, tree.village)
    # The QR proves presence: no location needed, even a far one is fine.
    response = await _attend(client, activity, member, {"qr_token": code["qr_token"], **FAR})
    assert response.status_code == 201, response.text
    assert response.json()["method"] == "qr"
    row = (await db.execute(select(ActivityAttendance))).scalar_one()
    assert row.method == "qr" and row.distance_m is not None and row.distance_m > 1000


async def test_attendance_qr_previous_step_accepted_stale_refused(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree, clock: Clock
) -> None:
    activity = await make_activity(db, tree.village)
    other = await make_activity(db, tree.village, title="另一个活动")
    previous = await f.member_actor(db, settings, tree.village, "甲")
    stale = await f.member_actor(db, settings, tree.village, "乙")
    step = settled_step(clock)

    for token in (
        qr.token_for(settings.qr_secret, activity.id, step - 3),  # 90 s old
        qr.token_for(settings.qr_secret, activity.id, step + 2),  # from the future
        qr.token_for(settings.qr_secret, other.id, step),  # another activity's code
        qr.token_for("another-secret", activity.id, step),  # forged
        "AAAAAAAAAAAAAAAAAAAAAA",
    ):
        problem(
            await _attend(client, activity, stale, {"qr_token": token}),
            422,
            "activity.invalid_qr",
        )
    problem(
        await _attend(client, activity, stale, {"qr_token": "not a token!"}),
        422,
        "validation.failed",
    )
    # The previous step's code (the one shown a moment ago) still works.
    ok = await _attend(
        client,
        activity,
        previous,
        {"qr_token": qr.token_for(settings.qr_secret, activity.id, step - 1)},
    )
    assert ok.status_code == 201 and ok.json()["method"] == "qr"
    attended = (await db.execute(select(ActivityAttendance.member_id))).scalars().all()
    assert previous.member is not None and attended == [previous.member.id]


async def test_attendance_qr_shown_code_lasts_one_more_step(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree, clock: Clock
) -> None:
    activity = await make_activity(db, tree.village)
    admin = await f.admin_actor(db, settings, tree.village, "branch_admin")
    on_time = await f.member_actor(db, settings, tree.village, "甲")
    too_late = await f.member_actor(db, settings, tree.village, "乙")
    step = settled_step(clock)
    shown = await client.get(f"/api/v1/activities/{activity.id}/qr", headers=admin.headers)
    code = shown.json()["qr_token"]
    assert code == qr.token_for(settings.qr_secret, activity.id, step)

    clock.advance(seconds=qr.STEP_SECONDS)  # the screen has moved on: still accepted
    ok = await _attend(client, activity, on_time, {"qr_token": code})
    assert ok.status_code == 201 and ok.json()["method"] == "qr"
    clock.advance(seconds=qr.STEP_SECONDS)  # two steps old: refused
    problem(
        await _attend(client, activity, too_late, {"qr_token": code}), 422, "activity.invalid_qr"
    )
    attended = (await db.execute(select(ActivityAttendance.member_id))).scalars().all()
    assert on_time.member is not None and attended == [on_time.member.id]


async def test_attendance_other_rules(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    online = await make_activity(db, tree.county, online=True, kind="online_class")
    onsite = await make_activity(db, tree.village)
    limited = await make_activity(db, tree.village, capacity=5)
    foreign = await make_activity(db, tree.sibling)
    member = await f.member_actor(db, settings, tree.village)
    resident = await f.resident_actor(db, settings)

    ok = await _attend(client, online, member, {})
    assert ok.status_code == 201 and ok.json()["method"] == "online"
    problem(await _attend(client, onsite, member, {}), 422, "activity.location_required")
    body = problem(
        await _attend(client, onsite, member, {"lat": VILLAGE_LAT}), 422, "validation.failed"
    )
    assert body["errors"][0]["field"] == "lon"
    problem(await _attend(client, limited, member, NEAR), 422, "activity.signup_required")
    problem(await _attend(client, foreign, member, NEAR), 404, "activity.not_found")
    problem(
        await client.post(f"/api/v1/activities/{onsite.id}/attendance", json=NEAR),
        401,
        "auth.missing_token",
    )
    problem(await _attend(client, onsite, resident, NEAR), 403, "auth.member_required")
    rows = (await db.execute(select(ActivityAttendance.activity_id))).scalars().all()
    assert rows == [online.id]


async def test_concurrent_attendance_retries_record_once(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        tree = await make_tree(session)
        activity = await make_activity(session, tree.village)
        member = await f.member_actor(session, settings, tree.village)
        await session.commit()
    url = f"/api/v1/activities/{activity.id}/attendance"
    responses = await asyncio.gather(
        *(committing_client.post(url, json=NEAR, headers=member.headers) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    async with AsyncSession(engine) as session:
        count = (
            await session.execute(select(func.count()).select_from(ActivityAttendance))
        ).scalar_one()
        assert count == 1


async def test_attendance_earns_the_activity_credits_once(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    from app.study.models import CreditRule
    from app.study.service import my_credits

    # The village's own activity rule (the seeded global rules may have been truncated by
    # a committing test): 5 points a unit, at most 10 a day.
    db.add(
        CreditRule(
            org_id=tree.village.id, kind="activity", points=5, daily_cap=10, overall_daily_cap=30
        )
    )
    rewarded = await make_activity(db, tree.village, title="有积分的主题党日")
    rewarded.credit_points = 5
    plain = await make_activity(db, tree.village, title="无积分的会议", kind="branch_meeting")
    member = await f.member_actor(db, settings, tree.village)
    assert member.member is not None
    await db.flush()
    first = await _attend(client, rewarded, member, NEAR)
    assert first.status_code == 201, first.text
    assert first.json()["credits_awarded"] == 5
    again = await _attend(client, rewarded, member, NEAR)
    assert again.json()["credits_awarded"] == 5
    no_credit = await _attend(client, plain, member, NEAR)
    assert no_credit.json()["credits_awarded"] == 0
    capped = await make_activity(db, tree.village, title="高积分活动")
    capped.credit_points = 8
    await db.flush()
    # The daily cap of 10 for activities leaves 5 of these 8 points today.
    third = await _attend(client, capped, member, NEAR)
    assert third.json()["credits_awarded"] == 5
    credits = await my_credits(TransactionSource(db), member.member.id)
    assert credits.today == 10 and credits.total == 10


async def test_missing_credit_rule_does_not_block_attendance(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    from sqlalchemy import delete

    from app.study.models import CreditRule

    await db.execute(delete(CreditRule).where(CreditRule.kind == "activity"))
    activity = await make_activity(db, tree.village)
    activity.credit_points = 5
    member = await f.member_actor(db, settings, tree.village)
    await db.flush()
    response = await _attend(client, activity, member, NEAR)
    assert response.status_code == 201, response.text
    assert response.json()["credits_awarded"] == 0
    assert await attendance_count(db) == 1


# ---------------------------------------------------------------------------
# Admin: QR screen and roll call
# ---------------------------------------------------------------------------


async def test_qr_is_for_admins_in_scope(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    activity = await make_activity(db, tree.village)
    url = f"/api/v1/activities/{activity.id}/qr"
    member = await f.member_actor(db, settings, tree.village)
    outsider = await f.admin_actor(db, settings, tree.sibling)
    county = await f.admin_actor(db, settings, tree.county)
    problem(await client.get(url), 401, "auth.missing_token")
    problem(await client.get(url, headers=member.headers), 403, "auth.admin_required")
    problem(await client.get(url, headers=outsider.headers), 404, "activity.not_found")
    assert (await client.get(url, headers=county.headers)).status_code == 200


async def test_roll_call_lists_signed_up_attended_and_absent(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    activity = await make_activity(db, tree.village)
    secretary = await f.admin_actor(db, settings, tree.village, "branch_admin", "书记")
    signed_and_came = await f.member_actor(db, settings, tree.village, "甲")
    came_unsigned = await f.member_actor(db, settings, tree.village, "乙")
    await f.member_actor(db, settings, tree.village, "丙")  # stays at home
    guest = await f.member_actor(db, settings, tree.other_branch, "流入党员")
    await f.member_actor(db, settings, tree.sibling, "邻村党员")  # not expected
    assert guest.member is not None
    db.add(DualManagementGrant(member_id=guest.member.id, org_id=tree.village.id))
    await db.flush()

    for actor in (signed_and_came, guest):
        # Sign-ups close at the start; this one started, so write them directly.
        assert actor.member is not None
        db.add(ActivitySignup(activity_id=activity.id, member_id=actor.member.id))
    activity.signup_count = 2
    outsider = await f.admin_actor(db, settings, tree.other_county)
    for actor in (signed_and_came, came_unsigned):
        assert (await _attend(client, activity, actor, NEAR)).status_code == 201

    response = await client.get(
        f"/api/v1/activities/{activity.id}/attendance", headers=secretary.headers
    )
    assert response.status_code == 200, response.text
    roll = response.json()

    def names(entries: list[dict[str, Any]]) -> list[str]:
        return sorted(entry["name"] for entry in entries)

    assert names(roll["signed_up"]) == ["流入党员", "甲"]
    assert names(roll["attended"]) == ["乙", "甲"]
    assert names(roll["absent"]) == ["丙", "书记", "流入党员"]
    assert roll["expected_count"] == 5
    first = next(e for e in roll["attended"] if e["name"] == "甲")
    assert first["attended_at"] and first["signed_up_at"] and first["method"] == "location"
    for entry in roll["signed_up"] + roll["attended"] + roll["absent"]:
        assert entry["phone_masked"] is None or "****" in entry["phone_masked"]

    url = f"/api/v1/activities/{activity.id}/attendance"
    problem(await client.get(url), 401, "auth.missing_token")
    problem(await client.get(url, headers=came_unsigned.headers), 403, "auth.admin_required")
    problem(await client.get(url, headers=outsider.headers), 404, "activity.not_found")


# ---------------------------------------------------------------------------
# Reminder before the start (called by the worker)
# ---------------------------------------------------------------------------


async def test_reminder_once_per_signup(db: AsyncSession, settings: Settings, tree: Tree) -> None:
    now = datetime.now(UTC)
    soon = await make_activity(db, tree.village, times=upcoming(0.5), title="半小时后开始")
    later = await make_activity(db, tree.village, times=upcoming(3), title="三小时后开始")
    bound = await f.member_actor(db, settings, tree.village, "甲")
    unbound = await f.member(db, settings, tree.village, "乙")
    cancelled = await f.member_actor(db, settings, tree.village, "丙")
    assert bound.member is not None and cancelled.member is not None
    db.add_all(
        [
            ActivitySignup(activity_id=soon.id, member_id=bound.member.id),
            ActivitySignup(activity_id=soon.id, member_id=unbound.id),
            ActivitySignup(activity_id=soon.id, member_id=cancelled.member.id, status="cancelled"),
            ActivitySignup(activity_id=later.id, member_id=bound.member.id),
        ]
    )
    await db.flush()

    assert await remind_activity_starting(db, now, within_minutes=60) == 2
    assert await remind_activity_starting(db, now, within_minutes=60) == 0
    notes = (
        (await db.execute(select(Notification).where(Notification.template == "activity_starting")))
        .scalars()
        .all()
    )
    assert len(notes) == 1 and notes[0].account_id == bound.account.id
    assert "半小时后开始" in notes[0].body
    jobs = (
        (
            await db.execute(
                select(OutboxJob.dedupe_key).where(OutboxJob.dedupe_key.like("activity_starting:%"))
            )
        )
        .scalars()
        .all()
    )
    assert jobs == [f"activity_starting:{soon.id}:{bound.member.id}"]
    # Three hours ahead comes into range later, once.
    assert await remind_activity_starting(db, now + timedelta(hours=2, minutes=30)) == 1
    assert await remind_activity_starting(db, now + timedelta(hours=2, minutes=40)) == 0


# ---------------------------------------------------------------------------
# Demo data
# ---------------------------------------------------------------------------


async def test_demo_seed_adds_activities_once(db: AsyncSession, settings: Settings) -> None:
    from app.activity.demo import seed
    from app.demo import seed_demo

    demo = settings.model_copy(update={"demo_data": True})
    await seed_demo(db, demo)
    await seed(db, demo)
    await seed(db, demo)
    activities = (await db.execute(select(Activity).order_by(Activity.starts_at))).scalars().all()
    assert [a.kind for a in activities] == [
        "branch_meeting",  # yesterday, with its roll
        "volunteer",  # sign-in open now
        "online_class",
        "theme_day",
        "branch_meeting",
    ]
    signups = (await db.execute(select(ActivitySignup))).scalars().all()
    yesterday, theme_day = activities[0], activities[3]
    assert sorted(s.activity_id for s in signups) == sorted([theme_day.id, *[yesterday.id] * 2])
    assert theme_day.signup_count == 1 and yesterday.signup_count == 2  # one stayed away
    attended = (await db.execute(select(ActivityAttendance.activity_id))).scalars().all()
    assert attended == [yesterday.id]


async def test_cancelling_a_signup_after_attending_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, tree: Tree
) -> None:
    # Check-in opened 15 minutes ago, the activity starts in 15 minutes.
    activity = await make_activity(db, tree.village, times=upcoming(hours=0.25))
    member = await f.member_actor(db, settings, tree.village)
    other = await f.member_actor(db, settings, tree.village, "李四")
    url = f"/api/v1/activities/{activity.id}/signups"
    for actor in (member, other):
        assert (await client.post(url, headers=actor.headers)).status_code == 201
    assert (await _attend(client, activity, member, NEAR)).status_code == 201

    problem(
        await client.delete(f"{url}/me", headers=member.headers),
        409,
        "activity.already_attended",
    )
    assert member.member is not None
    signup = (
        await db.execute(
            select(ActivitySignup).where(
                ActivitySignup.activity_id == activity.id,
                ActivitySignup.member_id == member.member.id,
            )
        )
    ).scalar_one()
    await db.refresh(signup)
    await db.refresh(activity)
    assert (signup.status, signup.cancelled_at) == ("signed_up", None)
    assert activity.signup_count == 2
    # Someone who has not attended may still cancel before the start.
    cancelled = await client.delete(f"{url}/me", headers=other.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    await db.refresh(activity)
    assert activity.signup_count == 1
