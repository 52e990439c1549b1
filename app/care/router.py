"""HTTP endpoints of care (关怀): greeting campaigns and hardship cases. HTTP only."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from app.care import campaigns, cases, export
from app.care.schemas import (
    CampaignCreated,
    CampaignIn,
    CampaignOut,
    CampaignStatus,
    CareCloseIn,
    CareVersionIn,
    CaseDetail,
    CaseIn,
    CaseKind,
    CaseOut,
    CaseStats,
    CaseStatus,
    HelpIn,
)
from app.core import clock
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, IdPath, LimitParam, Page
from app.core.routing import DomainRouter
from app.core.types import ParamId
from app.core.xlsx import XLSX, xlsx_download
from app.identity.principal import MemberDep, PrincipalDep
from app.organization.scope import AdminScopeDep, Scope, build_scope

router = DomainRouter(prefix="/care", tags=["care"])

OrgIdParam = Annotated[ParamId | None, Query(description="组织（含下级）")]


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


async def _caller_scope(principal: PrincipalDep, session: SessionDep) -> Scope:
    """Admins act in their subtrees; a member on his own cases."""
    return await build_scope(session, principal)


CallerScopeDep = Annotated[Scope, Depends(_caller_scope)]


# ----------------------------------------------------------------- campaigns
@router.post("/campaigns", status_code=201, response_model=CampaignCreated)
async def create_campaign(
    data: CampaignIn, scope: AdminScopeDep, session: SessionDep, idem: IdempotencyDep
) -> Response:
    """Schedule a greeting for a day or a festival (lunar date from the calendar package)."""

    async def act() -> CampaignCreated:
        return await campaigns.create_campaign(session, scope, data, clock.today())

    return await idem.run(act, status_code=201)


@router.get("/campaigns", response_model=Page[CampaignOut])
async def list_campaigns(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: OrgIdParam = None,
    status: CampaignStatus | None = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[CampaignOut]:
    return await campaigns.campaigns_page(
        session, scope, org_id=org_id, status=status, limit=limit, cursor=cursor
    )


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(
    scope: AdminScopeDep, session: SessionDep, campaign_id: IdPath
) -> CampaignOut:
    return await campaigns.get_campaign(session, scope, campaign_id)


@router.post("/campaigns/{campaign_id}/cancel", response_model=CampaignOut)
async def cancel_campaign(
    data: CareVersionIn, scope: AdminScopeDep, session: SessionDep, campaign_id: IdPath
) -> CampaignOut:
    """Cancel a campaign before it was sent (409 ``care.campaign_invalid_transition`` after)."""
    return await campaigns.cancel_campaign(session, scope, campaign_id, data.version)


# --------------------------------------------------------------------- cases
@router.post("/cases", status_code=201, response_model=CaseDetail)
async def create_case(
    data: CaseIn,
    scope: CallerScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> Response:
    """A member asks for help for himself (no ``member_id``; his home admins are
    notified), or an admin records a case for a member he may see."""

    async def act() -> CaseDetail:
        return await cases.create_case(session, settings, scope, data, clock.today())

    return await idem.run(act, status_code=201)


@router.get("/cases", response_model=Page[CaseOut])
async def list_cases(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: OrgIdParam = None,
    status: CaseStatus | None = None,
    kind: CaseKind | None = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[CaseOut]:
    """The ledger: cases of members homed or co-managed in the subtree; no descriptions."""
    return await cases.cases_page(
        session, scope, org_id=org_id, status=status, kind=kind, limit=limit, cursor=cursor
    )


@router.get("/cases/stats", response_model=CaseStats)
async def case_stats(
    scope: AdminScopeDep, session: SessionDep, org_id: OrgIdParam = None
) -> CaseStats:
    """Open and closed cases by kind; help given by form, with amounts."""
    return await cases.stats(session, scope, org_id)


@router.get(
    "/cases/export",
    response_class=StreamingResponse,
    responses={200: {"content": {XLSX: {}}, "description": "困难党员帮扶台账（xlsx）"}},
)
async def export_cases(
    scope: AdminScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    org_id: OrgIdParam = None,
    status: CaseStatus | None = None,
    kind: CaseKind | None = None,
    full: Annotated[
        bool, Query(description="导出困难情况（须填写 export_reason，记入审计）")
    ] = False,
    export_reason: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f]*$")] = None,
) -> StreamingResponse:
    today = clock.today()
    result = await export.export_cases(
        session,
        settings,
        scope,
        org_id=org_id,
        status=status,
        kind=kind,
        full=full,
        reason=export_reason,
        today=today,
    )
    return xlsx_download(
        result,
        ascii_name=f"care-cases-{today.isoformat()}.xlsx",
        name=f"困难党员帮扶台账-{today.isoformat()}.xlsx",
    )


@router.get("/me/cases", response_model=Page[CaseOut])
async def my_cases(
    principal: MemberDep,
    session: SessionDep,
    status: CaseStatus | None = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[CaseOut]:
    """The caller's own cases, newest first."""
    assert principal.member_id is not None
    return await cases.my_cases(
        session, principal.member_id, status=status, limit=limit, cursor=cursor
    )


@router.get("/cases/{case_id}", response_model=CaseDetail)
async def get_case(
    scope: CallerScopeDep, session: SessionDep, settings: SettingsDep, case_id: IdPath
) -> CaseDetail:
    """The case with its help log. The description and notes: for the member himself
    and his home subtree's admins (audited); null for co-managing organisations."""
    return await cases.get_case(session, settings, scope, case_id)


@router.post("/cases/{case_id}/close", response_model=CaseDetail)
async def close_case(
    data: CareCloseIn,
    scope: CallerScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    case_id: IdPath,
) -> CaseDetail:
    return await cases.close_case(session, settings, scope, case_id, data)


@router.post("/cases/{case_id}/reopen", response_model=CaseDetail)
async def reopen_case(
    data: CareVersionIn,
    scope: CallerScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    case_id: IdPath,
) -> CaseDetail:
    return await cases.reopen_case(session, settings, scope, case_id, data.version)


@router.post("/cases/{case_id}/help", status_code=201, response_model=CaseOut)
async def add_help(
    data: HelpIn,
    scope: CallerScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    case_id: IdPath,
    idem: IdempotencyDep,
) -> Response:
    """Log a visit, a call or help given (the member is notified; the note is not sent)."""

    async def act() -> CaseOut:
        return await cases.add_help(session, settings, scope, case_id, data, clock.today())

    return await idem.run(act, status_code=201)
