"""All queries of the activity domain.

Who sees an activity:

* admins: activities of organisations in their scope (:class:`app.organization.scope.Scope`);
* members: the menu of their organisations, i.e. activities of their home organisation
  and of every ancestor of it (a county's theme day is for the whole county), and of the
  organisations co-managing them through open dual-management grants and their ancestors.

A caller who is both gets the union.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Integer,
    String,
    bindparam,
    false,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.models import Activity, ActivityAttendance, ActivitySignup
from app.core.db import ConnectionSource, DriverStatement, Row
from app.members.models import Member
from app.organization.models import Organization, path_ids
from app.organization.scope import (
    Scope,
    administered_sql,
    administers_any_sql,
    co_managing_org_ids,
    menu_org_ids_sql,
)


@dataclass(frozen=True)
class Viewer:
    """The caller as the activity domain sees him: admin scope and member menu."""

    scope: Scope
    member_id: int | None
    menu_org_ids: frozenset[int]

    def activity_visible(self) -> ColumnElement[bool]:
        conditions: list[ColumnElement[bool]] = []
        if not self.scope.is_empty:
            conditions.append(self.scope.org_visible(Activity.org_id))
        if self.menu_org_ids:
            conditions.append(Activity.org_id.in_(sorted(self.menu_org_ids)))
        return or_(*conditions) if conditions else false()


async def member_menu_org_ids(session: AsyncSession, member_id: int) -> frozenset[int]:
    """Organisations whose activities are on the member's menu (see module docstring)."""
    home = (
        select(Organization.path)
        .join(Member, Member.home_org_id == Organization.id)
        .where(Member.id == member_id)
    )
    guest = select(Organization.path).where(Organization.id.in_(co_managing_org_ids(member_id)))
    paths = (await session.execute(home.union(guest))).scalars().all()
    return frozenset(org_id for path in paths for org_id in path_ids(path))


async def add_activity(session: AsyncSession, activity: Activity) -> Activity:
    session.add(activity)
    await session.flush()
    await session.refresh(activity)
    return activity


def _with_org_name() -> tuple[type[Activity], ColumnElement[str]]:
    return Activity, Organization.name.label("org_name")


# The filters of ``GET /activities`` on an activity ``a``.
_FILTERS = """(:org_id IS NULL OR a.org_id = :org_id)
  AND (:kind IS NULL OR a.kind = :kind)
  AND (:starts_from IS NULL OR a.starts_at >= :starts_from)
  AND (:starts_to IS NULL OR a.starts_at < :starts_to)
  AND (:after_at IS NULL OR (a.starts_at, a.id) < (:after_at, :after_id))"""

# The path of the activity's organisation, looked up inside the administered test: the
# test then reads the activity row alone.
_ACTIVITY_ORG_PATH = "(SELECT act_o.path FROM organizations act_o WHERE act_o.id = a.org_id)"

# ``GET /activities`` in one statement (its columns are ``ActivityOut``'s fields in
# their order, named as its JSON names them): what the caller may see (a superadmin all;
# an admin his subtrees; a member his menu: his home organisation, those co-managing him
# and their ancestors, as :meth:`Viewer.activity_visible` says, here as the scope
# module's SQL), the filters, and the caller's own sign-up and attendance.
#
# The page is picked from two sides, each reading at most a page of activities:
#
# * the menu: the newest of each menu organisation on ix_activities_org_id_starts_at
#   (a handful of organisations, found from the member's paths);
# * what the caller administers (or, a superadmin, everything): newest first on
#   ix_activities_starts_at_id, tested one by one, and skipped at once (a one-time
#   filter) for a caller who administers nothing, i.e. every member.
#
# The former single ``WHERE menu OR administered`` let PostgreSQL test organisations
# one by one in id order (a merge join walking hundreds of them, ~1.3 ms a request with
# the bench's data) or, with many activities, scan activities newest first until a
# sparse menu filled the page (~6-15 ms with 30,000 activities in 2,000 organisations);
# this form stays at ~0.2-0.3 ms for both, generic plan or custom.
_LIST = DriverStatement.of(
    text(
        f"""
SELECT a.id, a.org_id, (SELECT o.name FROM organizations o WHERE o.id = a.org_id) AS org_name,
       a.title, a.kind, a.description, a.starts_at, a.ends_at, a.checkin_opens_at,
       a.checkin_closes_at, a.online, a.lat, a.lon, a.radius_m, a.capacity, a.signup_count,
       a.credit_points, a.version, a.created_at,
       s.status AS my_signup_status, t.attended_at AS my_attended_at
FROM (
    SELECT u.id FROM (
        (SELECT p.id, p.starts_at
         FROM (SELECT DISTINCT menu.org_id
               FROM ({menu_org_ids_sql(":member_id")}) AS menu (org_id)) AS mo
         CROSS JOIN LATERAL (
             SELECT a.id, a.starts_at FROM activities a
             WHERE a.org_id = mo.org_id AND {_FILTERS}
             ORDER BY a.starts_at DESC, a.id DESC
             LIMIT :rows
         ) AS p)
        UNION
        (SELECT a.id, a.starts_at FROM activities a
         WHERE (:superadmin OR {administers_any_sql(":member_id")})
           AND (:superadmin OR {administered_sql(":member_id", _ACTIVITY_ORG_PATH)})
           AND {_FILTERS}
         ORDER BY a.starts_at DESC, a.id DESC
         LIMIT :rows)
    ) AS u
    ORDER BY u.starts_at DESC, u.id DESC
    LIMIT :rows
) AS page
JOIN activities a ON a.id = page.id
LEFT JOIN activity_signups s ON s.activity_id = a.id AND s.member_id = :member_id
LEFT JOIN activity_attendances t ON t.activity_id = a.id AND t.member_id = :member_id
ORDER BY a.starts_at DESC, a.id DESC
"""  # noqa: S608 - the scope module's SQL, no input
    ).bindparams(
        bindparam("superadmin", type_=Boolean),
        bindparam("member_id", type_=BigInteger),
        bindparam("org_id", type_=BigInteger),
        bindparam("kind", type_=String),
        bindparam("starts_from", type_=DateTime(timezone=True)),
        bindparam("starts_to", type_=DateTime(timezone=True)),
        bindparam("after_at", type_=DateTime(timezone=True)),
        bindparam("after_id", type_=BigInteger),
        bindparam("rows", type_=Integer),
    )
)


async def list_activities(
    source: ConnectionSource,
    *,
    member_id: int | None,
    superadmin: bool,
    org_id: int | None,
    kind: str | None,
    starts_from: datetime | None,
    starts_to: datetime | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Row]:
    """Newest start first, up to ``limit + 1``; ``after`` is the (starts_at, id) of the
    last row seen."""
    return await _LIST.read_rows(
        source,
        member_id=member_id,
        superadmin=superadmin,
        org_id=org_id,
        kind=kind,
        starts_from=starts_from,
        starts_to=starts_to,
        after_at=after[0] if after else None,
        after_id=after[1] if after else None,
        rows=limit + 1,
    )


async def get_activity(
    session: AsyncSession, activity_id: int, visible: ColumnElement[bool], *, lock: bool = False
) -> Activity | None:
    stmt = select(Activity).where(Activity.id == activity_id, visible)
    if lock:
        # populate_existing: a row already in the identity map takes the locked values.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    activity: Activity | None = (await session.execute(stmt)).scalar_one_or_none()
    return activity


async def org_name(session: AsyncSession, org_id: int) -> str:
    return (
        await session.execute(select(Organization.name).where(Organization.id == org_id))
    ).scalar_one()


async def my_states(
    session: AsyncSession, member_id: int, activity_ids: Sequence[int]
) -> tuple[dict[int, str], dict[int, datetime]]:
    """The member's sign-up status and attendance time for each of these activities."""
    if not activity_ids:
        return {}, {}
    signups = await session.execute(
        select(ActivitySignup.activity_id, ActivitySignup.status).where(
            ActivitySignup.member_id == member_id, ActivitySignup.activity_id.in_(activity_ids)
        )
    )
    attendances = await session.execute(
        select(ActivityAttendance.activity_id, ActivityAttendance.attended_at).where(
            ActivityAttendance.member_id == member_id,
            ActivityAttendance.activity_id.in_(activity_ids),
        )
    )
    return dict(signups.tuples().all()), dict(attendances.tuples().all())


async def get_signup(
    session: AsyncSession, activity_id: int, member_id: int, *, lock: bool = False
) -> ActivitySignup | None:
    stmt = select(ActivitySignup).where(
        ActivitySignup.activity_id == activity_id, ActivitySignup.member_id == member_id
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    signup: ActivitySignup | None = (await session.execute(stmt)).scalar_one_or_none()
    return signup


async def add_signup(session: AsyncSession, signup: ActivitySignup) -> ActivitySignup:
    session.add(signup)
    await session.flush()
    await session.refresh(signup)
    return signup


async def get_attendance(
    session: AsyncSession, activity_id: int, member_id: int
) -> ActivityAttendance | None:
    return (
        await session.execute(
            select(ActivityAttendance).where(
                ActivityAttendance.activity_id == activity_id,
                ActivityAttendance.member_id == member_id,
            )
        )
    ).scalar_one_or_none()


async def insert_attendance(
    session: AsyncSession,
    *,
    activity_id: int,
    member_id: int,
    method: str,
    lat: float | None,
    lon: float | None,
    distance_m: float | None,
    attended_at: datetime,
) -> bool:
    """Insert the attendance; False if the member already attended (a concurrent retry)."""
    inserted = await session.execute(
        insert(ActivityAttendance)
        .values(
            activity_id=activity_id,
            member_id=member_id,
            method=method,
            lat=lat,
            lon=lon,
            distance_m=distance_m,
            attended_at=attended_at,
        )
        .on_conflict_do_nothing(index_elements=["activity_id", "member_id"])
        .returning(ActivityAttendance.id)
    )
    return inserted.first() is not None


_ROLL_COLUMNS = (Member.id, Member.name, Member.phone_masked, Member.home_org_id)


async def roll_signups(
    session: AsyncSession, activity_id: int
) -> Sequence[tuple[int, str, str | None, int, datetime]]:
    return (
        (
            await session.execute(
                select(*_ROLL_COLUMNS, ActivitySignup.signed_up_at)
                .join(ActivitySignup, ActivitySignup.member_id == Member.id)
                .where(
                    ActivitySignup.activity_id == activity_id,
                    ActivitySignup.status == "signed_up",
                )
                .order_by(ActivitySignup.signed_up_at, Member.id)
            )
        )
        .tuples()
        .all()
    )


async def roll_attendances(
    session: AsyncSession, activity_id: int
) -> Sequence[tuple[int, str, str | None, int, datetime, str]]:
    return (
        (
            await session.execute(
                select(*_ROLL_COLUMNS, ActivityAttendance.attended_at, ActivityAttendance.method)
                .join(ActivityAttendance, ActivityAttendance.member_id == Member.id)
                .where(ActivityAttendance.activity_id == activity_id)
                .order_by(ActivityAttendance.attended_at, Member.id)
            )
        )
        .tuples()
        .all()
    )


async def roll_subtree_members(
    session: AsyncSession, org_path: str
) -> Sequence[tuple[int, str, str | None, int]]:
    """Members whose home organisation lies in the subtree at ``org_path``."""
    return (
        (
            await session.execute(
                select(*_ROLL_COLUMNS)
                .join(Organization, Organization.id == Member.home_org_id)
                .where(Organization.path.startswith(org_path, autoescape=True))
                .order_by(Member.id)
            )
        )
        .tuples()
        .all()
    )


async def org_path(session: AsyncSession, org_id: int) -> str:
    return (
        await session.execute(select(Organization.path).where(Organization.id == org_id))
    ).scalar_one()


async def claim_due_reminders(
    session: AsyncSession, now: datetime, until: datetime
) -> Sequence[tuple[int, int, str, datetime]]:
    """Mark active sign-ups of activities starting in ``[now, until)`` as reminded and
    return (activity_id, member_id, title, starts_at) of those not reminded before.

    The conditional UPDATE is the dedupe: two workers running at once never claim the
    same sign-up twice.
    """
    claimed = (
        update(ActivitySignup)
        .where(
            ActivitySignup.status == "signed_up",
            ActivitySignup.reminded_at.is_(None),
            ActivitySignup.activity_id == Activity.id,
            Activity.starts_at >= now,
            Activity.starts_at < until,
        )
        .values(reminded_at=now)
        .returning(
            ActivitySignup.activity_id,
            ActivitySignup.member_id,
            Activity.title,
            Activity.starts_at,
        )
    )
    rows = (await session.execute(claimed)).tuples().all()
    return sorted(rows, key=lambda row: (row[0], row[1]))
