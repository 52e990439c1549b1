"""HTTP endpoints of the study domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response

from app.core.db import ReaderDep, ReadSessionDep, SessionDep, driver_connection
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page
from app.core.routing import DomainRouter, PlainRoute
from app.core.types import ParamId
from app.identity.principal import MemberDep, PrincipalDep
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

router = DomainRouter(tags=["study"])


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


async def start_session(
    reader: ReaderDep, member: MemberDep, idem: IdempotencyDep, body: SessionCreate
) -> Response:
    return await idem.run(
        lambda: service.start_session(idem.source(reader), member, body.item_id),
        status_code=201,
    )


# Plain JSON without a key or an Origin takes the plain route (app/core/routing.py).
router.add_api_route(
    "/study/sessions",
    start_session,
    methods=["POST"],
    status_code=201,
    route_class_override=PlainRoute,
)
router.add_api_route(
    "/study/sessions",
    start_session,
    methods=["POST"],
    response_model=SessionOut,
    status_code=201,
    summary="开始学习（服务器计时）",
)


def _batcher(request: Request) -> AwardBatcher:
    """The app's check-in batcher over its driver pool (built and drained by the lifespan)."""
    batcher: AwardBatcher = request.app.state.award_batcher
    return batcher


async def checkin(
    request: Request, member: MemberDep, idem: IdempotencyDep, body: CheckinCreate
) -> Response:
    """Without ``Idempotency-Key`` (as most phones send it: ``client_event_id`` already
    makes a repeat safe) the award is shared with the other check-ins of the moment
    (app/study/batching.py) and no session is opened; with a key it runs in the
    request's transaction, beside the stored key."""
    assert member.member_id is not None
    member_id = member.member_id

    async def run() -> CheckinOut:
        award = (
            _batcher(request).award
            if idem.key is None
            else service.on_connection(await driver_connection(idem.session))
        )
        return await service.checkin(
            award,
            member_id=member_id,
            session_id=body.session_id,
            client_event_id=body.client_event_id,
        )

    return await idem.run(run)


# One endpoint, two routes on its path (app/core/routing.py): plain JSON without a key
# or an Origin is served by the plain route, everything else by the documented one.
router.add_api_route("/study/checkins", checkin, methods=["POST"], route_class_override=PlainRoute)
router.add_api_route(
    "/study/checkins",
    checkin,
    methods=["POST"],
    response_model=CheckinOut,
    summary="学习打卡",
    description=(
        "学习时间（服务器计）不足 min_seconds 时返回 422 study.too_short，"
        "并附 seconds_remaining；同一 client_event_id 或同一学习记录重复打卡返回首次结果。"
    ),
)


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


async def my_credits(reader: ReaderDep, member: MemberDep) -> CreditsOut:
    assert member.member_id is not None
    return await service.my_credits(reader, member.member_id)


router.add_api_route("/me/credits", my_credits, methods=["GET"], route_class_override=PlainRoute)
router.add_api_route(
    "/me/credits", my_credits, methods=["GET"], response_model=CreditsOut, summary="我的学习积分"
)


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
