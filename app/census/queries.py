"""The census reads, built once: coverage and recommendation as SQL expressions, the
ledger row, the entity file (一企一档) and the statistics.

Coverage of an entity (never stored):

* ``organization``: linked to its own organisation (``org_mode = 'own'``);
* ``joint``: on a joint organisation's covered list (``org_mode = 'joint'``);
* ``work``: a 党建工作指导员 is assigned (an open ``census_instructors`` row);
* ``none``: otherwise.

Recommendation (from the latest survey's member count; none before the first survey,
for closed entities and for those with their own organisation):

* 3 or more members → ``form_standalone`` (单独组建);
* 1–2 members, no organisation → ``join_joint`` (联合组建);
* no member, no organisation, no instructor → ``assign_instructor`` (选派指导员).

Scope and filters are added per request with ``.where()``; the columns, joins and
expressions below are built once at import.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from app.census.models import (
    CensusEntity,
    CensusInstructor,
    CensusRound,
    CensusRoundTally,
    CensusSurvey,
    CensusSurveyMember,
    CensusTally,
)
from app.members.models import Member
from app.organization.models import Organization

E = CensusEntity.__table__
S = CensusSurvey.__table__
R = CensusRound.__table__
I = CensusInstructor.__table__  # noqa: E741
SM = CensusSurveyMember.__table__
T = CensusTally.__table__
RT = CensusRoundTally.__table__
M = Member.__table__
RO = Organization.__table__.alias("responsible_org")
TO = Organization.__table__.alias("trade_org")
CO = Organization.__table__.alias("covering_org")
RORG = Organization.__table__.alias("round_org")
HOME = Organization.__table__.alias("home_org")


class Rules:
    """Coverage and recommendation of an entity as SQL, from one definition.

    ``coverage_is`` / ``recommendation_is`` are plain column predicates (so filters use
    the columns' statistics and indexes); the CASE expressions that name an entity's
    coverage and recommendation are built from the same predicates. The columns come
    from the entity row (pages) or from the per-county grouping of the statistics.
    """

    def __init__(
        self,
        org_mode: ColumnElement[str | None],
        member_count: ColumnElement[int | None],
        active: ColumnElement[bool],
        has_instructor: ColumnElement[bool],
    ) -> None:
        no_org = org_mode.is_(None)
        self.coverage_is: dict[str, ColumnElement[bool]] = {
            "organization": org_mode == "own",
            "joint": org_mode == "joint",
            "work": and_(no_org, has_instructor),
            "none": and_(no_org, ~has_instructor),
        }
        self.recommendation_is: dict[str, ColumnElement[bool]] = {
            "form_standalone": and_(active, or_(no_org, org_mode == "joint"), member_count >= 3),
            "join_joint": and_(active, no_org, member_count.between(1, 2)),
            "assign_instructor": and_(active, no_org, member_count == 0, ~has_instructor),
        }
        self.coverage: ColumnElement[str] = case(
            *((cond, literal_column(f"'{name}'")) for name, cond in self.coverage_is.items()),
        )
        self.recommendation: ColumnElement[str] = case(
            *((cond, literal_column(f"'{n}'")) for n, cond in self.recommendation_is.items()),
            else_=null(),
        )


# An entity's own row: ``instructor_count`` is kept by a trigger on census_instructors.
PAGE: Final = Rules(
    E.c.org_mode, E.c.member_count, E.c.status == "active", E.c.instructor_count > 0
)
COVERAGE: Final = PAGE.coverage
RECOMMENDATION: Final = PAGE.recommendation

# Entity -> its responsible and trade organisations (scope is judged on their paths),
# the covering organisation, the open instructors and the latest survey.
LEDGER_FROM: Final = E.join(RO, RO.c.id == E.c.responsible_org_id).outerjoin(
    TO, TO.c.id == E.c.trade_org_id
)
_LAST_SURVEY = S.alias("last_survey")

LEDGER_COLUMNS: Final = (
    E.c.id,
    E.c.credit_code,
    E.c.name,
    E.c.kind,
    E.c.status,
    E.c.closed_on,
    E.c.industry_section,
    E.c.industry_division,
    E.c.tags,
    E.c.region_code,
    E.c.address,
    E.c.lat,
    E.c.lon,
    E.c.staff_count,
    E.c.person_in_charge_masked,
    E.c.contact_phone_masked,
    E.c.responsible_org_id,
    RO.c.name.label("responsible_org_name"),
    E.c.trade_org_id,
    TO.c.name.label("trade_org_name"),
    E.c.org_id,
    select(CO.c.name).where(CO.c.id == E.c.org_id).scalar_subquery().label("org_name"),
    E.c.org_mode,
    E.c.member_count,
    select(_LAST_SURVEY.c.surveyed_on)
    .where(_LAST_SURVEY.c.id == E.c.last_survey_id)
    .scalar_subquery()
    .label("last_surveyed_on"),
    select(_LAST_SURVEY.c.round_id)
    .where(_LAST_SURVEY.c.id == E.c.last_survey_id)
    .scalar_subquery()
    .label("last_round_id"),
    E.c.instructor_count,
    COVERAGE.label("coverage"),
    RECOMMENDATION.label("recommendation"),
    E.c.version,
    E.c.created_at,
    E.c.updated_at,
)
LEDGER: Final[Select[tuple[object, ...]]] = select(*LEDGER_COLUMNS).select_from(LEDGER_FROM)

# The columns the xlsx export needs beside the ledger's: ciphertexts for a full export.
EXPORT: Final = select(
    *LEDGER_COLUMNS, E.c.person_in_charge_enc, E.c.contact_phone_enc
).select_from(LEDGER_FROM)


def _json_object(**columns: ColumnElement[Any]) -> ColumnElement[object]:
    args: list[object] = []
    for key, column in columns.items():
        args += [literal_column(f"'{key}'"), column]
    return func.json_build_object(*args)


def _json_list(item: ColumnElement[Any], order_by: ColumnElement[Any]) -> ColumnElement[Any]:
    """``json_agg`` of ``item`` in ``order_by`` order, ``[]`` when there is none."""
    return func.coalesce(func.json_agg(aggregate_order_by(item, order_by)), text("'[]'::json"))


_SURVEY_MEMBERS = (
    select(
        _json_list(
            _json_object(
                name=SM.c.name,
                id_number=SM.c.id_number_masked,
                matched_member_id=M.c.id,
                matched_org_id=M.c.home_org_id,
            ),
            SM.c.id,
        )
    )
    .select_from(SM.outerjoin(M, M.c.id_number_idx == SM.c.id_number_idx))
    .where(SM.c.survey_id == S.c.id)
    .scalar_subquery()
)
SURVEYS_OF_ENTITY: Final = (
    select(
        _json_list(
            _json_object(
                id=S.c.id,
                round_id=S.c.round_id,
                period=R.c.period,
                operating=S.c.operating,
                staff_count=S.c.staff_count,
                member_count=S.c.member_count,
                members=_SURVEY_MEMBERS,
                person_in_charge_is_member=S.c.person_in_charge_is_member,
                no_org_reason=S.c.no_org_reason,
                union=S.c.union,
                youth_league=S.c.youth_league,
                womens_org=S.c.womens_org,
                surveyed_on=S.c.surveyed_on,
                surveyed_by_account_id=S.c.surveyed_by_account_id,
                note=S.c.note,
                coverage=S.c.coverage,
                version=S.c.version,
                updated_at=S.c.updated_at,
            ),
            R.c.period.desc(),
        )
    )
    .select_from(S.join(R, R.c.id == S.c.round_id))
    .where(S.c.entity_id == E.c.id)
    .scalar_subquery()
)
_INSTR_MEMBER = M.alias("instructor")
INSTRUCTORS_OF_ENTITY: Final = (
    select(
        _json_list(
            _json_object(
                member_id=I.c.member_id,
                name=_INSTR_MEMBER.c.name,
                group_name=I.c.group_name,
                assigned_at=I.c.assigned_at,
            ),
            I.c.id,
        )
    )
    .select_from(I.join(_INSTR_MEMBER, _INSTR_MEMBER.c.id == I.c.member_id))
    .where(I.c.entity_id == E.c.id, I.c.ended_at.is_(None))
    .scalar_subquery()
)
_SURVEYED_IN_ROUND = select(S.c.id).where(S.c.round_id == R.c.id, S.c.entity_id == E.c.id).exists()
OPEN_ROUNDS_OF_ENTITY: Final = (
    select(
        _json_list(
            _json_object(
                id=R.c.id,
                org_id=R.c.org_id,
                period=R.c.period,
                due_on=R.c.due_on,
                surveyed=_SURVEYED_IN_ROUND,
            ),
            R.c.id,
        )
    )
    .select_from(R.join(RORG, RORG.c.id == R.c.org_id))
    .where(R.c.status == "open", func.starts_with(RO.c.path, RORG.c.path))
    .scalar_subquery()
)
ENTITY_FILE: Final = select(
    *LEDGER_COLUMNS,
    SURVEYS_OF_ENTITY.label("surveys"),
    INSTRUCTORS_OF_ENTITY.label("instructors"),
    OPEN_ROUNDS_OF_ENTITY.label("open_rounds"),
).select_from(LEDGER_FROM)


# ----------------------------------------------------------------- statistics
def stats_statement(where: ColumnElement[bool]) -> Select[tuple[object, ...]]:
    """Counts of the in-scope active entities per (dimension, key, coverage,
    recommendation), in one statement over the tally
    (:class:`app.census.models.CensusTally`), not over the entities: a county of
    200,000 entities is a few thousand tally rows. The rules name each tally row's
    coverage and recommendation; every entity has exactly one ``kind`` row, so the
    ``kind`` rows also give the totals."""
    rules = Rules(
        func.nullif(T.c.org_mode, literal_column("''")),
        func.nullif(T.c.member_count, literal_column("-1")),
        true(),
        T.c.instructed,
    )
    b = (
        select(
            T.c.dim,
            T.c.key,
            rules.coverage.label("coverage"),
            rules.recommendation.label("recommendation"),
            T.c.n,
        )
        .select_from(
            T.join(RO, RO.c.id == T.c.responsible_org_id).outerjoin(TO, TO.c.id == T.c.trade_org_id)
        )
        .where(T.c.n != 0, where)
        .subquery("base")
    )
    return select(
        b.c.dim, b.c.key, b.c.coverage, b.c.recommendation, func.sum(b.c.n).label("n")
    ).group_by(b.c.dim, b.c.key, b.c.coverage, b.c.recommendation)


def round_series_statement(
    round_ids: Select[int], where: ColumnElement[bool]
) -> Select[tuple[object, ...]]:
    """Coverage found by the surveys of some rounds (the change between rounds), from the
    round tally (:class:`app.census.models.CensusRoundTally`: a few rows per round and
    responsible organisation, not one per survey), scoped through the responsible and
    trade organisations like the entities."""
    return (
        select(R.c.id, R.c.period, RT.c.coverage, func.sum(RT.c.n).label("n"))
        .select_from(
            RT.join(R, R.c.id == RT.c.round_id)
            .join(RO, RO.c.id == RT.c.responsible_org_id)
            .outerjoin(TO, TO.c.id == RT.c.trade_org_id)
        )
        .where(RT.c.round_id.in_(round_ids), RT.c.n != 0, where)
        .group_by(R.c.id, R.c.period, RT.c.coverage)
        .order_by(R.c.period)
    )


# Progress of a round per responsible organisation.
ROUND_PROGRESS: Final = (
    select(
        E.c.responsible_org_id.label("org_id"),
        RO.c.name.label("org_name"),
        func.count().label("total"),
        func.count(S.c.id).label("surveyed"),
    )
    .select_from(
        E.join(RO, RO.c.id == E.c.responsible_org_id)
        .outerjoin(TO, TO.c.id == E.c.trade_org_id)
        .outerjoin(S, and_(S.c.entity_id == E.c.id, S.c.round_id == bindparam("round_id")))
    )
    .where(E.c.status == "active")
    .group_by(E.c.responsible_org_id, RO.c.name)
    .order_by(RO.c.name, E.c.responsible_org_id)
)

# The coverage of one entity now (stored on a survey when it is saved).
COVERAGE_OF_ENTITY: Final = select(COVERAGE).scalar_subquery()

# Party members a survey found: matched to the roster through the blind index.
FOUND_MEMBERS: Final = select(
    SM.c.id,
    SM.c.name,
    SM.c.id_number_masked,
    S.c.entity_id,
    E.c.name.label("entity_name"),
    E.c.responsible_org_id,
    S.c.round_id,
    S.c.surveyed_on,
    M.c.id.label("member_id"),
    M.c.home_org_id,
    HOME.c.name.label("home_org_name"),
    case(
        (M.c.id.is_(None), literal_column("'not_in_roster'")),
        (func.starts_with(HOME.c.path, RO.c.path), literal_column("'registered_here'")),
        else_=literal_column("'registered_elsewhere'"),
    ).label("match"),
).select_from(
    SM.join(S, S.c.id == SM.c.survey_id)
    .join(E, E.c.id == S.c.entity_id)
    .join(RO, RO.c.id == E.c.responsible_org_id)
    .outerjoin(TO, TO.c.id == E.c.trade_org_id)
    .outerjoin(M, M.c.id_number_idx == SM.c.id_number_idx)
    .outerjoin(HOME, HOME.c.id == M.c.home_org_id)
)
