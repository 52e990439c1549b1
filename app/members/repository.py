"""Queries of the members domain. Scoped reads go through ``Scope.member_visible``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.members.models import Member
from app.mobility.models import Outflow
from app.organization.models import Organization, RoleAssignment
from app.organization.scope import Scope, co_managed_member_ids


def _visible(scope: Scope) -> ColumnElement[bool]:
    return scope.member_visible(Member.id.expression, Member.home_org_id)


async def get_visible(
    session: AsyncSession, scope: Scope, member_id: int, *, for_update: bool = False
) -> Member | None:
    stmt = (
        select(Member)
        .where(Member.id == member_id, _visible(scope))
        .execution_options(populate_existing=True)
    )
    if for_update:
        stmt = stmt.with_for_update(of=Member)
    return (await session.execute(stmt)).scalar_one_or_none()


async def home_org_id_of(session: AsyncSession, member_id: int) -> int | None:
    """The member's home organisation (unscoped: for audit entries that name it)."""
    return (
        await session.execute(select(Member.home_org_id).where(Member.id == member_id))
    ).scalar_one_or_none()


async def get_for_change(
    session: AsyncSession, scope: Scope, member_id: int, *, for_update: bool = False
) -> tuple[Member | None, bool]:
    """The member if the caller may *read* him, and whether he may *change* him."""
    stmt = (
        select(Member, scope.member_changeable(Member.home_org_id).label("owned"))
        .where(Member.id == member_id, _visible(scope))
        .execution_options(populate_existing=True)
    )
    if for_update:
        stmt = stmt.with_for_update(of=Member)
    row = (await session.execute(stmt)).first()
    return (None, False) if row is None else (row[0], bool(row[1]))


def _has_active_outflow() -> ColumnElement[bool]:
    """Mobile members (流动党员): an approved outflow that is not yet closed by a return."""
    return Member.id.in_(select(Outflow.member_id).where(Outflow.status == "active"))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_statement(
    scope: Scope,
    *,
    org: Organization | None,
    q: str | None,
    phone_index: bytes | None = None,
    mobile: bool | None,
    status: str | None,
    after_id: int | None,
    limit: int,
) -> Select[Member]:
    stmt = select(Member).where(_visible(scope)).order_by(Member.id).limit(limit + 1)
    if org is not None:
        in_subtree = select(Organization.id).where(
            Organization.path.startswith(org.path, autoescape=True)
        )
        guests = co_managed_member_ids(in_subtree)
        stmt = stmt.where(or_(Member.home_org_id.in_(in_subtree), Member.id.in_(guests)))
    if q:
        # ILIKE (not lower() LIKE) so the pg_trgm GIN index on name can serve it.
        stmt = stmt.where(Member.name.ilike(f"%{_escape_like(q)}%", escape="\\"))
    if phone_index is not None:
        stmt = stmt.where(Member.phone_idx == phone_index)
    if status is not None:
        stmt = stmt.where(Member.status == status)
    if mobile is not None:
        stmt = stmt.where(_has_active_outflow() if mobile else ~_has_active_outflow())
    if after_id is not None:
        stmt = stmt.where(Member.id > after_id)
    return stmt


async def list_members(
    session: AsyncSession,
    scope: Scope,
    *,
    org: Organization | None,
    q: str | None,
    phone_index: bytes | None = None,
    mobile: bool | None,
    status: str | None,
    after_id: int | None,
    limit: int,
) -> Sequence[Member]:
    stmt = list_statement(
        scope,
        org=org,
        q=q,
        phone_index=phone_index,
        mobile=mobile,
        status=status,
        after_id=after_id,
        limit=limit,
    )
    return (await session.execute(stmt)).scalars().all()


@dataclass(frozen=True)
class RosterRow:
    """What an import compares a sheet row with (the person's current roster values)."""

    id: int
    home_org_id: int
    version: int
    name: str
    gender: str
    birth_date: date | None
    phone_idx: bytes | None
    joined_on: date | None
    status: str


async def by_id_number_indexes(
    session: AsyncSession, indexes: Sequence[bytes], *, for_update: bool = False
) -> dict[bytes, RosterRow]:
    """``blind index -> current roster values`` in one query (unscoped)."""
    if not indexes:
        return {}
    stmt = select(
        Member.id_number_idx,
        Member.id,
        Member.home_org_id,
        Member.version,
        Member.name,
        Member.gender,
        Member.birth_date,
        Member.phone_idx,
        Member.joined_on,
        Member.status,
    ).where(Member.id_number_idx.in_(list(indexes)))
    if for_update:
        stmt = stmt.order_by(Member.id).with_for_update()
    rows = await session.execute(stmt)
    return {idx: RosterRow(*values) for idx, *values in rows}


async def bulk_insert(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    if not rows:
        return 0
    await session.execute(insert(Member), list(rows))
    return len(rows)


async def bulk_update(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """ORM bulk UPDATE by primary key: each dict carries ``id`` and the new values."""
    if not rows:
        return 0
    await session.execute(update(Member), list(rows))
    return len(rows)


async def pii_batch_needing_rotation(
    session: AsyncSession, current_header: bytes, *, after_id: int, limit: int
) -> Sequence[tuple[int, bytes, bytes | None]]:
    """Rows whose ciphertexts carry another (algorithm, key version) header, locked.

    Bytes 2..4 of a blob are the algorithm id and key version (see app.core.crypto).
    ``SKIP LOCKED`` lets several rotation workers share the table without waiting.
    """
    header_of_id = func.substring(Member.id_number_enc, 2, 3)
    header_of_phone = func.substring(Member.phone_enc, 2, 3)
    stmt = (
        select(Member.id, Member.id_number_enc, Member.phone_enc)
        .where(
            Member.id > after_id,
            or_(
                header_of_id != current_header,
                and_(Member.phone_enc.is_not(None), header_of_phone != current_header),
            ),
        )
        .order_by(Member.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(mid, id_enc, phone_enc) for mid, id_enc, phone_enc in await session.execute(stmt)]


_members = cast(Table, Member.__table__)
_REWRITE_PII = (
    update(_members)
    .where(_members.c.id == bindparam("b_id"))
    .values(
        id_number_enc=bindparam("b_id_enc"),
        phone_enc=bindparam("b_phone_enc"),
        # Re-encryption changes nothing a person would call an update.
        updated_at=_members.c.updated_at,
    )
)


async def write_ciphertexts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Store re-encrypted blobs (``id``, ``id_number_enc``, ``phone_enc`` per row)."""
    if rows:
        await session.execute(
            _REWRITE_PII,
            [
                {"b_id": r["id"], "b_id_enc": r["id_number_enc"], "b_phone_enc": r["phone_enc"]}
                for r in rows
            ],
        )


# ------------------------------------------------------------------------ roles
# Admin roles: a member holds a role at an organisation (and so over its subtree).


async def list_roles(
    session: AsyncSession, org: Organization, *, after_id: int | None, limit: int
) -> Sequence[tuple[RoleAssignment, str]]:
    stmt = (
        select(RoleAssignment, Member.name)
        .join(Member, Member.id == RoleAssignment.member_id)
        .where(RoleAssignment.org_id == org.id)
        .order_by(RoleAssignment.id)
        .limit(limit + 1)
    )
    if after_id is not None:
        stmt = stmt.where(RoleAssignment.id > after_id)
    return [(assignment, name) for assignment, name in await session.execute(stmt)]


async def get_role(session: AsyncSession, org: Organization, role_id: int) -> RoleAssignment | None:
    return (
        await session.execute(
            select(RoleAssignment)
            .where(RoleAssignment.id == role_id, RoleAssignment.org_id == org.id)
            .with_for_update()
        )
    ).scalar_one_or_none()


async def find_role(
    session: AsyncSession, org_id: int, member_id: int, role: str
) -> RoleAssignment | None:
    return (
        await session.execute(
            select(RoleAssignment).where(
                RoleAssignment.org_id == org_id,
                RoleAssignment.member_id == member_id,
                RoleAssignment.role == role,
            )
        )
    ).scalar_one_or_none()


async def caller_roles_over(session: AsyncSession, member_id: int, org: Organization) -> set[str]:
    """Roles the caller holds at ``org`` or any of its ancestors (which cover it)."""
    rows = await session.execute(
        select(RoleAssignment.role)
        .join(Organization, Organization.id == RoleAssignment.org_id)
        .where(
            RoleAssignment.member_id == member_id,
            func.starts_with(org.path, Organization.path),
        )
    )
    return {role for (role,) in rows}
