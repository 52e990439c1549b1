"""HTTP endpoints of the study domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from app.core.db import ReadSessionDep, SessionDep, driver_connection
from app.core.idempotency import IdempotencyDep
from app.core.lean import model_response, parse_body, served_by
from app.core.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page
from app.core.types import ParamId
from app.identity.principal import MemberDep, PrincipalDep, get_member_principal, get_principal
from app.organization.scope import AdminScopeDep
from app.study import service
from app.study.batching import AwardBatcher
from app.study.schemas import (
    BatchCreate,
    BatchOut,
    CheckinCreate,
    CheckinOut,
    CreditsOut,
    ItemCreate,
    ItemKind,
    ItemOut,
    LeaderboardOut,
    Period,
    SessionCreate,
    SessionOut,
)

router = APIRouter(tags=["study"])


@router.get("/study/items", response_model=Page[ItemOut], summary="可学习的内容")
async def list_items(
    session: SessionDep,
    principal: PrincipalDep,
    kind: Annotated[ItemKind | None, Query()] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[ItemOut]:
    items, next_cursor = await service.list_items(
        session, principal, kind=kind, cursor=cursor, limit=limit
    )
    return Page[ItemOut](items=items, next_cursor=next_cursor)


@router.post("/study/items", response_model=ItemOut, status_code=201, summary="新增学习内容")
async def create_item(session: SessionDep, scope: AdminScopeDep, body: ItemCreate) -> ItemOut:
    return await service.create_item(session, scope, body, account_id=scope.principal.account_id)


@router.post(
    "/study/sessions", response_model=SessionOut, status_code=201, summary="开始学习（服务器计时）"
)
async def start_session(
    session: SessionDep, member: MemberDep, idem: IdempotencyDep, body: SessionCreate
) -> Response:
    return await idem.run(
        lambda: service.start_session(session, member, body.item_id), status_code=201
    )


def _batcher(request: Request) -> AwardBatcher:
    """The app's check-in batcher over its driver pool (built and drained by the lifespan)."""
    batcher: AwardBatcher = request.app.state.award_batcher
    return batcher


async def serve_checkin(request: Request) -> Response:
    """The check-in as most phones send it: plain JSON, no Idempotency-Key (the
    ``client_event_id`` already makes it safe to repeat), awarded together with the
    other check-ins of the moment (app/study/batching.py). See app/core/lean.py."""
    member = await get_member_principal(await get_principal(request))
    assert member.member_id is not None
    body = await parse_body(request, CheckinCreate)
    result = await service.checkin(
        _batcher(request).award,
        member_id=member.member_id,
        session_id=body.session_id,
        client_event_id=body.client_event_id,
    )
    return model_response(result)


@router.post(
    "/study/checkins",
    response_model=CheckinOut,
    summary="学习打卡",
    description=(
        "学习时间（服务器计）不足 min_seconds 时返回 422 study.too_short，"
        "并附 seconds_remaining；同一 client_event_id 或同一学习记录重复打卡返回首次结果。"
    ),
)
@served_by(serve_checkin)
async def checkin(
    session: SessionDep, member: MemberDep, idem: IdempotencyDep, body: CheckinCreate
) -> Response:
    assert member.member_id is not None
    member_id = member.member_id

    async def run() -> CheckinOut:
        return await service.checkin(
            service.on_connection(await driver_connection(session)),
            member_id=member_id,
            session_id=body.session_id,
            client_event_id=body.client_event_id,
        )

    return await idem.run(run)


@router.post(
    "/study/checkins/batch",
    response_model=BatchOut,
    summary="离线打卡批量上报（最多 100 条，逐条判定）",
)
async def checkin_batch(
    session: SessionDep, member: MemberDep, idem: IdempotencyDep, body: BatchCreate
) -> Response:
    assert member.member_id is not None
    member_id = member.member_id
    return await idem.run(
        lambda: service.checkin_batch(session, member_id=member_id, events=body.events)
    )


@router.get("/me/credits", response_model=CreditsOut, summary="我的学习积分")
async def my_credits(session: SessionDep, member: MemberDep) -> CreditsOut:
    assert member.member_id is not None
    return await service.my_credits(session, member.member_id)


@router.get("/study/leaderboard", response_model=LeaderboardOut, summary="积分排行")
async def leaderboard(
    session: SessionDep,
    reads: ReadSessionDep,
    principal: PrincipalDep,
    org_id: Annotated[ParamId | None, Query()] = None,
    period: Annotated[Period, Query()] = "day",
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> LeaderboardOut:
    # A member sees only his own standing: his own read, on the primary.
    return await service.leaderboard(
        reads if principal.is_admin else session,
        principal,
        org_id=org_id,
        period=period,
        cursor=cursor,
        limit=limit,
    )
