"""HTTP endpoints of the orders domain (``/orders``) and the time bank (``/time-bank``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import Path, Query, Request
from starlette.responses import Response

from app.core.config import Settings
from app.core.db import ReaderDep, ReadSessionDep, SessionDep, SessionOnDemandDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, IdPath, LimitParam, Page
from app.core.responses import json_response
from app.core.routing import DomainRouter, PlainRoute
from app.core.types import ParamId
from app.identity.principal import PrincipalDep
from app.orders import categories, reads, service
from app.orders.deps import ScopeDep
from app.orders.schemas import (
    CategoryConfigIn,
    CategoryOut,
    OrderCreate,
    OrderDetail,
    OrderOut,
    OrderStats,
    OrderStatus,
    RatingIn,
    RevealIn,
    RevealOut,
    TransitionIn,
)
from app.orders.views import category_out
from app.organization.scope import AdminScopeDep
from app.wechat.client import WeChatClient

router = DomainRouter(tags=["orders"])

OrderId = IdPath
CategoryCode = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{1,39}$")]


# ------------------------------------------------------------------ categories


@router.get("/orders/categories", response_model=Page[CategoryOut])
async def list_categories(
    session: SessionDep,
    _: PrincipalDep,
    org_id: Annotated[ParamId | None, Query(description="该组织生效的类别与时限")] = None,
) -> Page[CategoryOut]:
    """Categories with their SLA (extension). Defaults are seeded by the migration;
    organisations override them for their subtree."""
    effective = await categories.effective_categories(session, org_id)
    return Page(items=[category_out(c) for c in effective], next_cursor=None)


@router.put("/orders/categories/{code}", response_model=CategoryOut)
async def configure_category(
    code: CategoryCode, body: CategoryConfigIn, session: SessionDep, scope: AdminScopeDep
) -> CategoryOut:
    """Set a category's name and SLA for an organisation's subtree (extension, admins)."""
    return category_out(await categories.configure_category(session, scope, code, body))


# ------------------------------------------------------------------ statistics


@router.get("/orders/stats", response_model=OrderStats)
async def order_stats(
    session: ReadSessionDep,
    scope: AdminScopeDep,
    org_id: Annotated[ParamId | None, Query()] = None,
    from_: Annotated[date | None, Query(alias="from", description="起始日（含，北京时间）")] = None,
    to: Annotated[date | None, Query(description="截止日（含，北京时间）")] = None,
) -> OrderStats:
    """Counts by status and category, overdue, time to accept/resolve, ratings."""
    return await reads.stats(session, scope, org_id=org_id, from_=from_, to=to)


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
        return await reads.detail(session, scope, order)

    return await idem.run(_run, status_code=201)


async def list_orders(
    reader: ReaderDep,
    principal: PrincipalDep,
    sessions: SessionOnDemandDep,
    status: OrderStatus | None = None,
    org_id: Annotated[ParamId | None, Query(description="该组织及其下级组织的诉求")] = None,
    mine: Annotated[bool, Query(description="只看我提交的")] = False,
    assigned: Annotated[
        Literal["me"] | None, Query(description="me：只看指派给我（志愿者）的")
    ] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    needs_review: bool | None = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Response:
    """Admins: orders at (or once at) their organisations. Members and residents: their
    own (and, for volunteers, those assigned to them)."""
    if mine and assigned is None and org_id is None:
        # The caller's own orders: one statement on the driver pool, no session, no scope.
        body = await reads.own_page(
            reader,
            principal,
            status=status,
            category=category,
            needs_review=needs_review,
            limit=limit,
            cursor=cursor,
        )
        return json_response(body)
    async with sessions.open() as session:
        page = await reads.list_in_scope(
            session,
            principal,
            assigned_to_me=assigned == "me",
            status=status,
            org_id=org_id,
            mine=mine,
            category=category,
            needs_review=needs_review,
            limit=limit,
            cursor=cursor,
        )
    return json_response(page)


# Plain requests (no Origin) take the plain route (app/core/routing.py); same endpoint.
router.add_api_route("/orders", list_orders, methods=["GET"], route_class_override=PlainRoute)
router.add_api_route("/orders", list_orders, methods=["GET"], response_model=Page[OrderOut])


@router.get("/orders/{order_id}", response_model=OrderDetail)
async def get_order(order_id: OrderId, session: SessionDep, scope: ScopeDep) -> OrderDetail:
    return await reads.get_order(session, scope, order_id)


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
        return await reads.detail(session, scope, order)

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
        return await reads.detail(session, scope, order)

    return await idem.run(_run)


@router.post("/orders/{order_id}/reveal", response_model=RevealOut)
async def reveal_contact_phone(
    order_id: OrderId, body: RevealIn, request: Request, session: SessionDep, scope: ScopeDep
) -> RevealOut:
    """The full contact phone for an admin handling the order (extension); audit-logged."""
    settings: Settings = request.app.state.settings
    value = await service.reveal_contact_phone(session, settings, scope, order_id, body.reason)
    return RevealOut(value=value)
