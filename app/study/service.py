"""Study rules: items, sessions, check-ins (single and offline batch), credits, rankings.

* A check-in earns only after the item's ``min_seconds`` of server-measured time since
  the session started (the server's clock, never the phone's).
* Points and caps come from ``credit_rules`` (nearest organisation on the member's home
  path wins, else the global row); days are Asia/Shanghai days.
* One earning per session and per ``client_event_id``: repeats return the first result.
* The award itself, with its cap checks, is one SQL statement (see the repository).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core import clock
from app.core.db import ConnectionSource, driver_connection
from app.core.errors import AppError, forbidden
from app.core.pagination import decode_cursor, encode_cursor
from app.identity.principal import Principal
from app.organization.models import path_ids
from app.organization.scope import Scope, build_scope, get_visible_org
from app.study import boards, errors
from app.study import member_repository as member_repo
from app.study import repository as repo
from app.study.models import CREDIT_KINDS, SOURCES, StudyItem
from app.study.schemas import (
    BatchEvent,
    BatchOut,
    BatchResult,
    CheckinOut,
    CreditsOut,
    ItemCreate,
    ItemOut,
    LeaderboardEntry,
    LeaderboardOut,
    MyStanding,
    Period,
    SessionOut,
)

# A phone's clock may run a little ahead of ours; beyond this an event is "in the future".
CLOCK_SKEW = timedelta(seconds=60)
# Offline events older than this are not credited any more.
MAX_EVENT_AGE = timedelta(days=7)


def period_range(period: Period, today: date) -> tuple[date, date]:
    if period == "day":
        return today, today
    if period == "month":
        start = today.replace(day=1)
        following = (start + timedelta(days=32)).replace(day=1)
        return start, following - timedelta(days=1)
    return today.replace(month=1, day=1), today.replace(month=12, day=31)


# The global rules the migration seeds (学习强国-like); kept here too so that demo data
# and tests can restore them on a database whose tables were emptied.
DEFAULT_RULES: tuple[tuple[str, int, int, int], ...] = (
    # kind, points per completed unit, daily cap of the kind, overall daily cap
    ("article", 1, 6, 30),
    ("video", 1, 6, 30),
    ("vr_hall", 2, 4, 30),
    ("quiz", 2, 10, 30),
    ("activity", 5, 10, 30),
)


async def ensure_default_rules(session: AsyncSession) -> None:
    """Insert the global default rules that are missing (existing rows are kept)."""
    await repo.insert_rules(
        session,
        [
            {"org_id": None, "kind": k, "points": p, "daily_cap": c, "overall_daily_cap": o}
            for k, p, c, o in DEFAULT_RULES
        ],
    )


def rule_missing() -> AppError:
    return AppError("study.rule_missing", 409, "未配置该类学习的积分规则，请联系组织管理员")


# Items and sessions


def _item_out(item: StudyItem) -> ItemOut:
    return ItemOut.model_validate(item, from_attributes=True)


async def create_item(
    session: AsyncSession, scope: Scope, body: ItemCreate, *, account_id: int
) -> ItemOut:
    org_path: str | None = None
    org_id = body.org_id
    if org_id is None and not scope.everything:
        # The caller's organisation when he administers one; with several, he must say.
        org_id = _default_root(scope) if len(scope.roots) == 1 else None
        if org_id is None:
            raise errors.org_required()
    if org_id is not None:
        org = await get_visible_org(session, scope, org_id)
        if org is None:
            raise errors.org_not_found()
        org_path = org.path
    points = body.points
    if points is None:
        points = await repo.rule_points(session, body.kind, org_path)
    item = await repo.insert_item(
        session,
        StudyItem(
            org_id=org_id,
            title=body.title,
            kind=body.kind,
            url=body.url,
            min_seconds=body.min_seconds,
            points=points,
            created_by_account_id=account_id,
        ),
    )
    await record(
        session,
        actor_account_id=account_id,
        action="study.item_created",
        org_id=org_id,
        subject_type="study_item",
        subject_id=item.id,
        detail={"kind": item.kind, "points": item.points, "min_seconds": item.min_seconds},
    )
    return _item_out(item)


async def _visibility(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    scope = await build_scope(session, principal) if principal.is_admin else None
    home = (
        await repo.home_path(session, principal.member_id)
        if principal.member_id is not None
        else None
    )
    return repo.item_visibility(scope, home)


async def list_items(
    session: AsyncSession,
    principal: Principal,
    *,
    kind: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ItemOut], str | None]:
    after_id = decode_cursor(cursor, int)
    rows = await repo.list_items(
        session, await _visibility(session, principal), kind=kind, after_id=after_id, limit=limit
    )
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return [_item_out(item) for item in rows[:limit]], next_cursor


async def start_session(source: ConnectionSource, principal: Principal, item_id: int) -> SessionOut:
    assert principal.member_id is not None
    started_at = clock.now()
    started = await member_repo.start_session(
        source,
        member_id=principal.member_id,
        superadmin=principal.superadmin,
        item_id=item_id,
        started_at=started_at,
    )
    if started is None:
        raise errors.item_not_found()
    return SessionOut(
        session_id=started.id,
        item_id=started.item_id,
        started_at=started_at,
        min_seconds=started.min_seconds,
    )


# Check-ins


@dataclass(frozen=True)
class Judgement:
    """What became of one check-in event."""

    status: str  # accepted | duplicate | rejected
    code: str | None = None
    detail: str | None = None
    result: CheckinOut | None = None
    seconds_remaining: int | None = None


_DETAILS = {
    errors.SESSION_NOT_FOUND: "学习记录不存在或无权访问",
    errors.BEFORE_SESSION: "打卡时间早于开始学习的时间",
    errors.FUTURE_TIME: "打卡时间晚于服务器当前时间",
    errors.EVENT_TOO_OLD: "离线打卡已超过 7 天，不再计分",
}


def _rejected(code: str) -> Judgement:
    return Judgement("rejected", code, _DETAILS[code])


# How a check-in gets awarded: by the check-in batcher (app.study.batching) on the hot
# path, on the request's own connection elsewhere (on_connection).
Award = Callable[[repo.StudyClaim], Awaitable[repo.AwardRow]]


def on_connection(conn: asyncpg.Connection) -> Award:
    """Award on ``conn`` (the request's transaction), one statement per check-in."""
    return functools.partial(repo.award_study, conn)


async def _checkin(award: Award, claim: repo.StudyClaim) -> Judgement:
    row = await award(claim)
    if row.new_id is not None:
        return Judgement(
            "accepted",
            result=CheckinOut(
                checkin_id=row.new_id,
                points_awarded=row.new_points or 0,
                daily_points=row.new_daily or 0,
                daily_cap_reached=bool(row.new_cap),
            ),
        )
    if row.prev_id is not None:
        return Judgement(
            "duplicate",
            result=CheckinOut(
                checkin_id=row.prev_id,
                points_awarded=row.prev_points or 0,
                daily_points=row.prev_daily or 0,
                daily_cap_reached=bool(row.prev_cap),
                replayed=True,
            ),
        )
    if not row.found or row.started_at is None or row.min_seconds is None:
        return _rejected(errors.SESSION_NOT_FOUND)
    if claim.at < row.started_at:
        return _rejected(errors.BEFORE_SESSION)
    earliest = row.started_at + timedelta(seconds=row.min_seconds)
    if claim.at < earliest:
        remaining = max(1, math.ceil((earliest - claim.at).total_seconds()))
        return Judgement(
            "rejected",
            errors.TOO_SHORT,
            f"学习时间不足，还需学习 {remaining} 秒",
            seconds_remaining=remaining,
        )
    # Eligible, not a duplicate, and still nothing written: no rule for this kind.
    raise rule_missing()


def _claim(member_id: int, session_id: int, client_event_id: str, at: datetime) -> repo.StudyClaim:
    return repo.StudyClaim(
        member_id=member_id,
        session_id=session_id,
        client_event_id=client_event_id,
        at=at,
        day=clock.shanghai_day(at),
    )


async def checkin(
    award: Award, *, member_id: int, session_id: int, client_event_id: str
) -> CheckinOut:
    """Check in now (server time). Too short: 422 ``study.too_short`` with the seconds left."""
    judgement = await _checkin(award, _claim(member_id, session_id, client_event_id, clock.now()))
    if judgement.result is not None:
        return judgement.result
    if judgement.code == errors.TOO_SHORT:
        raise errors.too_short(judgement.seconds_remaining or 1)
    raise errors.session_not_found()


async def checkin_batch(
    session: AsyncSession, *, member_id: int, events: list[BatchEvent]
) -> BatchOut:
    """Events a phone queued offline, each judged on its own, results in the given order.

    The claimed ``occurred_at`` decides the day credited and the time studied; claims
    in the future, before the session started or older than a week earn nothing.
    """
    now = clock.now()
    award = on_connection(await driver_connection(session))
    results: list[BatchResult] = []
    for event in events:
        base = {"client_event_id": event.client_event_id, "session_id": event.session_id}
        at = event.occurred_at.astimezone(UTC)
        if at > now + CLOCK_SKEW:
            judgement = _rejected(errors.FUTURE_TIME)
        elif at < now - MAX_EVENT_AGE:
            judgement = _rejected(errors.EVENT_TOO_OLD)
        else:
            judgement = await _checkin(
                award, _claim(member_id, event.session_id, event.client_event_id, at)
            )
        if judgement.result is not None:
            outcome = judgement.result
            results.append(
                BatchResult(
                    **base,
                    status="accepted" if judgement.status == "accepted" else "duplicate",
                    checkin_id=outcome.checkin_id,
                    points_awarded=outcome.points_awarded,
                    daily_points=outcome.daily_points,
                    daily_cap_reached=outcome.daily_cap_reached,
                )
            )
        else:
            results.append(
                BatchResult(
                    **base,
                    status="rejected",
                    code=judgement.code,
                    detail=judgement.detail,
                    seconds_remaining=judgement.seconds_remaining,
                )
            )
    earned = sum(r.points_awarded for r in results if r.status == "accepted")
    return BatchOut(results=results, points_awarded=earned)


async def award_credits(
    session: AsyncSession,
    member_id: int,
    source: str,
    source_id: int,
    points: int,
    kind: str,
) -> int:
    """Award ``points`` of ``kind`` (e.g. activity attendance) under the credit rules.

    Idempotent on (source, source_id, member_id): a repeat awards nothing more and
    returns the points the first call awarded. Returns the points actually awarded
    (fewer than asked, down to 0, when a daily cap is reached).
    """
    if kind not in CREDIT_KINDS:
        raise ValueError(f"unknown credit kind {kind!r}")
    if source not in SOURCES or source == "study":
        raise ValueError(f"award_credits is for other sources than study, not {source!r}")
    if points < 0:
        raise ValueError("points must not be negative")
    at = clock.now()
    row = await repo.award_other(
        await driver_connection(session),
        member_id=member_id,
        source=source,
        source_id=source_id,
        kind=kind,
        points=points,
        at=at,
        day=clock.shanghai_day(at),
    )
    if row.new_id is not None:
        return row.new_points or 0
    if row.prev_id is not None:
        return row.prev_points or 0
    if not row.found:
        raise errors.session_not_found()
    raise rule_missing()


# Credits and rankings


async def my_credits(source: ConnectionSource, member_id: int) -> CreditsOut:
    today = clock.today()
    mine = await member_repo.my_credits(
        source,
        member_id,
        today=today,
        month_start=today.replace(day=1),
        year_start=today.replace(month=1, day=1),
    )
    # A run is still alive if its last day is today or yesterday (today is not over).
    last_day = mine.streak_last_day
    alive = last_day is not None and last_day >= today - timedelta(days=1)
    return CreditsOut(
        today=mine.today,
        this_month=mine.this_month,
        this_year=mine.this_year,
        total=mine.total,
        streak_days=mine.streak_days if alive else 0,
        day=today,
    )


async def leaderboard(
    session: AsyncSession,
    principal: Principal,
    *,
    org_id: int | None,
    period: Period,
    cursor: str | None,
    limit: int,
) -> LeaderboardOut:
    """Admins: the ranked members of a subtree in their scope. Anyone else: only his own
    rank and points in a subtree that contains his home organisation."""
    today = clock.today()
    start, end = period_range(period, today)
    after = decode_cursor(cursor, int, int)

    org = None
    if principal.is_admin:
        scope = await build_scope(session, principal)
        target = org_id if org_id is not None else _default_root(scope)
        if target is None:
            raise errors.org_required()
        org = await get_visible_org(session, scope, target)
    me: MyStanding | None = None
    if org is not None:
        rows = await boards.page(
            session, period=period, root_path=org.path, start=start, after=after, limit=limit + 1
        )
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(page[-1].points, page[-1].member_id)
        items = [
            LeaderboardEntry(rank=r.rank, member_id=r.member_id, points=r.points, name=r.name)
            for r in page
        ]
        if principal.member_id is not None:
            me = await _standing(session, principal.member_id, org.path, period, start)
        return LeaderboardOut(
            org_id=org.id,
            period=period,
            start=start,
            end=end,
            items=items,
            next_cursor=next_cursor,
            me=me,
        )

    if principal.member_id is None:
        # Outside the caller's scope is 404, as for every list; a named organisation is
        # always outside the scope of an account that is neither admin nor member.
        if principal.is_admin or org_id is not None:
            raise errors.org_not_found()
        raise forbidden("auth.member_required", "请先绑定党员身份")
    home = await repo.home_path(session, principal.member_id)
    ancestors = path_ids(home) if home else []
    target = org_id if org_id is not None else (ancestors[-1] if ancestors else None)
    if target is None or target not in ancestors:
        raise errors.org_not_found()
    own = await repo.get_org(session, target)
    if own is None:
        raise errors.org_not_found()
    me = await _standing(session, principal.member_id, own.path, period, start)
    items = []
    if me.rank is not None and after is None:
        items = [
            LeaderboardEntry(rank=me.rank, member_id=me.member_id, points=me.points, name=me.name)
        ]
    return LeaderboardOut(org_id=own.id, period=period, start=start, end=end, items=items, me=me)


def _default_root(scope: Scope) -> int | None:
    if not scope.roots:
        return None
    ids = path_ids(scope.roots[0])
    return ids[-1] if ids else None


async def _standing(
    session: AsyncSession, member_id: int, root_path: str, period: Period, start: date
) -> MyStanding:
    rank, points = await boards.standing(
        session, period=period, member_id=member_id, root_path=root_path, start=start
    )
    name = await repo.member_name(session, member_id)
    return MyStanding(member_id=member_id, name=name, points=points, rank=rank)


@dataclass(frozen=True)
class Participation:
    members: int
    studied: int

    @property
    def rate(self) -> float:
        return self.studied / self.members if self.members else 0.0


async def participation_this_month(
    session: AsyncSession, scope: Scope, today: date
) -> Participation:
    """How many members of the caller's subtrees earned study credits this month."""
    members, studied = await repo.participation(session, scope, today.replace(day=1), today)
    return Participation(members, studied)
