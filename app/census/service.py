"""Census rules: entities, rounds, surveys, organisation links and instructors.

Reads go through :mod:`app.census.repository` with the caller's scope; writes lock the
entity (or round) they change and check ``version`` where a client sends one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.census import errors, rules
from app.census import repository as repo
from app.census.codes import parse_industry
from app.census.models import CensusEntity, CensusRound, CensusSurvey
from app.census.schemas import (
    CensusStats,
    EntityCreate,
    EntityFile,
    EntityOut,
    EntityUpdate,
    FoundMemberOut,
    InstructorGroupIn,
    InstructorGroupOut,
    LinkIn,
    OrgRef,
    ProgressRow,
    RateChange,
    RoundIn,
    RoundOut,
    RoundRate,
    SurveyIn,
)
from app.census.views import counts_of, entity_file, entity_out, groups, mask_name, rate
from app.core import pii
from app.core.config import Settings
from app.core.crypto import mask_id_number, mask_phone
from app.core.errors import stale_version
from app.organization import repository as org_repo
from app.organization import service as org_service
from app.organization.models import Organization
from app.organization.schemas import OrgCreate
from app.organization.scope import Scope, get_visible_org
from app.regions.service import is_valid_region_code

PERSON_IN_CHARGE = "census.person_in_charge"
CONTACT_PHONE = "census.contact_phone"
SURVEY_ID_NUMBER = "census.survey_member.id_number"


# ------------------------------------------------------------------ visibility
async def visible_org(session: AsyncSession, scope: Scope, org_id: int) -> Organization:
    org = await get_visible_org(session, scope, org_id)
    if org is None:
        raise errors.org_not_found()
    return org


async def entity_scope(
    session: AsyncSession, scope: Scope, org_id: int | None
) -> ColumnElement[bool]:
    """The caller's visible entities, narrowed to ``org_id``'s subtree if given."""
    visible = repo.entity_visible(scope)
    if org_id is None:
        return visible
    org = await visible_org(session, scope, org_id)
    return and_(visible, repo.under_org(org.path))


# --------------------------------------------------------------------- entities
def check_codes(industry_code: str | None, region_code: str | None) -> tuple[str, str | None]:
    section_division: tuple[str, str | None] = ("", None)
    if industry_code is not None:
        try:
            section_division = parse_industry(industry_code)
        except ValueError:
            raise errors.invalid_field(
                "industry_code", "行业代码应为国民经济行业分类（GB/T 4754）的门类或大类"
            ) from None
    if region_code is not None and not is_valid_region_code(region_code):
        raise errors.invalid_field("region_code", "行政区划代码不存在")
    return section_division


def seal_contact(settings: Settings, person: str | None, phone: str | None) -> dict[str, Any]:
    ring = pii.keyring(settings)
    return {
        "person_in_charge_enc": ring.encrypt(person, context=PERSON_IN_CHARGE) if person else None,
        "person_in_charge_masked": mask_name(person),
        "contact_phone_enc": ring.encrypt(phone, context=CONTACT_PHONE) if phone else None,
        "contact_phone_idx": ring.blind_index(phone, context=pii.PHONE) if phone else None,
        "contact_phone_masked": mask_phone(phone) if phone else None,
    }


async def _check_orgs(
    session: AsyncSession, scope: Scope, responsible_org_id: int | None, trade_org_id: int | None
) -> None:
    if responsible_org_id is not None:
        await visible_org(session, scope, responsible_org_id)
    if trade_org_id is not None:
        await visible_org(session, scope, trade_org_id)


async def create_entity(
    session: AsyncSession, settings: Settings, scope: Scope, data: EntityCreate
) -> EntityOut:
    section, division = check_codes(data.industry_code, data.region_code)
    await _check_orgs(session, scope, data.responsible_org_id, data.trade_org_id)
    if await repo.credit_code_exists(session, data.credit_code):
        raise errors.credit_code_taken()
    entity = CensusEntity(
        credit_code=data.credit_code,
        name=data.name,
        kind=data.kind,
        industry_section=section,
        industry_division=division,
        tags=sorted(set(data.tags)),
        region_code=data.region_code,
        address=data.address,
        lat=data.lat,
        lon=data.lon,
        staff_count=data.staff_count,
        responsible_org_id=data.responsible_org_id,
        trade_org_id=data.trade_org_id,
        **seal_contact(settings, data.person_in_charge, data.contact_phone),
    )
    try:
        async with session.begin_nested():
            session.add(entity)
            await session.flush()
    except IntegrityError:
        raise errors.credit_code_taken() from None
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.entity_created",
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
    )
    return await entity_view(session, scope, entity.id)


async def entity_view(session: AsyncSession, scope: Scope, entity_id: int) -> EntityOut:
    row = await repo.entity_row(session, entity_id, repo.entity_visible(scope))
    if row is None:
        raise errors.entity_not_found()
    return entity_out(row)


async def get_entity_file(session: AsyncSession, scope: Scope, entity_id: int) -> EntityFile:
    row = await repo.entity_file(session, entity_id, repo.entity_visible(scope))
    if row is None:
        raise errors.entity_not_found()
    return entity_file(row)


async def _lock(session: AsyncSession, scope: Scope, entity_id: int) -> CensusEntity:
    entity = await repo.lock_entity(session, entity_id, repo.entity_visible(scope))
    if entity is None:
        raise errors.entity_not_found()
    return entity


_PLAIN_FIELDS = ("name", "kind", "address", "lat", "lon", "staff_count", "status", "closed_on")


async def update_entity(
    session: AsyncSession, settings: Settings, scope: Scope, entity_id: int, data: EntityUpdate
) -> EntityOut:
    entity = await _lock(session, scope, entity_id)
    if entity.version != data.version:
        raise stale_version()
    given = data.model_fields_set
    section, division = check_codes(data.industry_code, data.region_code)
    await _check_orgs(session, scope, data.responsible_org_id, data.trade_org_id)
    for name in _PLAIN_FIELDS:
        if name in given:
            setattr(entity, name, getattr(data, name))
    if data.industry_code is not None:
        entity.industry_section, entity.industry_division = section, division
    if data.tags is not None:
        entity.tags = sorted(set(data.tags))
    if data.region_code is not None:
        entity.region_code = data.region_code
    if data.responsible_org_id is not None:
        entity.responsible_org_id = data.responsible_org_id
    if "trade_org_id" in given:
        entity.trade_org_id = data.trade_org_id
    if "person_in_charge" in given or "contact_phone" in given:
        sealed = seal_contact(settings, data.person_in_charge, data.contact_phone)
        for key, value in sealed.items():
            field = "person_in_charge" if key.startswith("person") else "contact_phone"
            if field in given:
                setattr(entity, key, value)
    if "status" in given and data.status == "closed" and entity.closed_on is None:
        raise errors.invalid_field("closed_on", "注销单位须填写注销日期")
    if "status" in given and data.status == "active":
        entity.closed_on = None
    entity.version += 1
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.entity_updated",
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
        detail={"fields": sorted(given - {"version"})},
    )
    return await entity_view(session, scope, entity.id)


# --------------------------------------------------------- organisation links
async def link_org(
    session: AsyncSession, scope: Scope, entity_id: int, data: LinkIn, now: datetime
) -> EntityOut:
    """发现一个、组建一个: link the entity's own or a joint organisation, or found one."""
    entity = await _lock(session, scope, entity_id)
    if entity.status == "closed":
        raise errors.entity_closed()
    if entity.org_mode == "own" and data.org_id != entity.org_id:
        raise errors.already_linked()
    if data.new_org is not None:
        org = await org_service.create_org(
            session,
            scope,
            OrgCreate(
                name=data.new_org.name,
                kind=data.new_org.kind,
                parent_id=data.new_org.parent_id,
                region_code=entity.region_code,
                address=entity.address,
                lat=entity.lat,
                lon=entity.lon,
            ),
        )
        org_id = org.id
    else:
        assert data.org_id is not None
        org_id = (await visible_org(session, scope, data.org_id)).id
    entity.org_id, entity.org_mode, entity.org_linked_at = org_id, data.mode, now
    entity.version += 1
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.org_linked",
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
        detail={"org_id": org_id, "mode": data.mode, "founded": data.new_org is not None},
    )
    return await entity_view(session, scope, entity.id)


async def unlink_org(session: AsyncSession, scope: Scope, entity_id: int) -> EntityOut:
    entity = await _lock(session, scope, entity_id)
    previous = entity.org_id
    entity.org_id = entity.org_mode = entity.org_linked_at = None
    entity.version += 1
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.org_unlinked",
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
        detail={"org_id": previous},
    )
    return await entity_view(session, scope, entity.id)


# ----------------------------------------------------------------- instructors
async def assign_instructor(
    session: AsyncSession, scope: Scope, entity_id: int, member_id: int, group: str | None
) -> EntityOut:
    entity = await _lock(session, scope, entity_id)
    if not await repo.visible_member_ids(session, scope, [member_id]):
        raise errors.member_not_found()
    added = await repo.assign_instructors(
        session, [(entity.id, member_id)], group_name=group, account_id=scope.principal.account_id
    )
    if not added:
        raise errors.already_instructor()
    await _audit_instructors(session, scope, entity, "census.instructor_assigned", [member_id])
    return await entity_view(session, scope, entity.id)


async def end_instructor(
    session: AsyncSession, scope: Scope, entity_id: int, member_id: int, now: datetime
) -> None:
    entity = await _lock(session, scope, entity_id)
    assignment = await repo.open_instructor(session, entity.id, member_id)
    if assignment is None:
        raise errors.instructor_not_found()
    assignment.ended_at = now
    await session.flush()
    await _audit_instructors(session, scope, entity, "census.instructor_ended", [member_id])


async def assign_group(
    session: AsyncSession, scope: Scope, data: InstructorGroupIn
) -> InstructorGroupOut:
    """组团式指导: every instructor of the group over every listed entity."""
    member_ids = sorted(set(data.member_ids))
    entity_ids = sorted(set(data.entity_ids))
    if len(await repo.visible_member_ids(session, scope, member_ids)) != len(member_ids):
        raise errors.member_not_found()
    visible = await repo.visible_entity_ids(session, entity_ids, repo.entity_visible(scope))
    if len(visible) != len(entity_ids):
        raise errors.entity_not_found()
    pairs = [(e, m) for e in visible for m in member_ids]
    added = await repo.assign_instructors(
        session, pairs, group_name=data.group_name, account_id=scope.principal.account_id
    )
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.instructor_group_assigned",
        subject_type="census_instructor_group",
        detail={"group": data.group_name, "members": member_ids, "entities": len(visible)},
    )
    return InstructorGroupOut(group_name=data.group_name, assigned=added)


async def _audit_instructors(
    session: AsyncSession, scope: Scope, entity: CensusEntity, action: str, members: list[int]
) -> None:
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action=action,
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
        detail={"members": members},
    )


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
    entity = await _lock(session, scope, entity_id)
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
