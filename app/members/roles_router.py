"""HTTP endpoints of admin roles at an organisation (``/orgs/{org_id}/roles``).

They belong to the members domain (a role is held by a member), under the
organisation's path and tag."""

from __future__ import annotations

from fastapi import APIRouter, Path
from starlette.responses import Response

from app.core.db import SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, MAX_ID, CursorParam, LimitParam, Page
from app.members import roles
from app.organization.schemas import OrgId, RoleGrant, RoleOut
from app.organization.scope import AdminScopeDep

router = APIRouter(prefix="/orgs", tags=["organization"])


@router.get("/{org_id}/roles", response_model=Page[RoleOut])
async def list_roles(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: int = OrgId,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[RoleOut]:
    items, next_cursor = await roles.roles_page(session, scope, org_id, cursor=cursor, limit=limit)
    return Page[RoleOut](items=[RoleOut.of(a, name) for a, name in items], next_cursor=next_cursor)


@router.post("/{org_id}/roles", status_code=201, response_model=RoleOut)
async def grant_role(
    data: RoleGrant,
    scope: AdminScopeDep,
    session: SessionDep,
    idem: IdempotencyDep,
    org_id: int = OrgId,
) -> Response:
    async def act() -> RoleOut:
        assignment, name = await roles.grant_role(session, scope, org_id, data.member_id, data.role)
        return RoleOut.of(assignment, name)

    return await idem.run(act, status_code=201)


@router.delete("/{org_id}/roles/{role_id}", status_code=204)
async def revoke_role(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: int = OrgId,
    role_id: int = Path(ge=1, le=MAX_ID),
) -> Response:
    await roles.revoke_role(session, scope, org_id, role_id)
    return Response(status_code=204)
