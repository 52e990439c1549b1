"""HTTP endpoints of the inflow ledger (流入登记 / 亮身份)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from app.core import clock
from app.core.config import Settings
from app.core.db import ReadSessionDep, SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, IdPath, LimitParam, Page
from app.core.ratelimit import Policy, hit
from app.core.routing import DomainRouter
from app.core.types import ParamId
from app.core.xlsx import XLSX, xlsx_download
from app.identity.principal import PrincipalDep
from app.identity.sessions import cache_of
from app.inflows import ledger, service
from app.inflows.repository import LedgerFilter
from app.inflows.schemas import (
    InflowCreate,
    InflowFlag,
    InflowOut,
    InflowSource,
    InflowStats,
    InflowStatus,
    RejectIn,
    RevealOut,
    RevealRequest,
    VerifyIn,
    WithdrawIn,
)
from app.organization.scope import AdminScopeDep, Scope, build_scope

router = DomainRouter(tags=["inflows"])

InflowId = IdPath
OrgIdParam = Annotated[ParamId | None, Query(description="组织 id（含下级）")]
# The same budget as the roster's reveals: personal data in clear, per admin and hour.
REVEAL_POLICY = Policy("pii.reveal", limit=120, window_s=3600)
# Declarations per account and hour: each one asks an organisation's admins to act.
DECLARE_POLICY = Policy("inflow.declare", limit=10, window_s=3600)


async def _caller_scope(principal: PrincipalDep, session: SessionDep) -> Scope:
    return await build_scope(session, principal)


CallerScopeDep = Annotated[Scope, Depends(_caller_scope)]
NO_CONTROL = r"^[^\x00-\x1f]*$"


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _today() -> date:
    """Today in Asia/Shanghai (the app's one clock): the day the flags count in."""
    return clock.today()


SettingsDep = Annotated[Settings, Depends(_settings)]
TodayDep = Annotated[date, Depends(_today)]


async def _filters(
    status: InflowStatus | None = None,
    source: InflowSource | None = None,
    flag: Annotated[
        InflowFlag | None, Query(description="标记：建议转接组织关系 / 逾期未核实")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=50,
            pattern=NO_CONTROL,
            description="姓名、工作单位或原所在党组织（部分匹配）",
        ),
    ] = None,
) -> LedgerFilter:
    return LedgerFilter(status=status, source=source, flag=flag, q=q)


FiltersDep = Annotated[LedgerFilter, Depends(_filters)]


@router.post(
    "/inflows",
    status_code=201,
    response_model=InflowOut,
    responses={429: {"description": "rate_limited：登记过于频繁（带 Retry-After）"}},
)
async def declare_inflow(
    body: InflowCreate,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> Response:
    """流入登记（亮身份）：任何已登录用户向组织目录中的党组织登记，状态 pending，待该组织核实。"""
    await hit(request.app.state.engine, DECLARE_POLICY, str(principal.account_id))

    async def run() -> InflowOut:
        inflow = await service.declare(session, settings, principal, body)
        scope = await build_scope(session, principal)
        return await ledger.view(session, scope, inflow.id, clock.today())

    return await idem.run(run, status_code=201)


@router.get("/me/inflows", response_model=Page[InflowOut])
async def list_my_inflows(
    scope: CallerScopeDep,
    session: SessionDep,
    today: TodayDep,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[InflowOut]:
    """本人的流入登记，最新在前（含核实结果与下一步提示）。"""
    return await ledger.mine(session, scope, today=today, limit=limit, cursor=cursor)


@router.get("/inflows", response_model=Page[InflowOut])
async def list_inflows(
    scope: AdminScopeDep,
    session: ReadSessionDep,
    today: TodayDep,
    filters: FiltersDep,
    org_id: OrgIdParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[InflowOut]:
    """流入党员台账（身份证号、手机号脱敏）。"""
    return await ledger.page(
        session, scope, org_id=org_id, filters=filters, today=today, limit=limit, cursor=cursor
    )


@router.get("/inflows/stats", response_model=InflowStats)
async def inflow_stats(
    scope: AdminScopeDep,
    session: ReadSessionDep,
    today: TodayDep,
    filters: FiltersDep,
    org_id: OrgIdParam = None,
) -> InflowStats:
    """流入党员统计：按状态、来源、标记、原所在省份。"""
    return await ledger.stats(session, scope, org_id=org_id, filters=filters, today=today)


@router.get(
    "/inflows/export",
    response_class=StreamingResponse,
    responses={200: {"content": {XLSX: {}}, "description": "xlsx 台账"}},
)
async def export_inflows(
    scope: AdminScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    today: TodayDep,
    filters: FiltersDep,
    org_id: OrgIdParam = None,
    full: Annotated[
        bool, Query(description="导出完整身份证号和手机号（须填写 export_reason，记入审计）")
    ] = False,
    export_reason: Annotated[
        str | None, Query(max_length=200, pattern=NO_CONTROL, description="完整导出的用途")
    ] = None,
) -> StreamingResponse:
    """流入党员台账 xlsx（流式下载；每次导出记入审计）。"""
    result = await ledger.export(
        session,
        settings,
        scope,
        org_id=org_id,
        filters=filters,
        today=today,
        full=full,
        reason=export_reason,
    )
    return xlsx_download(
        result,
        ascii_name=f"inflows-{today.isoformat()}.xlsx",
        name=f"流入党员台账-{today.isoformat()}.xlsx",
    )


@router.get("/inflows/{inflow_id}", response_model=InflowOut)
async def get_inflow(
    inflow_id: InflowId, scope: CallerScopeDep, session: SessionDep, today: TodayDep
) -> InflowOut:
    """一条流入登记：登记人本人或该组织（含上级）管理员可见。"""
    return await ledger.view(session, scope, inflow_id, today)


@router.post("/inflows/{inflow_id}/verify", response_model=InflowOut)
async def verify_inflow(
    inflow_id: InflowId,
    body: VerifyIn,
    request: Request,
    scope: AdminScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    today: TodayDep,
) -> InflowOut:
    """核实通过：身份证号在党员名册中的，关联该党员并开始双向共管（流入地报到已接收）；
    不在名册中的，作为流入党员在本组织台账管理，并提示转接组织关系。"""
    inflow = await service.verify(
        session, settings, scope, inflow_id, version=body.version, note=body.note
    )
    if inflow.account_id is not None and inflow.matched_member_id is not None:
        # His account may have been linked to the member: read afresh once this commits.
        cache_of(request).hold(account_id=inflow.account_id)  # app/identity/sessions.py
    return await ledger.view(session, scope, inflow.id, today)


@router.post("/inflows/{inflow_id}/reject", response_model=InflowOut)
async def reject_inflow(
    inflow_id: InflowId, body: RejectIn, scope: AdminScopeDep, session: SessionDep, today: TodayDep
) -> InflowOut:
    """驳回流入登记（须填写原因，告知登记人）。"""
    inflow = await service.reject(session, scope, inflow_id, version=body.version, note=body.note)
    return await ledger.view(session, scope, inflow.id, today)


@router.post("/inflows/{inflow_id}/withdraw", response_model=InflowOut)
async def withdraw_inflow(
    inflow_id: InflowId,
    body: WithdrawIn,
    scope: CallerScopeDep,
    session: SessionDep,
    today: TodayDep,
) -> InflowOut:
    """登记人撤回待核实的流入登记。"""
    inflow = await service.withdraw(session, scope, inflow_id, version=body.version)
    return await ledger.view(session, scope, inflow.id, today)


@router.post(
    "/inflows/{inflow_id}/reveal",
    response_model=RevealOut,
    responses={429: {"description": "rate_limited：查看明文过于频繁（带 Retry-After）"}},
)
async def reveal_inflow(
    inflow_id: InflowId,
    data: RevealRequest,
    request: Request,
    scope: AdminScopeDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """查看完整身份证号或手机号（须填写原因，记入审计）。"""
    headers = await hit(request.app.state.engine, REVEAL_POLICY, str(scope.principal.account_id))
    value = await service.reveal(
        session, settings, scope, inflow_id, field=data.field, reason=data.reason
    )
    body = RevealOut(field=data.field, value=value).model_dump_json()
    return Response(body, media_type="application/json", headers=headers)
