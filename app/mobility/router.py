"""HTTP endpoints of the mobility domain: consents, outflows, reports, ledgers, export."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from app.core import clock
from app.core.config import Settings
from app.core.db import ReadSessionDep, ReplicaReaderDep, SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import (
    DEFAULT_LIMIT,
    CursorParam,
    IdPath,
    LimitParam,
    Page,
)
from app.core.responses import json_response
from app.core.routing import DomainRouter, PlainRoute
from app.core.types import ParamId
from app.core.xlsx import xlsx_download
from app.identity.principal import MemberDep, PrincipalDep
from app.mobility import decisions, ledger, service
from app.mobility.repository import LedgerFilter
from app.mobility.schemas import (
    AcceptCheckinIn,
    ApproveIn,
    CancelIn,
    CheckinIn,
    CheckinStatus,
    ConsentIn,
    ConsentOut,
    DecisionWithReasonIn,
    Flag,
    MyOutflowHistoryItem,
    MyOutflowOut,
    OutflowCreate,
    OutflowDetail,
    OutflowOut,
    OutflowStats,
    Reason,
    RelocateIn,
    ReportIn,
    ReportOut,
    ReturnIn,
    Status,
    WithdrawIn,
)
from app.mobility.views import report_out
from app.organization.scope import AdminPrincipalDep, AdminScopeDep, Scope, build_scope
from app.wechat.client import WeChatClient

router = DomainRouter(tags=["mobility"])

OutflowId = IdPath
OrgIdParam = Annotated[ParamId | None, Query(description="组织 id（含下级）")]
NO_CONTROL = r"^[^\x00-\x1f]*$"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def get_now() -> datetime:
    """The current instant (UTC). Tests override this dependency to move the clock."""
    return clock.now()


NowDep = Annotated[datetime, Depends(get_now)]


async def get_today(now: NowDep) -> date:
    """Today in Asia/Shanghai: the day every flag rule counts in."""
    return clock.shanghai_day(now)


TodayDep = Annotated[date, Depends(get_today)]


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


async def _wechat(request: Request) -> WeChatClient:
    client: WeChatClient = request.app.state.wechat
    return client


WeChatDep = Annotated[WeChatClient, Depends(_wechat)]


async def _caller_scope(principal: PrincipalDep, session: SessionDep) -> Scope:
    return await build_scope(session, principal)


async def _member_scope(principal: MemberDep, session: SessionDep) -> Scope:
    return await build_scope(session, principal)


CallerScopeDep = Annotated[Scope, Depends(_caller_scope)]
MemberScopeDep = Annotated[Scope, Depends(_member_scope)]


async def _filters(
    status: Status | None = None,
    flag: Annotated[
        Flag | None, Query(description="标记：逾期未报到/逾期未报告/失联/建议转接")
    ] = None,
    destination_region_code: Annotated[
        str | None,
        Query(pattern=r"^[1-9][0-9]{5}$", description="流入地区划代码；省、市代码匹配其下辖地区"),
    ] = None,
    reason: Reason | None = None,
    checkin_status: CheckinStatus | None = None,
    departed_from: date | None = None,
    departed_to: date | None = None,
    returned_from: date | None = None,
    returned_to: date | None = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=50,
            pattern=NO_CONTROL,
            description="姓名或流动党员活动证编号（部分匹配）",
        ),
    ] = None,
    consent: Annotated[bool | None, Query(description="是否已授权位置信息")] = None,
) -> LedgerFilter:
    return LedgerFilter(
        status=status,
        flag=flag,
        destination_region_code=destination_region_code,
        reason=reason,
        checkin_status=checkin_status,
        departed_from=departed_from,
        departed_to=departed_to,
        returned_from=returned_from,
        returned_to=returned_to,
        q=q,
        consent=consent,
    )


FiltersDep = Annotated[LedgerFilter, Depends(_filters)]


# ---------------------------------------------------------------------------
# Consent
# ---------------------------------------------------------------------------


@router.post("/me/consents", status_code=201, response_model=ConsentOut)
async def give_consent(
    body: ConsentIn, principal: MemberDep, session: SessionDep, now: NowDep
) -> ConsentOut:
    consent = await service.record_consent(
        session, principal, kind=body.kind, granted=body.granted, now=now
    )
    return ConsentOut.model_validate(consent, from_attributes=True)


@router.get("/me/consents", response_model=Page[ConsentOut])
async def list_consents(
    principal: MemberDep,
    session: SessionDep,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[ConsentOut]:
    assert principal.member_id is not None
    return await service.consents_page(session, principal.member_id, limit=limit, cursor=cursor)


# ---------------------------------------------------------------------------
# The member's outflow
# ---------------------------------------------------------------------------


@router.get("/me/outflow", response_model=MyOutflowOut)
async def my_outflow(principal: MemberDep, session: SessionDep, today: TodayDep) -> MyOutflowOut:
    assert principal.member_id is not None
    return await service.my_outflow(session, principal.member_id, today)


@router.get("/me/outflows", response_model=Page[MyOutflowHistoryItem])
async def my_outflows(
    principal: MemberDep,
    session: SessionDep,
    today: TodayDep,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[MyOutflowHistoryItem]:
    """本人全部外出登记（含已驳回、撤回、撤销、返回），最新在前，附审批决定与原因。"""
    assert principal.member_id is not None
    return await ledger.member_history(
        session, principal.member_id, today=today, limit=limit, cursor=cursor
    )


@router.post("/outflows", status_code=201, response_model=OutflowOut)
async def register_outflow(
    body: OutflowCreate,
    principal: MemberDep,
    session: SessionDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
    now: NowDep,
) -> Response:
    async def run() -> OutflowOut:
        outflow = await service.register(session, settings, principal, body, now)
        return await ledger.view(session, outflow.id, clock.shanghai_day(now))

    return await idem.run(run, status_code=201)


# ---------------------------------------------------------------------------
# Ledger, statistics, export (admins)
# ---------------------------------------------------------------------------


async def list_outflows(
    principal: AdminPrincipalDep,
    reader: ReplicaReaderDep,
    today: TodayDep,
    filters: FiltersDep,
    org_id: OrgIdParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Response:
    # One statement on a driver pool (the replica's while it is fresh, as the other
    # ledgers read), its scope read inside it; the page is written once
    # (app/core/responses.py).
    page = await ledger.admin_page(
        reader, principal, org_id=org_id, filters=filters, today=today, limit=limit, cursor=cursor
    )
    return json_response(page)


# Plain requests (no Origin) take the plain route (app/core/routing.py); same endpoint.
router.add_api_route("/outflows", list_outflows, methods=["GET"], route_class_override=PlainRoute)
router.add_api_route("/outflows", list_outflows, methods=["GET"], response_model=Page[OutflowOut])


@router.get("/outflows/stats", response_model=OutflowStats)
async def outflow_stats(
    scope: AdminScopeDep,
    session: ReadSessionDep,
    today: TodayDep,
    filters: FiltersDep,
    org_id: OrgIdParam = None,
) -> OutflowStats:
    return await ledger.stats(session, scope, org_id=org_id, filters=filters, today=today)


@router.get(
    "/outflows/export",
    response_class=StreamingResponse,
    responses={200: {"content": {XLSX: {}}, "description": "xlsx 台账"}},
)
async def export_outflows(
    scope: AdminScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    today: TodayDep,
    filters: FiltersDep,
    org_id: OrgIdParam = None,
    full: Annotated[
        bool, Query(description="导出完整联系电话（须填写 export_reason，记入审计）")
    ] = False,
    export_reason: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_CONTROL,
            description="完整导出的用途（reason 为外出原因筛选）",
        ),
    ] = None,
) -> StreamingResponse:
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
        ascii_name=f"outflows-{today.isoformat()}.xlsx",
        name=f"流动党员台账-{today.isoformat()}.xlsx",
    )


@router.get("/outflows/{outflow_id}", response_model=OutflowDetail)
async def get_outflow(
    outflow_id: OutflowId, scope: CallerScopeDep, session: SessionDep, today: TodayDep
) -> OutflowDetail:
    return await ledger.detail(session, scope, outflow_id, today)


@router.get("/outflows/{outflow_id}/reports", response_model=Page[ReportOut])
async def list_reports(
    outflow_id: OutflowId,
    scope: CallerScopeDep,
    session: SessionDep,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[ReportOut]:
    return await ledger.reports_page(session, scope, outflow_id, limit=limit, cursor=cursor)


# ---------------------------------------------------------------------------
# Transitions
# ---------------------------------------------------------------------------


async def _decide(
    session: SessionDep,
    scope: Scope,
    outflow_id: int,
    action: str,
    *,
    version: int,
    now: datetime,
    note: str | None = None,
    reason: str | None = None,
) -> OutflowOut:
    """A decision of :mod:`app.mobility.decisions`, answered with the outflow's view."""
    outflow = await decisions.decide(
        session, scope, outflow_id, action, version=version, now=now, note=note, reason=reason
    )
    return await ledger.view(session, outflow.id, clock.shanghai_day(now))


@router.post("/outflows/{outflow_id}/approve", response_model=OutflowOut)
async def approve_outflow(
    outflow_id: OutflowId, body: ApproveIn, scope: AdminScopeDep, session: SessionDep, now: NowDep
) -> OutflowOut:
    return await _decide(
        session, scope, outflow_id, "approve", version=body.version, note=body.note, now=now
    )


@router.post("/outflows/{outflow_id}/reject", response_model=OutflowOut)
async def reject_outflow(
    outflow_id: OutflowId,
    body: DecisionWithReasonIn,
    scope: AdminScopeDep,
    session: SessionDep,
    now: NowDep,
) -> OutflowOut:
    return await _decide(
        session, scope, outflow_id, "reject", version=body.version, reason=body.reason, now=now
    )


@router.post("/outflows/{outflow_id}/withdraw", response_model=OutflowOut)
async def withdraw_outflow(
    outflow_id: OutflowId,
    body: WithdrawIn,
    scope: MemberScopeDep,
    session: SessionDep,
    idem: IdempotencyDep,
    now: NowDep,
) -> Response:
    """党员撤回本人待审批的外出登记（状态 withdrawn）；已审批的不能撤回（409）。"""

    async def run() -> OutflowOut:
        outflow = await service.withdraw(
            session, scope, outflow_id, version=body.version, reason=body.reason, now=now
        )
        return await ledger.view(session, outflow.id, clock.shanghai_day(now))

    return await idem.run(run)


@router.post("/outflows/{outflow_id}/cancel", response_model=OutflowOut)
async def cancel_outflow(
    outflow_id: OutflowId,
    body: CancelIn,
    scope: AdminScopeDep,
    session: SessionDep,
    now: NowDep,
) -> OutflowOut:
    """所在党组织管理员在外出日期之前撤销已批准的外出登记（须填写原因，状态 cancelled）。"""
    return await _decide(
        session, scope, outflow_id, "cancel", version=body.version, reason=body.reason, now=now
    )


@router.post("/outflows/{outflow_id}/destination-checkin", response_model=OutflowOut)
async def request_checkin(
    outflow_id: OutflowId,
    body: CheckinIn,
    scope: MemberScopeDep,
    session: SessionDep,
    idem: IdempotencyDep,
    now: NowDep,
) -> Response:
    async def run() -> OutflowOut:
        outflow = await service.request_checkin(
            session, scope, outflow_id, org_id=body.org_id, version=body.version, now=now
        )
        return await ledger.view(session, outflow.id, clock.shanghai_day(now))

    return await idem.run(run)


@router.post("/outflows/{outflow_id}/destination-checkin/accept", response_model=OutflowOut)
async def accept_checkin(
    outflow_id: OutflowId,
    body: AcceptCheckinIn,
    scope: AdminScopeDep,
    session: SessionDep,
    now: NowDep,
) -> OutflowOut:
    return await _decide(
        session, scope, outflow_id, "accept_checkin", version=body.version, now=now
    )


@router.post("/outflows/{outflow_id}/destination-checkin/refuse", response_model=OutflowOut)
async def refuse_checkin(
    outflow_id: OutflowId,
    body: DecisionWithReasonIn,
    scope: AdminScopeDep,
    session: SessionDep,
    now: NowDep,
) -> OutflowOut:
    return await _decide(
        session,
        scope,
        outflow_id,
        "refuse_checkin",
        version=body.version,
        reason=body.reason,
        now=now,
    )


@router.post("/outflows/{outflow_id}/reports", status_code=201, response_model=ReportOut)
async def add_report(
    outflow_id: OutflowId,
    body: ReportIn,
    scope: MemberScopeDep,
    session: SessionDep,
    wechat: WeChatDep,
    idem: IdempotencyDep,
    now: NowDep,
) -> Response:
    async def run() -> ReportOut:
        report = await service.add_report(session, scope, wechat, outflow_id, body, now)
        return report_out(report)

    return await idem.run(run, status_code=201)


@router.post("/outflows/{outflow_id}/relocate", response_model=OutflowOut)
async def relocate(
    outflow_id: OutflowId,
    body: RelocateIn,
    scope: MemberScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
    now: NowDep,
) -> Response:
    async def run() -> OutflowOut:
        outflow = await service.relocate(session, settings, scope, outflow_id, body, now)
        return await ledger.view(session, outflow.id, clock.shanghai_day(now))

    return await idem.run(run)


@router.post("/outflows/{outflow_id}/return", response_model=OutflowOut)
async def return_outflow(
    outflow_id: OutflowId,
    body: ReturnIn,
    scope: CallerScopeDep,
    session: SessionDep,
    idem: IdempotencyDep,
    now: NowDep,
) -> Response:
    async def run() -> OutflowOut:
        outflow = await service.return_outflow(
            session, scope, outflow_id, returned_on=body.returned_on, version=body.version, now=now
        )
        return await ledger.view(session, outflow.id, clock.shanghai_day(now))

    return await idem.run(run)
