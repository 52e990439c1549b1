"""Relation transfer rules: the request, the five moves over the one transition table
(:mod:`app.transfers.rules`), and the reads.

Every move locks the transfer (``SELECT … FOR UPDATE``), checks the caller's side and
the ``version``, moves through the table, writes the timeline, audits, and tells the
people who must act next. Completion changes the member's home organisation and closes
his open outflow as ``transferred`` in the same transaction. Services flush; the
request commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import audited_refusal, record
from app.core.errors import stale_version
from app.core.pagination import Page, decode_cursor, page_of
from app.mobility import service as mobility
from app.mobility.notices import tell_admins
from app.mobility.schemas import OrgRef
from app.notify.service import notify, notify_member
from app.organization.scope import Scope, get_visible_org
from app.transfers import errors
from app.transfers import repository as repo
from app.transfers.models import RelationTransfer
from app.transfers.rules import HOME, RECEIVING, SIDES, next_state
from app.transfers.schemas import (
    TransferCreate,
    TransferDetail,
    TransferEvent,
    TransferMember,
    TransferOut,
)

ADMIN_PAGE = "pages/admin/transfers"  # the admins' list (?id= one transfer)
MEMBER_PAGE = "pages/transfer/detail"


# ---------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------


async def request(session: AsyncSession, scope: Scope, body: TransferCreate, now: datetime) -> int:
    """A member asks for himself, or an admin of the member's home subtree for him."""
    principal = scope.principal
    member_id = body.member_id or principal.member_id
    if member_id is None:
        raise errors.member_required()
    for_himself = member_id == principal.member_id
    if not for_himself and scope.is_empty:  # only admins ask on someone else's behalf
        raise errors.home_admin_required()
    member = await repo.subject(session, scope, member_id)
    if member is None or not (for_himself or member.visible):
        raise errors.member_not_found()
    if not for_himself and not member.changeable:  # a co-manager serves, never moves him
        raise audited_refusal(
            errors.home_admin_required(),
            actor_account_id=principal.account_id,
            action="transfer.request_refused",
            org_id=member.home_org_id,
            subject_type="member",
            subject_id=member.id,
        )
    if not await repo.org_exists(session, body.to_org_id):
        raise errors.receiving_org_not_found()
    if body.to_org_id == member.home_org_id:
        raise errors.same_org()
    if await repo.open_transfer_id(session, member.id) is not None:
        raise errors.already_open()
    transfer = RelationTransfer(
        member_id=member.id,
        from_org_id=member.home_org_id,
        to_org_id=body.to_org_id,
        status=next_state("new", "request"),
        reason=body.reason,
        note=body.note,
        requested_by_account_id=principal.account_id,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(transfer)
    try:
        await session.flush()
    except IntegrityError as error:  # the partial unique index: a concurrent request
        raise errors.already_open() from error
    repo.add_event(
        session,
        transfer,
        action="request",
        from_state="new",
        to_state=transfer.status,
        actor_account_id=principal.account_id,
        now=now,
        note=body.reason,
        data={"to_org_id": body.to_org_id},
    )
    await record(
        session,
        actor_account_id=principal.account_id,
        action="transfer.requested",
        org_id=transfer.from_org_id,
        subject_type="transfer",
        subject_id=transfer.id,
        reason=body.reason,
        detail={"member_id": member.id, "to_org_id": body.to_org_id},
    )
    await tell_admins(
        session,
        transfer.from_org_id,
        template="transfer_requested",
        title="组织关系转接待审批",
        body=f"党员 {member.name} 申请将组织关系转出（{body.reason}），请审批并开具介绍信。",
        data={"transfer_id": transfer.id, "member_name": member.name, "step": "待审批"},
        query=f"id={transfer.id}",
        dedupe=f"transfer:{transfer.id}:requested",
        page=ADMIN_PAGE,
    )
    await session.flush()
    return transfer.id


# ---------------------------------------------------------------------------
# The moves
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Given:
    """What the caller sent with a move."""

    reason: str | None = None
    letter_no: str | None = None


Write = Callable[
    [AsyncSession, RelationTransfer, Scope, datetime, Given], Awaitable[dict[str, Any]]
]


@dataclass(frozen=True)
class Move:
    write: Write
    audit: str
    result: str  # the member's message: the phrase of the subscribe message
    message: str  # ...and its text; fills in {reason}, {letter_no}, {to_org}
    receiving_audit: bool = False  # the receiving side acts: the home side sees it too


async def _approved(
    session: AsyncSession, t: RelationTransfer, scope: Scope, now: datetime, given: Given
) -> dict[str, Any]:
    t.letter_no = given.letter_no
    t.approved_at = now
    return {"letter_no": given.letter_no}


async def _completed(
    session: AsyncSession, t: RelationTransfer, scope: Scope, now: datetime, given: Given
) -> dict[str, Any]:
    # The member's row (locked by the UPDATE), then his open outflow: always in this order.
    if not await repo.move_member(session, t.member_id, t.from_org_id, t.to_org_id):
        raise errors.home_changed()
    t.outflow_id = await mobility.close_for_transfer(
        session, t.member_id, actor=scope.principal, now=now, transfer_id=t.id
    )
    t.closed_at = now
    t.close_reason = given.reason
    data: dict[str, Any] = {"from_org_id": t.from_org_id, "to_org_id": t.to_org_id}
    if t.outflow_id is not None:
        data["outflow_id"] = t.outflow_id
    return data


async def _closed(
    session: AsyncSession, t: RelationTransfer, scope: Scope, now: datetime, given: Given
) -> dict[str, Any]:
    t.closed_at = now
    t.close_reason = given.reason
    return {}


MOVES: dict[str, Move] = {
    "approve": Move(
        _approved,
        "transfer.approved",
        "同意转出",
        "所在党组织已同意转出（介绍信 {letter_no}），待{to_org}接收。",
    ),
    "reject": Move(_closed, "transfer.rejected", "未同意", "所在党组织未同意转出：{reason}"),
    "accept": Move(
        _completed,
        "transfer.completed",
        "已完成",
        "{to_org}已接收，组织关系转接完成，今后请参加其组织生活。",
        receiving_audit=True,
    ),
    "refuse": Move(
        _closed, "transfer.refused", "未接收", "{to_org}未接收：{reason}", receiving_audit=True
    ),
    "withdraw": Move(_closed, "transfer.withdrawn", "已撤回", "组织关系转接申请已撤回：{reason}"),
}


async def _check_side(
    session: AsyncSession, scope: Scope, t: RelationTransfer, action: str
) -> repo.Sides:
    side = SIDES[action]
    sides = await repo.sides(session, scope, t.member_id, t.to_org_id)
    principal = scope.principal
    if side == HOME:
        allowed, refusal = sides.home, errors.home_admin_required()
    elif side == RECEIVING:
        allowed, refusal = sides.receiving, errors.receiving_admin_required()
    else:  # the requester: the member, the account that asked, or the home side
        allowed = (
            principal.member_id == t.member_id
            or principal.account_id == t.requested_by_account_id
            or sides.home
        )
        refusal = errors.requester_required()
    if not allowed:
        raise audited_refusal(
            refusal,
            actor_account_id=principal.account_id,
            action="transfer.move_refused",
            org_id=t.to_org_id if side == RECEIVING else t.from_org_id,
            subject_type="transfer",
            subject_id=t.id,
            detail={"action": action},
        )
    return sides


async def act(
    session: AsyncSession,
    scope: Scope,
    transfer_id: int,
    action: str,
    *,
    version: int,
    now: datetime,
    reason: str | None = None,
    letter_no: str | None = None,
) -> int:
    """Take one of :data:`MOVES` on a transfer the caller can see."""
    move = MOVES[action]
    t = await repo.lock(session, transfer_id, repo.transfer_visible(scope))
    if t is None:
        raise errors.transfer_not_found()
    sides = await _check_side(session, scope, t, action)
    if t.version != version:
        raise stale_version()
    before = t.status
    target = next_state(before, action)
    if action == "approve" and sides.home_org_id != t.from_org_id:
        raise errors.home_changed()  # someone moved him since he asked: the letter is moot
    data = await move.write(session, t, scope, now, Given(reason, letter_no))
    t.status = target
    t.version += 1
    repo.add_event(
        session,
        t,
        action=action,
        from_state=before,
        to_state=target,
        actor_account_id=scope.principal.account_id,
        now=now,
        note=reason,
        data=data,
    )
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action=move.audit,
        org_id=t.to_org_id if move.receiving_audit else t.from_org_id,
        member_home_org_id=t.from_org_id if move.receiving_audit else None,
        subject_type="transfer",
        subject_id=t.id,
        reason=reason,
        detail={"member_id": t.member_id, **data},
    )
    await session.flush()
    await _tell(session, scope, t, action, move, reason=reason)
    return t.id


async def _tell(
    session: AsyncSession,
    scope: Scope,
    t: RelationTransfer,
    action: str,
    move: Move,
    *,
    reason: str | None,
) -> None:
    """Who must act next hears of it: the receiving side once the home side approved. The
    member hears of every decision (of a withdrawal when someone else withdrew), the
    requester (an admin who asked for him) of the end."""
    row = await repo.one(session, t.id, repo.T.c.id == t.id)
    assert row is not None
    if action == "approve":
        await tell_admins(
            session,
            t.to_org_id,
            template="transfer_requested",
            title="组织关系转入待接收",
            body=f"党员 {row.member_name} 的组织关系由{row.from_org_name}转入本组织"
            f"（介绍信 {t.letter_no}），请及时接收。",
            data={
                "transfer_id": t.id,
                "member_name": row.member_name,
                "to_org_name": row.to_org_name,
                "step": "待接收",
            },
            query=f"id={t.id}",
            dedupe=f"transfer:{t.id}:approved",
            page=ADMIN_PAGE,
        )
    if action == "withdraw" and scope.principal.member_id == t.member_id:
        return  # he withdrew himself
    text = move.message.format(
        reason=reason or "未说明原因", letter_no=t.letter_no, to_org=row.to_org_name
    )
    data: dict[str, str | int] = {
        "transfer_id": t.id,
        "to_org_name": row.to_org_name,
        "result": move.result,
    }
    dedupe = f"transfer:{t.id}:{action}"
    member_account = await repo.member_account_id(session, t.member_id)
    await notify_member(
        session,
        member_id=t.member_id,
        template="transfer_status",
        title="组织关系转接进度",
        body=text,
        data=data,
        page=f"{MEMBER_PAGE}?id={t.id}",
        dedupe_key=f"{dedupe}:member",
    )
    requester = t.requested_by_account_id
    ends = action in ("accept", "refuse", "reject")
    if ends and requester is not None and requester != member_account:
        await notify(
            session,
            account_id=requester,
            template="transfer_status",
            title=f"{row.member_name} 的组织关系转接进度",
            body=text,
            data=data,
            page=f"{ADMIN_PAGE}?id={t.id}",
            dedupe_key=f"{dedupe}:requester",
        )


# ---------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------


def transfer_out(row: Row[Any]) -> TransferOut:
    return TransferOut(
        id=row.id,
        member=TransferMember(id=row.member_id, name=row.member_name),
        from_org=OrgRef(id=row.from_org_id, name=row.from_org_name),
        to_org=OrgRef(id=row.to_org_id, name=row.to_org_name),
        status=row.status,
        reason=row.reason,
        note=row.note,
        letter_no=row.letter_no,
        requested_by_account_id=row.requested_by_account_id,
        approved_at=row.approved_at,
        closed_at=row.closed_at,
        close_reason=row.close_reason,
        outflow_id=row.outflow_id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def detail(session: AsyncSession, scope: Scope, transfer_id: int) -> TransferDetail:
    """One transfer the caller may see, with its timeline (one statement)."""
    row = await repo.detail(session, transfer_id, repo.transfer_visible(scope))
    if row is None:
        raise errors.transfer_not_found()
    return TransferDetail(
        **transfer_out(row).model_dump(),
        timeline=[TransferEvent.model_validate(event) for event in row.timeline],
    )


async def admin_page(
    session: AsyncSession,
    scope: Scope,
    *,
    org_id: int | None,
    status: str | None,
    direction: str | None,
    member_id: int | None,
    limit: int,
    cursor: str | None,
) -> Page[TransferOut]:
    """Transfers leaving (``out``) or entering (``in``) the caller's subtrees, or
    ``org_id``'s (404 unless it is in scope), newest first."""
    before_id = decode_cursor(cursor, int)
    within = None
    if org_id is not None:
        org = await get_visible_org(session, scope, org_id)
        if org is None:
            raise errors.org_not_found()
        within = org.path
    conditions = repo.list_conditions(
        scope,
        repo.ListFilter(
            status=status, direction=direction, within_path=within, member_id=member_id
        ),
    )
    rows = await repo.list_page(session, conditions, limit=limit + 1, before_id=before_id)
    page, next_cursor = page_of(rows, limit, lambda r: (r.id,))
    return Page[TransferOut](items=[transfer_out(r) for r in page], next_cursor=next_cursor)


async def my_page(
    session: AsyncSession, member_id: int, *, limit: int, cursor: str | None
) -> Page[TransferOut]:
    """The member's own transfers, newest first."""
    before_id = decode_cursor(cursor, int)
    rows = await repo.list_page(
        session, [repo.T.c.member_id == member_id], limit=limit + 1, before_id=before_id
    )
    page, next_cursor = page_of(rows, limit, lambda r: (r.id,))
    return Page[TransferOut](items=[transfer_out(r) for r in page], next_cursor=next_cursor)
