"""Console pages: login (QR ticket), logout, dashboard, approvals. HTML only; every rule
is the domain services' (the same calls the API makes), every read scoped by
:mod:`app.organization.scope` through them."""

from __future__ import annotations

import json
from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.census import rounds as census_rounds
from app.console.web import PREFIX, ConsoleDep, csrf_failed, form_model, templates
from app.core import clock
from app.core.db import SessionDep
from app.core.errors import AppError
from app.core.types import ParamId
from app.identity import console_login
from app.identity.sessions import cache_of
from app.inflows import ledger as inflow_ledger
from app.inflows import service as inflow_service
from app.inflows.repository import LedgerFilter as InflowFilter
from app.inflows.schemas import RejectIn, VerifyIn
from app.mobility import decisions, ledger
from app.mobility.repository import LedgerFilter
from app.mobility.schemas import AcceptCheckinIn, ApproveIn, DecisionWithReasonIn, OutflowOut
from app.orders import reads as order_reads
from app.study import service as study_service
from app.transfers import service as transfer_service
from app.transfers.schemas import (
    TransferAcceptIn,
    TransferApproveIn,
    TransferOut,
    TransferReasonIn,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# Decisions taken in place on the approvals page: the API's request models and actions.
TRANSFER_DECISIONS: dict[
    str, type[TransferApproveIn] | type[TransferReasonIn] | type[TransferAcceptIn]
] = {
    "approve": TransferApproveIn,
    "reject": TransferReasonIn,
    "accept": TransferAcceptIn,
    "refuse": TransferReasonIn,
}
INFLOW_DECISIONS: dict[str, type[VerifyIn] | type[RejectIn]] = {
    "verify": VerifyIn,
    "reject": RejectIn,
}
DECISIONS: dict[str, type[ApproveIn] | type[DecisionWithReasonIn] | type[AcceptCheckinIn]] = {
    "approve": ApproveIn,
    "reject": DecisionWithReasonIn,
    "accept_checkin": AcceptCheckinIn,
    "refuse_checkin": DecisionWithReasonIn,
}
APPROVAL_LIMIT = 50
# A transfer's two sides: the home side decides first, then the receiving side.
OUT = ("approve", "reject")
IN = ("accept", "refuse")


def _qr_svg(content: str, scale: int = 6) -> Markup:
    return Markup(segno.make(content, error="m").svg_inline(scale=scale, omitsize=True))  # noqa: S704


# ------------------------------------------------------------------ login


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, session: SessionDep) -> Response:
    ticket = await console_login.create_ticket(
        session,
        request.app.state.engine,
        client_ip=request.client.host if request.client else None,
    )
    settings = request.app.state.settings
    response = templates.TemplateResponse(
        request,
        "login.html",
        {
            "console": None,
            "ticket": ticket,
            "qr": _qr_svg(ticket.qr_content),
            "scanners": console_login.SIMULATED_SCANNERS if settings.simulator_enabled else {},
        },
    )
    response.set_cookie(value=ticket.poll_secret, **console_login.poll_cookie(settings))
    return response


@router.post("/login/simulate", response_class=HTMLResponse)
async def simulate_scan(
    request: Request,
    session: SessionDep,
    ticket: Annotated[str, Form(max_length=64)],
    openid: Annotated[str, Form(max_length=40)],
) -> Response:
    """Dev only (the WeChat simulator is on): a demo admin "scans" the ticket. There is
    no session yet to hold a CSRF token: a form posted from another site is refused by
    its Origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise csrf_failed()
    await console_login.simulate_scan(
        session,
        request.app.state.settings,
        request.app.state.wechat,
        request.app.state.engine,
        ticket_id=ticket,
        openid=openid,
        client_ip=request.client.host if request.client else None,
    )
    return HTMLResponse('<p class="ok">已在模拟器中扫码确认，正在登录…</p>')


@router.post("/logout")
async def logout(console: ConsoleDep, session: SessionDep) -> Response:
    await console_login.logout(session, console.identity)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(console_login.SESSION_COOKIE, path="/")
    return response


# ------------------------------------------------------------------ dashboard


@router.get("", include_in_schema=False)
async def root() -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@router.get("/", response_class=HTMLResponse)
async def dashboard(console: ConsoleDep, session: SessionDep) -> Response:
    scope = console.scope
    today = clock.today()
    outflows = await ledger.stats(session, scope, org_id=None, filters=LedgerFilter(), today=today)
    checkins = await ledger.stats(
        session, scope, org_id=None, filters=LedgerFilter(checkin_status="pending"), today=today
    )
    # Where the mobile members are now: the active outflows' destinations.
    away = await ledger.stats(
        session, scope, org_id=None, filters=LedgerFilter(status="active"), today=today
    )
    inflows = await inflow_ledger.stats(
        session, scope, org_id=None, filters=InflowFilter(), today=today
    )
    orders = await order_reads.stats(session, scope, org_id=None, from_=None, to=None)
    study = await study_service.participation_this_month(session, scope, today)
    months = await ledger.monthly_flows(session, scope, today=today)
    census = await census_rounds.stats(session, scope, org_id=None, round_id=None)
    charts = {
        "provinces": [[r.name or r.code, r.count] for r in away.by_province[:15]],
        "cities": [[r.name or r.code, r.count] for r in away.by_city[:15]],
        "months": [list(m) for m in months],
        "coverage": [
            [g.name or g.key, round(g.organization_rate * 100, 1), round(g.coverage_rate * 100, 1)]
            for g in census.by_kind
        ],
    }
    return console.render(
        "dashboard.html",
        outflows=outflows,
        pending_checkins=checkins.total,
        pending_inflows=inflows.by_status.get("pending", 0),
        orders=orders,
        study=study,
        census=census,
        charts=Markup(json.dumps(charts, ensure_ascii=False).replace("</", "<\\/")),  # noqa: S704
    )


# ------------------------------------------------------------------ approvals


@router.get("/approvals", response_class=HTMLResponse)
async def approvals(console: ConsoleDep, session: SessionDep) -> Response:
    async def waiting(filters: LedgerFilter) -> list[OutflowOut]:
        page = await ledger.page(
            session,
            console.scope,
            org_id=None,
            filters=filters,
            today=clock.today(),
            limit=APPROVAL_LIMIT,
            cursor=None,
        )
        return page.items

    registrations = await waiting(LedgerFilter(status="pending"))
    checkins = await waiting(LedgerFilter(checkin_status="pending"))

    async def transfers(status: str, direction: str) -> list[TransferOut]:
        page = await transfer_service.admin_page(
            session,
            console.scope,
            org_id=None,
            status=status,
            direction=direction,
            member_id=None,
            limit=APPROVAL_LIMIT,
            cursor=None,
        )
        return page.items

    declarations = await inflow_ledger.page(
        session,
        console.scope,
        org_id=None,
        filters=InflowFilter(status="pending"),
        today=clock.today(),
        limit=APPROVAL_LIMIT,
        cursor=None,
    )
    # One section per kind of request (a list call and a decide call each).
    sections = [
        ("registrations", "外出登记审批", registrations, ("approve", "reject")),
        ("checkins", "流入地报到确认", checkins, ("accept_checkin", "refuse_checkin")),
    ]
    return console.render(
        "approvals.html",
        sections=sections,
        inflows=declarations.items,
        transfers=[
            ("transfers-out", "组织关系转出审批", await transfers("requested", "out"), OUT),
            ("transfers-in", "组织关系转入接收", await transfers("approved", "in"), IN),
        ],
        limit=APPROVAL_LIMIT,
    )


@router.post("/outflows/{outflow_id}/decide/{action}", response_class=HTMLResponse)
async def decide(
    outflow_id: ParamId, action: str, request: Request, console: ConsoleDep, session: SessionDep
) -> Response:
    model = DECISIONS.get(action)
    if model is None:
        raise AppError("http.not_found", 404, "页面不存在或不在您的管辖范围内")
    body: ApproveIn | DecisionWithReasonIn | AcceptCheckinIn = form_model(
        model, await request.form()
    )
    now = clock.now()
    outflow = await decisions.decide(
        session,
        console.scope,
        outflow_id,
        action,
        version=body.version,
        now=now,
        note=getattr(body, "note", None),
        reason=getattr(body, "reason", None),
    )
    view = await ledger.view(session, outflow.id, clock.shanghai_day(now))
    return console.render("_decided.html", outflow=view, action=action)


@router.post("/inflows/{inflow_id}/decide/{action}", response_class=HTMLResponse)
async def decide_inflow(
    inflow_id: ParamId, action: str, request: Request, console: ConsoleDep, session: SessionDep
) -> Response:
    """Verify or reject an inflow declaration, as ``POST /inflows/{id}/verify|reject``."""
    model = INFLOW_DECISIONS.get(action)
    if model is None:
        raise AppError("http.not_found", 404, "页面不存在或不在您的管辖范围内")
    body: VerifyIn | RejectIn = form_model(model, await request.form())
    if isinstance(body, VerifyIn):
        inflow = await inflow_service.verify(
            session,
            request.app.state.settings,
            console.scope,
            inflow_id,
            version=body.version,
            note=body.note,
        )
        if inflow.account_id is not None and inflow.matched_member_id is not None:
            # His account may now be a member's: read afresh once this commits.
            cache_of(request).hold(account_id=inflow.account_id)
    else:
        inflow = await inflow_service.reject(
            session, console.scope, inflow_id, version=body.version, note=body.note
        )
    view = await inflow_ledger.view(session, console.scope, inflow.id, clock.today())
    return console.render("_inflow_decided.html", inflow=view, action=action)


@router.post("/transfers/{transfer_id}/decide/{action}", response_class=HTMLResponse)
async def decide_transfer(
    transfer_id: ParamId, action: str, request: Request, console: ConsoleDep, session: SessionDep
) -> Response:
    """The home side approves (letter number) or rejects; the receiving side accepts or
    refuses: ``POST /transfers/{id}/approve|reject|accept|refuse``."""
    model = TRANSFER_DECISIONS.get(action)
    if model is None:
        raise AppError("http.not_found", 404, "页面不存在或不在您的管辖范围内")
    body: TransferApproveIn | TransferReasonIn | TransferAcceptIn = form_model(
        model, await request.form()
    )
    await transfer_service.act(
        session,
        console.scope,
        transfer_id,
        action,
        version=body.version,
        now=clock.now(),
        reason=getattr(body, "reason", None),
        letter_no=getattr(body, "letter_no", None),
    )
    view = await transfer_service.detail(session, console.scope, transfer_id)
    return console.render("_transfer_decided.html", transfer=view, action=action)
