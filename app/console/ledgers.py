"""Console ledgers: outflows (filters, pages, export, one outflow), a member's page, the
roster with its import. The same service calls as the API, with the same scope."""

from __future__ import annotations

import re
from typing import Annotated, get_args

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from starlette.responses import HTMLResponse, Response

from app.console.web import PAGE_SIZE, PREFIX, ConsoleDep, Cursor, Text, choice
from app.core import clock
from app.core.db import SessionDep
from app.core.errors import AppError
from app.core.pagination import Page, decode_cursor, page_of
from app.core.types import ParamId
from app.core.xlsx import xlsx_download
from app.members import importer
from app.members import service as members_service
from app.members.schemas import MemberOut
from app.mobility import ledger
from app.mobility.repository import LedgerFilter
from app.mobility.schemas import CheckinStatus, Flag, Reason, Status
from app.organization.scope import get_visible_org

router = APIRouter(prefix=PREFIX, include_in_schema=False)

OUTFLOW_FILTERS = ("status", "flag", "reason", "checkin_status", "destination_region_code", "q")
REGION_CODE = re.compile(r"[1-9][0-9]{5}")


def outflow_filters(request: Request) -> LedgerFilter:
    """The ledger's filters from the query string, as the API's ``GET /outflows`` takes them."""
    given = {k: v.strip() for k, v in request.query_params.items() if k in OUTFLOW_FILTERS}
    region = given.get("destination_region_code") or None
    if region is not None and not REGION_CODE.fullmatch(region):
        raise AppError("validation.failed", 422, "流入地区划代码应为 6 位数字")
    q = given.get("q") or None
    if q is not None and len(q) > 50:
        raise AppError("validation.failed", 422, "搜索内容过长")
    return LedgerFilter(
        status=choice(given.get("status"), get_args(Status), "status"),
        flag=choice(given.get("flag"), get_args(Flag), "flag"),
        reason=choice(given.get("reason"), get_args(Reason), "reason"),
        checkin_status=choice(
            given.get("checkin_status"), get_args(CheckinStatus), "checkin_status"
        ),
        destination_region_code=region,
        q=q,
    )


# ------------------------------------------------------------------ outflows


@router.get("/outflows", response_class=HTMLResponse)
async def outflows(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    cursor: Cursor = None,
) -> Response:
    filters = outflow_filters(request)
    page = await ledger.page(
        session,
        console.scope,
        org_id=None,
        filters=filters,
        today=clock.today(),
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    return console.render(
        "outflows.html",
        page=page,
        filters=filters,
        statuses=get_args(Status),
        flags=get_args(Flag),
        reasons=get_args(Reason),
        export_query=request.url.query,
    )


@router.get("/outflows/export")
async def export_outflows(request: Request, console: ConsoleDep, session: SessionDep) -> Response:
    """The ledger as the API exports it (masked phones), with the page's filters."""
    today = clock.today()
    result = await ledger.export(
        session,
        request.app.state.settings,
        console.scope,
        org_id=None,
        filters=outflow_filters(request),
        today=today,
        full=False,
        reason=None,
    )
    return xlsx_download(
        result,
        ascii_name=f"outflows-{today.isoformat()}.xlsx",
        name=f"流动党员台账-{today.isoformat()}.xlsx",
    )


@router.get("/outflows/{outflow_id}", response_class=HTMLResponse)
async def outflow(outflow_id: ParamId, console: ConsoleDep, session: SessionDep) -> Response:
    detail = await ledger.detail(session, console.scope, outflow_id, clock.today())
    reports = await ledger.reports_page(
        session, console.scope, outflow_id, limit=PAGE_SIZE, cursor=None
    )
    return console.render("outflow.html", o=detail, reports=reports)


# ------------------------------------------------------------------ members


@router.get("/members", response_class=HTMLResponse)
async def members(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    q: Text = None,
    mobile: Annotated[str | None, Query(pattern=r"^(true|false)?$")] = None,
    status: Text = None,
    cursor: Cursor = None,
) -> Response:
    rows = await members_service.list_members(
        session,
        console.scope,
        org_id=None,
        q=q.strip() if q and q.strip() else None,
        mobile={"true": True, "false": False}.get(mobile or ""),
        status=choice(status, ("full", "probationary"), "status"),
        after_id=decode_cursor(cursor, int),
        limit=PAGE_SIZE,
    )
    items, next_cursor = page_of(list(rows), PAGE_SIZE, lambda m: (m.id,))
    page = Page[MemberOut](items=[MemberOut.of(m) for m in items], next_cursor=next_cursor)
    return console.render("members.html", page=page)


@router.post("/members/import", response_class=HTMLResponse)
async def import_members(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    partial: Annotated[bool, Form()] = False,
) -> Response:
    result = await importer.import_roster(
        session,
        request.app.state.settings,
        request.app.state.engine,
        console.scope,
        content=await file.read(),
        filename=file.filename,
        default_org_id=None,
        partial=partial,
    )
    return console.render("_imported.html", result=result)


@router.get("/members/{member_id}", response_class=HTMLResponse)
async def member(member_id: ParamId, console: ConsoleDep, session: SessionDep) -> Response:
    """A member's page: his record (masked) and, from his home subtree, his outflows with
    their decisions; each outflow's reports are on its own page."""
    found = MemberOut.of(await members_service.get_member(session, console.scope, member_id))
    history = reports = None
    if await get_visible_org(session, console.scope, found.home_org_id) is not None:
        history = await ledger.member_history(
            session, found.id, today=clock.today(), limit=PAGE_SIZE, cursor=None
        )
        current = next((o for o in history.items if o.status == "active"), None)
        if current is not None:
            reports = await ledger.reports_page(
                session, console.scope, current.id, limit=PAGE_SIZE, cursor=None
            )
    return console.render("member.html", m=found, history=history, reports=reports)
