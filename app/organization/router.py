"""HTTP endpoints of the organization domain: the tree.

Admin roles at an organisation are in ``app/members/roles_router.py``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.core.db import SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page
from app.organization import service
from app.organization.schemas import OrgCreate, OrgId, OrgMove, OrgOut, OrgUpdate
from app.organization.scope import AdminScopeDep

router = APIRouter(prefix="/orgs", tags=["organization"])


@router.post("", status_code=201, response_model=OrgOut)
async def create_org(
    data: OrgCreate, scope: AdminScopeDep, session: SessionDep, idem: IdempotencyDep
) -> Response:
    async def act() -> OrgOut:
        return OrgOut.of(await service.create_org(session, scope, data))

    return await idem.run(act, status_code=201)


@router.get("/{org_id}", response_model=OrgOut)
async def get_org(scope: AdminScopeDep, session: SessionDep, org_id: OrgId) -> OrgOut:
    return OrgOut.of(await service.get_org(session, scope, org_id))


@router.patch("/{org_id}", response_model=OrgOut)
async def update_org(
    data: OrgUpdate, scope: AdminScopeDep, session: SessionDep, org_id: OrgId
) -> OrgOut:
    return OrgOut.of(await service.update_org(session, scope, org_id, data))


@router.post("/{org_id}/move", response_model=OrgOut)
async def move_org(
    data: OrgMove, scope: AdminScopeDep, session: SessionDep, org_id: OrgId
) -> OrgOut:
    org = await service.move_org(session, scope, org_id, data.parent_id, data.version)
    return OrgOut.of(org)


@router.get("/{org_id}/children", response_model=Page[OrgOut])
async def list_children(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: OrgId,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[OrgOut]:
    items, next_cursor = await service.children_page(
        session, scope, org_id, cursor=cursor, limit=limit
    )
    return Page[OrgOut](items=[OrgOut.of(o) for o in items], next_cursor=next_cursor)


@router.get("/{org_id}/subtree", response_model=Page[OrgOut])
async def list_subtree(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: OrgId,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[OrgOut]:
    """The organisation and all its descendants, in tree (path) order."""
    items, next_cursor = await service.subtree_page(
        session, scope, org_id, cursor=cursor, limit=limit
    )
    return Page[OrgOut](items=[OrgOut.of(o) for o in items], next_cursor=next_cursor)
