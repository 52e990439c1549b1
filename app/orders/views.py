"""Shaping orders and categories into API responses (masked personal data only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from app.core.db import Row
from app.orders.models import OrderCategory, ServiceOrder, ServiceOrderEvent
from app.orders.schemas import CategoryOut, OrderDetail, OrderOut, RatingOut, TimelineItem
from app.orders.service import is_overdue, overdue


def category_out(category: OrderCategory) -> CategoryOut:
    return CategoryOut(
        code=category.code,
        name=category.name,
        accept_hours=category.accept_hours,
        resolve_hours=category.resolve_hours,
        max_hours_per_resolve=category.max_hours_per_resolve,
        org_id=category.org_id,
    )


def order_out(order: ServiceOrder | Row, account_id: int, now: datetime) -> OrderOut:
    """``account_id``: the caller's account (``mine`` is whether he filed the order)."""
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
        received_at=order.received_at,
        accept_due_at=order.accept_due_at,
        due_at=order.due_at,
        overdue=is_overdue(order, now),
        escalated_at=order.escalated_at,
        accepted_at=order.accepted_at,
        resolved_at=order.resolved_at,
        closed_at=order.closed_at,
        reply=order.reply,
        reject_reason=order.reject_reason,
        volunteer_member_id=order.volunteer_member_id,
        hours=float(order.hours) if order.hours is not None else None,
        rating=rating,
        mine=order.submitter_account_id == account_id,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


# ``OrderOut``'s fields: the leading columns of ``repo.own_orders``' rows.
_ITEM_FIELDS = tuple(OrderOut.model_fields)


def own_order_item(row: Row, now: datetime) -> dict[str, Any]:
    """:func:`order_out`'s JSON of a row of ``repo.own_orders`` as a plain dict (no model
    built and validated), for the lists that serialize their page once
    (``app.core.responses``): the statement names and types its leading columns as the
    model's fields (``mine`` is true: the caller filed it), so the dict is the row's,
    with ``overdue`` (the request's clock) and ``rating`` filled in (item access: a
    ``Row`` attribute costs ten times more)."""
    item = dict(zip(_ITEM_FIELDS, row, strict=False))
    item["overdue"] = overdue(item["status"], item["due_at"], item["accept_due_at"], now)
    score = row["rating_score"]
    rated_at = row["rated_at"]
    if score is not None and rated_at is not None:
        item["rating"] = {"score": score, "comment": row["rating_comment"], "rated_at": rated_at}
    return item


def order_detail(
    order: ServiceOrder, events: Sequence[ServiceOrderEvent], account_id: int, now: datetime
) -> OrderDetail:
    return OrderDetail(
        **order_out(order, account_id, now).model_dump(),
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
