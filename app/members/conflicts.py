"""An ID number already on the roll: one answer wherever it is registered.

Uniqueness stays (one person, one record), but the answer must not tell an admin
whether someone is a party member elsewhere. So a conflict, through ``POST /members``,
``PATCH /members/{id}`` or the roster import:

* answers the same whether the holder lies inside or outside the caller's scope, names
  no organisation and points to the proper path, a relation transfer (组织关系转接)
  started by the member's own organisation;
* is audited on both sides, even though the request is rolled back: the caller's side
  records where he tried (not whom he found), the holder's home organisation records
  which of its members someone tried to register, and who;
* counts against a per-admin budget (:data:`ID_CONFLICTS`); past it the answer is 429.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.service import record
from app.core import ratelimit
from app.core.errors import AppError
from app.organization.scope import Scope

ACTION = "member.id_number_conflict"
# Conflicts per admin and hour. A secretary re-entering a few known members stays far
# below it; testing a list of ID numbers does not.
ID_CONFLICTS = ratelimit.Policy("member.id_conflict", limit=20, window_s=3600)


@dataclass(frozen=True)
class Holder:
    """The member who already holds the ID number (never shown to the caller)."""

    member_id: int
    home_org_id: int


async def refused(
    engine: AsyncEngine,
    scope: Scope,
    error: AppError,
    *,
    via: str,
    org_id: int | None,
    holders: Sequence[Holder],
    subject_id: int | None = None,
    count: int | None = None,
) -> AppError:
    """The error to raise for ``count`` conflicts (``error``, or 429 past the budget), with
    its audit entries attached so that they survive the request's rollback."""
    count = len(holders) if count is None else count
    answer = error
    try:
        await ratelimit.hit(engine, ID_CONFLICTS, str(scope.principal.account_id), cost=count)
    except AppError as too_many:
        answer = too_many

    async def audit(session: AsyncSession) -> None:
        await record_conflicts(
            session,
            scope,
            via=via,
            org_id=org_id,
            holders=holders,
            subject_id=subject_id,
            count=count,
            rate_limited=answer is not error,
        )

    answer.after_rollback = audit
    return answer


async def record_conflicts(
    session: AsyncSession,
    scope: Scope,
    *,
    via: str,
    org_id: int | None,
    holders: Sequence[Holder],
    subject_id: int | None = None,
    count: int,
    rate_limited: bool = False,
) -> None:
    actor = scope.principal.account_id
    await record(
        session,
        actor_account_id=actor,
        action=ACTION,
        org_id=org_id,
        subject_type="member" if subject_id is not None else None,
        subject_id=subject_id,
        detail={"via": via, "count": count, "rate_limited": rate_limited},
    )
    if rate_limited:  # the caller's entry says how many; nothing was looked at further
        return
    for holder in holders:
        await record(
            session,
            actor_account_id=actor,
            action=ACTION,
            org_id=holder.home_org_id,
            subject_type="member",
            subject_id=holder.member_id,
            detail={"via": via, "attempted_at_org_id": org_id},
        )
