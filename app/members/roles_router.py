"""HTTP endpoints of admin roles at an organisation (``/orgs/{org_id}/roles``).

They belong to the members domain (a role is held by a member), under the
organisation's path and tag."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from app.core.db import SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, IdPath, LimitParam, Page
from app.core.routing import DomainRouter
from app.identity.sessions import cache_of
from app.members import roles
from app.organization.schemas import OrgId, RoleGrant, RoleOut
from app.organization.scope import AdminScopeDep

router = DomainRouter(prefix="/orgs", tags=["organization"])


@router.get("/{org_id}/roles", response_model=Page[RoleOut])
async def list_roles(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: OrgId,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[RoleOut]:
    items, next_cursor = await roles.roles_page(session, scope, org_id, cursor=cursor, limit=limit)
    return Page[RoleOut](items=[RoleOut.of(a, name) for a, name in items], next_cursor=next_cursor)


@router.post("/{org_id}/roles", status_code=201, response_model=RoleOut)
async def grant_role(
    data: RoleGrant,
    request: Request,
    scope: AdminScopeDep,
    session: SessionDep,
    idem: IdempotencyDep,
    org_id: OrgId,
) -> Response:
    cache_of(request).hold(member_id=data.member_id)  # app/identity/sessions.py

    async def act() -> RoleOut:
        assignment, name = await roles.grant_role(session, scope, org_id, data.member_id, data.role)
        return RoleOut.of(assignment, name)

    return await idem.run(act, status_code=201)


@router.delete("/{org_id}/roles/{role_id}", status_code=204)
async def revoke_role(
    request: Request,
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: OrgId,
    role_id: IdPath,
) -> Response:
    member_id = await roles.revoke_role(session, scope, org_id, role_id)
    cache_of(request).hold(member_id=member_id)  # app/identity/sessions.py
    return Response(status_code=204)
