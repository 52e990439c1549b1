"""Reads: the outflow/returned ledger, its statistics and export, one outflow's view.

The returned ledger is the same query with ``status=returned``. Every read is scoped
with :func:`app.mobility.repository.outflow_visible`; ``org_id`` narrows it to one
organisation's subtree (which must itself be inside the caller's scope, else 404).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.config import Settings
from app.core.db import ConnectionSource
from app.core.errors import AppError
from app.core.pagination import Page, decode_cursor, encode_cursor, page_of
from app.core.xlsx import ExportResult
from app.identity.principal import Principal
from app.mobility import ledger_repository, repository
from app.mobility.errors import export_reason_required, org_not_found, outflow_not_found
from app.mobility.export import ledger_title, write_ledger_xlsx
from app.mobility.repository import LedgerFilter
from app.mobility.schemas import (
    EventOut,
    MyOutflowHistoryItem,
    OutflowDetail,
    OutflowOut,
    OutflowStats,
    ReportOut,
)
from app.mobility.views import event_out, outflow_item, outflow_out, report_out, stats_out
from app.organization.scope import ADMIN_ROLES, Scope, admin_required, get_visible_org


async def visibility(
    session: AsyncSession, scope: Scope, org_id: int | None
) -> tuple[ColumnElement[bool], int | None]:
    """The caller's visible outflows, narrowed to ``org_id``'s subtree if given."""
    visible = repository.outflow_visible(scope)
    if org_id is None:
        return visible, None
    org = await get_visible_org(session, scope, org_id)
    if org is None:
        raise org_not_found()
    narrowed = repository.org_scope(scope.principal, org)
    return and_(visible, repository.admin_visible(narrowed)), org.id


async def page(
    session: AsyncSession,
    scope: Scope,
    *,
    org_id: int | None,
    filters: LedgerFilter,
    today: date,
    limit: int,
    cursor: str | None,
) -> Page[OutflowOut]:
    visible, _ = await visibility(session, scope, org_id)
    rows = await repository.ledger_page(
        session, visible, filters, today, limit=limit + 1, before_id=decode_cursor(cursor, int)
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].outflow.id)
    return Page[OutflowOut](items=[outflow_out(r, today) for r in rows], next_cursor=next_cursor)


async def admin_page(
    reader: ConnectionSource,
    principal: Principal,
    *,
    org_id: int | None,
    filters: LedgerFilter,
    today: date,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """``GET /outflows``: :func:`page`'s answer as a ``Page[OutflowOut]``'s JSON (plain
    dicts, written once), from one statement that reads the caller's scope itself: 403
    if he administers nothing now, 404 if ``org_id`` is outside his scope."""
    # A garbled cursor is 422, but after the scope's 403 and 404, as it always was.
    garbled: AppError | None = None
    try:
        before_id = decode_cursor(cursor, int)
    except AppError as error:
        before_id, garbled = None, error
    rows = await ledger_repository.admin_ledger_page(
        reader,
        member_id=principal.member_id,
        superadmin=principal.superadmin,
        org_id=org_id,
        f=filters,
        today=today,
        limit=limit + 1 if garbled is None else 1,
        before_id=before_id,
    )
    first = rows[0]
    if not first["administers"]:
        raise admin_required()
    if not first["org_visible"]:
        raise org_not_found()
    if garbled is not None:
        raise garbled
    if first["id"] is None:
        return {"items": [], "next_cursor": None}
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["id"])
    return {"items": [outflow_item(r, today) for r in rows], "next_cursor": next_cursor}


# The events a member reads as decisions on his outflows (GET /me/outflows).
DECISION_EVENTS = (
    "approve",
    "reject",
    "withdraw",
    "cancel",
    "accept_checkin",
    "refuse_checkin",
    "return",
    "inflow",
)


async def member_history(
    session: AsyncSession, member_id: int, *, today: date, limit: int, cursor: str | None
) -> Page[MyOutflowHistoryItem]:
    """The member's own outflows, newest first, each with its decisions and reasons."""
    rows = await repository.ledger_page(
        session,
        repository.outflows_of_member(member_id),
        LedgerFilter(),
        today,
        limit=limit + 1,
        before_id=decode_cursor(cursor, int),
    )
    rows, next_cursor = page_of(rows, limit, lambda r: (r.outflow.id,))
    events = await repository.events_of_many(session, [r.outflow.id for r in rows], DECISION_EVENTS)
    by_outflow: dict[int, list[EventOut]] = {}
    for event in events:
        by_outflow.setdefault(event.outflow_id, []).append(event_out(event))
    items = [
        MyOutflowHistoryItem(
            **outflow_out(r, today).model_dump(), decisions=by_outflow.get(r.outflow.id, [])
        )
        for r in rows
    ]
    return Page[MyOutflowHistoryItem](items=items, next_cursor=next_cursor)


async def stats(
    session: AsyncSession, scope: Scope, *, org_id: int | None, filters: LedgerFilter, today: date
) -> OutflowStats:
    visible, _ = await visibility(session, scope, org_id)
    return stats_out(await repository.ledger_stats(session, visible, filters, today))


async def reports_page(
    session: AsyncSession,
    scope: Scope,
    outflow_id: int,
    *,
    limit: int,
    cursor: str | None,
) -> Page[ReportOut]:
    outflow = await repository.find_outflow(session, outflow_id, repository.outflow_visible(scope))
    if outflow is None:
        raise outflow_not_found()
    rows = await repository.reports_of(
        session, outflow.id, limit=limit + 1, before_id=decode_cursor(cursor, int)
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].id)
    return Page[ReportOut](items=[report_out(r) for r in rows], next_cursor=next_cursor)


async def export(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    *,
    org_id: int | None,
    filters: LedgerFilter,
    today: date,
    full: bool,
    reason: str | None,
) -> ExportResult:
    if full and not (reason and reason.strip()):
        raise export_reason_required()
    visible, narrowed_org = await visibility(session, scope, org_id)
    org = await repository.get_org(session, narrowed_org) if narrowed_org else None
    title = ledger_title(filters, today, org.name if org else None)
    result = await write_ledger_xlsx(
        session, settings, visible, filters, today, full=full, title=title
    )
    # Every export is audited, masked ones too: who, which filters, how many rows.
    chosen = {k: str(v) for k, v in vars(filters).items() if v is not None}
    if org_id is not None:
        chosen["org_id"] = str(org_id)
    # Without an organisation filter the entry goes to the exporter's own (first) one,
    # so the admins there see it in their audit log.
    own = sorted(r.org_id for r in scope.principal.roles if r.role in ADMIN_ROLES)
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="outflow.export_full" if full else "outflow.export",
        org_id=narrowed_org if narrowed_org is not None else next(iter(own), None),
        subject_type="outflow_ledger",
        reason=reason if full else None,
        detail={"rows": result.rows, "filters": chosen, "full": full},
    )
    return result


async def view(session: AsyncSession, outflow_id: int, today: date) -> OutflowOut:
    row = await repository.ledger_row(session, outflow_id)
    if row is None:
        raise outflow_not_found()
    return outflow_out(row, today)


async def detail(
    session: AsyncSession, scope: Scope, outflow_id: int, today: date
) -> OutflowDetail:
    outflow = await repository.find_outflow(session, outflow_id, repository.outflow_visible(scope))
    if outflow is None:
        raise outflow_not_found()
    base = await view(session, outflow.id, today)
    events = await repository.events_of(session, outflow.id)
    reports = await repository.reports_of(session, outflow.id, limit=10)
    return OutflowDetail(
        **base.model_dump(),
        events=[event_out(e) for e in events],
        recent_reports=[report_out(r) for r in reports],
    )


async def monthly_flows(
    session: AsyncSession, scope: Scope, *, today: date, months: int = 12
) -> list[tuple[str, int, int]]:
    """The last ``months`` months (oldest first): ``(YYYY-MM, outflows, returns)``."""
    visible, _ = await visibility(session, scope, None)
    year, month = today.year, today.month
    labels: list[str] = []
    for _ in range(months):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    labels.reverse()
    first = date(int(labels[0][:4]), int(labels[0][5:]), 1)
    counts = await repository.monthly_flows(session, visible, first)
    return [(label, *counts.get(label, (0, 0))) for label in labels]
