"""Reads of the inflow ledger: pages, one row, the declarant's own, statistics, export.

Every read is the one statement of :mod:`app.inflows.repository`, scoped through
:mod:`app.organization.scope`; ``org_id`` narrows it to one organisation's subtree
(which must itself be inside the caller's scope, else 404).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, and_
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core import pii
from app.core.config import Settings
from app.core.pagination import Page, decode_cursor, page_of
from app.core.xlsx import ExportResult, LedgerSheet
from app.inflows import errors
from app.inflows import repository as repo
from app.inflows.export import HEADERS, WIDTHS, ledger_title, row_values
from app.inflows.repository import LedgerFilter
from app.inflows.schemas import InflowOut, InflowStats
from app.inflows.service import ID_NUMBER, PHONE
from app.inflows.views import inflow_out, stats_out
from app.organization.scope import ADMIN_ROLES, Scope, get_visible_org


async def visibility(
    session: AsyncSession, scope: Scope, org_id: int | None
) -> tuple[ColumnElement[bool], str | None]:
    """The caller's visible inflows, narrowed to ``org_id``'s subtree if given (with the
    organisation's name)."""
    visible = repo.admin_visible(scope)
    if org_id is None:
        return visible, None
    org = await get_visible_org(session, scope, org_id)
    if org is None:
        raise errors.org_not_found()
    narrowed = Scope.subtree(scope.principal, org.path)
    return and_(visible, repo.admin_visible(narrowed)), org.name


async def page(
    session: AsyncSession,
    scope: Scope,
    *,
    org_id: int | None,
    filters: LedgerFilter,
    today: date,
    limit: int,
    cursor: str | None,
) -> Page[InflowOut]:
    visible, _ = await visibility(session, scope, org_id)
    rows = await repo.ledger_page(
        session, visible, filters, today, limit=limit + 1, before_id=decode_cursor(cursor, int)
    )
    items, next_cursor = page_of(list(rows), limit, lambda r: (r["id"],))
    return Page[InflowOut](items=[inflow_out(r, today) for r in items], next_cursor=next_cursor)


async def mine(
    session: AsyncSession, scope: Scope, *, today: date, limit: int, cursor: str | None
) -> Page[InflowOut]:
    """The caller's own declarations, newest first."""
    own = repo.I.c.account_id == scope.principal.account_id
    rows = await repo.ledger_page(
        session, own, LedgerFilter(), today, limit=limit + 1, before_id=decode_cursor(cursor, int)
    )
    items, next_cursor = page_of(list(rows), limit, lambda r: (r["id"],))
    return Page[InflowOut](items=[inflow_out(r, today) for r in items], next_cursor=next_cursor)


async def view(session: AsyncSession, scope: Scope, inflow_id: int, today: date) -> InflowOut:
    """One row, for its declarant or an admin of its organisation."""
    row = await repo.ledger_row(session, inflow_id, repo.caller_visible(scope))
    if row is None:
        raise errors.inflow_not_found()
    return inflow_out(row, today)


async def stats(
    session: AsyncSession, scope: Scope, *, org_id: int | None, filters: LedgerFilter, today: date
) -> InflowStats:
    visible, _ = await visibility(session, scope, org_id)
    return stats_out(await repo.ledger_stats(session, visible, filters, today))


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
    """The ledger as xlsx (masked; ``full`` with a reason decrypts); always audited."""
    if full and not (reason and reason.strip()):
        raise errors.export_reason_required()
    visible, org_name = await visibility(session, scope, org_id)
    ring = pii.keyring(settings) if full else None
    sheet = LedgerSheet(
        prefix="inflows-",
        sheet_name="流入党员台账",
        title=ledger_title(filters, today, org_name),
        headers=HEADERS,
        widths=WIDTHS,
    )
    try:
        async for row in repo.stream_ledger(session, visible, filters, today):
            id_number, phone = row["id_number_masked"], row["phone_masked"]
            if ring is not None:
                id_number = ring.decrypt(row["id_number_enc"], context=ID_NUMBER)
                if row["phone_enc"] is not None:
                    phone = ring.decrypt(row["phone_enc"], context=PHONE)
            sheet.add(row_values(sheet.rows + 1, row, today, id_number, phone))
        path, count = await sheet.finish()
    except BaseException:
        sheet.discard()
        raise
    chosen = {k: str(v) for k, v in vars(filters).items() if v is not None}
    if org_id is not None:
        chosen["org_id"] = str(org_id)
    own = sorted(r.org_id for r in scope.principal.roles if r.role in ADMIN_ROLES)
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="inflow.export_full" if full else "inflow.export",
        org_id=org_id if org_id is not None else next(iter(own), None),
        subject_type="inflow_ledger",
        reason=reason if full else None,
        detail={"rows": count, "filters": chosen, "full": full},
    )
    return ExportResult(path=path, rows=count)
