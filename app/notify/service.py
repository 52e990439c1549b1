"""Telling people things: inbox row + outbox job, in the caller's transaction.

Domains call :func:`notify` (or :func:`notify_member`) from their services; nothing
is sent inline. The worker delivers the WeChat subscribe message later, so a crash
after commit loses nothing and a rollback sends nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.identity.models import Account
from app.notify.models import Notification, OutboxJob

SUBSCRIBE_SEND = "wechat.subscribe_send"


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
) -> None:
    """Add a background job; with ``dedupe_key`` a second enqueue is a no-op."""
    stmt = insert(OutboxJob).values(kind=kind, payload=payload, dedupe_key=dedupe_key)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=[OutboxJob.dedupe_key])
    await session.execute(stmt)


async def notify(
    session: AsyncSession,
    *,
    account_id: int,
    template: str,
    title: str,
    body: str,
    data: dict[str, str] | None = None,
    page: str | None = None,
    dedupe_key: str | None = None,
) -> int:
    """Put a message in the account's inbox and queue its WeChat subscribe message."""
    notification_id = (
        await session.execute(
            insert(Notification)
            .values(
                account_id=account_id,
                template=template,
                title=title,
                body=body,
                data=data or {},
                page=page,
            )
            .returning(Notification.id)
        )
    ).scalar_one()
    await enqueue(
        session,
        SUBSCRIBE_SEND,
        {"notification_id": notification_id},
        dedupe_key=dedupe_key or f"notification:{notification_id}",
    )
    return int(notification_id)


async def notify_member(
    session: AsyncSession,
    *,
    member_id: int,
    template: str,
    title: str,
    body: str,
    data: dict[str, str] | None = None,
    page: str | None = None,
    dedupe_key: str | None = None,
) -> int | None:
    """Notify the WeChat account bound to a roster member (None if he never bound one)."""
    account_id = (
        await session.execute(select(Account.id).where(Account.member_id == member_id))
    ).scalar_one_or_none()
    if account_id is None:
        return None
    return await notify(
        session,
        account_id=account_id,
        template=template,
        title=title,
        body=body,
        data=data,
        page=page,
        dedupe_key=dedupe_key,
    )
