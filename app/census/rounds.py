"""Census rounds (摸排), surveys of the five (six) clears, the members they found, and the
statistics of coverage.

Reads go through :mod:`app.census.repository` with the caller's scope; writes lock the
entity or round they change and check ``version`` where a client sends one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.census import errors, rules
from app.census import repository as repo
from app.census.models import CensusRound, CensusSurvey
from app.census.schemas import (
    CensusStats,
    EntityFile,
    FoundMemberOut,
    OrgRef,
    ProgressRow,
    RateChange,
    RoundIn,
    RoundOut,
    RoundRate,
    SurveyIn,
)
from app.census.service import SURVEY_ID_NUMBER, entity_scope, get_entity_file, lock, visible_org
from app.census.views import counts_of, groups, rate
from app.core import pii
from app.core.config import Settings
from app.core.crypto import mask_id_number
from app.core.errors import stale_version
from app.inflows.census import survey_findings
from app.organization import repository as org_repo
from app.organization.models import Organization
from app.organization.scope import Scope


# ---------------------------------------------------------------------- rounds
async def open_round(session: AsyncSession, scope: Scope, data: RoundIn, today: date) -> RoundOut:
    org = await visible_org(session, scope, data.org_id)
    if data.due_on < today:
        raise errors.invalid_field("due_on", "截止日期不能早于今天")
    if await repo.round_exists(session, org.id, data.period):
        raise errors.round_exists()
    census_round = CensusRound(
        org_id=org.id,
        period=data.period,
        opened_on=today,
        due_on=data.due_on,
        opened_by_account_id=scope.principal.account_id,
    )
    try:
        async with session.begin_nested():
            session.add(census_round)
            await session.flush()
    except IntegrityError:
        raise errors.round_exists() from None
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.round_opened",
        org_id=org.id,
        subject_type="census_round",
        subject_id=census_round.id,
        detail={"period": data.period, "due_on": data.due_on.isoformat()},
    )
    return await round_view(session, scope, census_round.id, today)


async def list_rounds(
    session: AsyncSession, scope: Scope, *, limit: int, before_id: int | None
) -> Sequence[tuple[CensusRound, Organization]]:
    """Rounds opened in the caller's subtrees, newest first."""
    return await repo.list_rounds(
        session, repo.round_visible(scope), limit=limit, before_id=before_id
    )


async def round_view(session: AsyncSession, scope: Scope, round_id: int, today: date) -> RoundOut:
    found = await repo.find_round(session, round_id, repo.round_visible(scope))
    if found is None:
        raise errors.round_not_found()
    census_round, org = found
    where = and_(repo.entity_visible(scope), repo.under_org(org.path))
    rows = await repo.round_progress(session, census_round.id, where)
    return round_out(census_round, org, rows, today)


def round_out(census_round: CensusRound, org: Organization, rows: Any, today: date) -> RoundOut:
    def lit(total: int, surveyed: int) -> str:
        if census_round.status == "closed" and surveyed < total:
            return "red"
        return rules.light(total, surveyed, census_round.opened_on, census_round.due_on, today)

    progress = [
        ProgressRow(
            org=OrgRef(id=r["org_id"], name=r["org_name"]),
            total=r["total"],
            surveyed=r["surveyed"],
            rate=rate(r["surveyed"], r["total"]),
            light=lit(r["total"], r["surveyed"]),
        )
        for r in rows
    ]
    total = sum(p.total for p in progress)
    surveyed = sum(p.surveyed for p in progress)
    return RoundOut(
        id=census_round.id,
        org=OrgRef(id=org.id, name=org.name),
        period=census_round.period,
        opened_on=census_round.opened_on,
        due_on=census_round.due_on,
        status=census_round.status,
        closed_at=census_round.closed_at,
        total=total,
        surveyed=surveyed,
        rate=rate(surveyed, total),
        light=lit(total, surveyed),
        progress=progress,
        version=census_round.version,
    )


async def close_round(
    session: AsyncSession, scope: Scope, round_id: int, version: int, now: datetime, today: date
) -> RoundOut:
    found = await repo.find_round(session, round_id, repo.round_visible(scope), for_update=True)
    if found is None:
        raise errors.round_not_found()
    census_round, _ = found
    if census_round.version != version:
        raise stale_version()
    census_round.status = rules.next_round_state(census_round.status, "close")
    census_round.closed_at = now
    census_round.version += 1
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.round_closed",
        org_id=census_round.org_id,
        subject_type="census_round",
        subject_id=census_round.id,
    )
    return await round_view(session, scope, census_round.id, today)


# --------------------------------------------------------------------- surveys
_ANSWERS = (
    "operating",
    "staff_count",
    "member_count",
    "person_in_charge_is_member",
    "no_org_reason",
    "union",
    "youth_league",
    "womens_org",
)


async def save_survey(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    entity_id: int,
    data: SurveyIn,
    today: date,
) -> tuple[EntityFile, bool]:
    """Fill (or correct, while the round is open) the entity's survey of a round.

    Answers left out are taken from the entity's last survey: the next round starts from
    the last one's answers. Returns the entity file and whether the survey is new.
    """
    entity = await lock(session, scope, entity_id)
    # The round may belong to an organisation above the caller (the county's round,
    # filled in by a street): it counts if the entity lies inside the round's subtree.
    found = await repo.find_round(session, data.round_id, true())
    responsible = await org_repo.get_any(session, entity.responsible_org_id)
    trade = await org_repo.get_any(session, entity.trade_org_id) if entity.trade_org_id else None
    if found is None or not any(
        o is not None and o.path.startswith(found[1].path) for o in (responsible, trade)
    ):
        raise errors.round_not_found()
    census_round = found[0]
    rules.next_round_state(census_round.status, "survey")
    if entity.status == "closed":
        raise errors.entity_closed()
    if data.surveyed_on > today:
        raise errors.invalid_field("surveyed_on", "摸排日期不能晚于今天")

    last = await repo.get_survey(session, entity.last_survey_id) if entity.last_survey_id else None
    answers: dict[str, Any] = {}
    for name in _ANSWERS:
        value = getattr(data, name)
        if name not in data.model_fields_set and last is not None:
            value = getattr(last, name)
        answers[name] = value
    missing = [n for n in _ANSWERS if answers[n] is None and n != "no_org_reason"]
    if missing:
        raise errors.invalid_field(missing[0], "首次摸排须填写“五个清”的全部内容")
    members = data.members
    named = len(members) if members is not None else None
    if named is not None and named > answers["member_count"]:
        raise errors.invalid_field("members", "登记的党员人数多于党员总数")

    survey = await repo.find_survey(session, census_round.id, entity.id)
    created = survey is None
    if survey is None:
        survey = CensusSurvey(round_id=census_round.id, entity_id=entity.id, coverage="none")
        session.add(survey)
    else:
        survey.version += 1
    survey.responsible_org_id = entity.responsible_org_id
    survey.trade_org_id = entity.trade_org_id
    for name, value in answers.items():
        setattr(survey, name, value)
    survey.surveyed_on = data.surveyed_on
    survey.note = data.note
    survey.surveyed_by_account_id = scope.principal.account_id
    await session.flush()

    if members is not None:
        ring = pii.keyring(settings)
        await repo.replace_survey_members(
            session,
            survey.id,
            [
                {
                    "name": m.name,
                    "id_number_enc": ring.encrypt(m.id_number, context=SURVEY_ID_NUMBER),
                    # The roster's index context, so a survey finds roster members.
                    "id_number_idx": ring.blind_index(m.id_number, context=pii.ID_NUMBER),
                    "id_number_masked": mask_id_number(m.id_number),
                }
                for m in members
            ],
        )
        # Members working here whose relation is elsewhere, or nowhere on the roster.
        await survey_findings(
            session,
            settings,
            actor_account_id=scope.principal.account_id,
            survey_id=survey.id,
            entity_id=entity.id,
            entity_name=entity.name,
            org_id=entity.responsible_org_id,
            members=[(m.name, m.id_number) for m in members],
        )
    elif created and last is not None:
        await repo.copy_survey_members(session, last.id, survey.id)
    await repo.stamp_coverage(session, survey.id, entity.id)

    # The latest round's answers drive the recommendation.
    last_period = await repo.period_of_survey(session, last.id) if last is not None else None
    if last_period is None or census_round.period >= last_period:
        entity.last_survey_id = survey.id
        entity.member_count = answers["member_count"]
        if answers["staff_count"] is not None:
            entity.staff_count = answers["staff_count"]
        entity.version += 1
        await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.survey_saved",
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
        detail={"round_id": census_round.id, "created": created},
    )
    return await get_entity_file(session, scope, entity.id), created


async def found_members(
    session: AsyncSession,
    scope: Scope,
    *,
    org_id: int | None,
    round_id: int | None,
    match: str | None,
    limit: int,
    before_id: int | None,
) -> list[FoundMemberOut]:
    where = await entity_scope(session, scope, org_id)
    rows = await repo.found_members(
        session, where, match=match, round_id=round_id, limit=limit, before_id=before_id
    )
    return [
        FoundMemberOut(
            id=r["id"],
            name=r["name"],
            id_number=r["id_number_masked"],
            entity=OrgRef(id=r["entity_id"], name=r["entity_name"]),
            round_id=r["round_id"],
            surveyed_on=r["surveyed_on"],
            match=r["match"],
            member_id=r["member_id"],
            home_org=(
                OrgRef(id=r["home_org_id"], name=r["home_org_name"])
                if r["home_org_id"] is not None
                else None
            ),
        )
        for r in rows
    ]


# ------------------------------------------------------------------ statistics
async def stats(
    session: AsyncSession, scope: Scope, *, org_id: int | None, round_id: int | None
) -> CensusStats:
    where = await entity_scope(session, scope, org_id)
    rows = await repo.stats(session, where)
    total: dict[str, int] = defaultdict(int)
    recommendations = {"form_standalone": 0, "join_joint": 0, "assign_instructor": 0}
    dims: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        dim, key, coverage, n = r["dim"], r["key"], r["coverage"], int(r["n"])
        counts = dims[dim][key]
        counts[coverage] = counts.get(coverage, 0) + n
        if dim == "kind":  # one kind row per entity: the totals
            total[coverage] += n
            if r["recommendation"] is not None:
                recommendations[r["recommendation"]] += n
    series: list[RoundRate] = []
    change = None
    if round_id is not None:
        found = await repo.find_round(session, round_id, repo.round_visible(scope))
        if found is None:
            raise errors.round_not_found()
        by_round: dict[int, tuple[str, dict[str, int]]] = {}
        for r in await repo.round_series(session, where, found[0]):
            by_round.setdefault(r["id"], (r["period"], {}))[1][r["coverage"]] = r["n"]
        for rid, (period, counts) in by_round.items():
            c = counts_of(counts)
            series.append(
                RoundRate(
                    round_id=rid,
                    period=period,
                    surveyed=c["total"],
                    organization_rate=c["organization_rate"],
                    coverage_rate=c["coverage_rate"],
                )
            )
        upto = [s for s in series if s.period <= found[0].period]
        if len(upto) >= 2:
            before, after = upto[-2], upto[-1]
            change = RateChange(
                from_period=before.period,
                to_period=after.period,
                organization_rate=round(after.organization_rate - before.organization_rate, 4),
                coverage_rate=round(after.coverage_rate - before.coverage_rate, 4),
            )
    return CensusStats(
        **counts_of(total),
        recommendations=recommendations,
        by_kind=groups("kind", dims["kind"]),
        by_industry=groups("industry", dims["industry"]),
        by_region=groups("region", dims["region"]),
        by_tag=groups("tag", dims["tag"]),
        rounds=series,
        change=change,
    )
