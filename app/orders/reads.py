"""Reading orders in the caller's scope: the list, one order with its timeline, and
the statistics of a subtree. The state machine and its writes are in ``service.py``."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.db import ConnectionSource, Row
from app.core.pagination import Page, decode_cursor, page_of
from app.core.responses import model_json
from app.identity.principal import Principal
from app.orders import errors
from app.orders import repository as repo
from app.orders.models import ServiceOrder
from app.orders.schemas import OrderDetail, OrderOut, OrderStats
from app.orders.views import order_detail, order_out, own_order_item
from app.organization.scope import Scope, build_scope, get_visible_org


async def _subtree_path(
    session: AsyncSession, scope: Scope, org_id: int | None, *, own_orders: bool = False
) -> str | None:
    """The path of ``org_id`` to filter by, 404 unless the caller administers it (or,
    with ``own_orders``, only his own orders are read, wherever they are)."""
    if org_id is None:
        return None
    if own_orders:
        org = await repo.get_org(session, org_id)
    else:
        org = await get_visible_org(session, scope, org_id)
    if org is None:
        raise errors.scope_org_not_found()
    return org.path


async def own_page(
    reader: ConnectionSource,
    principal: Principal,
    *,
    status: str | None,
    category: str | None,
    needs_review: bool | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """``GET /orders?mine=true`` as a ``Page[OrderOut]``'s JSON (``app.core.responses``):
    the caller's own orders need no scope, one statement on the driver pool, shaped as
    plain dicts."""
    rows = await repo.own_orders(
        reader,
        principal.account_id,
        status=status,
        category=category,
        needs_review=needs_review,
        after_id=decode_cursor(cursor, int),
        limit=limit,
    )
    own, next_cursor = page_of(rows, limit, lambda o: (o["id"],))
    now = clock.now()
    return {"items": [own_order_item(o, now) for o in own], "next_cursor": next_cursor}


async def list_in_scope(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None,
    org_id: int | None,
    mine: bool,
    assigned_to_me: bool = False,
    category: str | None,
    needs_review: bool | None,
    limit: int,
    cursor: str | None,
) -> orjson.Fragment:
    """``GET /orders`` but the caller's own orders alone: read in his scope
    (:func:`list_orders`), as the model's JSON."""
    page = await list_orders(
        session,
        await build_scope(session, principal),
        status=status,
        org_id=org_id,
        mine=mine,
        assigned_to_me=assigned_to_me,
        category=category,
        needs_review=needs_review,
        limit=limit,
        cursor=cursor,
    )
    return model_json(page)


async def list_orders(
    session: AsyncSession,
    scope: Scope,
    *,
    status: str | None,
    org_id: int | None,
    mine: bool,
    assigned_to_me: bool = False,
    category: str | None,
    needs_review: bool | None,
    limit: int,
    cursor: str | None,
) -> Page[OrderOut]:
    rows = await repo.list_orders(
        session,
        scope,
        mine=mine,
        assigned_to_me=assigned_to_me,
        status=status,
        subtree_path=await _subtree_path(session, scope, org_id, own_orders=mine),
        category=category,
        needs_review=needs_review,
        after_id=decode_cursor(cursor, int),
        limit=limit,
    )
    return _page(rows, limit, scope.principal.account_id)


def _page(rows: list[ServiceOrder] | list[Row], limit: int, account_id: int) -> Page[OrderOut]:
    found: list[ServiceOrder | Row] = list(rows)
    page, next_cursor = page_of(found, limit, lambda o: (o.id,))
    now = clock.now()
    return Page(items=[order_out(o, account_id, now) for o in page], next_cursor=next_cursor)


async def detail(session: AsyncSession, scope: Scope, order: ServiceOrder) -> OrderDetail:
    """An order the caller may read, with its timeline."""
    events = await repo.timeline(session, order.id)
    return order_detail(order, events, scope.principal.account_id, clock.now())


async def get_order(session: AsyncSession, scope: Scope, order_id: int) -> OrderDetail:
    order = await repo.get_readable(session, scope, order_id)
    if order is None:
        raise errors.order_not_found()
    return await detail(session, scope, order)


def _shanghai_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=clock.SHANGHAI)


async def stats(
    session: AsyncSession,
    scope: Scope,
    *,
    org_id: int | None,
    from_: date | None,
    to: date | None,
) -> OrderStats:
    """Counts over the orders created from ``from_`` to ``to`` (inclusive, Beijing days)
    at organisations of the caller's subtree (or of ``org_id``'s, which must be in it)."""
    numbers = await repo.stats(
        session,
        scope,
        subtree_path=await _subtree_path(session, scope, org_id),
        start=_shanghai_midnight(from_) if from_ else None,
        end=_shanghai_midnight(to + timedelta(days=1)) if to else None,
        now=clock.now(),
    )
    return OrderStats(org_id=org_id, from_=from_, to=to, **numbers)
