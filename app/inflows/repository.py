"""All queries of the inflow domain.

Reads are one Core statement built once here (:data:`LEDGER`), narrowed per request by
the caller's scope (:mod:`app.organization.scope`) and the filters; no ORM instances are
loaded for a read. Writes lock the row (``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    Select,
    and_,
    case,
    func,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.census.models import CensusEntity, CensusSurvey, CensusSurveyMember
from app.identity.validators import normalize_person_name
from app.inflows.models import OPEN_STATUSES, Inflow
from app.inflows.rules import overdue_cutoff
from app.members.models import Member
from app.organization.models import Organization
from app.organization.scope import Scope

I = Inflow.__table__  # noqa: E741 - the ledger's one table
O = Organization.__table__  # noqa: E741
E = CensusEntity.__table__
S = CensusSurvey.__table__
SM = CensusSurveyMember.__table__
M = Member.__table__
HOME = Organization.__table__.alias("home")


@dataclass(frozen=True)
class LedgerFilter:
    status: str | None = None
    source: str | None = None
    flag: str | None = None
    q: str | None = None


# The ledger row: the inflow, its organisation's and entity's names. Built once.
LEDGER: Final = (
    select(
        I.c.id,
        I.c.org_id,
        O.c.name.label("org_name"),
        I.c.source,
        I.c.status,
        I.c.name,
        I.c.id_number_masked,
        I.c.phone_masked,
        I.c.home_org_name,
        I.c.home_region_code,
        I.c.employer,
        I.c.arrived_on,
        I.c.entity_id,
        E.c.name.label("entity_name"),
        I.c.matched_member_id,
        I.c.outflow_id,
        I.c.decided_at,
        I.c.decision_note,
        I.c.version,
        I.c.created_at,
        I.c.account_id,
    )
    .select_from(I.join(O, O.c.id == I.c.org_id).outerjoin(E, E.c.id == I.c.entity_id))
    .order_by(I.c.id.desc())
)


def admin_visible(scope: Scope) -> ColumnElement[bool]:
    """Inflows an admin sees: those declared at an organisation of his subtrees."""
    return scope.org_visible(I.c.org_id)


def caller_visible(scope: Scope) -> ColumnElement[bool]:
    """The caller's own declarations, plus what his admin scope covers."""
    own = I.c.account_id == scope.principal.account_id
    return own if scope.is_empty else or_(own, admin_visible(scope))


def flag_condition(flag: str, today: date) -> ColumnElement[bool]:
    """The SQL form of :func:`app.inflows.rules.flags_of`."""
    if flag == "transfer_suggested":
        return and_(I.c.status == "verified", I.c.matched_member_id.is_(None))
    return and_(I.c.status.in_(("candidate", "pending")), I.c.created_at < overdue_cutoff(today))


def conditions(f: LedgerFilter, today: date) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if f.status:
        found.append(I.c.status == f.status)
    if f.source:
        found.append(I.c.source == f.source)
    if f.flag:
        found.append(flag_condition(f.flag, today))
    if f.q:
        term = normalize_person_name(f.q)
        found.append(
            or_(
                I.c.name.contains(term, autoescape=True),
                I.c.employer.contains(f.q.strip(), autoescape=True),
                I.c.home_org_name.contains(f.q.strip(), autoescape=True),
            )
        )
    return found


def ledger_select(visible: ColumnElement[bool], f: LedgerFilter, today: date) -> Select[Any]:
    return LEDGER.where(visible, *conditions(f, today))


async def ledger_page(
    session: AsyncSession,
    visible: ColumnElement[bool],
    f: LedgerFilter,
    today: date,
    *,
    limit: int,
    before_id: int | None,
) -> Sequence[RowMapping]:
    stmt: Select[Any] = ledger_select(visible, f, today)
    if before_id is not None:
        stmt = stmt.where(I.c.id < before_id)
    rows: Sequence[RowMapping] = (await session.execute(stmt.limit(limit))).mappings().all()
    return rows


async def ledger_row(
    session: AsyncSession, inflow_id: int, visible: ColumnElement[bool] | None = None
) -> RowMapping | None:
    stmt = LEDGER.where(I.c.id == inflow_id, visible if visible is not None else true())
    return (await session.execute(stmt)).mappings().first()


async def stream_ledger(
    session: AsyncSession,
    visible: ColumnElement[bool],
    f: LedgerFilter,
    today: date,
    *,
    batch: int = 2000,
) -> AsyncIterator[RowMapping]:
    """All ledger rows (with the ciphertexts, for a full export) through a server-side
    cursor."""
    stmt = (
        ledger_select(visible, f, today)
        .add_columns(I.c.id_number_enc, I.c.phone_enc)
        .execution_options(yield_per=batch)
    )
    result = await session.stream(stmt)
    async for row in result.mappings():
        yield row


async def ledger_stats(
    session: AsyncSession, visible: ColumnElement[bool], f: LedgerFilter, today: date
) -> dict[str, Any]:
    """Every figure in one scan: GROUPING SETS by status, by source, by home province,
    and the grand total with the flag and match counts."""

    def count_if(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    province = func.substr(I.c.home_region_code, 1, 2)
    stmt = (
        select(
            I.c.status,
            I.c.source,
            province.label("province"),
            func.grouping(I.c.status, I.c.source, province).label("level"),
            func.count(),
            count_if(flag_condition("transfer_suggested", today)),
            count_if(flag_condition("verify_overdue", today)),
            count_if(and_(I.c.status == "verified", I.c.matched_member_id.is_not(None))),
        )
        .where(visible, *conditions(f, today))
        .group_by(
            func.grouping_sets(tuple_(I.c.status), tuple_(I.c.source), tuple_(province), tuple_())
        )
    )
    raw: dict[str, Any] = {
        "total": 0,
        "by_flag": {"transfer_suggested": 0, "verify_overdue": 0},
        "matched": 0,
        "by_status": {},
        "by_source": {},
        "by_province": [],
    }
    # GROUPING(status, source, province): a bit per column left out of the set.
    for status, source, prov, level, n, transfer, overdue, matched in await session.execute(stmt):
        if level == 0b011:
            raw["by_status"][str(status)] = int(n)
        elif level == 0b101:
            raw["by_source"][str(source)] = int(n)
        elif level == 0b110:
            if prov is not None:
                raw["by_province"].append((str(prov), int(n)))
        elif level == 0b111:
            raw["total"] = int(n)
            raw["by_flag"] = {"transfer_suggested": int(transfer), "verify_overdue": int(overdue)}
            raw["matched"] = int(matched)
    raw["by_province"].sort(key=lambda item: (-item[1], item[0]))
    return raw


# ---------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------


async def lock(
    session: AsyncSession, inflow_id: int, visible: ColumnElement[bool]
) -> Inflow | None:
    stmt = (
        select(Inflow)
        .where(Inflow.id == inflow_id, visible)
        .with_for_update(of=Inflow)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def open_at(session: AsyncSession, org_id: int, id_number_idx: bytes) -> Inflow | None:
    """The open row (candidate, pending or verified) of this person at this organisation."""
    stmt = (
        select(Inflow)
        .where(
            Inflow.org_id == org_id,
            Inflow.id_number_idx == id_number_idx,
            Inflow.status.in_(OPEN_STATUSES),
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_candidates(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Census candidates, skipping people already open at the organisation."""
    if not rows:
        return 0
    stmt = (
        insert(Inflow)
        .values(rows)
        .on_conflict_do_nothing(
            index_elements=[Inflow.org_id, Inflow.id_number_idx],
            index_where=Inflow.status.in_(OPEN_STATUSES),
        )
        .returning(Inflow.id)
    )
    return len((await session.execute(stmt)).all())


async def listed_org(session: AsyncSession, org_id: int) -> Organization | None:
    """An organisation of the directory (the ones that take declarations)."""
    stmt = select(Organization).where(Organization.id == org_id, Organization.listed.is_(True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def named_by_census(session: AsyncSession, member_id: int, org_id: int) -> bool:
    """Did a census survey name this roster member as working at an entity ``org_id`` is
    responsible for? (He was prompted to show himself there.)"""
    stmt = (
        select(SM.c.id)
        .join(S, S.c.id == SM.c.survey_id)
        .join(E, E.c.id == S.c.entity_id)
        .join(M, M.c.id_number_idx == SM.c.id_number_idx)
        .where(M.c.id == member_id, E.c.responsible_org_id == org_id)
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


async def get_org(session: AsyncSession, org_id: int) -> Organization | None:
    return await session.get(Organization, org_id)


@dataclass(frozen=True)
class RosterMatch:
    member_id: int
    name: str
    home_org_id: int
    home_path: str


# A roster member by the blind index of his ID number, with his home organisation's path.
_ROSTER_MATCH: Final = select(M.c.id, M.c.name, M.c.home_org_id, HOME.c.path).join(
    HOME, HOME.c.id == M.c.home_org_id
)


async def roster_matches(
    session: AsyncSession, indexes: Sequence[bytes]
) -> dict[bytes, RosterMatch]:
    if not indexes:
        return {}
    rows = await session.execute(
        _ROSTER_MATCH.add_columns(M.c.id_number_idx).where(M.c.id_number_idx.in_(indexes))
    )
    return {
        bytes(r.id_number_idx): RosterMatch(int(r.id), r.name, int(r.home_org_id), r.path)
        for r in rows
    }
