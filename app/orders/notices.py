"""Messages about an order: to the submitter (status), the volunteer (assignment) and
the admins responsible for the organisation that holds it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.notify.service import notify, notify_member
from app.orders import repository as repo
from app.orders.errors import STATE_LABELS
from app.orders.models import ServiceOrder

STATUS_TEMPLATE = "order_status"


async def tell_submitter(
    session: AsyncSession, order: ServiceOrder, *, action: str, note: str | None, now: datetime
) -> None:
    """The submitter's status message after a move someone else made."""
    label = "已转办" if action == "transfer" else STATE_LABELS[order.status]
    detail = note or label
    await notify(
        session,
        account_id=order.submitter_account_id,
        template=STATUS_TEMPLATE,
        title="诉求进度更新",
        body=f"您的诉求「{order.title}」{label}：{detail}"[:500],
        data={
            "thing1": order.title[:20],
            "phrase2": label,
            "thing3": detail[:20],
            "time4": now.astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M"),
        },
        page=f"pages/orders/detail?id={order.id}",
        dedupe_key=f"order:{order.id}:status:{order.version}",
    )


async def tell_volunteer(session: AsyncSession, order: ServiceOrder, member_id: int) -> None:
    await notify_member(
        session,
        member_id=member_id,
        template="order_assigned",
        title="您被指派办理服务诉求",
        body=f"您被指派为诉求「{order.title}」的志愿者，请及时联系办理。",
        data={"thing1": order.title[:20], "thing2": "您被指派为志愿者"},
        page=f"pages/orders/detail?id={order.id}",
        dedupe_key=f"order:{order.id}:volunteer:{member_id}:{order.version}",
    )


async def tell_admins(
    session: AsyncSession,
    org_id: int,
    order: ServiceOrder,
    *,
    title: str,
    body: str,
    dedupe: str,
    template: str = "order_assigned",
) -> int:
    """Message the admins responsible for ``org_id``; how many were told."""
    told = 0
    for member_id in await repo.admin_member_ids(session, org_id):
        sent = await notify_member(
            session,
            member_id=member_id,
            template=template,
            title=title,
            body=body[:500],
            data={"thing1": order.title[:20], "thing2": body[:20]},
            page=f"pages/orders/detail?id={order.id}",
            dedupe_key=f"{dedupe}:{member_id}",
        )
        told += sent is not None
    return told
