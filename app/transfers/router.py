"""HTTP endpoints of relation transfers (组织关系转接)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from app.core import clock
from app.core.db import SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, IdPath, LimitParam, Page
from app.core.routing import DomainRouter
from app.core.types import ParamId
from app.identity.principal import MemberDep
from app.orders.deps import ScopeDep
from app.organization.scope import AdminScopeDep
from app.transfers import service
from app.transfers.schemas import (
    Direction,
    Status,
    TransferAcceptIn,
    TransferApproveIn,
    TransferCreate,
    TransferDetail,
    TransferOut,
    TransferReasonIn,
    TransferWithdrawIn,
)

router = DomainRouter(tags=["transfers"])

TransferId = IdPath


@router.post("/transfers", status_code=201, response_model=TransferDetail)
async def request_transfer(
    body: TransferCreate, scope: ScopeDep, session: SessionDep, idem: IdempotencyDep
) -> Response:
    """党员本人申请，或其组织关系所在党组织（含上级）的管理员代为申请（member_id）。
    同一党员只能有一件办理中的转接（409 transfer.already_open）。"""

    async def run() -> TransferDetail:
        transfer_id = await service.request(session, scope, body, clock.now())
        return await service.detail(session, scope, transfer_id)

    return await idem.run(run, status_code=201)


@router.get("/transfers", response_model=Page[TransferOut])
async def list_transfers(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: Annotated[ParamId | None, Query(description="组织 id（含下级）")] = None,
    status: Status | None = None,
    direction: Annotated[
        Direction | None, Query(description="out：从本组织转出；in：转入本组织；不填为两者")
    ] = None,
    member_id: Annotated[ParamId | None, Query(description="只看该党员的转接")] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[TransferOut]:
    """管理员：转出或转入本组织（或 org_id 组织）及其下级的组织关系转接，最新在前。"""
    return await service.admin_page(
        session,
        scope,
        org_id=org_id,
        status=status,
        direction=direction,
        member_id=member_id,
        limit=limit,
        cursor=cursor,
    )


@router.get("/me/transfers", response_model=Page[TransferOut])
async def my_transfers(
    principal: MemberDep,
    session: SessionDep,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[TransferOut]:
    """本人的组织关系转接，最新在前。"""
    assert principal.member_id is not None
    return await service.my_page(session, principal.member_id, limit=limit, cursor=cursor)


@router.get("/transfers/{transfer_id}", response_model=TransferDetail)
async def get_transfer(
    transfer_id: TransferId, scope: ScopeDep, session: SessionDep
) -> TransferDetail:
    """转接详情与办理过程（timeline）：党员本人、申请人、转出和接收两侧的管理员可见。"""
    return await service.detail(session, scope, transfer_id)


async def _act(
    session: SessionDep,
    scope: ScopeDep,
    transfer_id: int,
    action: str,
    *,
    version: int,
    reason: str | None = None,
    letter_no: str | None = None,
) -> TransferDetail:
    await service.act(
        session,
        scope,
        transfer_id,
        action,
        version=version,
        now=clock.now(),
        reason=reason,
        letter_no=letter_no,
    )
    return await service.detail(session, scope, transfer_id)


@router.post("/transfers/{transfer_id}/approve", response_model=TransferDetail)
async def approve_transfer(
    transfer_id: TransferId, body: TransferApproveIn, scope: AdminScopeDep, session: SessionDep
) -> TransferDetail:
    """转出党组织（党员组织关系所在党组织及其上级）同意转出，填写介绍信编号 → approved。"""
    return await _act(
        session, scope, transfer_id, "approve", version=body.version, letter_no=body.letter_no
    )


@router.post("/transfers/{transfer_id}/reject", response_model=TransferDetail)
async def reject_transfer(
    transfer_id: TransferId, body: TransferReasonIn, scope: AdminScopeDep, session: SessionDep
) -> TransferDetail:
    """转出党组织不同意转出（须填写原因）→ rejected。"""
    return await _act(
        session, scope, transfer_id, "reject", version=body.version, reason=body.reason
    )


@router.post("/transfers/{transfer_id}/accept", response_model=TransferDetail)
async def accept_transfer(
    transfer_id: TransferId, body: TransferAcceptIn, scope: AdminScopeDep, session: SessionDep
) -> TransferDetail:
    """接收党组织接收 → completed：党员的组织关系所在党组织改为接收党组织，进行中的外出
    登记一并关闭（transferred）。"""
    return await _act(
        session, scope, transfer_id, "accept", version=body.version, reason=body.reason
    )


@router.post("/transfers/{transfer_id}/refuse", response_model=TransferDetail)
async def refuse_transfer(
    transfer_id: TransferId, body: TransferReasonIn, scope: AdminScopeDep, session: SessionDep
) -> TransferDetail:
    """接收党组织拒绝接收（须填写原因）→ refused。"""
    return await _act(
        session, scope, transfer_id, "refuse", version=body.version, reason=body.reason
    )


@router.post("/transfers/{transfer_id}/withdraw", response_model=TransferDetail)
async def withdraw_transfer(
    transfer_id: TransferId,
    body: TransferWithdrawIn,
    scope: ScopeDep,
    session: SessionDep,
    idem: IdempotencyDep,
) -> Response:
    """申请人、党员本人或其所在党组织的管理员在办结前撤回 → withdrawn。"""

    async def run() -> TransferDetail:
        return await _act(
            session, scope, transfer_id, "withdraw", version=body.version, reason=body.reason
        )

    return await idem.run(run)
