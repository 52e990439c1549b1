"""HTTP endpoints of the orders domain (``/orders``) and the time bank (``/time-bank``)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from app.core import clock
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page, page_of
from app.orders import errors, service
from app.orders import repository as repo
from app.orders.deps import ScopeDep, after_id
from app.orders.models import OrderCategory, ServiceOrder
from app.orders.schemas import (
    CategoryConfigIn,
    CategoryOut,
    OrderCreate,
    OrderDetail,
    OrderOut,
    OrderStats,
    OrderStatus,
    RatingIn,
    RatingOut,
    RevealIn,
    RevealOut,
    TimelineItem,
    TransitionIn,
)
from app.orders.time_bank_router import router as time_bank_router
from app.organization.scope import AdminScopeDep, PrincipalDep, Scope, get_visible_org
from app.wechat.client import WeChatClient

router = APIRouter(tags=["orders"])
router.include_router(time_bank_router)

OrderId = Annotated[int, Path(ge=1)]
CategoryCode = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{1,39}$")]


def category_out(category: OrderCategory) -> CategoryOut:
    return CategoryOut(
        code=category.code,
        name=category.name,
        accept_hours=category.accept_hours,
        resolve_hours=category.resolve_hours,
        max_hours_per_resolve=category.max_hours_per_resolve,
        org_id=category.org_id,
    )


def order_out(order: ServiceOrder, scope: Scope, now: datetime) -> OrderOut:
    rating = None
    if order.rating_score is not None and order.rated_at is not None:
        rating = RatingOut(
            score=order.rating_score, comment=order.rating_comment, rated_at=order.rated_at
        )
    return OrderOut(
        id=order.id,
        category=order.category_code,
        category_name=order.category_name,
        title=order.title,
        description=order.description,
        address=order.address,
        lat=order.lat,
        lon=order.lon,
        contact_phone=order.contact_phone_masked,
        org_id=order.org_id,
        status=order.status,
        version=order.version,
        needs_review=order.needs_review,
        review_reason=order.review_reason,
        submitted_at=order.submitted_at,
        accept_due_at=order.accept_due_at,
        due_at=order.due_at,
        overdue=service.is_overdue(order, now),
        escalated_at=order.escalated_at,
        accepted_at=order.accepted_at,
        resolved_at=order.resolved_at,
        closed_at=order.closed_at,
        reply=order.reply,
        reject_reason=order.reject_reason,
        volunteer_member_id=order.volunteer_member_id,
        hours=float(order.hours) if order.hours is not None else None,
        rating=rating,
        mine=order.submitter_account_id == scope.principal.account_id,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


async def order_detail(session: SessionDep, order: ServiceOrder, scope: Scope) -> OrderDetail:
    events = await repo.timeline(session, order.id)
    base = order_out(order, scope, clock.now())
    return OrderDetail(
        **base.model_dump(),
        timeline=[
            TimelineItem(
                id=e.id,
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                actor_account_id=e.actor_account_id,
                actor_role=e.actor_role,
                note=e.note,
                from_org_id=e.from_org_id,
                to_org_id=e.to_org_id,
                at=e.created_at,
            )
            for e in events
        ],
    )


# ------------------------------------------------------------------ categories


@router.get("/orders/categories", response_model=Page[CategoryOut])
async def list_categories(
    session: SessionDep,
    _: PrincipalDep,
    org_id: Annotated[int | None, Query(ge=1, description="该组织生效的类别与时限")] = None,
) -> Page[CategoryOut]:
    """Categories with their SLA (extension). Defaults are seeded by the migration;
    organisations override them for their subtree."""
    categories = await service.effective_categories(session, org_id)
    return Page(items=[category_out(c) for c in categories], next_cursor=None)


@router.put("/orders/categories/{code}", response_model=CategoryOut)
async def configure_category(
    code: CategoryCode, body: CategoryConfigIn, session: SessionDep, scope: AdminScopeDep
) -> CategoryOut:
    """Set a category's name and SLA for an organisation's subtree (extension, admins)."""
    return category_out(await service.configure_category(session, scope, code, body))


# ------------------------------------------------------------------ statistics


def _shanghai_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=clock.SHANGHAI)


@router.get("/orders/stats", response_model=OrderStats)
async def order_stats(
    session: SessionDep,
    scope: AdminScopeDep,
    org_id: Annotated[int | None, Query(ge=1)] = None,
    from_: Annotated[date | None, Query(alias="from", description="起始日（含，北京时间）")] = None,
    to: Annotated[date | None, Query(description="截止日（含，北京时间）")] = None,
) -> OrderStats:
    """Counts by status and category, overdue, time to accept/resolve, ratings."""
    path = None
    if org_id is not None:
        if await get_visible_org(session, scope, org_id) is None:
            raise errors.scope_org_not_found()
        org = await repo.get_org(session, org_id)
        assert org is not None
        path = org.path
    numbers = await repo.stats(
        session,
        scope,
        subtree_path=path,
        start=_shanghai_midnight(from_) if from_ else None,
        end=_shanghai_midnight(to + timedelta(days=1)) if to else None,
        now=clock.now(),
    )
    return OrderStats(org_id=org_id, from_=from_, to=to, **numbers)


# ------------------------------------------------------------------ orders


@router.post("/orders", status_code=201, response_model=OrderDetail)
async def submit_order(
    body: OrderCreate,
    request: Request,
    session: SessionDep,
    scope: ScopeDep,
    idem: IdempotencyDep,
) -> Response:
    """File a request (member or resident). Title and description pass WeChat's content
    check: risky text is 422 ``content.risky``; "review" or an unreachable WeChat accept
    the order with ``needs_review: true``."""
    settings: Settings = request.app.state.settings
    wechat: WeChatClient = request.app.state.wechat

    async def _run() -> OrderDetail:
        order = await service.submit(session, settings, wechat, scope.principal, body)
        return await order_detail(session, order, scope)

    return await idem.run(_run, status_code=201)


@router.get("/orders", response_model=Page[OrderOut])
async def list_orders(
    session: SessionDep,
    scope: ScopeDep,
    status: OrderStatus | None = None,
    org_id: Annotated[int | None, Query(ge=1, description="该组织及其下级组织的诉求")] = None,
    mine: Annotated[bool, Query(description="只看我提交的")] = False,
    category: Annotated[str | None, Query(max_length=40)] = None,
    needs_review: bool | None = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[OrderOut]:
    """Admins: orders at (or once at) their organisations. Members and residents: their
    own (and, for volunteers, those assigned to them)."""
    path = None
    if org_id is not None:
        org = await repo.get_org(session, org_id)
        if org is None or not (mine or await get_visible_org(session, scope, org_id) is not None):
            raise errors.scope_org_not_found()
        path = org.path
    stmt = repo.list_statement(
        scope,
        mine=mine,
        status=status,
        subtree_path=path,
        category=category,
        needs_review=needs_review,
        after_id=after_id(cursor),
        limit=limit,
    )
    rows = list((await session.execute(stmt)).scalars().all())
    page, next_cursor = page_of(rows, limit, lambda o: (o.id,))
    now = clock.now()
    return Page(items=[order_out(o, scope, now) for o in page], next_cursor=next_cursor)


@router.get("/orders/{order_id}", response_model=OrderDetail)
async def get_order(order_id: OrderId, session: SessionDep, scope: ScopeDep) -> OrderDetail:
    order = await repo.get_readable(session, scope, order_id)
    if order is None:
        raise errors.order_not_found()
    return await order_detail(session, order, scope)


@router.post("/orders/{order_id}/transitions", response_model=OrderDetail)
async def transition_order(
    order_id: OrderId,
    body: TransitionIn,
    session: SessionDep,
    scope: ScopeDep,
    idem: IdempotencyDep,
) -> Response:
    """accept, start, transfer, resolve, reject (admins of the order's organisation);
    cancel, reopen (the submitter). Stale ``version`` is 409 ``conflict.stale_version``,
    an illegal move 409 ``order.invalid_transition``."""

    async def _run() -> OrderDetail:
        order = await service.transition(session, scope, order_id, body)
        return await order_detail(session, order, scope)

    return await idem.run(_run)


@router.post("/orders/{order_id}/rating", response_model=OrderDetail)
async def rate_order(
    order_id: OrderId,
    body: RatingIn,
    session: SessionDep,
    scope: ScopeDep,
    idem: IdempotencyDep,
) -> Response:
    """The submitter rates a resolved order once; rating closes it."""

    async def _run() -> OrderDetail:
        order = await service.rate(session, scope, order_id, body)
        return await order_detail(session, order, scope)

    return await idem.run(_run)


@router.post("/orders/{order_id}/reveal", response_model=RevealOut)
async def reveal_contact_phone(
    order_id: OrderId, body: RevealIn, request: Request, session: SessionDep, scope: ScopeDep
) -> RevealOut:
    """The full contact phone for an admin handling the order (extension); audit-logged."""
    settings: Settings = request.app.state.settings
    value = await service.reveal_contact_phone(session, settings, scope, order_id, body.reason)
    return RevealOut(value=value)
