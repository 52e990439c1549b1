"""Demo census for ``make run``: a county's worth of entities (240 in 吴川), a finished
round last quarter and a running one this quarter, a few organisations founded or
joined, instructors (the demo member 王建国 among them: ``GET /census/me/entities``)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.census import repository
from app.census.codes import DIVISIONS, TAGS, credit_check_char, section_of_division
from app.census.models import CensusEntity, CensusInstructor, CensusRound, CensusSurvey
from app.census.service import seal_contact
from app.core import clock
from app.core.config import Settings
from app.demo_names import DEMO_COUNTY, DEMO_TOWN
from app.members.models import Member
from app.organization.models import Organization
from app.organization.service import create_organization

ENTITIES = 240
SURNAMES = "陈林黄李吴张王杨刘梁"
TRADES = (
    "物流",
    "快递",
    "餐饮",
    "网络科技",
    "商贸",
    "建筑",
    "电子商务",
    "养殖",
    "服装",
    "汽车服务",
)
NO_ORG_REASONS = ("党员人数不足3名", "无党员", "新成立企业，党员组织关系未转入")


def _quarter(day: date) -> tuple[str, date]:
    quarter = (day.month - 1) // 3
    return f"{day.year}Q{quarter + 1}", date(day.year, quarter * 3 + 1, 1)


def _credit_code(n: int) -> str:
    first17 = f"91440883MA{n:05d}X0"
    return first17 + credit_check_char(first17)


async def seed(session: AsyncSession, settings: Settings) -> None:
    if not settings.demo_data or settings.env == "prod":
        return
    if (await session.execute(select(CensusEntity.id).limit(1))).first():
        return
    orgs = dict(
        (
            await session.execute(
                select(Organization.name, Organization).where(
                    Organization.name.in_((DEMO_COUNTY, DEMO_TOWN))
                )
            )
        ).all()
    )
    members = dict(
        (
            await session.execute(
                select(Member.name, Member.id).where(Member.name.in_(("王建国", "刘芳")))
            )
        ).all()
    )
    if len(orgs) < 2 or len(members) < 2:
        return
    county, town = orgs[DEMO_COUNTY], orgs[DEMO_TOWN]
    rng = random.Random(2026)
    today = clock.today()
    period, opened = _quarter(today)
    last_period, last_opened = _quarter(opened - timedelta(days=1))
    joint = await create_organization(
        session,
        name="吴阳镇非公企业联合党支部",
        kind="branch",
        parent_id=town.id,
        region_code="440883",
    )
    finished = CensusRound(
        org_id=county.id,
        period=last_period,
        opened_on=last_opened,
        due_on=opened - timedelta(days=10),
        status="closed",
        closed_at=clock.now(),
    )
    running = CensusRound(
        org_id=county.id, period=period, opened_on=opened, due_on=opened + timedelta(days=75)
    )
    session.add_all([finished, running])
    divisions = sorted(DIVISIONS)
    tags = sorted(TAGS)
    entities: list[tuple[CensusEntity, int]] = []
    for n in range(1, ENTITIES + 1):
        division = rng.choice(divisions)
        kind = rng.choices(["enterprise", "social_org", "individual"], [70, 10, 20])[0]
        name = f"吴川市{rng.choice(TRADES)}{'协会' if kind == 'social_org' else '有限公司'}{n}"
        person = rng.choice(SURNAMES) + rng.choice("建国秀英志强海燕文华")
        entity = CensusEntity(
            credit_code=_credit_code(n),
            name=name,
            kind=kind,
            industry_section=section_of_division(division),
            industry_division=division,
            tags=sorted(rng.sample(tags, rng.choices([0, 1, 2], [60, 35, 5])[0])),
            region_code="440883",
            address=f"广东省湛江市吴川市吴阳镇{rng.randint(1, 300)}号",
            staff_count=rng.randint(3, 300),
            responsible_org_id=town.id if n % 3 else county.id,
            **seal_contact(settings, person, f"13{rng.randint(100000000, 999999999)}"),
        )
        session.add(entity)
        entities.append((entity, rng.choices([0, 1, 2, 3, 4, 6], [45, 20, 10, 12, 8, 5])[0]))
    await session.flush()

    surveys = []
    for index, (entity, found) in enumerate(entities):
        before = max(found - rng.choice((0, 0, 1)), 0)
        rows = [(finished, before, last_opened + timedelta(days=20))]
        if index % 5 < 3:  # the running round is 60% done
            rows.append((running, found, min(opened + timedelta(days=10), today)))
        for census_round, count, surveyed_on in rows:
            survey = CensusSurvey(
                round_id=census_round.id,
                entity_id=entity.id,
                responsible_org_id=entity.responsible_org_id,
                operating="operating",
                staff_count=entity.staff_count or 0,
                member_count=count,
                person_in_charge_is_member=count > 0 and rng.random() < 0.3,
                no_org_reason=None if count >= 3 else rng.choice(NO_ORG_REASONS),
                union=rng.random() < 0.5,
                youth_league=rng.random() < 0.3,
                womens_org=rng.random() < 0.3,
                surveyed_on=surveyed_on,
                coverage="none",
                note="实地走访",
            )
            session.add(survey)
            surveys.append((entity, survey, count))
    await session.flush()
    for entity, survey, count in surveys:
        entity.last_survey_id, entity.member_count = survey.id, count

    now = clock.now()
    for index, (entity, found) in enumerate(entities):
        if found >= 3 and index % 3 == 0:  # 发现一个、组建一个
            org = await create_organization(
                session,
                name=f"{entity.name}党支部",
                kind="branch",
                parent_id=entity.responsible_org_id,
                region_code="440883",
            )
            entity.org_id, entity.org_mode, entity.org_linked_at = org.id, "own", now
        elif found in (1, 2) and index % 2 == 0:
            entity.org_id, entity.org_mode, entity.org_linked_at = joint.id, "joint", now
        elif found == 0 and index % 4 == 0:
            member = members["王建国"] if index % 8 == 0 else members["刘芳"]
            session.add(
                CensusInstructor(entity_id=entity.id, member_id=member, group_name="吴阳镇指导组")
            )
    await session.flush()
    await repository.stamp_round_coverage(session, running.id)
