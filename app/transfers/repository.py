"""All queries of relation transfers. Reads are statements built once at import; the
caller's scope and the filters are added with ``.where()``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from app.identity.models import Account
from app.members.models import Member
from app.organization.models import Organization
from app.organization.scope import Scope
from app.transfers.models import RelationTransfer, RelationTransferEvent

T = RelationTransfer.__table__
E = RelationTransferEvent.__table__
M = Member.__table__
A = Account.__table__
FROM_ORG = Organization.__table__.alias("from_org")
TO_ORG = Organization.__table__.alias("to_org")


# ---------------------------------------------------------------------------
# Who sees a transfer, who acts on it
# ---------------------------------------------------------------------------


def transfer_visible(scope: Scope) -> ColumnElement[bool]:
    """Transfers the caller may see: his own (as the member or the requester), and, for
    admins, those leaving or entering his subtrees (history stays on both sides)."""
    if scope.everything:
        return literal(True)
    conditions: list[ColumnElement[bool]] = [
        T.c.requested_by_account_id == scope.principal.account_id
    ]
    if scope.principal.member_id is not None:
        conditions.append(T.c.member_id == scope.principal.member_id)
    if not scope.is_empty:
        conditions.append(scope.org_visible(T.c.from_org_id))
        conditions.append(scope.org_visible(T.c.to_org_id))
    return or_(*conditions)


@dataclass(frozen=True)
class Sides:
    """What the caller is to a transfer's member and organisations."""

    home: bool  # may change the member (his home subtree): approves, rejects
    receiving: bool  # administers the receiving organisation: accepts, refuses
    home_org_id: int | None  # the member's home organisation now


async def sides(session: AsyncSession, scope: Scope, member_id: int, to_org_id: int) -> Sides:
    """The caller's sides, judged on the member's home organisation *now* (one statement)."""
    row = (
        await session.execute(
            select(
                scope.member_changeable(M.c.home_org_id),
                scope.org_visible(literal(to_org_id)) if not scope.is_empty else false(),
                M.c.home_org_id,
            ).where(M.c.id == member_id)
        )
    ).first()
    if row is None:
        return Sides(False, False, None)
    return Sides(bool(row[0]), bool(row[1]), int(row[2]))


@dataclass(frozen=True)
class Subject:
    """The member a transfer is requested for, as the caller may see him."""

    id: int
    name: str
    home_org_id: int
    changeable: bool  # the caller is of his home side
    visible: bool  # the caller may read him (home side, co-manager or himself)


async def subject(session: AsyncSession, scope: Scope, member_id: int) -> Subject | None:
    row = (
        await session.execute(
            select(
                M.c.id,
                M.c.name,
                M.c.home_org_id,
                scope.member_changeable(M.c.home_org_id),
                scope.member_visible(M.c.id, M.c.home_org_id),
            ).where(M.c.id == member_id)
        )
    ).first()
    if row is None:
        return None
    return Subject(int(row[0]), str(row[1]), int(row[2]), bool(row[3]), bool(row[4]))


async def org_exists(session: AsyncSession, org_id: int) -> bool:
    stmt = select(Organization.id).where(Organization.id == org_id)
    return (await session.execute(stmt)).first() is not None


async def open_transfer_id(session: AsyncSession, member_id: int) -> int | None:
    stmt = select(T.c.id).where(
        T.c.member_id == member_id, T.c.status.in_(("requested", "approved"))
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock(
    session: AsyncSession, transfer_id: int, visible: ColumnElement[bool]
) -> RelationTransfer | None:
    """The transfer, locked (``FOR UPDATE``) and read afresh, if the caller may see it."""
    stmt = (
        select(RelationTransfer)
        .where(RelationTransfer.id == transfer_id, visible)
        .with_for_update(of=RelationTransfer)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def add_event(
    session: AsyncSession,
    transfer: RelationTransfer,
    *,
    action: str,
    from_state: str,
    to_state: str,
    actor_account_id: int | None,
    now: datetime,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        RelationTransferEvent(
            transfer_id=transfer.id,
            action=action,
            from_state=from_state,
            to_state=to_state,
            actor_account_id=actor_account_id,
            note=note,
            data=data or {},
            created_at=now,
        )
    )


async def move_member(
    session: AsyncSession, member_id: int, from_org_id: int, to_org_id: int
) -> bool:
    """Change the member's home organisation if it is still ``from_org_id`` (the row lock
    of this UPDATE serialises it with edits of the member); False if it moved meanwhile."""
    result = await session.execute(
        update(Member)
        .where(Member.id == member_id, Member.home_org_id == from_org_id)
        .values(home_org_id=to_org_id, version=Member.version + 1)
        .returning(Member.id)
        .execution_options(synchronize_session=False)
    )
    return result.first() is not None


async def member_account_id(session: AsyncSession, member_id: int) -> int | None:
    stmt = select(A.c.id).where(A.c.member_id == member_id)
    return (await session.execute(stmt)).scalar_one_or_none()


# ---------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------

COLUMNS: Final = (
    T.c.id,
    T.c.member_id,
    M.c.name.label("member_name"),
    T.c.from_org_id,
    FROM_ORG.c.name.label("from_org_name"),
    T.c.to_org_id,
    TO_ORG.c.name.label("to_org_name"),
    T.c.status,
    T.c.reason,
    T.c.note,
    T.c.letter_no,
    T.c.requested_by_account_id,
    T.c.approved_at,
    T.c.closed_at,
    T.c.close_reason,
    T.c.outflow_id,
    T.c.version,
    T.c.created_at,
    T.c.updated_at,
)
_FROM: Final = (
    T.join(M, M.c.id == T.c.member_id)
    .join(FROM_ORG, FROM_ORG.c.id == T.c.from_org_id)
    .join(TO_ORG, TO_ORG.c.id == T.c.to_org_id)
)
LIST: Final[Select[Any]] = select(*COLUMNS).select_from(_FROM).order_by(T.c.id.desc())
ONE: Final[Select[Any]] = select(*COLUMNS).select_from(_FROM)
# The timeline as one JSON array beside the transfer's columns: a transfer and its
# history in one statement. The actor is named by his roster name (else his account's).
_ACTOR = M.alias("actor_member")
_EVENT_JSON = func.json_build_object(
    *(
        part
        for key, column in (
            ("id", E.c.id),
            ("action", E.c.action),
            ("from_state", E.c.from_state),
            ("to_state", E.c.to_state),
            ("actor_account_id", E.c.actor_account_id),
            ("actor_name", func.coalesce(_ACTOR.c.name, A.c.display_name)),
            ("note", E.c.note),
            ("data", E.c.data),
            ("created_at", E.c.created_at),
        )
        for part in (literal_column(f"'{key}'"), column)
    )
)
_TIMELINE: Final = (
    select(
        func.coalesce(func.json_agg(aggregate_order_by(_EVENT_JSON, E.c.id)), text("'[]'::json"))
    )
    .select_from(
        E.outerjoin(A, A.c.id == E.c.actor_account_id).outerjoin(
            _ACTOR, _ACTOR.c.id == A.c.member_id
        )
    )
    .where(E.c.transfer_id == T.c.id)
    .scalar_subquery()
    .label("timeline")
)
DETAIL: Final[Select[Any]] = select(*COLUMNS, _TIMELINE).select_from(_FROM)


@dataclass(frozen=True)
class ListFilter:
    status: str | None = None
    direction: str | None = None  # "out": leaving the subtree, "in": entering it
    within_path: str | None = None  # the ``org_id`` filter's subtree
    member_id: int | None = None


def _in_subtree(org_col: ColumnElement[int], path: str) -> ColumnElement[bool]:
    return org_col.in_(
        select(Organization.id).where(Organization.path.startswith(path, autoescape=True))
    )


def list_conditions(scope: Scope, f: ListFilter) -> list[ColumnElement[bool]]:
    """Scope and filters of the admins' list. ``direction`` picks which side of the
    transfer must lie in the subtree (the ``org_id`` one, else the caller's)."""

    def side(org_col: ColumnElement[int]) -> ColumnElement[bool]:
        if f.within_path is not None:
            return _in_subtree(org_col, f.within_path)
        return scope.org_visible(org_col) if not scope.is_empty else false()

    if f.direction == "out":
        conditions = [side(T.c.from_org_id)]
    elif f.direction == "in":
        conditions = [side(T.c.to_org_id)]
    else:
        conditions = [or_(side(T.c.from_org_id), side(T.c.to_org_id))]
    if f.status is not None:
        conditions.append(T.c.status == f.status)
    if f.member_id is not None:
        conditions.append(T.c.member_id == f.member_id)
    return conditions


async def list_page(
    session: AsyncSession,
    conditions: list[ColumnElement[bool]],
    *,
    limit: int,
    before_id: int | None,
) -> list[Row[Any]]:
    stmt = LIST.where(*conditions)
    if before_id is not None:
        stmt = stmt.where(T.c.id < before_id)
    return list((await session.execute(stmt.limit(limit))).all())


async def one(
    session: AsyncSession, transfer_id: int, visible: ColumnElement[bool]
) -> Row[Any] | None:
    stmt = ONE.where(T.c.id == transfer_id, visible)
    row: Row[Any] | None = (await session.execute(stmt)).first()
    return row


async def detail(
    session: AsyncSession, transfer_id: int, visible: ColumnElement[bool]
) -> Row[Any] | None:
    """One transfer with its timeline (``timeline``: a JSON list, oldest first)."""
    row: Row[Any] | None = (
        await session.execute(DETAIL.where(T.c.id == transfer_id, visible))
    ).first()
    return row
