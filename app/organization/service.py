"""Organisation tree rules: creating nodes, editing, moving subtrees, admin roles.

Paths are materialised (``"/1/7/42/"``). A move rewrites every descendant path in one
UPDATE under an exclusive advisory lock; creating a node takes the same lock shared, so
a child can never be written under a parent path that a concurrent move is replacing.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.errors import stale_version
from app.core.pagination import decode_cursor, page_of
from app.organization import errors
from app.organization import repository as repo
from app.organization.models import Organization
from app.organization.schemas import DirectoryItem, OrgCreate, OrgOut, OrgUpdate
from app.organization.scope import Scope, get_visible_org
from app.regions.service import is_valid_region_code

# Re-exported: older callers import it from here.
parent_not_found = errors.parent_not_found


async def create_organization(
    session: AsyncSession,
    *,
    name: str,
    kind: str,
    parent_id: int | None,
    host: str | None = None,
    region_code: str | None = None,
    address: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    listed: bool = False,
    settings: dict[str, Any] | None = None,
) -> Organization:
    await repo.lock_tree_shared(session)
    parent_path = "/"
    depth = 0
    if parent_id is not None:
        parent = await session.get(Organization, parent_id, populate_existing=True)
        if parent is None:
            raise parent_not_found()
        parent_path = parent.path
        depth = parent.depth + 1
    new_id = (
        await session.execute(
            select(func.nextval(text("pg_get_serial_sequence('organizations', 'id')")))
        )
    ).scalar_one()
    org = Organization(
        id=new_id,
        name=name,
        kind=kind,
        host=host,
        parent_id=parent_id,
        path=f"{parent_path}{new_id}/",
        depth=depth,
        region_code=region_code,
        address=address,
        lat=lat,
        lon=lon,
        listed=listed,
        settings=settings or {},
    )
    session.add(org)
    await session.flush()
    return org


def _check_region(region_code: str | None) -> None:
    if region_code is not None and not is_valid_region_code(region_code):
        raise errors.invalid_region_code()


def _check_location(lat: float | None, lon: float | None) -> None:
    """A location is a pair: the directory measures distances only from both."""
    if (lat is None) != (lon is None):
        raise errors.incomplete_location()


async def get_org(session: AsyncSession, scope: Scope, org_id: int) -> Organization:
    org = await get_visible_org(session, scope, org_id)
    if org is None:
        raise errors.org_not_found()
    return org


async def children_page(
    session: AsyncSession, scope: Scope, org_id: int, *, cursor: str | None, limit: int
) -> tuple[list[Organization], str | None]:
    """The visible children of ``org_id`` (404 unless in scope), by id."""
    after_id = decode_cursor(cursor, int)
    parent = await get_org(session, scope, org_id)
    rows = await repo.list_children(session, scope, parent, after_id=after_id, limit=limit)
    return page_of(list(rows), limit, lambda o: (o.id,))


async def subtree_page(
    session: AsyncSession, scope: Scope, org_id: int, *, cursor: str | None, limit: int
) -> tuple[list[Organization], str | None]:
    """``org_id`` and all its visible descendants, in tree (path) order."""
    after_path = decode_cursor(cursor, str)
    root = await get_org(session, scope, org_id)
    rows = await repo.list_subtree(session, scope, root, after_path=after_path, limit=limit)
    return page_of(list(rows), limit, lambda o: (o.path,))


async def create_org(session: AsyncSession, scope: Scope, data: OrgCreate) -> Organization:
    """An admin adds a node inside his subtree; only a superadmin creates a root."""
    _check_region(data.region_code)
    _check_location(data.lat, data.lon)
    if data.parent_id is None:
        if not scope.everything:
            raise errors.root_requires_superadmin()
    elif await get_visible_org(session, scope, data.parent_id) is None:
        raise errors.parent_not_found()
    org = await create_organization(
        session,
        name=data.name,
        kind=data.kind,
        parent_id=data.parent_id,
        host=data.host,
        region_code=data.region_code,
        address=data.address,
        lat=data.lat,
        lon=data.lon,
        listed=data.listed,
    )
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="org.created",
        org_id=org.id,
        subject_type="organization",
        subject_id=org.id,
        detail={"parent_id": org.parent_id, "kind": org.kind},
    )
    return org


_EDITABLE = ("name", "kind", "host", "region_code", "address", "lat", "lon", "listed")


async def update_org(
    session: AsyncSession, scope: Scope, org_id: int, data: OrgUpdate
) -> Organization:
    fields = data.model_fields_set
    moving = "parent_id" in fields
    if moving:
        # Same lock order as a move: tree lock first, then the row.
        await repo.lock_tree_exclusive(session)
    org = await get_visible_org(session, scope, org_id, for_update=True)
    if org is None:
        raise errors.org_not_found()
    if data.version is not None and data.version != org.version:
        raise stale_version()
    if "region_code" in fields:
        _check_region(data.region_code)
    bumped = False
    if moving and data.parent_id != org.parent_id:
        org = await _move(session, scope, org, data.parent_id)
        bumped = True
    changed = [name for name in _EDITABLE if name in fields]
    _check_location(
        data.lat if "lat" in fields else org.lat, data.lon if "lon" in fields else org.lon
    )
    for name in changed:
        setattr(org, name, getattr(data, name))
    if changed:
        if not bumped:
            org.version = org.version + 1
        await session.flush()
        await session.refresh(org)
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="org.updated",
        org_id=org.id,
        subject_type="organization",
        subject_id=org.id,
        detail={"fields": sorted(fields - {"version"})},
    )
    return org


async def move_org(
    session: AsyncSession, scope: Scope, org_id: int, parent_id: int, version: int
) -> Organization:
    org = await get_visible_org(session, scope, org_id)
    if org is None:
        raise errors.org_not_found()
    if org.version != version:
        raise stale_version()
    return await _move(session, scope, org, parent_id, expected_version=version)


async def _move(
    session: AsyncSession,
    scope: Scope,
    org: Organization,
    parent_id: int | None,
    *,
    expected_version: int | None = None,
) -> Organization:
    """Move ``org`` with its subtree under ``parent_id`` (``None``: make it a root)."""
    await repo.lock_tree_exclusive(session)
    # Re-read under the tree lock: a move that committed meanwhile may have changed paths.
    locked = await repo.get_any(session, org.id, for_update=True)
    if locked is None:
        raise errors.org_not_found()
    org = locked
    if expected_version is not None and org.version != expected_version:
        raise stale_version()
    new_parent: Organization | None = None
    if parent_id is None:
        if not scope.everything:
            raise errors.root_requires_superadmin()
    else:
        new_parent = await get_visible_org(session, scope, parent_id)
        if new_parent is None:
            raise errors.parent_not_found()
        if new_parent.path.startswith(org.path):
            raise errors.move_into_own_subtree()
    if org.parent_id is None:
        if not scope.everything:
            raise errors.root_requires_superadmin()
    else:
        old_parent = await get_visible_org(session, scope, org.parent_id)
        if old_parent is None:
            raise errors.move_forbidden()
    if org.parent_id == parent_id:
        return org
    old_parent_id = org.parent_id
    moved = await repo.move_subtree(session, org, new_parent)
    org.parent_id = parent_id
    org.version = org.version + 1
    await session.flush()
    await session.refresh(org)
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="org.moved",
        org_id=org.id,
        subject_type="organization",
        subject_id=org.id,
        detail={"from_parent_id": old_parent_id, "to_parent_id": parent_id, "nodes": moved},
    )
    return org


# --- the directory (党员找组织) -----------------------------------------------------------

# China's mainland and islands lie within these bounds: a pair whose latitude falls in
# China's longitudes and whose longitude in its latitudes was sent the wrong way round.
_CHINA_LAT = (3.0, 54.0)
_CHINA_LON = (73.0, 136.0)
_NEAR = re.compile(r"^\s*(-?\d{1,3}(?:\.\d{1,12})?)\s*,\s*(-?\d{1,3}(?:\.\d{1,12})?)\s*$")


def parse_near(near: str | None) -> tuple[float, float] | None:
    """``"23.13,113.33"`` (latitude first, as ``wx.getLocation`` gives them) -> a pair."""
    if near is None:
        return None
    match = _NEAR.match(near)
    if match is None:
        raise errors.near_malformed()
    lat, lon = float(match.group(1)), float(match.group(2))
    if _CHINA_LON[0] <= lat <= _CHINA_LON[1] and _CHINA_LAT[0] <= lon <= _CHINA_LAT[1]:
        raise errors.near_swapped()
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise errors.near_out_of_range()
    return lat, lon


async def directory_page(
    session: AsyncSession,
    *,
    q: str | None,
    region_code: str | None,
    host: str | None,
    purpose: str | None,
    near: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[DirectoryItem], str | None]:
    """Listed organisations, nearest first when ``near`` is given, else by id."""
    point = parse_near(near)
    after: tuple[float, int] | int | None
    after = decode_cursor(cursor, float, int) if point is not None else decode_cursor(cursor, int)
    rows = await repo.directory(
        session,
        q=q,
        region_prefix=region_code,
        host=host,
        orders_only=purpose == "orders",
        near=point,
        after=after,
        limit=limit,
    )
    items = [
        (DirectoryItem.model_validate(row, from_attributes=True), getattr(row, "gap", None))
        for row in rows
    ]
    page, next_cursor = page_of(
        items, limit, lambda it: (it[1], it[0].id) if point is not None else (it[0].id,)
    )
    return [item for item, _ in page], next_cursor


async def scope_tops_page(
    session: AsyncSession, scope: Scope, *, cursor: str | None, limit: int
) -> tuple[list[OrgOut], str | None]:
    """The organisations at the top of the caller's scope (where his roles are)."""
    rows = await repo.scope_tops(session, scope, after_id=decode_cursor(cursor, int), limit=limit)
    items = [OrgOut.model_validate(row, from_attributes=True) for row in rows]
    return page_of(items, limit, lambda org: (org.id,))
