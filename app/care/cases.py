"""Hardship cases (困难党员帮扶): requests, the help log, closing, the ledger and its stats.

Who sees what (the two verbs of :mod:`app.organization.scope`):

* the member himself: his own cases, description and help notes included;
* admins of the member's **home subtree** (the change verb) read the description and
  the help notes on ``GET /care/cases/{id}`` (every such read is an audit entry: a
  read is a reveal), close and reopen cases and export the ledger;
* admins of an organisation that **co-manages** the member (dual management, the read
  verb) serve, they do not own: they see the case in their ledger and its help log
  (forms, dates, amounts), record cases and help (a visit where the member now lives),
  but never the description or the notes, and cannot close or export (403);
* everyone else: 404.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.care import errors
from app.care import repository as repo
from app.care.rules import case_next
from app.care.schemas import (
    CareCloseIn,
    CareFormTotal,
    CareKindCount,
    CaseDetail,
    CaseIn,
    CaseOut,
    CaseStats,
    HelpIn,
    HelpOut,
)
from app.core import clock, pii
from app.core.config import Settings
from app.core.errors import forbidden, stale_version
from app.core.pagination import Page, decode_cursor, page_of
from app.notify.service import notify_member
from app.organization import repository as org_repo
from app.organization.scope import Scope, get_visible_org

DESCRIPTION = "care.case_description"
HELP_NOTE = "care.help_note"
KIND_NAMES = {
    "illness": "患病",
    "accident": "意外",
    "family": "家庭困难",
    "financial": "经济困难",
    "other": "其他",
}
FORM_NAMES = {
    "visit": "走访慰问",
    "call": "电话慰问",
    "funds": "资金帮扶",
    "crowdfunding": "党员众筹",
    "mutual_aid": "互帮互助",
}
ADMIN_PAGE = "pages/admin/care"
MEMBER_PAGE = "pages/care/case"


def case_out(row: RowMapping) -> CaseOut:
    return CaseOut(
        id=row["id"],
        member_id=row["member_id"],
        member_name=row["member_name"],
        home_org_id=row["home_org_id"],
        home_org_name=row["home_org_name"],
        kind=row["kind"],
        status=row["status"],
        requested_by=row["requested_by"],
        opened_on=row["opened_on"],
        closed_at=row["closed_at"],
        help_count=row["help_count"],
        funds_yuan=repo.as_yuan(row["funds_yuan"]),
        version=row["version"],
    )


# -------------------------------------------------------------------- create
async def create_case(
    session: AsyncSession, settings: Settings, scope: Scope, data: CaseIn, today: date
) -> CaseDetail:
    principal = scope.principal
    if data.member_id is not None and data.member_id != principal.member_id:
        if scope.is_empty:
            raise errors.admin_required()
        member = await repo.member_home(
            session, data.member_id, scope.member_visible(repo.M.c.id, repo.M.c.home_org_id)
        )
        requested_by = "admin"
    else:
        if principal.member_id is None:
            raise forbidden("auth.member_required", "请先绑定党员身份")
        member = await repo.member_home(session, principal.member_id, repo.M.c.id.is_not(None))
        requested_by = "member"
    if member is None:
        raise errors.member_not_found()
    ring = pii.keyring(settings)
    case_id = await repo.insert_case(
        session,
        {
            "member_id": member["id"],
            "kind": data.kind,
            "description_enc": ring.encrypt(data.description, context=DESCRIPTION),
            "requested_by": requested_by,
            "created_by": principal.account_id,
            "opened_on": today,
        },
    )
    await record(
        session,
        actor_account_id=principal.account_id,
        action="care.case_opened",
        org_id=member["home_org_id"],
        member_home_org_id=member["home_org_id"],
        subject_type="care_case",
        subject_id=case_id,
        detail={"kind": data.kind, "requested_by": requested_by},
    )
    if requested_by == "member":
        for admin_id in await org_repo.responsible_admin_member_ids(session, member["home_org_id"]):
            await notify_member(
                session,
                member_id=admin_id,
                template="care_case_requested",
                title=f"{member['name']}申请困难帮扶",
                body="党员提出困难帮扶申请，请及时走访了解情况。",
                data={"case_id": case_id, "kind_name": KIND_NAMES[data.kind]},
                page=f"{ADMIN_PAGE}?id={case_id}",
                dedupe_key=f"care_case:{case_id}:requested:{admin_id}",
            )
    return await get_case(session, settings, scope, case_id, audit=False)


# --------------------------------------------------------------------- reads
async def org_conditions(
    session: AsyncSession, scope: Scope, org_id: int | None
) -> list[ColumnElement[bool]]:
    if org_id is None:
        return []
    org = await get_visible_org(session, scope, org_id)
    if org is None:
        raise errors.org_not_found()
    return [repo.in_org(org.path)]


def filters(status: str | None, kind: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if status is not None:
        where.append(repo.K.c.status == status)
    if kind is not None:
        where.append(repo.K.c.kind == kind)
    return where


async def _page(
    session: AsyncSession, where: Sequence[ColumnElement[bool]], limit: int, cursor: str | None
) -> Page[CaseOut]:
    rows = await repo.cases_page(
        session, where, limit=limit + 1, before_id=decode_cursor(cursor, int)
    )
    items, next_cursor = page_of(list(rows), limit, lambda r: (r["id"],))
    return Page[CaseOut](items=[case_out(r) for r in items], next_cursor=next_cursor)


async def cases_page(
    session: AsyncSession,
    scope: Scope,
    *,
    org_id: int | None,
    status: str | None,
    kind: str | None,
    limit: int,
    cursor: str | None,
) -> Page[CaseOut]:
    where = [
        scope.member_visible(repo.CM.id, repo.CM.home_org_id),
        *await org_conditions(session, scope, org_id),
        *filters(status, kind),
    ]
    return await _page(session, where, limit, cursor)


async def my_cases(
    session: AsyncSession, member_id: int, *, status: str | None, limit: int, cursor: str | None
) -> Page[CaseOut]:
    where = [repo.K.c.member_id == member_id, *filters(status, None)]
    return await _page(session, where, limit, cursor)


async def get_case(
    session: AsyncSession, settings: Settings, scope: Scope, case_id: int, *, audit: bool = True
) -> CaseDetail:
    row = await repo.case_detail(session, scope, case_id)
    if row is None:
        raise errors.case_not_found()
    own = row["member_id"] == scope.principal.member_id
    readable = own or bool(row["changeable"])
    ring = pii.keyring(settings) if readable else None
    if ring is not None and not own and audit:
        await record(
            session,
            actor_account_id=scope.principal.account_id,
            action="care.case_revealed",
            org_id=row["home_org_id"],
            member_home_org_id=row["home_org_id"],
            subject_type="care_case",
            subject_id=case_id,
        )
    return CaseDetail(
        **case_out(row).model_dump(),
        description=ring.decrypt(row["description_enc"], context=DESCRIPTION) if ring else None,
        close_note=row["close_note"] if readable else None,
        help=[
            HelpOut(
                id=h["id"],
                given_on=h["given_on"],
                form=h["form"],
                amount_yuan=h["amount_yuan"],
                note=ring.decrypt(base64.b64decode(h["note_enc"]), context=HELP_NOTE)
                if ring is not None and h["note_enc"] is not None
                else None,
                recorded_at=h["recorded_at"],
            )
            for h in row["help_log"]
        ],
    )


async def stats(session: AsyncSession, scope: Scope, org_id: int | None) -> CaseStats:
    where = [
        scope.member_visible(repo.CM.id, repo.CM.home_org_id),
        *await org_conditions(session, scope, org_id),
    ]
    rows = await repo.stats(session, where)
    by_kind: dict[str, dict[str, int]] = {}
    for r in rows:
        if r["dim"] == "kind":
            by_kind.setdefault(r["key"], {"open": 0, "closed": 0})[r["status"]] = r["n"]
    forms = {r["key"]: r for r in rows if r["dim"] == "form"}
    help_totals = [
        CareFormTotal(
            form=form, count=forms[form]["n"], amount_yuan=repo.as_yuan(forms[form]["amount"])
        )
        for form in FORM_NAMES
        if form in forms
    ]
    return CaseStats(
        open=sum(v["open"] for v in by_kind.values()),
        closed=sum(v["closed"] for v in by_kind.values()),
        by_kind=[
            CareKindCount(kind=k, open=by_kind[k]["open"], closed=by_kind[k]["closed"])
            for k in KIND_NAMES
            if k in by_kind
        ],
        help=help_totals,
        help_count=sum(t.count for t in help_totals),
        funds_yuan=round(sum(t.amount_yuan for t in help_totals), 2),
    )


# --------------------------------------------------------------- transitions
async def _locked(
    session: AsyncSession, scope: Scope, case_id: int, action: str
) -> tuple[RowMapping, str]:
    if scope.is_empty:
        raise errors.admin_required()
    row = await repo.lock_case(session, scope, case_id)
    if row is None:
        raise errors.case_not_found()
    if action != "help" and not row["changeable"]:
        raise errors.home_only()
    return row, case_next(row["status"], action)


async def close_case(
    session: AsyncSession, settings: Settings, scope: Scope, case_id: int, data: CareCloseIn
) -> CaseDetail:
    return await _move(session, settings, scope, case_id, "close", data.version, data.note)


async def reopen_case(
    session: AsyncSession, settings: Settings, scope: Scope, case_id: int, version: int
) -> CaseDetail:
    return await _move(session, settings, scope, case_id, "reopen", version, None)


async def _move(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    case_id: int,
    action: str,
    version: int,
    note: str | None,
) -> CaseDetail:
    row, state = await _locked(session, scope, case_id, action)
    if row["version"] != version:
        raise stale_version()
    values: dict[str, Any] = {"status": state}
    if action == "close":
        values |= {"closed_at": clock.now(), "close_note": note}
    else:
        values |= {"closed_at": None, "close_note": None}
    await repo.move_case(session, case_id, version, values)
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action=f"care.case_{state}",
        org_id=row["home_org_id"],
        member_home_org_id=row["home_org_id"],
        subject_type="care_case",
        subject_id=case_id,
    )
    return await get_case(session, settings, scope, case_id, audit=False)


async def add_help(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    case_id: int,
    data: HelpIn,
    today: date,
) -> CaseOut:
    if data.given_on > today:
        raise errors.help_in_future()
    row, _ = await _locked(session, scope, case_id, "help")
    ring = pii.keyring(settings)
    await repo.insert_help(
        session,
        {
            "case_id": case_id,
            "given_on": data.given_on,
            "form": data.form,
            "amount_yuan": data.amount_yuan,
            "note_enc": ring.encrypt(data.note, context=HELP_NOTE) if data.note else None,
            "recorded_by": scope.principal.account_id,
        },
    )
    await repo.move_case(session, case_id, None, {})
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="care.help_recorded",
        org_id=row["home_org_id"],
        member_home_org_id=row["home_org_id"],
        subject_type="care_case",
        subject_id=case_id,
        detail={"form": data.form, "amount_yuan": str(data.amount_yuan or "")},
    )
    await notify_member(
        session,
        member_id=row["member_id"],
        template="care_help_given",
        title=FORM_NAMES[data.form],
        body=f"党组织于 {data.given_on.isoformat()} 为您登记了{FORM_NAMES[data.form]}。",
        data={"case_id": case_id, "form_name": FORM_NAMES[data.form]},
        page=f"{MEMBER_PAGE}?id={case_id}",
    )
    detail = await repo.cases_page(session, [repo.K.c.id == case_id], limit=1, before_id=None)
    return case_out(detail[0])
