"""Who may see what, and who may change what: the one place that turns a caller into
visible organisations.

Every repository read of members, outflows, orders and activities filters with the
expressions built here. Scope has two verbs:

* *read*: an admin sees the subtree of every organisation where he holds a role, plus
  the members co-managed there through open dual-management grants (and, of their
  outflows, only the one the grant was opened for);
* *change*: only the member's home subtree changes his record. A grant lets the
  destination serve the member (see him, reach him, decide his check-in), never own him.

A superadmin sees and changes everything. Anything else sees only his own records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends
from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    false,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import SessionDep
from app.core.errors import AppError, forbidden
from app.identity.principal import Principal, PrincipalDep
from app.organization.models import DualManagementGrant, Organization, RoleAssignment

ADMIN_ROLES = ("branch_admin", "org_admin")


@dataclass(frozen=True)
class Scope:
    """The organisation subtrees a caller administers (materialised path prefixes)."""

    principal: Principal
    roots: tuple[str, ...]
    everything: bool = False

    @classmethod
    def subtree(cls, principal: Principal, path: str) -> Scope:
        """The scope of one organisation's subtree (what that organisation may serve)."""
        return cls(principal, (path,))

    @property
    def is_empty(self) -> bool:
        return not self.everything and not self.roots

    def org_path_visible(self, path_col: SQLColumnExpression[str]) -> ColumnElement[bool]:
        """True for organisations inside one of the caller's subtrees."""
        if self.everything:
            return true()
        if not self.roots:
            return false()
        return or_(*(path_col.startswith(root, autoescape=True) for root in self.roots))

    def visible_org_ids(self) -> Select[int]:
        return select(Organization.id).where(self.org_path_visible(Organization.path))

    def org_visible(self, org_id_col: SQLColumnExpression[int]) -> ColumnElement[bool]:
        if self.everything:
            return true()
        return org_id_col.in_(self.visible_org_ids())

    def guest_member_ids(self) -> Select[int]:
        """Members co-managed in the caller's subtrees through open dual-management grants."""
        return co_managed_member_ids(self.visible_org_ids())

    def guest_outflow_ids(self) -> Select[int]:
        """Outflows co-managed in the caller's subtrees: the one each grant was opened for."""
        return cast(
            Select[int],
            select(DualManagementGrant.outflow_id).where(
                DualManagementGrant.ended_at.is_(None),
                DualManagementGrant.outflow_id.is_not(None),
                DualManagementGrant.org_id.in_(self.visible_org_ids()),
            ),
        )

    def member_changeable(self, home_org_id_col: SQLColumnExpression[int]) -> ColumnElement[bool]:
        """The *change* verb: only the member's home subtree changes his record."""
        if self.everything:
            return true()
        if not self.roots:
            return false()
        return self.org_visible(home_org_id_col)

    def member_visible(
        self, member_id_col: ColumnElement[int], home_org_id_col: SQLColumnExpression[int]
    ) -> ColumnElement[bool]:
        """The *read* verb: a member is visible from his home subtree and from co-managing
        organisations."""
        if self.everything:
            return true()
        if not self.roots:
            own = self.principal.member_id
            return member_id_col == own if own is not None else false()
        return or_(
            self.org_visible(home_org_id_col),
            member_id_col.in_(self.guest_member_ids()),
        )


# The read verb for statements written as SQL text and built once (one round trip per
# request: the caller's roles are read inside the statement, so a removed role stops
# working at once). ``member`` is the SQL of the caller's member id (a parameter),
# ``path`` the SQL of an organisation path.
_ADMIN_ROLES_SQL = "(" + ", ".join(f"'{role}'" for role in ADMIN_ROLES) + ")"


def administered_sql(member: str, path: str) -> str:
    """SQL: true if the organisation at ``path`` lies in a subtree the caller
    administers (what :func:`build_scope` gives as the scope's roots)."""
    return (
        "EXISTS (SELECT 1 FROM role_assignments scope_r "  # noqa: S608 - no input in it
        "JOIN organizations scope_o ON scope_o.id = scope_r.org_id "
        f"WHERE scope_r.member_id = {member} AND scope_r.role IN {_ADMIN_ROLES_SQL} "
        f"AND starts_with({path}, scope_o.path))"
    )


def administers_any_sql(member: str) -> str:
    """SQL: true if the caller holds an admin role anywhere (uncorrelated, so
    PostgreSQL tests it once per statement: a one-time filter that skips the
    :func:`administered_sql` side for everybody else)."""
    return (
        "EXISTS (SELECT 1 FROM role_assignments gate_r "  # noqa: S608 - no input in it
        f"WHERE gate_r.member_id = {member} AND gate_r.role IN {_ADMIN_ROLES_SQL})"
    )


def on_home_path_sql(member: str, path: str) -> str:
    """SQL: true if the organisation at ``path`` is the member's home organisation or
    one of its ancestors (what a member sees of an organisation's own offers)."""
    return (
        "EXISTS (SELECT 1 FROM members home_m "  # noqa: S608 - no input in it
        "JOIN organizations home_o ON home_o.id = home_m.home_org_id "
        f"WHERE home_m.id = {member} AND starts_with(home_o.path, {path}))"
    )


def co_managing_path_sql(member: str, path: str) -> str:
    """SQL: true if the organisation at ``path`` co-manages the member through an open
    dual-management grant, or is an ancestor of one that does."""
    return (
        "EXISTS (SELECT 1 FROM dual_management_grants guest_g "  # noqa: S608 - no input in it
        "JOIN organizations guest_o ON guest_o.id = guest_g.org_id "
        f"WHERE guest_g.member_id = {member} AND guest_g.ended_at IS NULL "
        f"AND starts_with(guest_o.path, {path}))"
    )


def menu_org_ids_sql(member: str) -> str:
    """SQL: a query of the ids of the organisations :func:`on_home_path_sql` or
    :func:`co_managing_path_sql` accept (the member's home organisation, those
    co-managing him and their ancestors), read from the paths (``/1/7/42/``) of at most
    a few rows: ``org_id IN (...)`` with it is one hashed lookup per row, where the path
    forms test every organisation they are joined to."""
    return (
        "SELECT unnest(string_to_array(btrim(home_o.path, '/'), '/'))::bigint "  # noqa: S608
        "FROM members home_m JOIN organizations home_o ON home_o.id = home_m.home_org_id "
        f"WHERE home_m.id = {member} "
        "UNION ALL "
        "SELECT unnest(string_to_array(btrim(guest_o.path, '/'), '/'))::bigint "
        "FROM dual_management_grants guest_g "
        "JOIN organizations guest_o ON guest_o.id = guest_g.org_id "
        f"WHERE guest_g.member_id = {member} AND guest_g.ended_at IS NULL"
    )


def administered_roots_sql(member: str) -> str:
    """SQL: the paths of the organisations where the caller holds an admin role, the
    roots of the subtrees he administers (``administered_sql`` as a relation)."""
    return (
        "SELECT scope_o.path FROM role_assignments scope_r "  # noqa: S608 - no input in it
        "JOIN organizations scope_o ON scope_o.id = scope_r.org_id "
        f"WHERE scope_r.member_id = {member} AND scope_r.role IN {_ADMIN_ROLES_SQL}"
    )


def read_roots_sql(member: str, superadmin: str, org_id: str) -> str:
    """SQL: the root paths of what an admin read covers (a relation of ``path``). With
    ``org_id`` (SQL, may be NULL) that organisation's path if it lies in the caller's
    scope (for a superadmin: if it exists), else nothing (the caller answers 404);
    without it the caller's administered roots, ``''`` (everything) for a superadmin."""
    return (
        "SELECT read_t.path FROM organizations read_t "  # noqa: S608 - no input in it
        f"WHERE read_t.id = {org_id} "
        f"AND ({superadmin} OR {administered_sql(member, 'read_t.path')}) "
        f"UNION ALL SELECT read_a.path FROM ({administered_roots_sql(member)}) AS read_a "
        f"WHERE {org_id} IS NULL AND NOT {superadmin} "
        f"UNION ALL SELECT '' WHERE {org_id} IS NULL AND {superadmin}"
    )


def in_subtree_sql(path: str, root: str) -> str:
    """SQL: true if the organisation at ``path`` lies in the subtree at ``root`` (a
    path; ``''`` is everything). A range on the C-collated materialised path, so an
    index scan reads just the subtree (paths hold digits and '/', which sort below
    '~'), rechecked with ``starts_with``."""
    return f"({path} >= {root} AND {path} < {root} || '~' AND starts_with({path}, {root}))"


def co_managed_outflows_sql(roots: str) -> str:
    """SQL: the outflows co-managed in the subtrees at ``roots`` (a relation of root
    ``path``): the one each open dual-management grant there was opened for."""
    return (
        "SELECT guest_g.outflow_id FROM dual_management_grants guest_g "  # noqa: S608
        "JOIN organizations guest_o ON guest_o.id = guest_g.org_id "
        "WHERE guest_g.ended_at IS NULL AND guest_g.outflow_id IS NOT NULL "
        f"AND EXISTS (SELECT 1 FROM {roots} guest_root "
        "WHERE starts_with(guest_o.path, guest_root.path))"
    )


def co_managed_member_ids(org_ids: Select[int]) -> Select[int]:
    """Members co-managed by any of ``org_ids`` through open dual-management grants."""
    return select(DualManagementGrant.member_id).where(
        DualManagementGrant.ended_at.is_(None), DualManagementGrant.org_id.in_(org_ids)
    )


def co_managing_org_ids(member_id: int) -> Select[int]:
    """Organisations that co-manage ``member_id`` now (the member's side of the grants)."""
    return select(DualManagementGrant.org_id).where(
        DualManagementGrant.member_id == member_id, DualManagementGrant.ended_at.is_(None)
    )


async def get_visible_org(
    session: AsyncSession, scope: Scope, org_id: int, *, for_update: bool = False
) -> Organization | None:
    """The organisation ``org_id`` if it lies in one of the caller's subtrees, else None.

    The one visible-organisation lookup: every domain resolves an ``org_id`` it was given
    through it (outside scope reads as absent, so the caller answers 404).
    """
    if scope.is_empty:
        return None
    stmt = (
        select(Organization)
        .where(Organization.id == org_id, scope.org_path_visible(Organization.path))
        .execution_options(populate_existing=True)
    )
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_visible_org_ids(session: AsyncSession, scope: Scope, ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that lie in the caller's subtrees (the batch form, for imports)."""
    if not ids or scope.is_empty:
        return set()
    rows = await session.execute(
        select(Organization.id).where(
            Organization.id.in_(ids), scope.org_path_visible(Organization.path)
        )
    )
    return {org_id for (org_id,) in rows}


async def build_scope(session: AsyncSession, principal: Principal) -> Scope:
    if principal.is_admin:
        # asyncpg prepares every statement, and after five runs PostgreSQL switches to a
        # generic plan that cannot see how selective a subtree prefix (path LIKE
        # '/1/7/%') is: ledgers, leaderboards and stats became 30x slower. Admin reads,
        # all subtree-filtered, plan with the real values (this transaction only; the
        # members' hot paths keep their cached plans).
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    if principal.superadmin:
        return Scope(principal, (), everything=True)
    if not principal.roles:
        return Scope(principal, ())
    # Roles are re-read from the database: a removed role stops working at once for
    # reads, not only when the access token expires.
    rows = await session.execute(
        select(Organization.path)
        .join(RoleAssignment, RoleAssignment.org_id == Organization.id)
        .where(
            RoleAssignment.member_id == principal.member_id,
            RoleAssignment.role.in_(ADMIN_ROLES),
        )
    )
    paths = sorted({p for (p,) in rows})
    # Drop roots nested inside another root: fewer OR branches in every query.
    roots: list[str] = []
    for path in paths:
        if not any(path.startswith(r) for r in roots):
            roots.append(path)
    return Scope(principal, tuple(roots))


def admin_required() -> AppError:
    return forbidden("auth.admin_required", "仅组织管理员可执行此操作")


async def get_admin_scope(principal: PrincipalDep, session: SessionDep) -> Scope:
    if not principal.is_admin:
        raise admin_required()
    scope = await build_scope(session, principal)
    if scope.is_empty:
        raise admin_required()
    return scope


async def get_admin_principal(principal: PrincipalDep) -> Principal:
    """An admin as his token's account state says, for reads that check his scope inside
    their statement (:func:`read_roots_sql`): no session, no round trip here. The
    statement still answers whether he administers anything now (else
    :func:`admin_required`), as :func:`get_admin_scope` does."""
    if not principal.is_admin:
        raise admin_required()
    return principal


AdminScopeDep = Annotated[Scope, Depends(get_admin_scope, scope="function")]
AdminPrincipalDep = Annotated[Principal, Depends(get_admin_principal)]
