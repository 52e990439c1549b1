"""Queries of the organisation domain. Every scoped read filters through ``Scope``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
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
