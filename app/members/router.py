"""HTTP endpoints of the members domain: the roster, reveals, imports."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import File, Path, Query, Request, UploadFile
from starlette.responses import Response

from app.core.db import SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import (
    DEFAULT_LIMIT,
    CursorParam,
    LimitParam,
    Page,
    decode_cursor,
    page_of,
)
from app.core.ratelimit import Policy, hit
from app.core.routing import DomainRouter
from app.core.types import ParamId
from app.identity.validators import MobilePhone
from app.members import importer, service
from app.members.schemas import (
    ImportResult,
    MemberCreate,
    MemberOut,
    MemberUpdate,
    RevealOut,
    RevealRequest,
)
from app.members.spreadsheet import build_template
from app.organization.scope import AdminScopeDep

router = DomainRouter(prefix="/members", tags=["members"])

MemberId = Annotated[ParamId, Path(description="党员编号")]
REVEAL_POLICY = Policy("pii.reveal", limit=120, window_s=3600)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.post("", status_code=201, response_model=MemberOut)
async def create_member(
    data: MemberCreate,
    request: Request,
    scope: AdminScopeDep,
    session: SessionDep,
    idem: IdempotencyDep,
) -> Response:
    async def act() -> MemberOut:
        settings = request.app.state.settings
        engine = request.app.state.engine
        return MemberOut.of(await service.register_member(session, settings, engine, scope, data))

    return await idem.run(act, status_code=201)


@router.get("", response_model=Page[MemberOut])
async def list_members(
    request: Request,
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: Annotated[ParamId | None, Query(description="组织（含下级）")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=50, description="姓名关键字")] = None,
    phone: Annotated[
        MobilePhone | None, Query(description="手机号，精确匹配（经盲索引，不做模糊查询）")
    ] = None,
    mobile: Annotated[bool | None, Query(description="true：只看流动党员")] = None,
    status: Annotated[Literal["full", "probationary"] | None, Query()] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[MemberOut]:
    rows = await service.list_members(
        session,
        scope,
        org_id=org_id,
        q=q.strip() if q else None,
        phone_index=service.phone_index(request.app.state.settings, phone) if phone else None,
        mobile=mobile,
        status=status,
        after_id=decode_cursor(cursor, int),
        limit=limit,
    )
    items, next_cursor = page_of(list(rows), limit, lambda m: (m.id,))
    return Page[MemberOut](items=[MemberOut.of(m) for m in items], next_cursor=next_cursor)


@router.get(
    "/import/template",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "名册导入模板（xlsx）"}},
)
async def import_template(scope: AdminScopeDep) -> Response:
    del scope  # admins only
    return Response(
        build_template(),
        media_type=XLSX,
        headers={
            "Content-Disposition": 'attachment; filename="roster-template.xlsx"; '
            "filename*=UTF-8''%E5%85%9A%E5%91%98%E5%90%8D%E5%86%8C%E6%A8%A1%E6%9D%BF.xlsx"
        },
    )


@router.post("/import", response_model=ImportResult)
async def import_members(
    request: Request,
    scope: AdminScopeDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="xlsx 或 csv 名册，最大 10 MiB")],
    org_id: Annotated[ParamId | None, Query(description="未填所在支部的行导入到此组织")] = None,
    partial: Annotated[bool, Query(description="true：跳过错误行，导入其余行")] = False,
) -> ImportResult:
    content = await file.read()
    return await importer.import_roster(
        session,
        request.app.state.settings,
        request.app.state.engine,
        scope,
        content=content,
        filename=file.filename,
        default_org_id=org_id,
        partial=partial,
    )


@router.get("/{member_id}", response_model=MemberOut)
async def get_member(scope: AdminScopeDep, session: SessionDep, member_id: MemberId) -> MemberOut:
    return MemberOut.of(await service.get_member(session, scope, member_id))


@router.patch("/{member_id}", response_model=MemberOut)
async def update_member(
    data: MemberUpdate,
    request: Request,
    scope: AdminScopeDep,
    session: SessionDep,
    member_id: MemberId,
) -> MemberOut:
    settings, engine = request.app.state.settings, request.app.state.engine
    return MemberOut.of(
        await service.update_member(session, settings, engine, scope, member_id, data)
    )


@router.post(
    "/{member_id}/reveal",
    response_model=RevealOut,
    responses={429: {"description": "rate_limited：查看明文过于频繁（带 Retry-After）"}},
)
async def reveal(
    data: RevealRequest,
    request: Request,
    scope: AdminScopeDep,
    session: SessionDep,
    member_id: MemberId,
) -> Response:
    headers = await hit(request.app.state.engine, REVEAL_POLICY, str(scope.principal.account_id))
    value = await service.reveal(
        session,
        request.app.state.settings,
        scope,
        member_id,
        field=data.field,
        reason=data.reason,
    )
    body = RevealOut(field=data.field, value=value).model_dump_json()
    return Response(body, media_type="application/json", headers=headers)
