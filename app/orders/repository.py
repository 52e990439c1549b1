"""All queries of the orders domain. Scoped reads go through :class:`app.organization.scope`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import ConnectionSource, DriverStatement, Row
from app.identity.models import Account
from app.identity.principal import Principal
from app.members.models import Member
from app.orders.models import (
    DEFAULT_MAX_HOURS_PER_RESOLVE,
    OrderCategory,
    ServiceOrder,
    ServiceOrderEvent,
    ServiceOrderOrg,
)
from app.organization import repository as org_repo
from app.organization.models import Organization, path_ids
from app.organization.scope import Scope

OPEN_STATUSES = ("submitted", "accepted", "in_progress")


# ------------------------------------------------------------------ scope


def readable(scope: Scope) -> ColumnElement[bool]:
    """Orders the caller may read: his own, those assigned to him as volunteer, and (admins)
    those that are or were at an organisation of his subtrees, or filed by a member his
    subtrees co-manage."""
    if scope.everything:
        return true()
    principal = scope.principal
    conditions: list[ColumnElement[bool]] = [
        ServiceOrder.submitter_account_id == principal.account_id
    ]
    if principal.member_id is not None:
        conditions.append(ServiceOrder.volunteer_member_id == principal.member_id)
    if scope.roots:
        conditions.append(
            ServiceOrder.id.in_(
                select(ServiceOrderOrg.order_id).where(scope.org_visible(ServiceOrderOrg.org_id))
            )
        )
        conditions.append(ServiceOrder.submitter_member_id.in_(scope.guest_member_ids()))
    return or_(*conditions)


async def get_org(session: AsyncSession, org_id: int) -> Organization | None:
    return await session.get(Organization, org_id)


async def member_served_by(
    session: AsyncSession, principal: Principal, org_id: int, member_id: int
) -> bool:
    """True if ``org_id`` may serve the member: his home lies in its subtree, or it
    co-manages him (the *read* verb of that organisation's scope)."""
    org = await session.get(Organization, org_id)
    if org is None:
        return False
    served = Scope.subtree(principal, org.path)
    row = await session.execute(
        select(Member.id).where(
            Member.id == member_id,
            served.member_visible(Member.id.expression, Member.home_org_id),
        )
    )
    return row.first() is not None


async def max_hours_per_resolve(session: AsyncSession, category_id: int) -> int:
    cap = (
        await session.execute(
            select(OrderCategory.max_hours_per_resolve).where(OrderCategory.id == category_id)
        )
    ).scalar_one_or_none()
    return cap if cap is not None else DEFAULT_MAX_HOURS_PER_RESOLVE


async def in_progress_since(session: AsyncSession, order_id: int) -> datetime | None:
    """When the order last went into progress (``start``, or ``reopen`` after a resolve)."""
    return (
        await session.execute(
            select(func.max(ServiceOrderEvent.created_at)).where(
                ServiceOrderEvent.order_id == order_id,
                ServiceOrderEvent.to_status == "in_progress",
            )
        )
    ).scalar_one()


async def openid_of(session: AsyncSession, account_id: int) -> str | None:
    return (
        await session.execute(select(Account.openid).where(Account.id == account_id))
    ).scalar_one_or_none()


async def admin_member_ids(session: AsyncSession, org_id: int) -> list[int]:
    """Admins responsible for an organisation (its own, else its nearest ancestor's)."""
    return await org_repo.responsible_admin_member_ids(session, org_id)


# ------------------------------------------------------------------ categories


async def categories_for_path(session: AsyncSession, path: str | None) -> list[OrderCategory]:
    """The effective categories at an organisation: for each code, the override of the
    nearest ancestor (or the organisation itself), else the global default."""
    ancestors = path_ids(path) if path else []
    depth = {org_id: index for index, org_id in enumerate(ancestors)}
    rows = (
        (
            await session.execute(
                select(OrderCategory).where(
                    or_(
                        OrderCategory.org_id.is_(None),
                        OrderCategory.org_id.in_(ancestors) if ancestors else false(),
                    )
                )
            )
        )
        .scalars()
        .all()
    )

    def rank(category: OrderCategory) -> int:
        return -1 if category.org_id is None else depth[category.org_id]

    best: dict[str, OrderCategory] = {}
    for row in rows:
        current = best.get(row.code)
        if current is None or rank(row) > rank(current):
            best[row.code] = row
    return sorted((c for c in best.values() if c.active), key=lambda c: (c.sort_order, c.code))


async def upsert_category(
    session: AsyncSession,
    *,
    org_id: int,
    code: str,
    name: str,
    accept_hours: int,
    resolve_hours: int,
    max_hours_per_resolve: int,
    active: bool,
) -> OrderCategory:
    values: dict[str, Any] = {
        "name": name,
        "accept_hours": accept_hours,
        "resolve_hours": resolve_hours,
        "max_hours_per_resolve": max_hours_per_resolve,
        "active": active,
    }
    default_order = (
        select(OrderCategory.sort_order)
        .where(OrderCategory.org_id.is_(None), OrderCategory.code == code)
        .scalar_subquery()
    )
    category_id = (
        await session.execute(
            insert(OrderCategory)
            .values(
                org_id=org_id,
                code=code,
                sort_order=func.coalesce(default_order, 100),
                **values,
            )
            .on_conflict_do_update(
                index_elements=[OrderCategory.org_id, OrderCategory.code],
                set_={**values, "updated_at": func.now()},
            )
            .returning(OrderCategory.id)
        )
    ).scalar_one()
    category = await session.get(OrderCategory, category_id, populate_existing=True)
    assert category is not None
    return category


# ------------------------------------------------------------------ orders


async def get_readable(
    session: AsyncSession, scope: Scope, order_id: int, *, lock: bool = False
) -> ServiceOrder | None:
    stmt = select(ServiceOrder).where(ServiceOrder.id == order_id, readable(scope))
    if lock:
        stmt = stmt.with_for_update(of=ServiceOrder)
    stmt = stmt.execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_orders(
    session: AsyncSession,
    scope: Scope,
    *,
    mine: bool,
    assigned_to_me: bool = False,
    status: str | None,
    subtree_path: str | None,
    category: str | None,
    needs_review: bool | None,
    after_id: int | None,
    limit: int,
) -> list[ServiceOrder]:
    """Up to ``limit + 1`` orders, newest first: with ``assigned_to_me`` the orders the
    caller is the volunteer of; with ``mine`` (or for a caller who administers nothing)
    the caller's own (and those assigned to him as volunteer, unless ``mine``), else
    every order he may read."""
    if assigned_to_me:  # the volunteer's own work list
        member_id = scope.principal.member_id
        visible: ColumnElement[bool] = (
            ServiceOrder.volunteer_member_id == member_id if member_id is not None else false()
        )
    elif mine or scope.is_empty:
        visible = ServiceOrder.submitter_account_id == (scope.principal.account_id)
        if not mine and scope.principal.member_id is not None:
            visible = or_(visible, ServiceOrder.volunteer_member_id == scope.principal.member_id)
    else:
        visible = readable(scope)
    stmt = select(ServiceOrder).where(visible)
    if status is not None:
        stmt = stmt.where(ServiceOrder.status == status)
    if subtree_path is not None:
        stmt = stmt.where(
            ServiceOrder.org_id.in_(
                select(Organization.id).where(
                    Organization.path.startswith(subtree_path, autoescape=True)
                )
            )
        )
    if category is not None:
        stmt = stmt.where(ServiceOrder.category_code == category)
    if needs_review is not None:
        stmt = stmt.where(ServiceOrder.needs_review.is_(needs_review))
    if after_id is not None:
        stmt = stmt.where(ServiceOrder.id < after_id)
    stmt = stmt.order_by(ServiceOrder.id.desc()).limit(limit + 1)
    return list((await session.execute(stmt)).scalars().all())


# The caller's own orders (``GET /orders?mine=true``), newest first, in one statement:
# what :func:`app.orders.views.order_out` shows, nothing else (no encrypted phone).
# ``GET /orders?mine=true``: the caller's own orders. The columns up to ``updated_at``
# are ``OrderOut``'s fields in their order, named and typed as its JSON has them
# (app/orders/views.py ``own_order_item`` takes each row as a dict and sets ``overdue``,
# which needs the request's clock, and ``rating``, from the three columns after them).
_OWN_ORDERS = DriverStatement.of(
    text(
        """
SELECT o.id, o.category_code AS category, o.category_name, o.title, o.description,
       o.address, o.lat, o.lon, o.contact_phone_masked AS contact_phone, o.org_id, o.status,
       o.version, o.needs_review, o.review_reason, o.submitted_at, o.received_at,
       o.accept_due_at, o.due_at, NULL::boolean AS overdue, o.escalated_at, o.accepted_at,
       o.resolved_at, o.closed_at, o.reply, o.reject_reason, o.volunteer_member_id,
       o.hours::float8 AS hours, NULL::text AS rating, true AS mine, o.created_at,
       o.updated_at,
       o.rating_score, o.rating_comment, o.rated_at
FROM service_orders o
WHERE o.submitter_account_id = :account_id
  AND o.id < coalesce(:before_id, 9223372036854775807)
  AND (:status IS NULL OR o.status = :status)
  AND (:category IS NULL OR o.category_code = :category)
  AND (:needs_review IS NULL OR o.needs_review = :needs_review)
ORDER BY o.id DESC
LIMIT :rows
"""
    ).bindparams(
        bindparam("before_id", type_=BigInteger),
        bindparam("status", type_=String),
        bindparam("category", type_=String),
        bindparam("needs_review", type_=Boolean),
        bindparam("rows", type_=Integer),
    )
)


async def own_orders(
    source: ConnectionSource,
    account_id: int,
    *,
    status: str | None,
    category: str | None,
    needs_review: bool | None,
    after_id: int | None,
    limit: int,
) -> list[Row]:
    """Up to ``limit + 1`` of the orders ``account_id`` filed, newest first, as
    :data:`_OWN_ORDERS` names them."""
    return await _OWN_ORDERS.read_rows(
        source,
        account_id=account_id,
        before_id=after_id,
        status=status,
        category=category,
        needs_review=needs_review,
        rows=limit + 1,
    )


async def timeline(session: AsyncSession, order_id: int) -> Sequence[ServiceOrderEvent]:
    return (
        (
            await session.execute(
                select(ServiceOrderEvent)
                .where(ServiceOrderEvent.order_id == order_id)
                .order_by(ServiceOrderEvent.id)
            )
        )
        .scalars()
        .all()
    )


async def add_to_trail(session: AsyncSession, order_id: int, org_id: int) -> None:
    await session.execute(
        insert(ServiceOrderOrg).values(order_id=order_id, org_id=org_id).on_conflict_do_nothing()
    )


async def add_event(
    session: AsyncSession,
    order: ServiceOrder,
    *,
    action: str,
    from_status: str | None,
    to_status: str,
    actor_account_id: int | None,
    actor_role: str,
    at: datetime,
    note: str | None = None,
    from_org_id: int | None = None,
    to_org_id: int | None = None,
) -> None:
    session.add(
        ServiceOrderEvent(
            order_id=order.id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor_account_id=actor_account_id,
            actor_role=actor_role,
            note=note,
            from_org_id=from_org_id,
            to_org_id=to_org_id,
            created_at=at,
        )
    )


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    return and_(
        ServiceOrder.status.in_(OPEN_STATUSES),
        or_(
            ServiceOrder.due_at < now,
            and_(ServiceOrder.status == "submitted", ServiceOrder.accept_due_at < now),
        ),
    )


async def lock_overdue(session: AsyncSession, now: datetime, batch: int) -> Sequence[ServiceOrder]:
    """Open, overdue, not yet escalated orders; rows another worker holds are skipped."""
    return (
        (
            await session.execute(
                select(ServiceOrder)
                .where(overdue_condition(now), ServiceOrder.escalated_at.is_(None))
                .order_by(ServiceOrder.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )


async def lock_resolved_before(
    session: AsyncSession, cutoff: datetime, batch: int
) -> Sequence[ServiceOrder]:
    return (
        (
            await session.execute(
                select(ServiceOrder)
                .where(ServiceOrder.status == "resolved", ServiceOrder.resolved_at <= cutoff)
                .order_by(ServiceOrder.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )


# ------------------------------------------------------------------ statistics


def _hours(expr: Any) -> Any:
    return func.extract("epoch", expr) / 3600.0


async def stats(
    session: AsyncSession,
    scope: Scope,
    *,
    subtree_path: str | None,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """Numbers over the orders currently at organisations of the subtree, created in
    ``[start, end)``. An order counts once, at the organisation that holds it now."""
    conditions: list[ColumnElement[bool]] = [scope.org_visible(ServiceOrder.org_id)]
    if subtree_path is not None:
        conditions.append(
            ServiceOrder.org_id.in_(
                select(Organization.id).where(
                    Organization.path.startswith(subtree_path, autoescape=True)
                )
            )
        )
    if start is not None:
        conditions.append(ServiceOrder.created_at >= start)
    if end is not None:
        conditions.append(ServiceOrder.created_at < end)
    where = and_(*conditions)

    # Counts per (status, category) in one hash aggregate; status and category totals
    # are their sums.
    by_status: dict[str, int] = {}
    categories: dict[str, tuple[str, int]] = {}
    for status, code, name, n in await session.execute(
        select(
            ServiceOrder.status,
            ServiceOrder.category_code,
            func.min(ServiceOrder.category_name),
            func.count(),
        )
        .where(where)
        .group_by(ServiceOrder.status, ServiceOrder.category_code)
    ):
        by_status[str(status)] = by_status.get(str(status), 0) + int(n)
        known, count = categories.get(code, (name, 0))
        categories[code] = (min(known, name), count + int(n))
    by_category = [
        {"category": code, "name": name, "count": n}
        for code, (name, n) in sorted(categories.items(), key=lambda kv: (-kv[1][1], kv[0]))
    ]
    # The p90s sort the intervals themselves (fixed width, about twice as fast as
    # sorting numeric hours) and convert the one result.
    accept_interval = ServiceOrder.accepted_at - ServiceOrder.submitted_at
    resolve_interval = ServiceOrder.resolved_at - ServiceOrder.created_at
    accept = _hours(accept_interval)
    resolve = _hours(resolve_interval)
    row = (
        await session.execute(
            select(
                func.count().filter(overdue_condition(now)),
                func.count().filter(ServiceOrder.escalated_at.is_not(None)),
                func.count().filter(ServiceOrder.resolved_at > ServiceOrder.due_at),
                func.count(ServiceOrder.accepted_at),
                func.avg(accept),
                _hours(func.percentile_cont(0.9).within_group(accept_interval)),
                func.count(ServiceOrder.resolved_at),
                func.avg(resolve),
                _hours(func.percentile_cont(0.9).within_group(resolve_interval)),
                func.avg(ServiceOrder.rating_score),
                func.count(ServiceOrder.rating_score),
            ).where(where)
        )
    ).one()

    def _num(value: Any) -> float | None:
        return None if value is None else round(float(value), 2)

    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_category": by_category,
        "overdue": int(row[0]),
        "escalated": int(row[1]),
        "resolved_late": int(row[2]),
        "time_to_accept": {
            "count": int(row[3]),
            "mean_hours": _num(row[4]),
            "p90_hours": _num(row[5]),
        },
        "time_to_resolve": {
            "count": int(row[6]),
            "mean_hours": _num(row[7]),
            "p90_hours": _num(row[8]),
        },
        "mean_rating": _num(row[9]),
        "rating_count": int(row[10]),
    }
