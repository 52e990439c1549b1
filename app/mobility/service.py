"""Outflow rules: registration, check-in, reports, relocation, return (the decisions of
the home branch and of the destination are in :mod:`app.mobility.decisions`).

Every state change goes through :func:`move` (the transition table in
:mod:`app.mobility.rules`), on a row locked with ``SELECT ... FOR UPDATE``, after the
caller's ``version`` was checked. Services flush; the request commits.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import audited_refusal
from app.core import clock, pii
from app.core.config import Settings
from app.core.crypto import mask_phone
from app.core.db import Row
from app.core.errors import AppError, service_unavailable, stale_version
from app.core.pagination import Page, decode_cursor, encode_cursor
from app.identity.principal import Principal
from app.mobility import repository
from app.mobility.errors import (
    already_active,
    consent_required,
    content_risky,
    destination_org_not_found,
    location_outside_china,
    no_current_outflow,
    not_home_admin,
    not_owner,
    outflow_not_found,
)
from app.mobility.jobs import escalate_lost_contact, remind_reports_due
from app.mobility.models import MemberConsent, Outflow, OutflowReport
from app.mobility.notices import tell_admins
from app.mobility.rules import (
    Rules,
    apply_state,
    flags_of,
    guard_checkin,
    guard_return,
    is_far,
    merge_rules,
    next_actions,
    next_state,
    recompute_due_dates,
    state_of,
)
from app.mobility.schemas import (
    ConsentOut,
    MyOutflowOut,
    NextAction,
    OutflowCreate,
    RelocateIn,
    ReportIn,
)
from app.mobility.views import outflow_out
from app.organization.scope import Scope, get_visible_org
from app.regions import service as regions
from app.wechat.client import WeChatClient
from app.wechat.errors import WeChatError, WeChatUnavailable

# The scheduled jobs live in app.mobility.jobs; re-exported for the worker.
__all__ = [
    "active_outflow_summary",
    "escalate_lost_contact",
    "outflow_summary",
    "remind_reports_due",
]

CONTACT_PHONE = "outflow.contact_phone"


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


async def rules_and_region(session: AsyncSession, home_org_id: int) -> tuple[Rules, str]:
    chain = await repository.org_chain(session, home_org_id)
    rules = merge_rules(org.settings or {} for org in chain)
    region = next((o.region_code for o in reversed(chain) if o.region_code), None)
    return rules, region or "000000"


async def in_scope(session: AsyncSession, scope: Scope, org_id: int | None) -> bool:
    return org_id is not None and await get_visible_org(session, scope, org_id) is not None


async def load(
    session: AsyncSession, scope: Scope, outflow_id: int, *, lock: bool = True
) -> Outflow:
    outflow = await repository.find_outflow(
        session, outflow_id, repository.outflow_visible(scope), lock=lock
    )
    if outflow is None:
        raise outflow_not_found()
    return outflow


async def load_own(
    session: AsyncSession, scope: Scope, outflow_id: int, *, lock: bool = True
) -> Outflow:
    outflow = await load(session, scope, outflow_id, lock=lock)
    if outflow.member_id != scope.principal.member_id:
        raise not_owner()
    return outflow


def check_version(outflow: Outflow, version: int) -> None:
    if outflow.version != version:
        raise stale_version()


async def move(
    session: AsyncSession,
    outflow: Outflow,
    action: str,
    *,
    actor: Principal,
    now: datetime,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Apply one entry of the transition table, bump the version, write the timeline."""
    before = state_of(outflow)
    target = next_state(outflow, action)
    apply_state(outflow, target)
    outflow.version += 1
    repository.add_event(
        session,
        outflow,
        action=action,
        from_state=before,
        to_state=target,
        actor_account_id=actor.account_id,
        now=now,
        note=note,
        data=data,
    )


async def recompute(session: AsyncSession, outflow: Outflow) -> None:
    rules, _ = await rules_and_region(session, outflow.home_org_id)
    recompute_due_dates(outflow, rules)
    await session.flush()


# ---------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------


async def register(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    data: OutflowCreate,
    now: datetime,
) -> Outflow:
    member_id = principal.member_id
    home_org_id = (
        await repository.member_home_org_id(session, member_id) if member_id is not None else None
    )
    if member_id is None or home_org_id is None:
        raise outflow_not_found()
    if await repository.open_outflow_id(session, member_id) is not None:
        raise already_active()
    outflow = Outflow(
        member_id=member_id,
        home_org_id=home_org_id,
        checkin_status="none",
        reason=data.reason,
        destination_region_code=data.destination_region_code,
        destination_address=data.destination_address,
        employer=data.employer,
        contact_phone_enc=pii.keyring(settings).encrypt(data.contact_phone, context=CONTACT_PHONE),
        contact_phone_masked=mask_phone(data.contact_phone),
        departed_on=data.departed_on,
        expected_return_on=data.expected_return_on,
        version=1,
    )
    before = state_of(outflow)
    apply_state(outflow, next_state(outflow, "register"))
    session.add(outflow)
    try:
        await session.flush()
    except IntegrityError as error:  # the partial unique index: a concurrent registration
        raise already_active() from error
    repository.add_event(
        session,
        outflow,
        action="register",
        from_state=before,
        to_state=state_of(outflow),
        actor_account_id=principal.account_id,
        now=now,
    )
    await session.flush()
    name = (await repository.member_names(session, [member_id])).get(member_id, "")
    destination = regions.region_name(data.destination_region_code) or data.destination_address
    await tell_admins(
        session,
        home_org_id,
        template="outflow_registered",
        title="外出登记待审批",
        body=f"党员 {name} 提交了外出登记（{destination}，"
        f"{data.departed_on.isoformat()} 外出），请及时审批。",
        data={"outflow_id": outflow.id, "member_name": name, "destination": destination},
        query=f"id={outflow.id}",
        dedupe=f"outflow:{outflow.id}:registered",
    )
    return outflow


async def withdraw(
    session: AsyncSession,
    scope: Scope,
    outflow_id: int,
    *,
    version: int,
    reason: str | None,
    now: datetime,
) -> Outflow:
    """The member takes back his own registration while it still awaits a decision."""
    outflow = await load_own(session, scope, outflow_id)
    check_version(outflow, version)
    await move(session, outflow, "withdraw", actor=scope.principal, now=now, note=reason)
    await recompute(session, outflow)
    return outflow


# ---------------------------------------------------------------------------
# Destination check-in and dual management
# ---------------------------------------------------------------------------


async def request_checkin(
    session: AsyncSession,
    scope: Scope,
    outflow_id: int,
    *,
    org_id: int,
    version: int,
    now: datetime,
) -> Outflow:
    outflow = await load_own(session, scope, outflow_id)
    check_version(outflow, version)
    next_state(outflow, "checkin")
    org = await repository.get_org(session, org_id)
    home = await repository.get_org(session, outflow.home_org_id)
    if org is None or home is None:
        raise destination_org_not_found()
    guard_checkin(outflow, org_region_code=org.region_code, org_path=org.path, home_path=home.path)
    outflow.checkin_org_id = org.id
    outflow.checkin_requested_at = now
    outflow.checkin_decided_at = None
    outflow.checkin_refuse_reason = None
    outflow.last_contact_on = clock.shanghai_day(now)
    await move(session, outflow, "checkin", actor=scope.principal, now=now, data={"org_id": org.id})
    await recompute(session, outflow)
    names = await repository.member_names(session, [outflow.member_id])
    await tell_admins(
        session,
        org.id,
        template="checkin_requested",
        title="流动党员报到申请",
        body=f"流动党员 {names.get(outflow.member_id, '')} 申请到本组织报到，请及时确认。",
        data={"outflow_id": outflow.id},
        query=f"id={outflow.id}",
        dedupe=f"outflow:{outflow.id}:checkin:{outflow.version}",
    )
    return outflow


# ---------------------------------------------------------------------------
# Reports, relocation, return
# ---------------------------------------------------------------------------


async def add_report(
    session: AsyncSession,
    scope: Scope,
    wechat: WeChatClient,
    outflow_id: int,
    data: ReportIn,
    now: datetime,
) -> OutflowReport:
    outflow = await load_own(session, scope, outflow_id, lock=False)
    next_state(outflow, "report")
    if not await repository.has_consent(session, outflow.member_id):
        raise consent_required()
    try:
        resolved = regions.resolve_point(data.lat, data.lon)
    except ValueError as error:
        raise location_outside_china() from error
    suggest = None
    if data.note:
        openid = await repository.openid_of(session, scope.principal.account_id)
        try:
            verdict = await wechat.msg_sec_check(openid or "", data.note)
        except (WeChatError, WeChatUnavailable) as error:
            raise service_unavailable("内容安全检测暂时不可用，请稍后重试") from error
        if verdict.suggest == "risky":
            raise content_risky()
        suggest = verdict.suggest
    # Re-read under lock: the state may have moved while WeChat was asked.
    outflow = await load_own(session, scope, outflow_id)
    next_state(outflow, "report")
    rules, _ = await rules_and_region(session, outflow.home_org_id)
    far, distance = is_far(
        lat=data.lat,
        lon=data.lon,
        resolved_code=resolved,
        destination_code=outflow.destination_region_code,
        far_km=rules.report_far_km,
    )
    today = clock.shanghai_day(now)
    report = OutflowReport(
        outflow_id=outflow.id,
        member_id=outflow.member_id,
        lat=data.lat,
        lon=data.lon,
        region_code=resolved,
        distance_m=distance,
        far_from_destination=far,
        note=data.note or None,
        note_suggest=suggest,
        reported_on=today,
        created_at=now,
    )
    session.add(report)
    outflow.last_report_at = now
    outflow.last_report_region_code = resolved
    outflow.last_report_far = far
    outflow.last_contact_on = today
    outflow.lost_contact_escalated_at = None
    outflow.version += 1
    recompute_due_dates(outflow, rules)
    await session.flush()
    return report


async def relocate(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    outflow_id: int,
    data: RelocateIn,
    now: datetime,
) -> Outflow:
    outflow = await load_own(session, scope, outflow_id)
    check_version(outflow, data.version)
    next_state(outflow, "relocate")
    before = {
        "destination_region_code": outflow.destination_region_code,
        "destination_address": outflow.destination_address,
        "employer": outflow.employer,
        "contact_phone": outflow.contact_phone_masked,
        "checkin_org_id": outflow.checkin_org_id,
        "checkin_status": outflow.checkin_status,
    }
    outflow.destination_region_code = data.destination_region_code
    outflow.destination_address = data.destination_address
    outflow.employer = data.employer
    if data.contact_phone:
        ring = pii.keyring(settings)
        outflow.contact_phone_enc = ring.encrypt(data.contact_phone, context=CONTACT_PHONE)
        outflow.contact_phone_masked = mask_phone(data.contact_phone)
    outflow.checkin_org_id = None
    outflow.checkin_requested_at = None
    outflow.checkin_decided_at = None
    outflow.checkin_refuse_reason = None
    outflow.relocated_on = clock.shanghai_day(now)
    outflow.last_contact_on = clock.shanghai_day(now)
    await repository.end_grants(session, outflow.id, now)
    after = {
        "destination_region_code": outflow.destination_region_code,
        "destination_address": outflow.destination_address,
        "employer": outflow.employer,
        "contact_phone": outflow.contact_phone_masked,
    }
    await move(
        session,
        outflow,
        "relocate",
        actor=scope.principal,
        now=now,
        data={"from": before, "to": after},
    )
    await recompute(session, outflow)
    return outflow


def refused_by_home(scope: Scope, outflow: Outflow, action: str) -> AppError:
    """403 for an admin who sees the outflow without being of its home side (a co-managing
    destination); the attempt stays in the home subtree's audit log."""
    return audited_refusal(
        not_home_admin(),
        actor_account_id=scope.principal.account_id,
        action="outflow.decision_refused",
        org_id=outflow.home_org_id,
        subject_type="outflow",
        subject_id=outflow.id,
        detail={"action": action},
    )


async def return_outflow(
    session: AsyncSession,
    scope: Scope,
    outflow_id: int,
    *,
    returned_on: date,
    version: int,
    now: datetime,
) -> Outflow:
    outflow = await load(session, scope, outflow_id)
    own = outflow.member_id == scope.principal.member_id
    if not own and not await in_scope(session, scope, outflow.home_org_id):
        raise refused_by_home(scope, outflow, "return")
    check_version(outflow, version)
    next_state(outflow, "return")
    guard_return(outflow, returned_on, clock.shanghai_day(now))
    outflow.returned_on = returned_on
    await repository.end_grants(session, outflow.id, now)
    await move(
        session,
        outflow,
        "return",
        actor=scope.principal,
        now=now,
        data={"returned_on": returned_on.isoformat()},
    )
    await recompute(session, outflow)
    return outflow


async def close_for_transfer(
    session: AsyncSession, member_id: int, *, actor: Principal, now: datetime, transfer_id: int
) -> int | None:
    """A completed relation transfer closes the member's open outflow as ``transferred``
    (locked, through the transition table); co-management ends with it. Returns its id."""
    outflow_id = await repository.open_outflow_id(session, member_id)
    if outflow_id is None:
        return None
    outflow = await repository.find_outflow(session, outflow_id, true(), lock=True)
    if outflow is None:  # pragma: no cover - deleted between the two reads
        return None
    await repository.end_grants(session, outflow.id, now)
    await move(
        session, outflow, "transfer", actor=actor, now=now, data={"transfer_id": transfer_id}
    )
    await recompute(session, outflow)
    return outflow.id


# ---------------------------------------------------------------------------
# Consent (PIPL arts. 28-29)
# ---------------------------------------------------------------------------


async def record_consent(
    session: AsyncSession, principal: Principal, *, kind: str, granted: bool, now: datetime
) -> MemberConsent:
    assert principal.member_id is not None  # MemberDep guarantees it
    consent = MemberConsent(
        member_id=principal.member_id,
        account_id=principal.account_id,
        kind=kind,
        granted=granted,
        created_at=now,
    )
    session.add(consent)
    await session.flush()
    return consent


async def consents_page(
    session: AsyncSession, member_id: int, *, limit: int, cursor: str | None
) -> Page[ConsentOut]:
    """The member's consent decisions, newest first."""
    before = decode_cursor(cursor, int)
    rows = await repository.list_consents(session, member_id, limit=limit + 1, before_id=before)
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return Page[ConsentOut](
        items=[ConsentOut.model_validate(c, from_attributes=True) for c in rows[:limit]],
        next_cursor=next_cursor,
    )


# ---------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------


async def my_outflow(session: AsyncSession, member_id: int, today: date) -> MyOutflowOut:
    outflow_id = await repository.open_outflow_id(session, member_id)
    if outflow_id is None:
        raise no_current_outflow()
    row = await repository.ledger_row(session, outflow_id)
    if row is None:  # pragma: no cover - deleted between the two reads
        raise no_current_outflow()
    base = outflow_out(row, today)
    actions = next_actions(row.outflow, today, location_consent=row.location_consent)
    return MyOutflowOut(**base.model_dump(), next_actions=[NextAction(**a) for a in actions])


def outflow_summary(
    outflow: Outflow | Row, today: date, *, location_consent: bool
) -> dict[str, Any]:
    """The open outflow as ``GET /me`` shows it (JSON-ready): ``{id, status,
    certificate_no, destination_region_code, destination_region_name, checkin_status,
    flags, next_actions, version}``."""
    actions = next_actions(outflow, today, location_consent=location_consent)
    return {
        "id": outflow.id,
        "status": outflow.status,
        "certificate_no": outflow.certificate_no,
        "destination_region_code": outflow.destination_region_code,
        "destination_region_name": regions.region_name(outflow.destination_region_code),
        "checkin_status": outflow.checkin_status,
        "flags": flags_of(outflow, today),
        "next_actions": [NextAction(**a).model_dump(mode="json") for a in actions],
        "version": outflow.version,
    }


async def active_outflow_summary(
    session: AsyncSession, member_id: int, today: date | None = None
) -> dict[str, Any] | None:
    """The member's pending or active outflow for ``GET /me``, or None (see
    :func:`outflow_summary`)."""
    today = today or clock.today()
    outflow_id = await repository.open_outflow_id(session, member_id)
    if outflow_id is None:
        return None
    row = await repository.ledger_row(session, outflow_id)
    if row is None:  # pragma: no cover - deleted between the two reads
        return None
    return outflow_summary(row.outflow, today, location_consent=row.location_consent)
