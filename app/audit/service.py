"""Writing audit entries: one function, used by every domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core.context import current_request_meta


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
