"""HTTP endpoints of the organization domain: the tree and admin roles."""

from __future__ import annotations

from fastapi import APIRouter, Path
from starlette.responses import Response

from app.core.db import SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import (
    DEFAULT_LIMIT,
    CursorParam,
    LimitParam,
    Page,
    decode_cursor,
    invalid_cursor,
    page_of,
)
from app.organization import repository as repo
from app.organization import service
from app.organization.schemas import OrgCreate, OrgMove, OrgOut, OrgUpdate, RoleGrant, RoleOut
from app.organization.scope import AdminScopeDep

router = APIRouter(prefix="/orgs", tags=["organization"])

OrgId = Path(ge=1, le=2**63 - 1, description="组织编号")


def id_cursor(cursor: str | None) -> int | None:
    """The last id of the previous page, from an opaque cursor."""
    values = decode_cursor(cursor, 1)
    if values is None:
        return None
    if not isinstance(values[0], int) or isinstance(values[0], bool):
        raise invalid_cursor()
    return values[0]


def path_cursor(cursor: str | None) -> str | None:
    values = decode_cursor(cursor, 1)
    if values is None:
        return None
    if not isinstance(values[0], str):
        raise invalid_cursor()
    return values[0]


@router.post("", status_code=201, response_model=OrgOut)
async def create_org(
    data: OrgCreate, scope: AdminScopeDep, session: SessionDep, idem: IdempotencyDep
) -> Response:
    async def act() -> OrgOut:
        return OrgOut.of(await service.create_org(session, scope, data))

    return await idem.run(act, status_code=201)


@router.get("/{org_id}", response_model=OrgOut)
async def get_org(scope: AdminScopeDep, session: SessionDep, org_id: int = OrgId) -> OrgOut:
    return OrgOut.of(await service.get_org(session, scope, org_id))


@router.patch("/{org_id}", response_model=OrgOut)
async def update_org(
    data: OrgUpdate, scope: AdminScopeDep, session: SessionDep, org_id: int = OrgId
) -> OrgOut:
    return OrgOut.of(await service.update_org(session, scope, org_id, data))


@router.post("/{org_id}/move", response_model=OrgOut)
async def move_org(
    data: OrgMove, scope: AdminScopeDep, session: SessionDep, org_id: int = OrgId
) -> OrgOut:
    org = await service.move_org(session, scope, org_id, data.parent_id, data.version)
    return OrgOut.of(org)


@router.get("/{org_id}/children", response_model=Page[OrgOut])
async def list_children(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: int = OrgId,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[OrgOut]:
    parent = await service.get_org(session, scope, org_id)
    rows = await repo.list_children(session, scope, parent, after_id=id_cursor(cursor), limit=limit)
    items, next_cursor = page_of(list(rows), limit, lambda o: (o.id,))
    return Page[OrgOut](items=[OrgOut.of(o) for o in items], next_cursor=next_cursor)


@router.get("/{org_id}/subtree", response_model=Page[OrgOut])
async def list_subtree(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: int = OrgId,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[OrgOut]:
    """The organisation and all its descendants, in tree (path) order."""
    root = await service.get_org(session, scope, org_id)
    rows = await repo.list_subtree(
        session, scope, root, after_path=path_cursor(cursor), limit=limit
    )
    items, next_cursor = page_of(list(rows), limit, lambda o: (o.path,))
    return Page[OrgOut](items=[OrgOut.of(o) for o in items], next_cursor=next_cursor)


@router.get("/{org_id}/roles", response_model=Page[RoleOut])
async def list_roles(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: int = OrgId,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[RoleOut]:
    org = await service.get_org(session, scope, org_id)
    rows = await repo.list_roles(session, org, after_id=id_cursor(cursor), limit=limit)
    items, next_cursor = page_of(list(rows), limit, lambda r: (r[0].id,))
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
        assignment, name = await service.grant_role(
            session, scope, org_id, data.member_id, data.role
        )
        return RoleOut.of(assignment, name)

    return await idem.run(act, status_code=201)


@router.delete("/{org_id}/roles/{role_id}", status_code=204)
async def revoke_role(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: int = OrgId,
    role_id: int = Path(ge=1, le=2**63 - 1),
) -> Response:
    await service.revoke_role(session, scope, org_id, role_id)
    return Response(status_code=204)
