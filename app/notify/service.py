"""Telling people things: inbox row + outbox job, in the caller's transaction.

Domains call :func:`notify` (or :func:`notify_member`) from their services; nothing
is sent inline. The worker delivers the WeChat subscribe message later, so a crash
after commit loses nothing and a rollback sends nothing.

Template names and the ``data`` keys each template reads are in
:mod:`app.notify.templates` (e.g. ``order_status`` reads ``order_no``, ``order_title``,
``status``, ``updated_at``, ``note``; missing keys fall back to the title and body).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import DateTime, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.db import ConnectionSource, Row
from app.core.pagination import decode_cursor, page_of
from app.core.responses import model_json
from app.identity.models import Account
from app.notify import repository
from app.notify.errors import notification_not_found
from app.notify.models import Notification, OutboxJob, SubscriptionGrant
from app.notify.schemas import (
    NotificationOut,
    ReadAllOut,
    SubscriptionList,
    SubscriptionOut,
    TemplateList,
    TemplateOut,
)
from app.notify.templates import TEMPLATE_NAMES, TEMPLATES, template_ids

SUBSCRIBE_SEND = "wechat.subscribe_send"


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
) -> None:
    """Add a background job; with ``dedupe_key`` a second enqueue is a no-op."""
    stmt = insert(OutboxJob).values(
        kind=kind, payload=payload, dedupe_key=dedupe_key, run_after=clock.now()
    )
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
    data: dict[str, str | int] | None = None,
    page: str | None = None,
    dedupe_key: str | None = None,
) -> int:
    """Put a message in the account's inbox and queue its WeChat subscribe message.

    With ``dedupe_key`` the whole notification is idempotent: a second call with the
    same key (a re-run scheduled job, a retried request, even a concurrent transaction,
    which waits on the unique index) adds neither an inbox row nor a job and returns
    the first notification's id.
    """
    if page is None and template in TEMPLATES:
        page = TEMPLATES[template].page  # every message opens a page of the mini-program
    job_id: int | None = None
    if dedupe_key is not None:
        job_id = (
            await session.execute(
                insert(OutboxJob)
                .values(
                    kind=SUBSCRIBE_SEND, payload={}, dedupe_key=dedupe_key, run_after=clock.now()
                )
                .on_conflict_do_nothing(index_elements=[OutboxJob.dedupe_key])
                .returning(OutboxJob.id)
            )
        ).scalar_one_or_none()
        if job_id is None:
            first = (
                await session.execute(
                    select(OutboxJob.payload).where(OutboxJob.dedupe_key == dedupe_key)
                )
            ).scalar_one_or_none()
            if first and isinstance(first.get("notification_id"), int):
                return int(first["notification_id"])
    notification_id = int(
        (
            await session.execute(
                insert(Notification)
                .values(
                    account_id=account_id,
                    template=template,
                    title=title[:100],
                    body=body[:500],
                    data=data or {},
                    page=page,
                )
                .returning(Notification.id)
            )
        ).scalar_one()
    )
    payload = {"notification_id": notification_id}
    if job_id is not None:
        # The job row was ours (uncommitted, so no worker has seen it): fill it in.
        await session.execute(
            update(OutboxJob).where(OutboxJob.id == job_id).values(payload=payload)
        )
    else:
        await enqueue(
            session, SUBSCRIBE_SEND, payload, dedupe_key=f"notification:{notification_id}"
        )
    return notification_id


async def notify_member(
    session: AsyncSession,
    *,
    member_id: int,
    template: str,
    title: str,
    body: str,
    data: dict[str, str | int] | None = None,
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


_NOTIFY_MEMBERS = text(
    """
    WITH acc AS (
        SELECT id AS account_id, member_id FROM accounts
        WHERE member_id = ANY(CAST(:member_ids AS bigint[]))
    ), n AS (
        INSERT INTO notifications (account_id, template, title, body, data, page)
        SELECT account_id, :template, :title, :body, :data, :page FROM acc
        RETURNING id, account_id
    ), j AS (
        INSERT INTO outbox_jobs (kind, payload, dedupe_key, run_after)
        SELECT :kind, jsonb_build_object('notification_id', n.id), 'notification:' || n.id, :now
        FROM n
        ON CONFLICT (dedupe_key) DO NOTHING
    )
    SELECT acc.member_id, n.id FROM n JOIN acc USING (account_id)
    """
).bindparams(bindparam("data", type_=JSONB), bindparam("now", type_=DateTime(timezone=True)))


async def notify_members(
    session: AsyncSession,
    member_ids: Sequence[int],
    *,
    template: str,
    title: str,
    body: str,
    data: dict[str, str | int] | None = None,
    page: str | None = None,
) -> dict[int, int]:
    """:func:`notify_member` for many members in one statement (a campaign's thousands of
    recipients): an inbox row and a subscribe-message job for each member with a bound
    account. Returns member id -> notification id. The caller keeps it to once per
    member (e.g. a unique row per recipient written first)."""
    if not member_ids:
        return {}
    if page is None and template in TEMPLATES:
        page = TEMPLATES[template].page
    rows = await session.execute(
        _NOTIFY_MEMBERS,
        {
            "member_ids": list(member_ids),
            "template": template,
            "title": title[:100],
            "body": body[:500],
            "data": data or {},
            "page": page,
            "kind": SUBSCRIBE_SEND,
            "now": clock.now(),
        },
    )
    return {int(member_id): int(notification_id) for member_id, notification_id in rows}


# -- inbox -----------------------------------------------------------------------------


def _ids_as_integers(data: dict[str, Any]) -> dict[str, str | int]:
    """Ids are integers in every body; rows written before that rule hold ``"12"``."""
    return {
        key: int(value)
        if key.endswith("_id") and isinstance(value, str) and value.isascii() and value.isdigit()
        else value
        for key, value in data.items()
    }


def _out(n: Notification | Row) -> NotificationOut:
    """A notification, as the session loads it or as a row of
    :func:`repository.inbox_page` (``data`` as JSON text there)."""
    data = orjson.loads(n.data) if isinstance(n.data, str) else n.data
    return NotificationOut(
        id=n.id,
        template=n.template,
        title=n.title,
        body=n.body,
        data=_ids_as_integers(data or {}),
        page=n.page,
        read=n.read_at is not None,
        read_at=n.read_at,
        created_at=n.created_at,
    )


_TEMPLATES = frozenset(TEMPLATE_NAMES)
_INT64 = range(-(2**63), 2**63)


# ``NotificationOut``'s fields: the leading columns of ``repository.inbox_page``'s rows.
_ITEM_FIELDS = tuple(NotificationOut.model_fields)


def _plain_data(text: str | None) -> dict[str, Any] | None:
    """The stored ``data`` (JSON text) as :func:`_ids_as_integers` makes it, or None if
    the model would coerce or refuse a value (or orjson could not write it)."""
    stored = (orjson.loads(text) if text is not None else None) or {}
    if type(stored) is not dict:
        return None
    for key, value in stored.items():
        if type(value) is str:
            if key.endswith("_id") and value.isascii() and value.isdigit():
                number = int(value)
                if number not in _INT64:
                    return None
                stored[key] = number  # an existing key: the dict keeps its size and order
        elif type(value) is not int or value not in _INT64:
            return None
    return stored


def _plain_item(n: Row) -> dict[str, Any] | orjson.Fragment:
    """A row of :func:`repository.inbox_page` as :func:`_out`'s model dumps it to JSON,
    shaped as a plain dict (no model built and validated): the statement names its
    leading columns as the model's fields, so the dict is the row's, with ``data``
    parsed (item access: a ``Row`` attribute costs ten times more). A row whose template
    or data the model would coerce or refuse (or orjson could not write) is the model's
    own JSON, so the body is the model's either way."""
    item = dict(zip(_ITEM_FIELDS, n, strict=False))
    data = _plain_data(item["data"])
    if data is None or item["template"] not in _TEMPLATES:
        return model_json(_out(n))
    item["data"] = data
    return item


async def inbox(
    source: ConnectionSource,
    account_id: int,
    *,
    unread_only: bool,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A :class:`NotificationPage` as plain JSON values (``app.core.responses``): the
    inbox is read each time the mini-program opens."""
    before_id = decode_cursor(cursor, int)
    unread_count, rows = await repository.inbox_page(
        source, account_id, unread_only=unread_only, limit=limit, before_id=before_id
    )
    page, next_cursor = page_of(rows, limit, lambda r: (r["id"],))
    return {
        "items": [_plain_item(r) for r in page],
        "next_cursor": next_cursor,
        "unread_count": unread_count,
    }


async def read(session: AsyncSession, account_id: int, notification_id: int) -> NotificationOut:
    notification = await repository.mark_read(session, account_id, notification_id)
    if notification is None:
        raise notification_not_found()
    return _out(notification)


async def read_all(session: AsyncSession, account_id: int) -> ReadAllOut:
    updated = await repository.mark_all_read(session, account_id)
    return ReadAllOut(
        updated=updated, unread_count=await repository.unread_count(session, account_id)
    )


# -- subscribe-message grants ----------------------------------------------------------


def _grant_out(grant: SubscriptionGrant) -> SubscriptionOut:
    return SubscriptionOut(
        template=grant.template,
        accepted=None if grant.last_decision is None else grant.last_decision == "accept",
        remaining=grant.remaining,
        updated_at=grant.updated_at,
    )


async def record_subscription(
    session: AsyncSession, account_id: int, template: str, accepted: bool
) -> SubscriptionOut:
    """Record what ``wx.requestSubscribeMessage`` reported for one template.

    WeChat's one-time subscriptions allow one message per ``accept``; a ``reject``
    grants nothing new but does not take back grants already given.
    """
    grant = await repository.record_decision(session, account_id, template, accepted)
    return _grant_out(grant)


async def subscriptions(session: AsyncSession, account_id: int) -> SubscriptionList:
    known = {g.template: g for g in await repository.grants_of(session, account_id)}
    return SubscriptionList(
        items=[
            _grant_out(known[name])
            if name in known
            else SubscriptionOut(template=name, remaining=0)
            for name in TEMPLATE_NAMES
        ]
    )


def templates() -> TemplateList:
    """Every subscribe-message template with this deployment's WeChat template id."""
    ids = template_ids()
    return TemplateList(
        items=[
            TemplateOut(
                name=name,
                template_id=ids.for_template(name),
                purpose=TEMPLATES[name].purpose,
                audience=TEMPLATES[name].audience,
                page=TEMPLATES[name].page,
            )
            for name in TEMPLATE_NAMES
        ]
    )
