"""Decisions on an outflow: the home branch approves or rejects the registration (and
cancels an approved one before departure), the destination accepts or refuses the
member's check-in.

All five are :func:`decide` over the table :data:`DECISIONS`: lock the outflow, check
the deciding side and the version, write, move through the transition table
(:mod:`app.mobility.rules`), recompute the due dates, audit, tell the member.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core import clock
from app.identity.principal import Principal
from app.mobility import repository
from app.mobility.errors import not_destination_admin
from app.mobility.models import Outflow
from app.mobility.notices import tell_member
from app.mobility.rules import guard_cancel, next_state
from app.mobility.service import (
    check_version,
    in_scope,
    load,
    move,
    recompute,
    refused_by_home,
    rules_and_region,
)
from app.organization.scope import Scope

HOME = "home"  # the admins of the member's home organisation decide
DESTINATION = "destination"  # the admins of the organisation he checked in at decide

# What a decision writes on the locked outflow beyond its state; returns the data the
# timeline, the audit entry and the message carry (``reason`` is the caller's, if any).
Write = Callable[
    [AsyncSession, Outflow, Principal, str | None, datetime], Awaitable[dict[str, str]]
]


@dataclass(frozen=True)
class Decision:
    side: str
    write: Write
    audit: str  # the audit action
    template: str
    title: str
    body: str  # the member's message; ``{reason}`` and the written data fill it in
    event: str  # the message's dedupe event; ``{version}`` is the outflow's new version


async def _approved(
    session: AsyncSession, outflow: Outflow, actor: Principal, reason: str | None, now: datetime
) -> dict[str, str]:
    _, region = await rules_and_region(session, outflow.home_org_id)
    year = clock.shanghai_day(now).year
    seq = await repository.next_certificate_seq(session, region, year)
    outflow.certificate_no = f"{region}-{year}-{seq:05d}"
    outflow.decided_at = now
    outflow.decided_by_account_id = actor.account_id
    outflow.last_contact_on = clock.shanghai_day(now)
    return {"certificate_no": outflow.certificate_no}


async def _rejected(
    session: AsyncSession, outflow: Outflow, actor: Principal, reason: str | None, now: datetime
) -> dict[str, str]:
    outflow.decided_at = now
    outflow.decided_by_account_id = actor.account_id
    outflow.reject_reason = reason
    return {}


async def _cancelled(
    session: AsyncSession, outflow: Outflow, actor: Principal, reason: str | None, now: datetime
) -> dict[str, str]:
    guard_cancel(outflow, clock.shanghai_day(now))  # before departure only
    outflow.cancel_reason = reason
    await repository.end_grants(session, outflow.id, now)  # co-management ends with it
    return {"result": "已撤销"}


async def _checkin_accepted(
    session: AsyncSession, outflow: Outflow, actor: Principal, reason: str | None, now: datetime
) -> dict[str, str]:
    outflow.checkin_decided_at = now
    assert outflow.checkin_org_id is not None  # the state guarantees it
    repository.open_grant(session, outflow, outflow.checkin_org_id, now)
    return {}


async def _checkin_refused(
    session: AsyncSession, outflow: Outflow, actor: Principal, reason: str | None, now: datetime
) -> dict[str, str]:
    outflow.checkin_decided_at = now
    outflow.checkin_refuse_reason = reason
    return {}


DECISIONS: dict[str, Decision] = {
    "approve": Decision(
        HOME,
        _approved,
        audit="outflow.approved",
        template="outflow_approved",
        title="外出登记已批准",
        body="您的外出登记已批准，流动党员活动证编号 {certificate_no}。请及时到流入地党组织报到。",
        event="approved",
    ),
    "reject": Decision(
        HOME,
        _rejected,
        audit="outflow.rejected",
        template="outflow_rejected",
        title="外出登记未通过",
        body="您的外出登记未通过审批：{reason}",
        event="rejected",
    ),
    "cancel": Decision(
        HOME,
        _cancelled,
        audit="outflow.cancelled",
        template="outflow_rejected",
        title="外出登记已撤销",
        body="党支部已撤销您的外出登记：{reason}",
        event="cancelled",
    ),
    "accept_checkin": Decision(
        DESTINATION,
        _checkin_accepted,
        audit="outflow.checkin_accepted",
        template="checkin_accepted",
        title="流入地报到成功",
        body="流入地党组织已接收您的报到，今后可参加其组织生活。",
        event="checkin_accepted:{version}",
    ),
    "refuse_checkin": Decision(
        DESTINATION,
        _checkin_refused,
        audit="outflow.checkin_refused",
        template="checkin_refused",
        title="流入地报到未被接收",
        body="流入地党组织未接收您的报到：{reason}",
        event="checkin_refused:{version}",
    ),
}


async def decide(
    session: AsyncSession,
    scope: Scope,
    outflow_id: int,
    action: str,
    *,
    version: int,
    now: datetime,
    note: str | None = None,
    reason: str | None = None,
) -> Outflow:
    """Take one of :data:`DECISIONS`: lock the outflow, check the deciding side and the
    version, write, move through the transition table, recompute the due dates, audit,
    tell the member."""
    decision = DECISIONS[action]
    outflow = await load(session, scope, outflow_id)
    org_id: int | None
    org_id = outflow.home_org_id if decision.side == HOME else outflow.checkin_org_id
    if not await in_scope(session, scope, org_id):
        if decision.side == HOME:
            raise refused_by_home(scope, outflow, action)
        raise not_destination_admin()
    check_version(outflow, version)
    next_state(outflow, action)
    data = await decision.write(session, outflow, scope.principal, reason, now)
    await move(
        session,
        outflow,
        action,
        actor=scope.principal,
        now=now,
        note=reason or note,
        data=data or None,
    )
    await recompute(session, outflow)
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action=decision.audit,
        org_id=org_id,
        # A destination's decision shows in the member's home subtree too.
        member_home_org_id=outflow.home_org_id if decision.side == DESTINATION else None,
        subject_type="outflow",
        subject_id=outflow.id,
        reason=reason,
        detail=data or None,
    )
    await tell_member(
        session,
        outflow_id=outflow.id,
        member_id=outflow.member_id,
        template=decision.template,
        title=decision.title,
        body=decision.body.format(reason=reason, **data),
        data=dict[str, str | int](data) or None,
        event=decision.event.format(version=outflow.version),
    )
    return outflow
