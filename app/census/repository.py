"""All SQL of the census. Reads run the statements of :mod:`app.census.queries` with the
caller's scope (:mod:`app.organization.scope`) and the request's filters added."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    String,
    and_,
    any_,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.census import queries as q
from app.census.models import (
    CensusEntity,
    CensusInstructor,
    CensusRound,
    CensusSurvey,
    CensusSurveyMember,
)
from app.core.db import driver_connection
from app.members.models import Member
from app.organization.models import Organization
from app.organization.scope import Scope

SURVEYED = q.S.alias("surveyed")


# ------------------------------------------------------------------ visibility
def entity_visible(scope: Scope) -> ColumnElement[bool]:
    """An entity is visible from its responsible organisation's subtree and from its
    trade committee's (行业党委); a member sees the entities he instructs."""
    if scope.everything:
        return true()
    if scope.roots:
        return or_(scope.org_path_visible(q.RO.c.path), scope.org_path_visible(q.TO.c.path))
    return instructed_by(scope.principal.member_id)


def instructed_by(member_id: int | None) -> ColumnElement[bool]:
    if member_id is None:
        return q.E.c.id.is_(None)
    return exists().where(
        q.I.c.entity_id == q.E.c.id, q.I.c.member_id == member_id, q.I.c.ended_at.is_(None)
    )


def under_org(path: str) -> ColumnElement[bool]:
    """Entities of an organisation's subtree (as responsible or trade organisation)."""
    return or_(
        q.RO.c.path.startswith(path, autoescape=True),
        q.TO.c.path.startswith(path, autoescape=True),
    )


def round_visible(scope: Scope) -> ColumnElement[bool]:
    """Rounds of organisations in the caller's subtrees (for ``find_round``/``list_rounds``)."""
    return scope.org_path_visible(Organization.path)


# --------------------------------------------------------------------- ledger
@dataclass(frozen=True)
class LedgerFilter:
    coverage: str | None = None
    recommendation: str | None = None
    kind: str | None = None
    industry_section: str | None = None
    industry_division: str | None = None
    tag: str | None = None
    region_prefix: str | None = None
    status: str | None = "active"
    round_id: int | None = None
    surveyed: bool | None = None
    q: str | None = None


def ledger_conditions(f: LedgerFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.coverage is not None:
        conditions.append(q.PAGE.coverage_is[f.coverage])
    if f.recommendation is not None:
        conditions.append(q.PAGE.recommendation_is[f.recommendation])
    if f.kind is not None:
        conditions.append(q.E.c.kind == f.kind)
    if f.industry_section is not None:
        conditions.append(q.E.c.industry_section == f.industry_section)
    if f.industry_division is not None:
        conditions.append(q.E.c.industry_division == f.industry_division)
    if f.tag is not None:
        conditions.append(q.E.c.tags.contains([f.tag]))
    if f.region_prefix is not None:
        conditions.append(q.E.c.region_code.startswith(f.region_prefix, autoescape=True))
    if f.status is not None:
        conditions.append(q.E.c.status == f.status)
    if f.round_id is not None and f.surveyed is not None:
        found = exists().where(SURVEYED.c.round_id == f.round_id, SURVEYED.c.entity_id == q.E.c.id)
        conditions.append(found if f.surveyed else ~found)
    if f.q is not None:
        conditions.append(
            or_(q.E.c.name.contains(f.q, autoescape=True), q.E.c.credit_code == f.q.upper())
        )
    return conditions


async def ledger_page(
    session: AsyncSession,
    where: ColumnElement[bool],
    f: LedgerFilter,
    *,
    limit: int,
    before_id: int | None,
) -> Sequence[RowMapping]:
    stmt = q.LEDGER.where(where, *ledger_conditions(f)).order_by(q.E.c.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(q.E.c.id < before_id)
    return (await session.execute(stmt)).mappings().all()


EXPORT_TIMEOUT_MS = 600_000


async def stream_export(
    session: AsyncSession, where: ColumnElement[bool], f: LedgerFilter, *, batch: int = 2000
) -> AsyncIterator[RowMapping]:
    stmt = (
        q.EXPORT.where(where, *ledger_conditions(f))
        .order_by(q.RO.c.path, q.E.c.id)
        .execution_options(yield_per=batch)
    )
    # A county's ledger is one long statement: the request-wide statement timeout (meant
    # for interactive reads) would cut a 200,000-row export off halfway.
    await session.execute(text(f"SET LOCAL statement_timeout = {EXPORT_TIMEOUT_MS}"))
    result = await session.stream(stmt)
    # A partition at a time: one switch into the driver per ``batch`` rows, not per row.
    async for partition in result.mappings().partitions(batch):
        for row in partition:
            yield row


async def entity_row(
    session: AsyncSession, entity_id: int, where: ColumnElement[bool]
) -> RowMapping | None:
    stmt = q.LEDGER.where(q.E.c.id == entity_id, where)
    return (await session.execute(stmt)).mappings().first()


async def entity_file(
    session: AsyncSession, entity_id: int, where: ColumnElement[bool]
) -> RowMapping | None:
    stmt = q.ENTITY_FILE.where(q.E.c.id == entity_id, where)
    return (await session.execute(stmt)).mappings().first()


async def visible_entity_ids(
    session: AsyncSession, ids: Sequence[int], where: ColumnElement[bool]
) -> list[int]:
    stmt = (
        select(q.E.c.id)
        .select_from(q.LEDGER_FROM)
        .where(q.E.c.id.in_(ids), where)
        .order_by(q.E.c.id)
    )
    return list((await session.execute(stmt)).scalars())


async def lock_entity(
    session: AsyncSession, entity_id: int, where: ColumnElement[bool]
) -> CensusEntity | None:
    """The entity for a write, locked, if ``where`` lets the caller see it."""
    visible = select(q.E.c.id).select_from(q.LEDGER_FROM).where(q.E.c.id == entity_id, where)
    stmt = (
        select(CensusEntity)
        .where(CensusEntity.id.in_(visible))
        .with_for_update(of=CensusEntity)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def credit_code_exists(session: AsyncSession, credit_code: str) -> bool:
    stmt = select(exists().where(CensusEntity.credit_code == credit_code))
    return bool((await session.execute(stmt)).scalar())


# ------------------------------------------------------------------ statistics
async def stats(session: AsyncSession, where: ColumnElement[bool]) -> Sequence[RowMapping]:
    stmt = q.stats_statement(where)
    return (await session.execute(stmt)).mappings().all()


async def round_series(
    session: AsyncSession, where: ColumnElement[bool], census_round: CensusRound
) -> Sequence[RowMapping]:
    """Coverage counts of this round's surveys and of the round before it (same org)."""
    last_two = (
        select(CensusRound.id)
        .where(CensusRound.org_id == census_round.org_id, CensusRound.period <= census_round.period)
        .order_by(CensusRound.period.desc())
        .limit(2)
    )
    stmt = q.round_series_statement(last_two, where)
    return (await session.execute(stmt)).mappings().all()


# ---------------------------------------------------------------------- rounds
async def find_round(
    session: AsyncSession, round_id: int, where: ColumnElement[bool], *, for_update: bool = False
) -> tuple[CensusRound, Organization] | None:
    stmt = (
        select(CensusRound, Organization)
        .join(Organization, Organization.id == CensusRound.org_id)
        .where(CensusRound.id == round_id, where)
        .execution_options(populate_existing=True)
    )
    if for_update:
        stmt = stmt.with_for_update(of=CensusRound)
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row is not None else None


async def round_exists(session: AsyncSession, org_id: int, period: str) -> bool:
    stmt = select(exists().where(CensusRound.org_id == org_id, CensusRound.period == period))
    return bool((await session.execute(stmt)).scalar())


async def round_progress(
    session: AsyncSession, round_id: int, where: ColumnElement[bool]
) -> Sequence[RowMapping]:
    stmt = q.ROUND_PROGRESS.where(where)
    return (await session.execute(stmt, {"round_id": round_id})).mappings().all()


async def list_rounds(
    session: AsyncSession, where: ColumnElement[bool], *, limit: int, before_id: int | None
) -> Sequence[tuple[CensusRound, Organization]]:
    stmt = (
        select(CensusRound, Organization)
        .join(Organization, Organization.id == CensusRound.org_id)
        .where(where)
        .order_by(CensusRound.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        stmt = stmt.where(CensusRound.id < before_id)
    return [(r, o) for r, o in await session.execute(stmt)]


# --------------------------------------------------------------------- surveys
async def find_survey(session: AsyncSession, round_id: int, entity_id: int) -> CensusSurvey | None:
    stmt = (
        select(CensusSurvey)
        .where(CensusSurvey.round_id == round_id, CensusSurvey.entity_id == entity_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_survey(session: AsyncSession, survey_id: int) -> CensusSurvey | None:
    return await session.get(CensusSurvey, survey_id)


async def period_of_survey(session: AsyncSession, survey_id: int) -> str | None:
    stmt = (
        select(CensusRound.period)
        .join(CensusSurvey, CensusSurvey.round_id == CensusRound.id)
        .where(CensusSurvey.id == survey_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def replace_survey_members(
    session: AsyncSession, survey_id: int, rows: list[dict[str, Any]]
) -> None:
    await session.execute(
        delete(CensusSurveyMember).where(CensusSurveyMember.survey_id == survey_id)
    )
    if rows:
        await session.execute(
            insert(CensusSurveyMember), [{"survey_id": survey_id, **r} for r in rows]
        )


async def copy_survey_members(session: AsyncSession, from_id: int, to_id: int) -> None:
    cols = ("name", "id_number_enc", "id_number_idx", "id_number_masked")
    sm = CensusSurveyMember.__table__
    await session.execute(
        insert(CensusSurveyMember).from_select(
            ["survey_id", *cols],
            select(literal(to_id), *(sm.c[c] for c in cols)).where(sm.c.survey_id == from_id),
        )
    )


async def stamp_coverage(session: AsyncSession, survey_id: int, entity_id: int) -> None:
    """Record on the survey the coverage the entity has now."""
    await session.execute(
        update(CensusSurvey)
        .where(CensusSurvey.id == survey_id)
        .values(coverage=q.COVERAGE_OF_ENTITY.where(q.E.c.id == entity_id))
    )


async def stamp_round_coverage(session: AsyncSession, round_id: int) -> None:
    """Record on every survey of a round the coverage its entity has now (demo data)."""
    await session.execute(
        update(CensusSurvey)
        .where(CensusSurvey.round_id == round_id)
        .values(coverage=q.COVERAGE_OF_ENTITY.where(q.E.c.id == CensusSurvey.entity_id))
    )


async def found_members(
    session: AsyncSession,
    where: ColumnElement[bool],
    *,
    match: str | None,
    round_id: int | None,
    limit: int,
    before_id: int | None,
) -> Sequence[RowMapping]:
    stmt = q.FOUND_MEMBERS.where(where).order_by(q.SM.c.id.desc()).limit(limit)
    if round_id is not None:
        stmt = stmt.where(q.S.c.round_id == round_id)
    if before_id is not None:
        stmt = stmt.where(q.SM.c.id < before_id)
    if match is not None:
        stmt = stmt.where(q.FOUND_MEMBERS.selected_columns.match == match)
    return (await session.execute(stmt)).mappings().all()


# ----------------------------------------------------------------- instructors
async def open_instructor(
    session: AsyncSession, entity_id: int, member_id: int
) -> CensusInstructor | None:
    stmt = (
        select(CensusInstructor)
        .where(
            CensusInstructor.entity_id == entity_id,
            CensusInstructor.member_id == member_id,
            CensusInstructor.ended_at.is_(None),
        )
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def assign_instructors(
    session: AsyncSession,
    pairs: Sequence[tuple[int, int]],
    *,
    group_name: str | None,
    account_id: int,
) -> int:
    """Open assignments for ``(entity_id, member_id)`` pairs not assigned yet."""
    if not pairs:
        return 0
    stmt = (
        pg_insert(CensusInstructor)
        .values(
            [
                {
                    "entity_id": e,
                    "member_id": m,
                    "group_name": group_name,
                    "assigned_by_account_id": account_id,
                }
                for e, m in pairs
            ]
        )
        .on_conflict_do_nothing(
            index_elements=["entity_id", "member_id"], index_where=q.I.c.ended_at.is_(None)
        )
        .returning(CensusInstructor.id)
    )
    return len((await session.execute(stmt)).all())


async def visible_member_ids(session: AsyncSession, scope: Scope, ids: Sequence[int]) -> set[int]:
    stmt = select(Member.id).where(
        Member.id.in_(ids), scope.member_visible(q.M.c.id, q.M.c.home_org_id)
    )
    return set((await session.execute(stmt)).scalars())


# ---------------------------------------------------------------------- import
async def by_credit_codes(
    session: AsyncSession, scope: Scope, codes: Sequence[str]
) -> dict[str, tuple[CensusEntity, bool]]:
    """Existing entities by credit code, locked, and whether the caller may change them."""
    if not codes:
        return {}
    stmt = (
        select(CensusEntity, scope.org_path_visible(Organization.path))
        .join(Organization, Organization.id == CensusEntity.responsible_org_id)
        .where(CensusEntity.credit_code == any_(literal(list(codes), ARRAY(String))))
        .order_by(CensusEntity.id)
        .with_for_update(of=CensusEntity)
        .execution_options(populate_existing=True)
    )
    return {e.credit_code: (e, bool(visible)) for e, visible in await session.execute(stmt)}


INSERTED_COLUMNS: tuple[str, ...] = (
    "credit_code",
    "name",
    "kind",
    "industry_section",
    "industry_division",
    "tags",
    "region_code",
    "address",
    "staff_count",
    "status",
    "closed_on",
    "responsible_org_id",
    "trade_org_id",
    "person_in_charge_enc",
    "person_in_charge_masked",
    "contact_phone_enc",
    "contact_phone_idx",
    "contact_phone_masked",
)
UPDATED_COLUMNS: tuple[str, ...] = (*INSERTED_COLUMNS[1:], "version")
_STAGE = "census_import_stage"
# Statements of constant identifiers only, built once.
_CREATE_STAGE: dict[tuple[str, ...], str] = {
    columns: f"CREATE TEMP TABLE {_STAGE} ON COMMIT DROP AS "  # noqa: S608 - constants
    f"SELECT id, {', '.join(columns)} FROM census_entities WITH NO DATA"
    for columns in (INSERTED_COLUMNS, UPDATED_COLUMNS)
}
INSERT_FROM_STAGE = text(
    f"INSERT INTO census_entities ({', '.join(INSERTED_COLUMNS)}) "  # noqa: S608 - constants
    f"SELECT {', '.join(INSERTED_COLUMNS)} FROM {_STAGE}"
)
UPDATE_FROM_STAGE = text(
    "UPDATE census_entities e SET "  # noqa: S608 - constants
    + ", ".join(f"{c} = s.{c}" for c in UPDATED_COLUMNS)
    + f" FROM {_STAGE} s WHERE e.id = s.id"
)


async def _stage(
    session: AsyncSession, columns: tuple[str, ...], rows: list[dict[str, Any]]
) -> None:
    """COPY ``rows`` into a temporary table shaped like census_entities (dropped at commit)."""
    driver = await driver_connection(session)
    await driver.execute(f"DROP TABLE IF EXISTS {_STAGE}")
    await driver.execute(_CREATE_STAGE[columns])
    await driver.copy_records_to_table(
        _STAGE,
        records=[tuple(r.get(c) for c in ("id", *columns)) for r in rows],
        columns=["id", *columns],
    )


async def bulk_insert(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """COPY into a staging table, then one INSERT ... SELECT (one tally update)."""
    if rows:
        await _stage(session, INSERTED_COLUMNS, rows)
        await session.execute(INSERT_FROM_STAGE)
    return len(rows)


async def bulk_update(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """COPY into a staging table, then one UPDATE ... FROM (one tally update)."""
    if rows:
        await _stage(session, UPDATED_COLUMNS, rows)
        await session.execute(UPDATE_FROM_STAGE)
    return len(rows)


def and_all(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(true(), *conditions)
