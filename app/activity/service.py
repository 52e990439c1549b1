"""Activity rules: the menu, sign-ups with capacity, attendance with window, geofence and
rotating QR, the admin's roll call and the "starting soon" reminder.

Sign-ups are a two-state machine (``signed_up`` ⇄ ``cancelled``), see
:data:`SIGNUP_TRANSITIONS`. Repeating a sign-up or an attendance returns the first one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity import errors, qr
from app.activity import repository as repo
from app.activity.models import Activity, ActivityAttendance, ActivitySignup
from app.activity.repository import Viewer
from app.activity.schemas import (
    ActivityCreate,
    ActivityOut,
    AttendanceIn,
    AttendanceOut,
    QrOut,
    RollEntry,
    RollOut,
    SignupOut,
)
from app.audit.service import record
from app.core import clock
from app.core.config import Settings
from app.core.db import ConnectionSource, Row
from app.core.errors import AppError
from app.core.pagination import decode_cursor, encode_cursor
from app.identity.principal import Principal
from app.notify.service import notify_member
from app.organization.scope import Scope, build_scope, get_visible_org
from app.regions.service import distance_m
from app.study.service import award_credits

log = structlog.stdlib.get_logger("app.activity")

# (state, action) -> next state. Repeating a sign-up or a cancel is answered with the
# current row before this table is consulted (idempotent retries).
SIGNUP_TRANSITIONS: dict[tuple[str, str], str] = {
    ("signed_up", "cancel"): "cancelled",
    ("cancelled", "sign_up"): "signed_up",
}


def next_signup_state(state: str, action: str) -> str:
    try:
        return SIGNUP_TRANSITIONS[(state, action)]
    except KeyError:
        raise errors.invalid_signup_transition(state, action) from None


def _guard_before_start(activity: Activity, now: datetime) -> None:
    """Sign-ups and cancellations close when the activity starts."""
    if now >= activity.starts_at:
        raise errors.signup_closed()


async def viewer_for(session: AsyncSession, principal: Principal) -> Viewer:
    scope = await build_scope(session, principal)
    menu = (
        await repo.member_menu_org_ids(session, principal.member_id)
        if principal.member_id is not None
        else frozenset()
    )
    return Viewer(scope=scope, member_id=principal.member_id, menu_org_ids=menu)


def _out(
    activity: Activity | Row,
    org_name: str,
    *,
    signup_status: str | None = None,
    attended_at: datetime | None = None,
) -> ActivityOut:
    return ActivityOut(
        id=activity.id,
        org_id=activity.org_id,
        org_name=org_name,
        title=activity.title,
        kind=activity.kind,
        description=activity.description,
        starts_at=activity.starts_at,
        ends_at=activity.ends_at,
        checkin_opens_at=activity.checkin_opens_at,
        checkin_closes_at=activity.checkin_closes_at,
        online=activity.online,
        lat=activity.lat,
        lon=activity.lon,
        radius_m=activity.radius_m,
        capacity=activity.capacity,
        signup_count=activity.signup_count,
        credit_points=activity.credit_points,
        version=activity.version,
        created_at=activity.created_at,
        my_signup_status=signup_status,
        my_attended_at=attended_at,
    )


# ---------------------------------------------------------------------------
# The menu
# ---------------------------------------------------------------------------


async def create_activity(session: AsyncSession, scope: Scope, data: ActivityCreate) -> ActivityOut:
    org = await get_visible_org(session, scope, data.org_id)
    if org is None:
        raise errors.org_not_found()
    onsite = not data.online
    activity = await repo.add_activity(
        session,
        Activity(
            org_id=org.id,
            title=data.title,
            kind=data.kind,
            description=data.description,
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            checkin_opens_at=data.checkin_opens_at,
            checkin_closes_at=data.checkin_closes_at,
            online=data.online,
            lat=data.lat if onsite else None,
            lon=data.lon if onsite else None,
            radius_m=data.radius_m if onsite else None,
            capacity=data.capacity,
            credit_points=data.credit_points,
            created_by_account_id=scope.principal.account_id,
        ),
    )
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="activity.create",
        org_id=org.id,
        subject_type="activity",
        subject_id=activity.id,
        detail={"title": activity.title, "kind": activity.kind},
    )
    return _out(activity, org.name)


@dataclass(frozen=True)
class ActivityFilters:
    org_id: int | None = None
    kind: str | None = None
    starts_from: datetime | None = None
    starts_to: datetime | None = None


async def _list_rows(
    source: ConnectionSource,
    principal: Principal,
    filters: ActivityFilters,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row], str | None]:
    after = decode_cursor(cursor, datetime, int)
    rows = await repo.list_activities(
        source,
        member_id=principal.member_id,
        superadmin=principal.superadmin,
        org_id=filters.org_id,
        kind=filters.kind,
        starts_from=filters.starts_from,
        starts_to=filters.starts_to,
        after=after,
        limit=limit,
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last["starts_at"].isoformat(), last["id"])
    return rows, next_cursor


async def list_activities(
    source: ConnectionSource,
    principal: Principal,
    filters: ActivityFilters,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[ActivityOut], str | None]:
    rows, next_cursor = await _list_rows(source, principal, filters, limit=limit, cursor=cursor)
    items = [
        _out(
            row,
            row["org_name"],
            signup_status=row["my_signup_status"],
            attended_at=row["my_attended_at"],
        )
        for row in rows
    ]
    return items, next_cursor


async def list_activities_page(
    source: ConnectionSource,
    principal: Principal,
    filters: ActivityFilters,
    *,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """:func:`list_activities` as a ``Page[ActivityOut]``'s plain JSON values
    (``app.core.responses``), for ``GET /activities``: read each time the app opens."""
    rows, next_cursor = await _list_rows(source, principal, filters, limit=limit, cursor=cursor)
    # The statement's columns are the model's fields, in order and by JSON name, and its
    # values the model's types: each item is the row as a dict (no model built, and item
    # access, not ``Row``'s slow attribute access).
    keys = tuple(rows[0].keys()) if rows else ()
    return {
        "items": [dict(zip(keys, row, strict=True)) for row in rows],
        "next_cursor": next_cursor,
    }


async def _visible_activity(
    session: AsyncSession, viewer: Viewer, activity_id: int, *, lock: bool = False
) -> Activity:
    activity = await repo.get_activity(session, activity_id, viewer.activity_visible(), lock=lock)
    if activity is None:
        raise errors.activity_not_found()
    return activity


async def get_activity(session: AsyncSession, viewer: Viewer, activity_id: int) -> ActivityOut:
    activity = await _visible_activity(session, viewer, activity_id)
    signups: dict[int, str] = {}
    attended: dict[int, datetime] = {}
    if viewer.member_id is not None:
        signups, attended = await repo.my_states(session, viewer.member_id, [activity.id])
    return _out(
        activity,
        await repo.org_name(session, activity.org_id),
        signup_status=signups.get(activity.id),
        attended_at=attended.get(activity.id),
    )


# ---------------------------------------------------------------------------
# Sign-ups
# ---------------------------------------------------------------------------


def _signup_out(signup: ActivitySignup) -> SignupOut:
    return SignupOut(
        id=signup.id,
        activity_id=signup.activity_id,
        member_id=signup.member_id,
        status=signup.status,
        signed_up_at=signup.signed_up_at,
        cancelled_at=signup.cancelled_at,
    )


async def sign_up(
    session: AsyncSession, viewer: Viewer, activity_id: int, now: datetime
) -> SignupOut:
    """Sign the member up; capacity holds under concurrency (the activity row is locked
    while the count is checked and raised). A repeated sign-up returns the first."""
    member_id = _member_id(viewer)
    activity = await _visible_activity(session, viewer, activity_id, lock=True)
    signup = await repo.get_signup(session, activity.id, member_id, lock=True)
    if signup is not None and signup.status == "signed_up":
        return _signup_out(signup)
    _guard_before_start(activity, now)
    if activity.capacity is not None and activity.signup_count >= activity.capacity:
        raise errors.full()
    if signup is None:
        signup = await repo.add_signup(
            session,
            ActivitySignup(
                activity_id=activity.id,
                member_id=member_id,
                status="signed_up",
                signed_up_at=now,
            ),
        )
    else:
        signup.status = next_signup_state(signup.status, "sign_up")
        signup.signed_up_at = now
        signup.cancelled_at = None
        signup.reminded_at = None
    activity.signup_count += 1
    await session.flush()
    return _signup_out(signup)


async def cancel_signup(
    session: AsyncSession, viewer: Viewer, activity_id: int, now: datetime
) -> SignupOut:
    """Withdraw the member's own sign-up before the start and before attending;
    repeating it is harmless."""
    member_id = _member_id(viewer)
    activity = await _visible_activity(session, viewer, activity_id, lock=True)
    signup = await repo.get_signup(session, activity.id, member_id, lock=True)
    if signup is None:
        raise errors.signup_not_found()
    if signup.status == "cancelled":
        return _signup_out(signup)
    # The check-in window may open before the start: whoever attended stays signed up.
    if await repo.get_attendance(session, activity.id, member_id) is not None:
        raise errors.already_attended()
    _guard_before_start(activity, now)
    signup.status = next_signup_state(signup.status, "cancel")
    signup.cancelled_at = now
    activity.signup_count -= 1
    await session.flush()
    return _signup_out(signup)


def _member_id(viewer: Viewer) -> int:
    if viewer.member_id is None:  # the router requires a member; kept for type safety
        raise errors.signup_not_found()
    return viewer.member_id


# ---------------------------------------------------------------------------
# Attendance
# ---------------------------------------------------------------------------


def _attendance_out(attendance: ActivityAttendance) -> AttendanceOut:
    return AttendanceOut(
        id=attendance.id,
        activity_id=attendance.activity_id,
        member_id=attendance.member_id,
        method=attendance.method,
        distance_m=round(attendance.distance_m) if attendance.distance_m is not None else None,
        attended_at=attendance.attended_at,
        credits_awarded=attendance.credits_awarded,
    )


@dataclass(frozen=True)
class Presence:
    """How the member proved he is there."""

    method: str
    distance_m: float | None


def check_presence(
    activity: Activity, body: AttendanceIn, settings: Settings, now: datetime
) -> Presence:
    """The sign-in rules, in order: window, then QR token, online, or geofence."""
    if not activity.checkin_opens_at <= now <= activity.checkin_closes_at:
        raise errors.window_closed(activity.checkin_opens_at, activity.checkin_closes_at)
    distance: float | None = None
    if body.lat is not None and body.lon is not None and activity.lat is not None:
        assert activity.lon is not None
        distance = distance_m(activity.lat, activity.lon, body.lat, body.lon)
    if body.qr_token is not None:
        if not qr.verify(settings.qr_secret, activity.id, body.qr_token, now):
            raise errors.invalid_qr()
        return Presence("qr", distance)
    if activity.online:
        return Presence("online", None)
    if distance is None:
        raise errors.location_required()
    assert activity.radius_m is not None
    if distance > activity.radius_m:
        raise errors.too_far(distance, activity.radius_m)
    return Presence("location", distance)


async def attend(
    session: AsyncSession,
    settings: Settings,
    viewer: Viewer,
    activity_id: int,
    body: AttendanceIn,
    now: datetime,
) -> AttendanceOut:
    """Record the member's attendance once; a repeat returns the first record. An activity
    with ``credit_points`` awards them as study credits (kind ``activity``)."""
    member_id = _member_id(viewer)
    activity = await _visible_activity(session, viewer, activity_id)
    existing = await repo.get_attendance(session, activity.id, member_id)
    if existing is not None:
        return _attendance_out(existing)
    presence = check_presence(activity, body, settings, now)
    if activity.capacity is not None:
        signup = await repo.get_signup(session, activity.id, member_id)
        if signup is None or signup.status != "signed_up":
            raise errors.signup_required()
    inserted = await repo.insert_attendance(
        session,
        activity_id=activity.id,
        member_id=member_id,
        method=presence.method,
        lat=body.lat,
        lon=body.lon,
        distance_m=presence.distance_m,
        attended_at=now,
    )
    attendance = await repo.get_attendance(session, activity.id, member_id)
    assert attendance is not None  # inserted now, or by a concurrent retry that won
    if inserted and activity.credit_points:
        attendance.credits_awarded = await _award(session, activity, member_id)
        await session.flush()
    return _attendance_out(attendance)


async def _award(session: AsyncSession, activity: Activity, member_id: int) -> int:
    """Study credits for attending: idempotent per (activity, member) on the study side and
    capped by its daily rules. A missing credit rule must not block the attendance itself."""
    assert activity.credit_points is not None
    try:
        return await award_credits(
            session,
            member_id,
            source="activity",
            source_id=activity.id,
            points=activity.credit_points,
            kind="activity",
        )
    except AppError as error:
        if error.code != "study.rule_missing":
            raise
        log.warning("activity.credits_rule_missing", activity_id=activity.id)
        return 0


# ---------------------------------------------------------------------------
# Admin: QR code and roll call
# ---------------------------------------------------------------------------


def _admin_viewer(scope: Scope) -> Viewer:
    """Admin endpoints see only what the admin scope covers, not the admin's own menu."""
    return Viewer(scope=scope, member_id=None, menu_org_ids=frozenset())


async def current_qr(
    session: AsyncSession, settings: Settings, scope: Scope, activity_id: int, now: datetime
) -> QrOut:
    activity = await _visible_activity(session, _admin_viewer(scope), activity_id)
    step = qr.step_of(now)
    return QrOut(
        qr_token=qr.token_for(settings.qr_secret, activity.id, step),
        expires_at=qr.step_expires_at(step),
        step_seconds=qr.STEP_SECONDS,
    )


async def roll_call(session: AsyncSession, scope: Scope, activity_id: int) -> RollOut:
    """Signed up, attended and absent, where absent = expected − attended and expected =
    members whose home organisation is in the activity organisation's subtree plus
    everyone signed up (guests included)."""
    activity = await _visible_activity(session, _admin_viewer(scope), activity_id)
    signups = await repo.roll_signups(session, activity.id)
    attendances = await repo.roll_attendances(session, activity.id)
    subtree = await repo.roll_subtree_members(
        session, await repo.org_path(session, activity.org_id)
    )

    signed_up_at = {row[0]: row[4] for row in signups}
    attended = {row[0]: (row[4], row[5]) for row in attendances}

    def entry(member_id: int, name: str, phone: str | None, home_org_id: int) -> RollEntry:
        attended_at, method = attended.get(member_id, (None, None))
        return RollEntry(
            member_id=member_id,
            name=name,
            phone_masked=phone,
            home_org_id=home_org_id,
            signed_up_at=signed_up_at.get(member_id),
            attended_at=attended_at,
            method=method,
        )

    expected: dict[int, RollEntry] = {}
    for member_id, name, phone, home_org_id in subtree:
        expected[member_id] = entry(member_id, name, phone, home_org_id)
    for member_id, name, phone, home_org_id, _ in signups:
        expected.setdefault(member_id, entry(member_id, name, phone, home_org_id))
    return RollOut(
        activity_id=activity.id,
        expected_count=len(expected),
        signed_up=[entry(*row[:4]) for row in signups],
        attended=[entry(*row[:4]) for row in attendances],
        absent=[
            e
            for e in sorted(expected.values(), key=lambda e: e.member_id)
            if e.member_id not in attended
        ],
    )


# ---------------------------------------------------------------------------
# Reminders (scheduled by the worker)
# ---------------------------------------------------------------------------


async def remind_activity_starting(
    session: AsyncSession, now: datetime, within_minutes: int = 60
) -> int:
    """Notify signed-up members of activities starting within ``within_minutes``.

    Each sign-up is reminded at most once (``reminded_at``, claimed atomically), and the
    outbox job is deduplicated per activity and member as well. Returns the number of
    sign-ups reminded in this run.
    """
    due = await repo.claim_due_reminders(session, now, now + timedelta(minutes=within_minutes))
    for activity_id, member_id, title, starts_at in due:
        local = starts_at.astimezone(clock.SHANGHAI)
        await notify_member(
            session,
            member_id=member_id,
            template="activity_starting",
            title="活动即将开始",
            body=f"您报名的活动「{title}」将于 {local:%m月%d日 %H:%M} 开始，请按时参加。",
            data={
                "thing1": title[:20],
                "time2": f"{local:%Y-%m-%d %H:%M}",
            },
            page=f"pages/activity/detail?id={activity_id}",
            dedupe_key=f"activity_starting:{activity_id}:{member_id}",
        )
    return len(due)
