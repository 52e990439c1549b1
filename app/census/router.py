"""HTTP endpoints of the coverage census (两个覆盖). HTTP only: parse, call, shape."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, File, Path, Query, Request, UploadFile
from starlette.responses import Response, StreamingResponse

from app.census import export, registry, rounds, service
from app.census.codes import parse_industry
from app.census.repository import LedgerFilter
from app.census.rules import region_prefix
from app.census.schemas import (
    CensusStats,
    Coverage,
    EntityCreate,
    EntityFile,
    EntityOut,
    EntityStatus,
    EntityUpdate,
    FoundMemberOut,
    ImportResult,
    IndustryCode,
    InstructorGroupIn,
    InstructorGroupOut,
    InstructorIn,
    Kind,
    LinkIn,
    Recommendation,
    RoundCloseIn,
    RoundIn,
    RoundOut,
    SurveyIn,
    Tag,
)
from app.census.views import entity_out
from app.core import clock
from app.core.config import Settings
from app.core.db import ReadSessionDep, SessionDep
from app.core.errors import AppError
from app.core.idempotency import IdempotencyDep
from app.core.pagination import (
    DEFAULT_LIMIT,
    CursorParam,
    LimitParam,
    Page,
    decode_cursor,
    page_of,
)
from app.core.routing import DomainRouter
from app.core.xlsx import xlsx_download
from app.identity.principal import MemberDep, PrincipalDep
from app.organization.scope import AdminScopeDep, Scope, build_scope

router = DomainRouter(prefix="/census", tags=["census"])

EntityId = Annotated[int, Path(ge=1, le=2**63 - 1, description="单位编号")]
RoundId = Annotated[int, Path(ge=1, le=2**63 - 1, description="摸排轮次编号")]
MemberId = Annotated[int, Path(ge=1, le=2**63 - 1, description="党员编号")]
OrgIdParam = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="组织（含下级）")]
NO_CONTROL = r"^[^\x00-\x1f]*$"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


async def _caller_scope(principal: PrincipalDep, session: SessionDep) -> Scope:
    """Admins see their subtrees; a member sees the entities he instructs."""
    return await build_scope(session, principal)


CallerScopeDep = Annotated[Scope, Depends(_caller_scope)]


async def _filters(
    coverage: Coverage | None = None,
    recommendation: Recommendation | None = None,
    kind: Kind | None = None,
    industry_code: Annotated[
        IndustryCode | None, Query(description="行业门类（I）或大类（64）")
    ] = None,
    tag: Tag | None = None,
    region_code: Annotated[
        str | None,
        Query(pattern=r"^[1-9][0-9]{5}$", description="行政区划代码；省、市代码匹配其下辖地区"),
    ] = None,
    status: Annotated[EntityStatus | None, Query(description="默认只看存续单位")] = "active",
    round_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    surveyed: Annotated[
        bool | None, Query(description="在 round_id 指定的轮次中是否已摸排")
    ] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=50, pattern=NO_CONTROL, description="名称或信用代码"),
    ] = None,
) -> LedgerFilter:
    section = division = None
    if industry_code:
        try:
            section, division = parse_industry(industry_code)
        except ValueError:
            raise AppError(
                "census.invalid_industry", 422, "行业代码应为国民经济行业分类的门类或大类"
            ) from None
    if surveyed is not None and round_id is None:
        raise AppError("census.round_required", 422, "按是否已摸排筛选时须指定摸排轮次")
    return LedgerFilter(
        coverage=coverage,
        recommendation=recommendation,
        kind=kind,
        industry_section=section,
        industry_division=division,
        tag=tag,
        region_prefix=region_prefix(region_code) if region_code else None,
        status=status,
        round_id=round_id,
        surveyed=surveyed,
        q=q.strip() if q else None,
    )


FiltersDep = Annotated[LedgerFilter, Depends(_filters)]


# ---------------------------------------------------------------------- entities
@router.post("/entities", status_code=201, response_model=EntityOut)
async def create_entity(
    data: EntityCreate,
    scope: AdminScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> Response:
    async def act() -> EntityOut:
        return await service.create_entity(session, settings, scope, data)

    return await idem.run(act, status_code=201)


@router.get("/entities", response_model=Page[EntityOut])
async def ledger(
    scope: AdminScopeDep,
    session: ReadSessionDep,
    filters: FiltersDep,
    org_id: OrgIdParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[EntityOut]:
    rows = await service.ledger_rows(
        session, scope, org_id, filters, limit=limit + 1, before_id=decode_cursor(cursor, int)
    )
    items, next_cursor = page_of(list(rows), limit, lambda r: (r["id"],))
    return Page[EntityOut](items=[entity_out(r) for r in items], next_cursor=next_cursor)


@router.get("/me/entities", response_model=Page[EntityOut])
async def my_entities(
    principal: MemberDep,
    session: SessionDep,
    filters: FiltersDep,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[EntityOut]:
    """The entities the caller is 党建工作指导员 of."""
    rows = await service.instructor_ledger_rows(
        session,
        principal.member_id,
        filters,
        limit=limit + 1,
        before_id=decode_cursor(cursor, int),
    )
    items, next_cursor = page_of(list(rows), limit, lambda r: (r["id"],))
    return Page[EntityOut](items=[entity_out(r) for r in items], next_cursor=next_cursor)


@router.post("/entities/import", response_model=ImportResult)
async def import_registry(
    scope: AdminScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="市场监管、民政部门的名录（xlsx 或 csv）")],
    org_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="未填属地党组织的行归入此组织")
    ] = None,
    partial: Annotated[bool, Query(description="true：跳过错误行，导入其余行")] = False,
) -> ImportResult:
    content = await file.read()
    return await registry.import_registry(
        session,
        settings,
        scope,
        content=content,
        filename=file.filename,
        default_org_id=org_id,
        partial=partial,
    )


@router.get("/entities/{entity_id}", response_model=EntityFile)
async def get_entity(scope: CallerScopeDep, session: SessionDep, entity_id: EntityId) -> EntityFile:
    return await service.get_entity_file(session, scope, entity_id)


@router.get(
    "/entities/{entity_id}/export",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "一企一档（xlsx）"}},
)
async def export_entity(
    scope: CallerScopeDep, session: SessionDep, entity_id: EntityId
) -> Response:
    file = await service.get_entity_file(session, scope, entity_id)
    name = f"一企一档-{file.name}.xlsx"
    return Response(
        export.entity_file_xlsx(file),
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="entity-{file.id}.xlsx"; '
            f"filename*=UTF-8''{quote(name)}",
            "Cache-Control": "no-store",
        },
    )


@router.patch("/entities/{entity_id}", response_model=EntityOut)
async def update_entity(
    data: EntityUpdate,
    scope: AdminScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    entity_id: EntityId,
) -> EntityOut:
    return await service.update_entity(session, settings, scope, entity_id, data)


@router.post(
    "/entities/{entity_id}/surveys",
    response_model=EntityFile,
    status_code=201,
    responses={200: {"model": EntityFile, "description": "本轮已摸排：更新了答复"}},
)
async def save_survey(
    data: SurveyIn,
    scope: CallerScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    entity_id: EntityId,
) -> Response:
    """Admins of the entity's subtree and its instructors fill the survey of a round.

    One survey per entity and round: a repeat (a flaky network) or a correction writes
    the same row again, so no ``Idempotency-Key`` is needed."""
    file, created = await rounds.save_survey(
        session, settings, scope, entity_id, data, clock.today()
    )
    return Response(
        file.model_dump_json(), status_code=201 if created else 200, media_type="application/json"
    )


@router.post("/entities/{entity_id}/organization", response_model=EntityOut)
async def link_org(
    data: LinkIn, scope: AdminScopeDep, session: SessionDep, entity_id: EntityId
) -> EntityOut:
    return await service.link_org(session, scope, entity_id, data, clock.now())


@router.delete("/entities/{entity_id}/organization", response_model=EntityOut)
async def unlink_org(scope: AdminScopeDep, session: SessionDep, entity_id: EntityId) -> EntityOut:
    return await service.unlink_org(session, scope, entity_id)


@router.post("/entities/{entity_id}/instructors", response_model=EntityOut, status_code=201)
async def assign_instructor(
    data: InstructorIn, scope: AdminScopeDep, session: SessionDep, entity_id: EntityId
) -> EntityOut:
    return await service.assign_instructor(
        session, scope, entity_id, data.member_id, data.group_name
    )


@router.delete("/entities/{entity_id}/instructors/{member_id}", status_code=204)
async def end_instructor(
    scope: AdminScopeDep,
    session: SessionDep,
    entity_id: EntityId,
    member_id: MemberId,
) -> Response:
    await service.end_instructor(session, scope, entity_id, member_id, clock.now())
    return Response(status_code=204)


@router.post("/instructor-groups", response_model=InstructorGroupOut, status_code=201)
async def assign_group(
    data: InstructorGroupIn, scope: AdminScopeDep, session: SessionDep
) -> InstructorGroupOut:
    return await service.assign_group(session, scope, data)


# ------------------------------------------------------------------------ rounds
@router.post("/rounds", response_model=RoundOut, status_code=201)
async def open_round(data: RoundIn, scope: AdminScopeDep, session: SessionDep) -> RoundOut:
    return await rounds.open_round(session, scope, data, clock.today())


@router.get("/rounds", response_model=Page[RoundOut])
async def list_rounds(
    scope: AdminScopeDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=20)] = 10,
    cursor: CursorParam = None,
) -> Page[RoundOut]:
    rows = await rounds.list_rounds(
        session, scope, limit=limit + 1, before_id=decode_cursor(cursor, int)
    )
    items, next_cursor = page_of(list(rows), limit, lambda r: (r[0].id,))
    return Page[RoundOut](
        items=[await rounds.round_view(session, scope, r.id, clock.today()) for r, _ in items],
        next_cursor=next_cursor,
    )


@router.get("/rounds/{round_id}", response_model=RoundOut)
async def get_round(scope: AdminScopeDep, session: SessionDep, round_id: RoundId) -> RoundOut:
    return await rounds.round_view(session, scope, round_id, clock.today())


@router.post("/rounds/{round_id}/close", response_model=RoundOut)
async def close_round(
    data: RoundCloseIn,
    scope: AdminScopeDep,
    session: SessionDep,
    round_id: RoundId,
) -> RoundOut:
    return await rounds.close_round(
        session, scope, round_id, data.version, clock.now(), clock.today()
    )


# ---------------------------------------------------------- statistics, exports
@router.get("/stats", response_model=CensusStats)
async def stats(
    scope: AdminScopeDep,
    session: ReadSessionDep,
    org_id: OrgIdParam = None,
    round_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="给出时附各轮覆盖率及其变化")
    ] = None,
) -> CensusStats:
    return await rounds.stats(session, scope, org_id=org_id, round_id=round_id)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {XLSX: {}}, "description": "两个覆盖台账（xlsx）"}},
)
async def export_ledger(
    scope: AdminScopeDep,
    session: SessionDep,
    settings: SettingsDep,
    filters: FiltersDep,
    org_id: OrgIdParam = None,
    full: Annotated[
        bool, Query(description="导出完整负责人和联系电话（须填写 export_reason，记入审计）")
    ] = False,
    export_reason: Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL)] = None,
) -> StreamingResponse:
    today = clock.today()
    result = await export.export_ledger(
        session,
        settings,
        scope,
        org_id=org_id,
        filters=filters,
        full=full,
        reason=export_reason,
        today=today,
    )
    return xlsx_download(
        result,
        ascii_name=f"census-{today.isoformat()}.xlsx",
        name=f"两个覆盖台账-{today.isoformat()}.xlsx",
    )


@router.get("/found-members", response_model=Page[FoundMemberOut])
async def found_members(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: OrgIdParam = None,
    round_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    match: Annotated[
        str | None,
        Query(
            pattern="^(registered_here|registered_elsewhere|not_in_roster)$",
            description="registered_elsewhere：口袋党员，提示亮身份、报到或转接；"
            "not_in_roster：名册外，作为流入党员线索",
        ),
    ] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[FoundMemberOut]:
    """Party members the surveys found working at the entities (口袋党员、隐形党员)."""
    rows = await rounds.found_members(
        session,
        scope,
        org_id=org_id,
        round_id=round_id,
        match=match,
        limit=limit + 1,
        before_id=decode_cursor(cursor, int),
    )
    items, next_cursor = page_of(rows, limit, lambda r: (r.id,))
    return Page[FoundMemberOut](items=items, next_cursor=next_cursor)
