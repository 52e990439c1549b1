"""Console desks: the orders board, activities (roll call, the projected QR code), the
census ledger and its rounds, the audit log. Service calls only, scoped as the API's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args

import segno
from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from app.activity import service as activity_service
from app.activity.schemas import ActivityKind
from app.audit import service as audit_service
from app.census import export as census_export
from app.census import rounds as census_rounds
from app.census import service as census_service
from app.census.repository import LedgerFilter as CensusFilter
from app.census.schemas import Coverage, EntityOut, Kind, Recommendation
from app.census.views import entity_out
from app.console.web import PAGE_SIZE, PREFIX, ConsoleDep, Cursor, Text, choice, form_model
from app.core import clock
from app.core.db import InTransaction, SessionDep
from app.core.pagination import Page, decode_cursor, page_of
from app.core.types import ParamId
from app.core.xlsx import xlsx_download
from app.orders import reads as order_reads
from app.orders import service as order_service
from app.orders.schemas import OrderOut, TransitionIn
from app.organization import service as org_service

router = APIRouter(prefix=PREFIX, include_in_schema=False)

BOARD_LIMIT = 20
ACTIVITY_KINDS = get_args(ActivityKind)
# The board's columns, and the moves an admin makes from each (the order's transition
# table decides whether they are allowed: an illegal one is the API's 409).
BOARD = {
    "submitted": ("accept", "transfer", "reject"),
    "accepted": ("start", "transfer", "resolve"),
    "in_progress": ("transfer", "resolve"),
    "resolved": (),
}
NEEDS_NOTE = frozenset({"reject", "resolve", "transfer"})
TARGETS_LIMIT = 100
SLA_WARNING = timedelta(hours=24)


def _sla(order: OrderOut) -> str:
    """green: on time; yellow: due within a day; red: past its deadline."""
    if order.overdue:
        return "red"
    if order.status in ("submitted", "accepted", "in_progress") and (
        order.due_at - clock.now() < SLA_WARNING
    ):
        return "yellow"
    return "green"


# ------------------------------------------------------------------ orders


@router.get("/orders", response_class=HTMLResponse)
async def orders_board(
    console: ConsoleDep,
    session: SessionDep,
    status: Text = None,
    cursor: Cursor = None,
) -> Response:
    """By status, with SLA colours; ``status`` shows one column with its pages."""
    status = choice(status, BOARD, "status")
    columns = []
    page: Page[OrderOut] | None = None
    for column in [status] if status else list(BOARD):
        found = await order_reads.list_orders(
            session,
            console.scope,
            status=column,
            org_id=None,
            mine=False,
            category=None,
            needs_review=None,
            limit=PAGE_SIZE if status else BOARD_LIMIT,
            cursor=cursor if status else None,
        )
        page = found
        cards = [(o, _sla(o)) for o in found.items]
        columns.append((column, cards, BOARD[column], found.next_cursor))
    return console.render(
        "orders.html",
        columns=columns,
        page=page if status else None,
        needs_note=NEEDS_NOTE,
        targets=await _transfer_targets(console, session),
    )


async def _transfer_targets(console: ConsoleDep, session: SessionDep) -> list[tuple[int, str]]:
    """Where an order can be handed over to (转单): the organisations of the admin's
    subtrees and the listed ones that take orders, by name."""
    found: dict[int, str] = {}
    tops, _ = await org_service.scope_tops_page(
        session, console.scope, cursor=None, limit=TARGETS_LIMIT
    )
    for top in tops:
        orgs, _ = await org_service.subtree_page(
            session, console.scope, top.id, cursor=None, limit=TARGETS_LIMIT
        )
        found.update((o.id, o.name) for o in orgs)
    listed, _ = await org_service.directory_page(
        session,
        q=None,
        region_code=None,
        host=None,
        purpose="orders",
        near=None,
        cursor=None,
        limit=TARGETS_LIMIT,
    )
    found.update((o.id, o.name) for o in listed)
    return sorted(found.items(), key=lambda item: item[1])


@router.post("/orders/{order_id}/transitions", response_class=HTMLResponse)
async def order_transition(
    order_id: ParamId, request: Request, console: ConsoleDep, session: SessionDep
) -> Response:
    body = form_model(TransitionIn, await request.form())
    order = await order_service.transition(session, console.scope, order_id, body)
    view = await order_reads.detail(session, console.scope, order)
    return console.render(
        "_order.html", o=view, sla=_sla(view), actions=(), needs_note=(), targets=()
    )


# ------------------------------------------------------------------ activities


@router.get("/activities", response_class=HTMLResponse)
async def activities(
    console: ConsoleDep,
    session: SessionDep,
    kind: Text = None,
    when: Text = None,
    cursor: Cursor = None,
) -> Response:
    """Newest start first, like the API; ``when=upcoming`` from now on, ``past`` before."""
    now = clock.now()
    when = choice(when, ("upcoming", "past"), "when")
    filters = activity_service.ActivityFilters(
        kind=choice(kind, ACTIVITY_KINDS, "kind"),
        starts_from=now if when == "upcoming" else None,
        starts_to=now if when == "past" else None,
    )
    # The API's one statement, inside the page's own transaction.
    items, next_cursor = await activity_service.list_activities(
        InTransaction(session), console.identity.principal, filters, limit=PAGE_SIZE, cursor=cursor
    )
    return console.render(
        "activities.html",
        page=Page(items=items, next_cursor=next_cursor),
        kinds=ACTIVITY_KINDS,
    )


@router.get("/activities/{activity_id}", response_class=HTMLResponse)
async def activity(activity_id: ParamId, console: ConsoleDep, session: SessionDep) -> Response:
    viewer = await activity_service.viewer_for(session, console.identity.principal)
    found = await activity_service.get_activity(session, viewer, activity_id)
    roll = await activity_service.roll_call(session, console.scope, activity_id)
    return console.render("activity.html", a=found, roll=roll)


async def _qr(
    request: Request, console: ConsoleDep, session: SessionDep, activity_id: int
) -> dict[str, Any]:
    current = await activity_service.current_qr(
        session, request.app.state.settings, console.scope, activity_id, clock.now()
    )
    content = f"branchlink://activity-attend?activity_id={activity_id}&qr_token={current.qr_token}"
    svg = segno.make(content, error="m").svg_inline(scale=10, omitsize=True)
    return {"qr": current, "svg": Markup(svg), "activity_id": activity_id}  # noqa: S704


@router.get("/activities/{activity_id}/qr", response_class=HTMLResponse)
async def activity_qr(
    activity_id: ParamId, request: Request, console: ConsoleDep, session: SessionDep
) -> Response:
    """Full screen, to project at the venue; the code is fetched again every few seconds."""
    viewer = await activity_service.viewer_for(session, console.identity.principal)
    found = await activity_service.get_activity(session, viewer, activity_id)
    return console.render(
        "activity_qr.html", a=found, **await _qr(request, console, session, activity_id)
    )


@router.get("/activities/{activity_id}/qr/code", response_class=HTMLResponse)
async def activity_qr_code(
    activity_id: ParamId, request: Request, console: ConsoleDep, session: SessionDep
) -> Response:
    return console.render("_qr_code.html", **await _qr(request, console, session, activity_id))


# ------------------------------------------------------------------ census


def _census_filters(
    coverage: str | None, recommendation: str | None, kind: str | None, q: str | None
) -> CensusFilter:
    return CensusFilter(
        coverage=choice(coverage, get_args(Coverage), "coverage"),
        recommendation=choice(recommendation, get_args(Recommendation), "recommendation"),
        kind=choice(kind, get_args(Kind), "kind"),
        q=q.strip() if q and q.strip() else None,
    )


@router.get("/census", response_class=HTMLResponse)
async def census(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    coverage: Text = None,
    recommendation: Text = None,
    kind: Text = None,
    q: Text = None,
    cursor: Cursor = None,
) -> Response:
    filters = _census_filters(coverage, recommendation, kind, q)
    rows = await census_service.ledger_rows(
        session,
        console.scope,
        None,
        filters,
        limit=PAGE_SIZE + 1,
        before_id=decode_cursor(cursor, int),
    )
    items, next_cursor = page_of(list(rows), PAGE_SIZE, lambda r: (r["id"],))
    page = Page[EntityOut](items=[entity_out(r) for r in items], next_cursor=next_cursor)
    found = await census_rounds.list_rounds(session, console.scope, limit=10, before_id=None)
    today = clock.today()
    rounds = [await census_rounds.round_view(session, console.scope, r.id, today) for r, _ in found]
    return console.render(
        "census.html",
        page=page,
        rounds=rounds,
        coverages=get_args(Coverage),
        recommendations=get_args(Recommendation),
        kinds=get_args(Kind),
        export_query=request.url.query,
    )


@router.get("/census/rounds/{round_id}", response_class=HTMLResponse)
async def census_round(round_id: ParamId, console: ConsoleDep, session: SessionDep) -> Response:
    found = await census_rounds.round_view(session, console.scope, round_id, clock.today())
    return console.render("census_round.html", r=found)


@router.get("/census/export")
async def census_export_file(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    coverage: Text = None,
    recommendation: Text = None,
    kind: Text = None,
    q: Text = None,
) -> Response:
    today = clock.today()
    result = await census_export.export_ledger(
        session,
        request.app.state.settings,
        console.scope,
        org_id=None,
        filters=_census_filters(coverage, recommendation, kind, q),
        full=False,
        reason=None,
        today=today,
    )
    return xlsx_download(
        result,
        ascii_name=f"census-{today.isoformat()}.xlsx",
        name=f"两个覆盖台账-{today.isoformat()}.xlsx",
    )


# ------------------------------------------------------------------ audit


@router.get("/audit", response_class=HTMLResponse)
async def audit(
    console: ConsoleDep,
    session: SessionDep,
    action: Text = None,
    cursor: Cursor = None,
) -> Response:
    page = await audit_service.entries_page(
        session,
        console.scope,
        org_id=None,
        actor_account_id=None,
        action=action.strip() if action and action.strip() else None,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    return console.render("audit.html", page=page)
