"""Reading the audit log, always through the caller's scope."""

from __future__ import annotations

from typing import cast

from sqlalchemy import SQLColumnExpression, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.identity.models import Account
from app.members.models import Member
from app.organization.models import Organization
from app.organization.scope import Scope


async def list_entries(
    session: AsyncSession,
    scope: Scope,
    *,
    limit: int,
    before_id: int | None,
    within: Organization | None,
    actor_account_id: int | None,
    action: str | None,
) -> list[tuple[AuditEntry, str | None]]:
    """Entries of organisations in scope (optionally one subtree), newest first.

    Returns up to ``limit + 1`` rows so the caller knows whether there is a next page.
    """
    actor_name = func.coalesce(Member.name, Account.display_name).label("actor_name")
    stmt = (
        select(AuditEntry, actor_name)
        .outerjoin(Account, Account.id == AuditEntry.actor_account_id)
        .outerjoin(Member, Member.id == Account.member_id)
        .where(
            or_(
                scope.org_visible(cast(SQLColumnExpression[int], AuditEntry.org_id)),
                scope.org_visible(cast(SQLColumnExpression[int], AuditEntry.member_home_org_id)),
            )
        )
        .order_by(AuditEntry.id.desc())
        .limit(limit + 1)
    )
    if within is not None:
        subtree = select(Organization.id).where(
            Organization.path.startswith(within.path, autoescape=True)
        )
        stmt = stmt.where(
            or_(AuditEntry.org_id.in_(subtree), AuditEntry.member_home_org_id.in_(subtree))
        )
    if actor_account_id is not None:
        stmt = stmt.where(AuditEntry.actor_account_id == actor_account_id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    rows = await session.execute(stmt)
    return [(entry, name) for entry, name in rows.tuples()]
