"""The audit log: :func:`record` (every domain writes through it) and :func:`entries_page`
(the admins' read, always through their scope)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.models import AuditEntry
from app.audit.schemas import AuditEntryOut
from app.core.context import current_request_meta
from app.core.errors import AppError, not_found
from app.core.pagination import Page, decode_cursor, encode_cursor
from app.organization.scope import Scope, get_visible_org


async def record(
    session: AsyncSession,
    *,
    actor_account_id: int | None,
    action: str,
    org_id: int | None = None,
    member_home_org_id: int | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an audit entry in the caller's transaction (it commits with the action).

    ``member_home_org_id``: the home organisation of the member concerned, when it may
    differ from ``org_id`` (an action of a co-managing organisation). The entry is then
    listed in both subtrees, so nothing a co-manager does is hidden from the home side.
    """
    request_id, ip = current_request_meta()
    await session.execute(
        insert(AuditEntry).values(
            actor_account_id=actor_account_id,
            action=action,
            org_id=org_id,
            member_home_org_id=member_home_org_id,
            subject_type=subject_type,
            subject_id=subject_id,
            reason=reason,
            detail=detail or {},
            request_id=request_id,
            ip=ip,
        )
    )


async def entries_page(
    session: AsyncSession,
    scope: Scope,
    *,
    org_id: int | None,
    actor_account_id: int | None,
    action: str | None,
    limit: int,
    cursor: str | None,
) -> Page[AuditEntryOut]:
    """Entries of the organisations in scope (or of ``org_id``'s subtree, 404 unless it is
    in scope), newest first."""
    before_id = decode_cursor(cursor, int)
    within = None
    if org_id is not None:
        within = await get_visible_org(session, scope, org_id)
        if within is None:
            raise not_found("org.not_found", "组织不存在或无权访问")
    rows = await repository.list_entries(
        session,
        scope,
        limit=limit,
        before_id=before_id,
        within=within,
        actor_account_id=actor_account_id,
        action=action,
    )
    items = [
        AuditEntryOut(
            id=entry.id,
            at=entry.at,
            actor_account_id=entry.actor_account_id,
            actor_name=actor_name,
            action=entry.action,
            org_id=entry.org_id,
            subject_type=entry.subject_type,
            subject_id=entry.subject_id,
            reason=entry.reason,
            detail=entry.detail,
            request_id=entry.request_id,
        )
        for entry, actor_name in rows[:limit]
    ]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return Page[AuditEntryOut](items=items, next_cursor=next_cursor)


def audited_refusal(error: AppError, **entry: Any) -> AppError:
    """``error``, carrying an audit entry (the arguments of :func:`record`) that is written
    although the request rolls back: a refused attempt leaves a trace."""

    async def write(session: AsyncSession) -> None:
        await record(session, **entry)

    error.after_rollback = write
    return error
