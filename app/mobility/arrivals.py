"""Dual management from the destination's side: an organisation verified a roster
member's inflow declaration (流入登记, :mod:`app.inflows`), so he is checked in there,
accepted, at once.

* No open outflow: one is registered for him, already active with the check-in accepted
  (``new --inflow--> active:accepted``): his home branch sees a mobile member co-managed
  at the destination, without an activity certificate (the home branch never issued
  one; the timeline says who verified him where).
* An active outflow: its check-in moves to this organisation, accepted (``active:* --
  inflow--> active:accepted``); a co-management elsewhere ends (he is here now).
* A pending outflow: nothing moves before his home branch decides on it.

Every move goes through the transition table (:mod:`app.mobility.rules`), the timeline
and the due dates like any other; the member hears of it like of an accepted check-in.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.identity.principal import Principal
from app.mobility import repository
from app.mobility.models import Outflow
from app.mobility.notices import tell_member
from app.mobility.rules import apply_state, next_state, state_of
from app.mobility.service import move, recompute, rules_and_region
from app.organization.models import Organization

# A declaration says when he came, not when he leaves: a year, renewed by relocation or
# return like any outflow's expected return.
EXPECTED_STAY = timedelta(days=365)


class OutflowPending(Exception):
    """The member's outflow awaits his home branch's decision: nothing may move yet."""


async def check_in_verified(
    session: AsyncSession,
    *,
    member_id: int,
    org: Organization,
    actor: Principal,
    now: datetime,
    arrived_on: date | None,
    employer: str | None,
    contact_phone_enc: bytes,
    contact_phone_masked: str,
    inflow_id: int,
) -> Outflow:
    """The member's outflow, checked in and accepted at ``org`` (see the module)."""
    today = clock.shanghai_day(now)
    open_id = await repository.open_outflow_id(session, member_id)
    data = {"org_id": org.id, "inflow_id": inflow_id}
    if open_id is None:
        home_org_id = await repository.member_home_org_id(session, member_id)
        assert home_org_id is not None  # a roster member has a home organisation
        _, region = await rules_and_region(session, org.id)
        departed_on = min(arrived_on or today, today)
        outflow = Outflow(
            member_id=member_id,
            home_org_id=home_org_id,
            checkin_status="none",
            reason="work",
            destination_region_code=region,
            destination_address=(org.address or org.name)[:200],
            employer=employer,
            contact_phone_enc=contact_phone_enc,
            contact_phone_masked=contact_phone_masked,
            departed_on=departed_on,
            expected_return_on=departed_on + EXPECTED_STAY,
            version=1,
        )
        before = state_of(outflow)
        apply_state(outflow, next_state(outflow, "inflow"))
        outflow.decided_at = now
        outflow.decided_by_account_id = actor.account_id
        _checked_in(outflow, org, now, today)
        session.add(outflow)
        await session.flush()
        repository.add_event(
            session,
            outflow,
            action="inflow",
            from_state=before,
            to_state=state_of(outflow),
            actor_account_id=actor.account_id,
            now=now,
            data=data,
        )
    else:
        found = await repository.find_outflow(
            session, open_id, repository.outflows_of_member(member_id), lock=True
        )
        assert found is not None
        outflow = found
        if outflow.status == "pending":
            raise OutflowPending
        if outflow.checkin_status == "accepted" and outflow.checkin_org_id == org.id:
            return outflow  # already co-managed here
        next_state(outflow, "inflow")
        await repository.end_grants(session, outflow.id, now)
        _checked_in(outflow, org, now, today)
        await move(session, outflow, "inflow", actor=actor, now=now, data=data)
    repository.open_grant(session, outflow, org.id, now)
    await recompute(session, outflow)
    await tell_member(
        session,
        outflow_id=outflow.id,
        member_id=member_id,
        template="checkin_accepted",
        title="流入地报到成功",
        body=f"{org.name}已核实您的流入登记，今后可参加其组织生活。",
        data={"org_name": org.name},
        event=f"inflow:{inflow_id}",
    )
    return outflow


def _checked_in(outflow: Outflow, org: Organization, now: datetime, today: date) -> None:
    outflow.checkin_org_id = org.id
    outflow.checkin_requested_at = now
    outflow.checkin_decided_at = now
    outflow.checkin_refuse_reason = None
    outflow.last_contact_on = today
