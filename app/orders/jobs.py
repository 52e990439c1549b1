"""Scheduled jobs of the orders domain, for the worker to run every few minutes.

Both are safe to run on several instances at once: candidates are claimed with
``FOR UPDATE SKIP LOCKED`` and re-checked in the same statement (an order one instance
has escalated or closed no longer matches for the others), and every notification has a
dedupe key. Each call handles at most ``batch`` orders and returns how many it handled;
the caller commits (``async with sessionmaker.begin()``) and calls again while > 0.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.orders import notices, service
from app.orders import repository as repo
from app.orders.service import SYSTEM, Move


async def escalate_overdue_orders(session: AsyncSession, now: datetime, batch: int = 200) -> int:
    """Flag open orders past their SLA, tell the handling organisation's admins that it is
    overdue and the parent organisation's admins to supervise (the organisation's own
    admins once for a root). Once per stay at an organisation: a transfer restarts the
    clock and clears the flag."""
    orders = await repo.lock_overdue(session, now, batch)
    for order in orders:
        order.escalated_at = now
        org = await repo.get_org(session, order.org_id)
        assert org is not None
        stage = "受理" if order.status == "submitted" and order.accept_due_at < now else "办结"
        note = f"超过{stage}时限，已提醒上级组织督办"
        await repo.add_event(
            session,
            order,
            action="escalate",
            from_status=order.status,
            to_status=order.status,
            actor_account_id=None,
            actor_role=SYSTEM,
            at=now,
            note=note,
            from_org_id=org.id,
            to_org_id=org.parent_id or org.id,
        )
        await notices.tell_admins(
            session,
            org.parent_id or org.id,
            order,
            title="诉求超时督办",
            body=f"{org.name}的诉求「{order.title}」{note}",
            dedupe=f"order:{order.id}:escalate:{order.received_at.isoformat()}",
        )
        if org.parent_id is not None:  # a root organisation was just told above
            await notices.tell_admins(
                session,
                org.id,
                order,
                title="诉求已超时",
                body=f"本组织受理的诉求「{order.title}」已超过{stage}时限，请尽快办理",
                dedupe=f"order:{order.id}:overdue:{order.received_at.isoformat()}",
                template="order_overdue",
            )
    await session.flush()
    return len(orders)


async def auto_close_resolved(session: AsyncSession, now: datetime, batch: int = 200) -> int:
    """Close orders resolved more than 7 days ago that the submitter neither rated nor
    reopened."""
    orders = await repo.lock_resolved_before(session, now - service.AUTO_CLOSE_AFTER, batch)
    for order in orders:
        await service.apply(
            session,
            Move(
                order=order,
                action="close",
                role=SYSTEM,
                actor_account_id=None,
                now=now,
                note="办结 7 天未评价，自动关闭",
            ),
        )
    return len(orders)
