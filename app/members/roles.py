"""Admin roles: granting, revoking and listing who holds which role at an organisation.

A role assignment links a member to an organisation, so it lives with the members (which
already depend on the organisation tree), not in ``organization`` (which knows no member).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.pagination import decode_cursor, page_of
from app.members import errors
from app.members import repository as repo
from app.organization.models import Organization, RoleAssignment
from app.organization.scope import Scope
from app.organization.service import get_org

# Who may grant which role: the strongest role the granter holds over the organisation
# (at it or at an ancestor) -> the roles he may grant or revoke there.
GRANTABLE: dict[str, frozenset[str]] = {
    "org_admin": frozenset({"org_admin", "branch_admin"}),
    "branch_admin": frozenset({"branch_admin"}),
}


async def _granter_may(session: AsyncSession, scope: Scope, org: Organization, role: str) -> None:
    if scope.everything:
        return
    member_id = scope.principal.member_id
    held = await repo.caller_roles_over(session, member_id, org) if member_id else set()
    allowed: set[str] = set()
    for mine in held:
        allowed |= GRANTABLE.get(mine, frozenset())
    if role not in allowed:
        raise errors.role_forbidden()


async def grant_role(
    session: AsyncSession, scope: Scope, org_id: int, member_id: int, role: str
) -> tuple[RoleAssignment, str]:
    org = await get_org(session, scope, org_id)
    member = await repo.get_visible(session, scope, member_id)
    if member is None:
        raise errors.member_not_found()
    await _granter_may(session, scope, org, role)
    if await repo.find_role(session, org.id, member.id, role) is not None:
        raise errors.role_already_granted()
    assignment = RoleAssignment(
        org_id=org.id,
        member_id=member.id,
        role=role,
        granted_by_account_id=scope.principal.account_id,
    )
    try:
        async with session.begin_nested():
            session.add(assignment)
            await session.flush()
    except IntegrityError:
        # A concurrent grant of the same role won the race on the unique constraint.
        raise errors.role_already_granted() from None
    await session.refresh(assignment)
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="role.granted",
        org_id=org.id,
        member_home_org_id=member.home_org_id,
        subject_type="member",
        subject_id=member.id,
        detail={"role": role, "role_id": assignment.id},
    )
    return assignment, member.name


async def revoke_role(session: AsyncSession, scope: Scope, org_id: int, role_id: int) -> int:
    """Remove the role; returns the member who held it."""
    org = await get_org(session, scope, org_id)
    assignment = await repo.get_role(session, org, role_id)
    if assignment is None:
        raise errors.role_not_found()
    await _granter_may(session, scope, org, assignment.role)
    await session.delete(assignment)
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="role.revoked",
        org_id=org.id,
        subject_type="member",
        subject_id=assignment.member_id,
        detail={"role": assignment.role, "role_id": assignment.id},
    )
    return assignment.member_id


async def roles_page(
    session: AsyncSession, scope: Scope, org_id: int, *, cursor: str | None, limit: int
) -> tuple[list[tuple[RoleAssignment, str]], str | None]:
    """The roles held at ``org_id`` (404 unless in scope) with the holders' names."""
    after_id = decode_cursor(cursor, int)
    org = await get_org(session, scope, org_id)
    rows = await repo.list_roles(session, org, after_id=after_id, limit=limit)
    return page_of(list(rows), limit, lambda r: (r[0].id,))
