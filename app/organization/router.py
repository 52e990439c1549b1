"""HTTP endpoints of the organization domain: the tree.

Admin roles at an organisation are in ``app/members/roles_router.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from app.core.db import SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page
from app.core.routing import DomainRouter
from app.identity.principal import PrincipalDep
from app.organization import service
from app.organization.schemas import (
    DirectoryItem,
    DirectoryPurpose,
    DirectoryQuery,
    DirectoryRegion,
    OrgCreate,
    OrgHost,
    OrgId,
    OrgMove,
    OrgOut,
    OrgUpdate,
)
from app.organization.scope import AdminScopeDep

router = DomainRouter(prefix="/orgs", tags=["organization"])


@router.post("", status_code=201, response_model=OrgOut)
async def create_org(
    data: OrgCreate, scope: AdminScopeDep, session: SessionDep, idem: IdempotencyDep
) -> Response:
    async def act() -> OrgOut:
        return OrgOut.of(await service.create_org(session, scope, data))

    return await idem.run(act, status_code=201)


@router.get("", response_model=Page[OrgOut])
async def list_scope_tops(
    scope: AdminScopeDep,
    session: SessionDep,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[OrgOut]:
    """The organisations at the top of the admin's scope (every root for a superadmin)."""
    items, next_cursor = await service.scope_tops_page(session, scope, cursor=cursor, limit=limit)
    return Page[OrgOut](items=items, next_cursor=next_cursor)


@router.get("/directory", response_model=Page[DirectoryItem])
async def directory(
    principal: PrincipalDep,
    session: SessionDep,
    q: Annotated[DirectoryQuery | None, Query(description="名称包含的文字")] = None,
    region_code: Annotated[
        DirectoryRegion | None, Query(description="行政区划代码或其前 2/4 位")
    ] = None,
    host: Annotated[OrgHost | None, Query(description="依托单位类型")] = None,
    near: Annotated[
        str | None, Query(max_length=64, description="“纬度,经度”，按距离由近及远")
    ] = None,
    purpose: Annotated[
        DirectoryPurpose | None, Query(description="checkin：可报到；orders：可受理工单")
    ] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[DirectoryItem]:
    """党员找组织: listed organisations, for any logged-in account."""
    items, next_cursor = await service.directory_page(
        session,
        q=q,
        region_code=region_code,
        host=host,
        purpose=purpose,
        near=near,
        cursor=cursor,
        limit=limit,
    )
    return Page[DirectoryItem](items=items, next_cursor=next_cursor)


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
