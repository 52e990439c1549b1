"""All queries of the mobility domain. Scoped reads go through :class:`Scope`."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.identity.models import Account
from app.identity.principal import Principal
from app.identity.validators import normalize_person_name
from app.members.models import Member
from app.mobility.models import (
    CertificateCounter,
    MemberConsent,
    Outflow,
    OutflowEvent,
    OutflowReport,
)
from app.mobility.rules import FLAG_COLUMNS
from app.organization.models import DualManagementGrant, Organization, RoleAssignment
from app.organization.scope import Scope

HomeOrg = aliased(Organization, name="home_org")
CheckinOrg = aliased(Organization, name="checkin_org")


# ---------------------------------------------------------------------------
# Visibility
# ---------------------------------------------------------------------------


def admin_visible(scope: Scope) -> ColumnElement[bool]:
    """Outflows an admin scope covers: those of members of its subtrees, the outflow an
    open dual-management grant there was opened for (not the member's other outflows),
    and check-in requests pending at one of its organisations (they must see those to
    accept or refuse them)."""
    if scope.everything:
        return true()
    return or_(
        scope.org_visible(Outflow.home_org_id),
        Outflow.id.in_(scope.guest_outflow_ids()),
        and_(
            Outflow.checkin_status == "pending",
            scope.org_visible(cast(ColumnElement[int], Outflow.checkin_org_id.expression)),
        ),
    )


def outflow_visible(scope: Scope) -> ColumnElement[bool]:
    """Outflows the caller may see: his own, plus what his admin scope covers."""
    own = scope.principal.member_id
    conditions = []
    if own is not None:
        conditions.append(Outflow.member_id == own)
    if not scope.is_empty:
        conditions.append(admin_visible(scope))
    return or_(*conditions) if conditions else false()


def outflows_of_member(member_id: int) -> ColumnElement[bool]:
    """One member's own outflows, whatever their state (his history)."""
    return Outflow.member_id == member_id


def org_scope(principal: Principal, org: Organization) -> Scope:
    """The scope of one organisation's subtree (for the ledger's ``org_id`` filter)."""
    return Scope.subtree(principal, org.path)


# ---------------------------------------------------------------------------
# Organisations around an outflow
# ---------------------------------------------------------------------------


async def org_chain(session: AsyncSession, org_id: int) -> list[Organization]:
    """The organisation and its ancestors, root first."""
    org = await session.get(Organization, org_id)
    if org is None:
        return []
    ids = org.ancestor_ids
    rows = (await session.execute(select(Organization).where(Organization.id.in_(ids)))).scalars()
    by_id = {o.id: o for o in rows}
    return [by_id[i] for i in ids if i in by_id]


async def get_org(session: AsyncSession, org_id: int) -> Organization | None:
    return await session.get(Organization, org_id)


async def admin_account_ids(session: AsyncSession, org_id: int) -> list[int]:
    """Accounts of the admins holding a role at exactly this organisation."""
    rows = await session.execute(
        select(Account.id)
        .join(RoleAssignment, RoleAssignment.member_id == Account.member_id)
        .where(RoleAssignment.org_id == org_id, Account.disabled_at.is_(None))
        .distinct()
        .order_by(Account.id)
    )
    return [int(r) for (r,) in rows]


async def openid_of(session: AsyncSession, account_id: int) -> str | None:
    return (
        await session.execute(select(Account.openid).where(Account.id == account_id))
    ).scalar_one_or_none()


# ---------------------------------------------------------------------------
# Outflows
# ---------------------------------------------------------------------------


async def member_home_org_id(session: AsyncSession, member_id: int) -> int | None:
    """His home organisation, for a write that starts an outflow from it: the member row is
    share-locked, so a relation transfer completing at the same time (which locks it for
    update, then closes his open outflow) either waits for this outflow and closes it too,
    or has already moved him and this outflow starts from the new home."""
    return (
        await session.execute(
            select(Member.home_org_id).where(Member.id == member_id).with_for_update(read=True)
        )
    ).scalar_one_or_none()


async def open_outflow_id(session: AsyncSession, member_id: int) -> int | None:
    return (
        await session.execute(
            select(Outflow.id).where(
                Outflow.member_id == member_id, Outflow.status.in_(("pending", "active"))
            )
        )
    ).scalar_one_or_none()


async def find_outflow(
    session: AsyncSession, outflow_id: int, visible: ColumnElement[bool], *, lock: bool = False
) -> Outflow | None:
    stmt = select(Outflow).where(Outflow.id == outflow_id, visible)
    if lock:
        stmt = stmt.with_for_update(of=Outflow)
    return (await session.execute(stmt)).scalar_one_or_none()


async def next_certificate_seq(session: AsyncSession, region_code: str, year: int) -> int:
    stmt = (
        insert(CertificateCounter)
        .values(region_code=region_code, year=year, last_seq=1)
        .on_conflict_do_update(
            index_elements=[CertificateCounter.region_code, CertificateCounter.year],
            set_={"last_seq": CertificateCounter.last_seq + 1},
        )
        .returning(CertificateCounter.last_seq)
    )
    return int((await session.execute(stmt)).scalar_one())


def add_event(
    session: AsyncSession,
    outflow: Outflow,
    *,
    action: str,
    from_state: str,
    to_state: str,
    actor_account_id: int | None,
    now: datetime,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        OutflowEvent(
            outflow_id=outflow.id,
            action=action,
            from_state=from_state,
            to_state=to_state,
            actor_account_id=actor_account_id,
            note=note,
            data=data or {},
            created_at=now,
        )
    )


async def events_of(session: AsyncSession, outflow_id: int) -> list[OutflowEvent]:
    rows = await session.execute(
        select(OutflowEvent).where(OutflowEvent.outflow_id == outflow_id).order_by(OutflowEvent.id)
    )
    return list(rows.scalars())


async def events_of_many(
    session: AsyncSession, outflow_ids: list[int], actions: tuple[str, ...]
) -> list[OutflowEvent]:
    """The timeline entries of several outflows with one of ``actions``, oldest first."""
    if not outflow_ids:
        return []
    rows = await session.execute(
        select(OutflowEvent)
        .where(OutflowEvent.outflow_id.in_(outflow_ids), OutflowEvent.action.in_(actions))
        .order_by(OutflowEvent.id)
    )
    return list(rows.scalars())


async def reports_of(
    session: AsyncSession, outflow_id: int, *, limit: int, before_id: int | None = None
) -> list[OutflowReport]:
    stmt = select(OutflowReport).where(OutflowReport.outflow_id == outflow_id)
    if before_id is not None:
        stmt = stmt.where(OutflowReport.id < before_id)
    rows = await session.execute(stmt.order_by(OutflowReport.id.desc()).limit(limit))
    return list(rows.scalars())


# ---------------------------------------------------------------------------
# Dual management
# ---------------------------------------------------------------------------


def open_grant(session: AsyncSession, outflow: Outflow, org_id: int, now: datetime) -> None:
    session.add(
        DualManagementGrant(
            member_id=outflow.member_id, org_id=org_id, outflow_id=outflow.id, started_at=now
        )
    )


async def end_grants(session: AsyncSession, outflow_id: int, now: datetime) -> int:
    result = await session.execute(
        update(DualManagementGrant)
        .where(DualManagementGrant.outflow_id == outflow_id, DualManagementGrant.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# ---------------------------------------------------------------------------
# Consents
# ---------------------------------------------------------------------------


def consent_granted(member_id_col: Any, kind: str = "location") -> ColumnElement[bool]:
    """The member's current consent: the latest record of that kind, false if none."""
    latest = (
        select(MemberConsent.granted)
        .where(MemberConsent.member_id == member_id_col, MemberConsent.kind == kind)
        .order_by(MemberConsent.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(latest, literal(False))


def consenting_member_ids(kind: str = "location") -> Select[int]:
    """Members whose latest record of that kind grants consent (``consent_granted`` as a
    set: one pass over the records instead of a lookup per outflow)."""
    latest = (
        select(MemberConsent.member_id, MemberConsent.granted)
        .where(MemberConsent.kind == kind)
        .distinct(MemberConsent.member_id)
        .order_by(MemberConsent.member_id, MemberConsent.id.desc())
        .subquery()
    )
    return select(latest.c.member_id).where(latest.c.granted)


async def has_consent(session: AsyncSession, member_id: int, kind: str = "location") -> bool:
    return bool((await session.execute(select(consent_granted(member_id, kind)))).scalar_one())


async def list_consents(
    session: AsyncSession, member_id: int, *, limit: int, before_id: int | None
) -> list[MemberConsent]:
    stmt = select(MemberConsent).where(MemberConsent.member_id == member_id)
    if before_id is not None:
        stmt = stmt.where(MemberConsent.id < before_id)
    rows = await session.execute(stmt.order_by(MemberConsent.id.desc()).limit(limit))
    return list(rows.scalars())


# ---------------------------------------------------------------------------
# Ledger
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerFilter:
    status: str | None = None
    flag: str | None = None
    destination_region_code: str | None = None
    reason: str | None = None
    checkin_status: str | None = None
    departed_from: date | None = None
    departed_to: date | None = None
    returned_from: date | None = None
    returned_to: date | None = None
    q: str | None = None
    consent: bool | None = None


@dataclass(frozen=True)
class LedgerRow:
    outflow: Outflow
    member_name: str
    member_gender: str
    home_org_name: str
    checkin_org_name: str | None
    location_consent: bool


def region_prefix(code: str) -> str:
    """``440000`` -> ``44``, ``440300`` -> ``4403``, ``440305`` -> ``440305``."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def ledger_conditions(f: LedgerFilter, today: date) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.status:
        conditions.append(Outflow.status == f.status)
    if f.flag:
        column = getattr(Outflow, FLAG_COLUMNS[f.flag])
        conditions.append(column < today)
    if f.destination_region_code:
        prefix = region_prefix(f.destination_region_code)
        conditions.append(Outflow.destination_region_code.startswith(prefix, autoescape=True))
    if f.reason:
        conditions.append(Outflow.reason == f.reason)
    if f.checkin_status:
        conditions.append(Outflow.checkin_status == f.checkin_status)
    if f.departed_from:
        conditions.append(Outflow.departed_on >= f.departed_from)
    if f.departed_to:
        conditions.append(Outflow.departed_on <= f.departed_to)
    if f.returned_from:
        conditions.append(Outflow.returned_on >= f.returned_from)
    if f.returned_to:
        conditions.append(Outflow.returned_on <= f.returned_to)
    if f.q:
        # A name (in the roster's normal form) or an activity certificate number.
        conditions.append(
            or_(
                Member.name.contains(normalize_person_name(f.q), autoescape=True),
                Outflow.certificate_no.contains(f.q.strip().upper(), autoescape=True),
            )
        )
    if f.consent is not None:
        granted = consent_granted(Outflow.member_id)
        conditions.append(granted if f.consent else ~granted)
    return conditions


def ledger_select(
    visible: ColumnElement[bool], f: LedgerFilter, today: date
) -> Select[Outflow, str, str, str, str | None, bool]:
    """The ledger rows, newest registration first (the export uses the same query)."""
    return (
        select(
            Outflow,
            Member.name,
            Member.gender,
            HomeOrg.name,
            CheckinOrg.name,
            consent_granted(Outflow.member_id),
        )
        .join(Member, Member.id == Outflow.member_id)
        .join(HomeOrg, HomeOrg.id == Outflow.home_org_id)
        .outerjoin(CheckinOrg, CheckinOrg.id == Outflow.checkin_org_id)
        .where(visible, *ledger_conditions(f, today))
        .order_by(Outflow.id.desc())
    )


def _row(values: Any) -> LedgerRow:
    outflow, name, gender, home_name, checkin_name, consent = values
    return LedgerRow(outflow, name, gender, home_name, checkin_name, bool(consent))


async def ledger_page(
    session: AsyncSession,
    visible: ColumnElement[bool],
    f: LedgerFilter,
    today: date,
    *,
    limit: int,
    before_id: int | None,
) -> list[LedgerRow]:
    stmt = ledger_select(visible, f, today)
    if before_id is not None:
        stmt = stmt.where(Outflow.id < before_id)
    rows = await session.execute(stmt.limit(limit))
    return [_row(r) for r in rows]


async def ledger_row(session: AsyncSession, outflow_id: int) -> LedgerRow | None:
    stmt = (
        ledger_select(true(), LedgerFilter(), date.min)
        .where(Outflow.id == outflow_id)
        .execution_options(populate_existing=True)
    )
    values = (await session.execute(stmt)).first()
    return _row(values) if values is not None else None


async def stream_ledger(
    session: AsyncSession,
    visible: ColumnElement[bool],
    f: LedgerFilter,
    today: date,
    *,
    batch: int = 2000,
) -> AsyncIterator[LedgerRow]:
    """All ledger rows through a server-side cursor, ``batch`` at a time."""
    stmt = ledger_select(visible, f, today).execution_options(yield_per=batch)
    result = await session.stream(stmt)
    async for values in result:
        yield _row(values)


async def ledger_stats(
    session: AsyncSession, visible: ColumnElement[bool], f: LedgerFilter, today: date
) -> dict[str, Any]:
    """The ledger's counts in one pass over the visible outflows: one hash aggregate by
    (status, reason, destination), folded here into the totals and the counts by status,
    reason and destination (one grouping is cheaper than grouping sets' three hash
    tables). ``members`` is joined only for the name search."""
    keys = (Outflow.status, Outflow.reason, Outflow.destination_region_code)
    flag_counts = [
        func.count().filter(getattr(Outflow, column) < today) for column in FLAG_COLUMNS.values()
    ]
    missing = func.count().filter(
        and_(Outflow.status == "active", Outflow.member_id.not_in(consenting_member_ids()))
    )
    stmt = select(*keys, func.count(), *flag_counts, missing).where(
        visible, *ledger_conditions(f, today)
    )
    if f.q:
        stmt = stmt.join(Member, Member.id == Outflow.member_id)
    stmt = stmt.group_by(*keys)
    total = missing_count = 0
    by_flag = dict.fromkeys(FLAG_COLUMNS, 0)
    by_status: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    by_region: Counter[str] = Counter()
    for status, reason, region, n, *counts in await session.execute(stmt):
        total += n
        by_status[status] += n
        by_reason[reason] += n
        by_region[region] += n
        for flag, count in zip(FLAG_COLUMNS, counts[:-1], strict=True):
            by_flag[flag] += count
        missing_count += counts[-1]
    return {
        "total": total,
        "by_flag": by_flag,
        "location_consent_missing": missing_count,
        "by_status": dict(by_status),
        "by_reason": dict(by_reason),
        "by_region": list(by_region.items()),
    }


# ---------------------------------------------------------------------------
# Scheduled jobs
# ---------------------------------------------------------------------------


async def claim_lost_contact(
    session: AsyncSession, today: date, now: datetime
) -> list[tuple[int, int, int, date]]:
    """Mark active outflows past ``lost_contact_on`` as escalated, once.

    ``UPDATE ... WHERE lost_contact_escalated_at IS NULL RETURNING``: two instances
    running at once block on the row lock and the second re-checks the condition, so
    each outflow is claimed by exactly one of them.
    """
    rows = await session.execute(
        update(Outflow)
        .where(
            Outflow.status == "active",
            Outflow.lost_contact_on < today,
            Outflow.lost_contact_escalated_at.is_(None),
        )
        .values(lost_contact_escalated_at=now)
        .returning(Outflow.id, Outflow.member_id, Outflow.home_org_id, Outflow.lost_contact_on)
    )
    return [(int(a), int(b), int(c), d) for a, b, c, d in rows if d is not None]


async def claim_report_reminders(
    session: AsyncSession, today: date, until: date
) -> list[tuple[int, int, date]]:
    """Active outflows whose report falls due in ``[today, until]``, once per due date."""
    rows = await session.execute(
        update(Outflow)
        .where(
            Outflow.status == "active",
            Outflow.report_due_on >= today,
            Outflow.report_due_on <= until,
            or_(
                Outflow.report_reminded_for.is_(None),
                Outflow.report_reminded_for != Outflow.report_due_on,
            ),
        )
        .values(report_reminded_for=Outflow.report_due_on)
        .returning(Outflow.id, Outflow.member_id, Outflow.report_due_on)
    )
    return [(int(a), int(b), d) for a, b, d in rows if d is not None]


async def newly_flagged(session: AsyncSession, today: date) -> list[tuple[int, str, int, str]]:
    """``(home org id, flag, member id, member name)`` of active outflows whose
    ``checkin_overdue``, ``report_overdue`` or ``lost_contact`` flag is raised from today
    (its due day was yesterday), by organisation and name."""
    yesterday = today - timedelta(days=1)
    rows: list[tuple[int, str, int, str]] = []
    for flag in ("checkin_overdue", "report_overdue", "lost_contact"):
        column = getattr(Outflow, FLAG_COLUMNS[flag])
        result = await session.execute(
            select(Outflow.home_org_id, Outflow.member_id, Member.name)
            .join(Member, Member.id == Outflow.member_id)
            .where(Outflow.status == "active", column == yesterday)
        )
        rows.extend((int(org), flag, int(mid), str(name)) for org, mid, name in result)
    rows.sort(key=lambda r: (r[0], r[3], r[2]))
    return rows


async def member_names(session: AsyncSession, member_ids: list[int]) -> dict[int, str]:
    if not member_ids:
        return {}
    rows = await session.execute(select(Member.id, Member.name).where(Member.id.in_(member_ids)))
    return {int(i): str(n) for i, n in rows}


async def monthly_flows(
    session: AsyncSession, visible: ColumnElement[bool], first_month: date
) -> dict[str, tuple[int, int]]:
    """Outflows by month of departure and returns by month of return, from ``first_month``
    on: ``{"2026-07": (outflows, returns)}`` (the console's chart)."""
    departed = func.to_char(Outflow.departed_on, "YYYY-MM")
    returned = func.to_char(Outflow.returned_on, "YYYY-MM")
    base = select().select_from(Outflow).join(Member, Member.id == Outflow.member_id)
    outs = await session.execute(
        base.add_columns(departed, func.count())
        .where(
            visible,
            Outflow.departed_on >= first_month,
            Outflow.status.in_(("active", "returned")),
        )
        .group_by(departed)
    )
    backs = await session.execute(
        base.add_columns(returned, func.count())
        .where(visible, Outflow.returned_on >= first_month)
        .group_by(returned)
    )
    months: dict[str, list[int]] = {}
    for month, n in outs:
        months.setdefault(str(month), [0, 0])[0] = int(n)
    for month, n in backs:
        months.setdefault(str(month), [0, 0])[1] = int(n)
    return {month: (pair[0], pair[1]) for month, pair in months.items()}
