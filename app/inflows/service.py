"""Inflow rules: a declaration (流入登记 / 亮身份), its verification or rejection by the
organisation's admins, the declarant's withdrawal, audited reveals; the census
findings (口袋党员) are in :mod:`app.inflows.census`.

Verification matches the ID number against the roster (blind index):

* on the roster, registered in this organisation's subtree: linked, nothing else;
* on the roster elsewhere: linked (``matched_member_id``; his account too, if neither
  is linked yet) and checked in here, accepted, through the mobility domain
  (:func:`app.mobility.arrivals.check_in_verified`): dual management starts;
* not on the roster: he stays in this organisation's inflow ledger as a member
  managed here, flagged ``transfer_suggested`` (transfer his relation).

Every move goes through the transition table (:mod:`app.inflows.rules`) on a locked
row after the caller's ``version`` was checked; every decision is audited and told.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core import clock, pii
from app.core.config import Settings
from app.core.crypto import mask_id_number, mask_phone
from app.core.errors import stale_version
from app.identity.principal import Principal
from app.identity.service import link_verified
from app.inflows import errors
from app.inflows import repository as repo
from app.inflows.models import Inflow
from app.inflows.notices import tell_admins_declared, tell_declarant
from app.inflows.rules import next_state
from app.inflows.schemas import InflowCreate
from app.mobility.arrivals import OutflowPending, check_in_verified
from app.organization.models import Organization
from app.organization.scope import Scope, get_visible_org

ID_NUMBER = "inflow.id_number"
PHONE = "inflow.phone"
# The outflow's contact phone context (app.mobility): a verified member's outflow
# carries the phone he declared.
OUTFLOW_PHONE = "outflow.contact_phone"


def _check_version(inflow: Inflow, version: int) -> None:
    if inflow.version != version:
        raise stale_version()


async def declare(
    session: AsyncSession, settings: Settings, principal: Principal, data: InflowCreate
) -> Inflow:
    """Anyone logged in declares himself at a listed organisation (or where a census
    prompted him): ``pending``.

    A census candidate of the same person there becomes his declaration; a second
    declaration while one is open is refused. Nothing here says whether the ID number
    is on the roster (no enumeration): only the verifying admin learns that.
    """
    now = clock.now()
    if data.arrived_on > clock.shanghai_day(now):
        raise errors.arrived_in_future()
    org = await _declarable_org(session, principal, data.org_id)
    ring = pii.keyring(settings)
    index = ring.blind_index(data.id_number, context=pii.ID_NUMBER)
    inflow = await repo.open_at(session, org.id, index)
    if inflow is not None and inflow.status != "candidate":
        raise errors.already_declared()
    if inflow is None:
        inflow = Inflow(org_id=org.id, source="declaration", created_at=now, version=1)
        inflow.status = next_state(None, "declare")
        session.add(inflow)
    else:
        inflow.status = next_state(inflow.status, "declare")
        inflow.version += 1
    inflow.account_id = principal.account_id
    inflow.name = data.name
    inflow.id_number_enc = ring.encrypt(data.id_number, context=ID_NUMBER)
    inflow.id_number_idx = index
    inflow.id_number_masked = mask_id_number(data.id_number)
    inflow.phone_enc = ring.encrypt(data.phone, context=PHONE)
    inflow.phone_masked = mask_phone(data.phone)
    inflow.home_org_name = data.home_org_name
    inflow.home_region_code = data.home_region_code
    inflow.employer = data.employer
    inflow.arrived_on = data.arrived_on
    try:
        await session.flush()
    except IntegrityError as error:  # the partial unique index: a concurrent declaration
        raise errors.already_declared() from error
    await record(
        session,
        actor_account_id=principal.account_id,
        action="inflow.declared",
        org_id=org.id,
        subject_type="inflow",
        subject_id=inflow.id,
        detail={"source": inflow.source},
    )
    await tell_admins_declared(session, inflow, org.name)
    return inflow


async def _declarable_org(session: AsyncSession, principal: Principal, org_id: int) -> Organization:
    """A listed organisation (the directory's), or the one a census prompted the caller's
    own roster member to show himself at (it may not be listed)."""
    org = await repo.listed_org(session, org_id)
    member_id = principal.member_id
    if (
        org is None
        and member_id is not None
        and await repo.named_by_census(session, member_id, org_id)
    ):
        org = await repo.get_org(session, org_id)
    if org is None:
        raise errors.org_not_found()
    return org


async def _load_for_admin(session: AsyncSession, scope: Scope, inflow_id: int) -> Inflow:
    inflow = await repo.lock(session, inflow_id, repo.admin_visible(scope))
    if inflow is None:
        raise errors.inflow_not_found()
    return inflow


@dataclass(frozen=True)
class _Decision:
    inflow: Inflow
    target: str
    org: Organization


async def _start_decision(
    session: AsyncSession, scope: Scope, inflow_id: int, action: str, version: int
) -> _Decision:
    """Lock the row, check the version and the move; the organisation it was made at."""
    inflow = await _load_for_admin(session, scope, inflow_id)
    _check_version(inflow, version)
    target = next_state(inflow.status, action)
    org = await get_visible_org(session, scope, inflow.org_id)
    assert org is not None  # the row is visible through its organisation
    return _Decision(inflow, target, org)


AUDIT_ACTIONS = {"verify": "inflow.verified", "reject": "inflow.rejected"}


async def _finish_decision(
    session: AsyncSession,
    scope: Scope,
    decision: _Decision,
    action: str,
    note: str | None,
    *,
    detail: dict[str, str | int | bool] | None = None,
    member_home_org_id: int | None = None,
) -> Inflow:
    """Write the decision, audit it and tell the declarant."""
    inflow = decision.inflow
    inflow.status = decision.target
    inflow.decided_at = clock.now()
    inflow.decided_by_account_id = scope.principal.account_id
    inflow.decision_note = note
    inflow.version += 1
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action=AUDIT_ACTIONS[action],
        org_id=inflow.org_id,
        member_home_org_id=member_home_org_id,
        subject_type="inflow",
        subject_id=inflow.id,
        reason=note,
        detail=detail,
    )
    await tell_declarant(session, inflow, decision.org.name, action)
    return inflow


async def verify(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    inflow_id: int,
    *,
    version: int,
    note: str | None,
) -> Inflow:
    decision = await _start_decision(session, scope, inflow_id, "verify", version)
    inflow, org = decision.inflow, decision.org
    match = (await repo.roster_matches(session, [inflow.id_number_idx])).get(inflow.id_number_idx)
    detail: dict[str, str | int | bool] = {"matched": match is not None}
    if match is not None:
        inflow.matched_member_id = match.member_id
        if inflow.account_id is not None:
            detail["account_linked"] = await link_verified(
                session,
                inflow.account_id,
                match.member_id,
                verified_by=scope.principal.account_id,
                via="inflow",
            )
        # Registered in this subtree already: ours, no dual management to start.
        if not match.home_path.startswith(org.path):
            outflow_id = await _co_manage(session, settings, scope, inflow, match.member_id, org)
            inflow.outflow_id = outflow_id
            if outflow_id is not None:
                detail["outflow_id"] = outflow_id
    return await _finish_decision(
        session,
        scope,
        decision,
        "verify",
        note,
        detail=detail,
        # A matched member's home subtree sees who verified him where.
        member_home_org_id=match.home_org_id if match is not None else None,
    )


async def _co_manage(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    inflow: Inflow,
    member_id: int,
    org: Organization,
) -> int | None:
    """Check him in here through the mobility domain; None without a phone to reach him
    (a census candidate confirmed before he declared)."""
    if inflow.phone_enc is None:
        return None
    ring = pii.keyring(settings)
    phone = ring.decrypt(inflow.phone_enc, context=PHONE)
    try:
        outflow = await check_in_verified(
            session,
            member_id=member_id,
            org=org,
            actor=scope.principal,
            now=clock.now(),
            arrived_on=inflow.arrived_on,
            employer=inflow.employer,
            contact_phone_enc=ring.encrypt(phone, context=OUTFLOW_PHONE),
            contact_phone_masked=mask_phone(phone),
            inflow_id=inflow.id,
        )
    except OutflowPending:
        raise errors.outflow_pending() from None
    return outflow.id


async def reject(
    session: AsyncSession, scope: Scope, inflow_id: int, *, version: int, note: str
) -> Inflow:
    decision = await _start_decision(session, scope, inflow_id, "reject", version)
    return await _finish_decision(session, scope, decision, "reject", note)


async def withdraw(session: AsyncSession, scope: Scope, inflow_id: int, *, version: int) -> Inflow:
    """The declarant takes back his declaration while nobody has decided on it."""
    inflow = await repo.lock(session, inflow_id, repo.caller_visible(scope))
    if inflow is None:
        raise errors.inflow_not_found()
    if inflow.account_id != scope.principal.account_id:
        raise errors.not_declarant()
    _check_version(inflow, version)
    inflow.status = next_state(inflow.status, "withdraw")
    inflow.version += 1
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="inflow.withdrawn",
        org_id=inflow.org_id,
        subject_type="inflow",
        subject_id=inflow.id,
    )
    return inflow


async def reveal(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    inflow_id: int,
    *,
    field: str,
    reason: str,
) -> str | None:
    """Decrypt one personal field for an admin of the organisation; audited."""
    inflow = await _load_for_admin(session, scope, inflow_id)
    ring = pii.keyring(settings)
    if field == "id_number":
        value: str | None = ring.decrypt(inflow.id_number_enc, context=ID_NUMBER)
    else:
        value = ring.decrypt(inflow.phone_enc, context=PHONE) if inflow.phone_enc else None
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="pii.reveal",
        org_id=inflow.org_id,
        subject_type="inflow",
        subject_id=inflow.id,
        reason=reason,
        detail={"field": field},
    )
    return value
