"""Queries of the organisation domain. Every scoped read filters through ``Scope``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    Float,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.organization.models import Organization, RoleAssignment
from app.organization.scope import Scope, get_visible_org_ids

# Key of the transaction-level advisory lock that serialises tree moves against each
# other (exclusive) and against node creation (shared): a move rewrites the paths of a
# whole subtree, so nobody may read a parent path that is about to change.
TREE_LOCK_KEY = 0x62_6C_74_72_65_65  # "bltree"


async def lock_tree_shared(session: AsyncSession) -> None:
    await session.execute(select(func.pg_advisory_xact_lock_shared(TREE_LOCK_KEY)))


async def lock_tree_exclusive(session: AsyncSession) -> None:
    await session.execute(select(func.pg_advisory_xact_lock(TREE_LOCK_KEY)))


async def get_any(
    session: AsyncSession, org_id: int, *, for_update: bool = False
) -> Organization | None:
    """Unscoped read, for rules that must look outside the caller's scope (move checks)."""
    stmt = (
        select(Organization)
        .where(Organization.id == org_id)
        .execution_options(populate_existing=True)
    )
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_children(
    session: AsyncSession, scope: Scope, parent: Organization, *, after_id: int | None, limit: int
) -> Sequence[Organization]:
    stmt = (
        select(Organization)
        .where(Organization.parent_id == parent.id, scope.org_path_visible(Organization.path))
        .order_by(Organization.id)
        .limit(limit + 1)
    )
    if after_id is not None:
        stmt = stmt.where(Organization.id > after_id)
    return (await session.execute(stmt)).scalars().all()


async def list_subtree(
    session: AsyncSession, scope: Scope, root: Organization, *, after_path: str | None, limit: int
) -> Sequence[Organization]:
    """The node and all its descendants in path order (one index range scan)."""
    stmt = (
        select(Organization)
        .where(
            Organization.path.startswith(root.path, autoescape=True),
            scope.org_path_visible(Organization.path),
        )
        .order_by(Organization.path)
        .limit(limit + 1)
    )
    if after_path is not None:
        stmt = stmt.where(Organization.path > after_path)
    return (await session.execute(stmt)).scalars().all()


async def move_subtree(
    session: AsyncSession, org: Organization, new_parent: Organization | None
) -> int:
    """Re-root ``org``'s subtree under ``new_parent`` in one UPDATE; returns rows moved."""
    old_prefix = org.path
    new_prefix = f"{new_parent.path if new_parent else '/'}{org.id}/"
    depth_shift = new_prefix.count("/") - old_prefix.count("/")
    result = await session.execute(
        update(Organization)
        .where(Organization.path.startswith(old_prefix, autoescape=True))
        .values(
            path=func.concat(new_prefix, func.substr(Organization.path, len(old_prefix) + 1)),
            depth=Organization.depth + depth_shift,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def find_visible_by_names(
    session: AsyncSession, scope: Scope, names: Sequence[str]
) -> dict[str, list[int]]:
    """Visible organisation ids by exact name (a name may be ambiguous)."""
    if not names:
        return {}
    rows = await session.execute(
        select(Organization.name, Organization.id)
        .where(Organization.name.in_(names), scope.org_path_visible(Organization.path))
        .order_by(Organization.id)
    )
    found: dict[str, list[int]] = {}
    for name, org_id in rows:
        found.setdefault(name, []).append(org_id)
    return found


async def responsible_admin_member_ids(session: AsyncSession, org_id: int) -> list[int]:
    """Admins responsible for an organisation: those holding a role at it or, if it has
    none, at its nearest ancestor that has some (a role covers the whole subtree; a
    branch without a secretary yet is looked after by its committee). One query."""
    org = await session.get(Organization, org_id)
    if org is None:
        return []
    chain = org.ancestor_ids
    rows = await session.execute(
        select(RoleAssignment.org_id, RoleAssignment.member_id).where(
            RoleAssignment.org_id.in_(chain)
        )
    )
    by_org: dict[int, set[int]] = {}
    for holder_org, member_id in rows:
        by_org.setdefault(int(holder_org), set()).add(int(member_id))
    for candidate in reversed(chain):
        if candidate in by_org:
            return sorted(by_org[candidate])
    return []


# --- the directory (党员找组织): listed organisations, found by anyone logged in -----------
#
# Nearest first orders by ``<->`` between two ``ll_to_earth`` points, which walks the
# GiST index ``ix_organizations_listed_earth`` (KNN); ``distance_m`` is the great-circle
# distance (``earth_distance``) in metres. Each combination of the filters asked for is
# its own statement, built once (``functools.cache``): a "``$1 IS NULL OR …``" filter
# would leave the prepared statement's generic plan guessing one row, and it would then
# sort every listed organisation instead of walking the index.

_q = bindparam("q", type_=String)
_region_like = bindparam("region_like", type_=String)
_host = bindparam("host", type_=String)
_lat = bindparam("lat", type_=Float)
_lon = bindparam("lon", type_=Float)
_after_id = bindparam("after_id", type_=Integer)
_after_gap = bindparam("after_gap", type_=Float)
_limit = bindparam("limit", type_=Integer)

_org_earth = func.ll_to_earth(Organization.lat, Organization.lon)
_point = func.ll_to_earth(_lat, _lon)
# Chord distance through the earth: what the GiST index orders by (monotonic in the
# great-circle distance, so the order is the same).
_gap = _org_earth.op("<->", return_type=Float)(_point)

_takes_orders = exists().where(RoleAssignment.org_id == Organization.id)
"""An organisation takes orders when it has an admin of its own to accept them (without
one, a resident's order would sit with the committee above: he is pointed there)."""

_DIRECTORY_COLUMNS = (
    Organization.id,
    Organization.name,
    Organization.kind,
    Organization.host,
    Organization.region_code,
    Organization.address,
    Organization.lat,
    Organization.lon,
)


@cache
def directory_statement(
    *,
    near: bool,
    q: bool = False,
    region: bool = False,
    host: bool = False,
    orders: bool = False,
    after: bool = False,
) -> Select[*tuple[Any, ...]]:
    """The directory read for one combination of filters (built on first use, then kept)."""
    filters: list[Any] = [Organization.listed]
    if q:
        # A substring of the name, case-insensitive (strpos: no LIKE wildcards to escape).
        filters.append(func.strpos(func.lower(Organization.name), func.lower(_q)) > 0)
    if region:
        filters.append(Organization.region_code.like(_region_like))
    if host:
        filters.append(Organization.host == _host)
    if orders:
        filters.append(_takes_orders)
    if not near:
        if after:
            filters.append(Organization.id > _after_id)
        distance = literal_column("NULL", Integer).label("distance_m")
        return (
            select(*_DIRECTORY_COLUMNS, distance)
            .where(*filters)
            .order_by(Organization.id)
            .limit(_limit)
        )
    filters += [Organization.lat.is_not(None), Organization.lon.is_not(None)]
    if after:
        filters.append(tuple_(_gap, Organization.id) > tuple_(_after_gap, _after_id))
    metres = func.round(func.earth_distance(_org_earth, _point)).cast(Integer)
    return (
        select(*_DIRECTORY_COLUMNS, metres.label("distance_m"), _gap.label("gap"))
        .where(*filters)
        .order_by(_gap, Organization.id)
        .limit(_limit)
    )


async def directory(
    session: AsyncSession,
    *,
    q: str | None,
    region_prefix: str | None,
    host: str | None,
    orders_only: bool,
    near: tuple[float, float] | None,
    after: tuple[float, int] | int | None,
    limit: int,
) -> Sequence[Any]:
    """Up to ``limit + 1`` listed organisations after the cursor (``after``: an id, or
    ``(gap, id)`` when nearest first)."""
    params: dict[str, Any] = {"limit": limit + 1}
    if q is not None:
        params["q"] = q
    if region_prefix is not None:
        # Digits only (checked by the schema): nothing to escape.
        params["region_like"] = f"{region_prefix}%"
    if host is not None:
        params["host"] = host
    if near is not None:
        params["lat"], params["lon"] = near
    if isinstance(after, tuple):
        params["after_gap"], params["after_id"] = after
    elif after is not None:
        params["after_id"] = after
    stmt = directory_statement(
        near=near is not None,
        q=q is not None,
        region=region_prefix is not None,
        host=host is not None,
        orders=orders_only,
        after=after is not None,
    )
    rows: Sequence[Any] = (await session.execute(stmt, params)).all()
    return rows


# The organisations at the top of a caller's scope: his role organisations with none of
# their ancestors among them, or every root for a superadmin. One statement, by id.
_roots = bindparam("roots", type_=ARRAY(String))
_everything = bindparam("everything", type_=Boolean)

SCOPE_TOPS = (
    select(Organization.__table__)
    .where(
        or_(
            Organization.path == any_(_roots),
            and_(_everything, Organization.parent_id.is_(None)),
        ),
        or_(_after_id.is_(None), Organization.id > _after_id),
    )
    .order_by(Organization.id)
    .limit(_limit)
)


async def scope_tops(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> Sequence[Any]:
    result = await session.execute(
        SCOPE_TOPS,
        {
            "roots": list(scope.roots),
            "everything": scope.everything,
            "after_id": after_id,
            "limit": limit + 1,
        },
    )
    return result.all()


AMBIGUOUS = -1


async def resolve_refs(session: AsyncSession, scope: Scope, refs: Iterable[str]) -> dict[str, int]:
    """Organisation references from an import sheet (an id or an exact name) -> the id of
    the visible organisation, or ``AMBIGUOUS`` when several visible ones share the name.
    References that match nothing visible are left out."""
    names = sorted(set(refs))
    numeric = [int(ref) for ref in names if ref.isdigit() and len(ref) < 19]
    by_id = await get_visible_org_ids(session, scope, numeric)
    by_name = await find_visible_by_names(session, scope, names)
    resolved: dict[str, int] = {}
    for ref in names:
        matches = by_name.get(ref, [])
        if ref.isdigit() and len(ref) < 19 and int(ref) in by_id:
            resolved[ref] = int(ref)
        elif len(matches) == 1:
            resolved[ref] = matches[0]
        elif matches:
            resolved[ref] = AMBIGUOUS
    return resolved
