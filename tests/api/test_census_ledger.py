"""Ledger filters, statistics equal to a recount of the rows, rates between rounds, the
xlsx exports and the members the surveys found."""

from __future__ import annotations

import io
import random
from collections import Counter, defaultdict
from typing import Any

import httpx
from openpyxl import load_workbook
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.census.models import CensusEntity, CensusInstructor
from app.core.config import Settings
from tests import factories as f
from tests.conftest import problem
from tests.support.census import (
    County,
    census_day,  # noqa: F401 - autouse: 2026-12-01
    county,
    create_entity,
    survey_body,
)

API = "/api/v1/census"
REGIONS = ("511621", "511602", "511623")
KINDS = ("enterprise", "social_org", "individual")
INDUSTRIES = ("54", "62", "I", "72", "F")
TAGS = ("express_delivery", "ride_hailing", "food_delivery")


async def _mixed_county(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> tuple[County, list[dict[str, Any]], int]:
    rng = random.Random(17)
    c = await county(db, settings)
    census_round = await client.post(
        f"{API}/rounds",
        json={"org_id": c.county.id, "period": "2026Q4", "due_on": "2026-12-31"},
        headers=c.admin.headers,
    )
    round_id = census_round.json()["id"]
    joint = await f.org(db, "联合党支部", parent=c.street_a)
    instructor = await f.member(db, settings, c.street_a, "指导员")
    entities = []
    for i in range(36):
        entity = await create_entity(
            client,
            c.admin,
            c.street_a if i % 2 else c.street_b,
            kind=KINDS[i % 3],
            region_code=REGIONS[i % 3 if i < 30 else 0],
            industry_code=INDUSTRIES[rng.randrange(5)],
            tags=sorted(rng.sample(TAGS, rng.randrange(3))),
        )
        if i % 4 != 3:
            members = rng.randrange(5)
            await client.post(
                f"{API}/entities/{entity['id']}/surveys",
                json=survey_body(round_id, members),
                headers=c.admin.headers,
            )
        if i % 5 == 0:
            await client.post(
                f"{API}/entities/{entity['id']}/organization",
                json={"mode": "joint", "org_id": joint.id},
                headers=c.admin.headers,
            )
        elif i % 7 == 0:
            await client.post(
                f"{API}/entities/{entity['id']}/instructors",
                json={"member_id": instructor.id},
                headers=c.admin.headers,
            )
        entities.append(entity)
    own = entities[1]
    await client.post(
        f"{API}/entities/{own['id']}/organization",
        json={"mode": "own", "new_org": {"name": "自建支部", "parent_id": c.street_a.id}},
        headers=c.admin.headers,
    )
    closed = (
        await client.get(f"{API}/entities/{entities[2]['id']}", headers=c.admin.headers)
    ).json()
    patched = await client.patch(
        f"{API}/entities/{closed['id']}",
        json={"version": closed["version"], "status": "closed", "closed_on": "2026-11-30"},
        headers=c.admin.headers,
    )
    assert patched.json()["status"] == "closed" and patched.json()["recommendation"] is None
    return c, entities, round_id


async def _recount(db: AsyncSession) -> dict[str, Any]:
    """Coverage and recommendation recomputed in Python from the stored rows."""
    entities = (
        (await db.execute(select(CensusEntity).where(CensusEntity.status == "active")))
        .scalars()
        .all()
    )
    instructed = set(
        (
            await db.execute(
                select(CensusInstructor.entity_id).where(CensusInstructor.ended_at.is_(None))
            )
        )
        .scalars()
        .all()
    )
    totals: Counter[str] = Counter()
    recs: Counter[str] = Counter()
    by: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for e in entities:
        coverage = (
            "organization"
            if e.org_mode == "own"
            else "joint"
            if e.org_mode == "joint"
            else "work"
            if e.id in instructed
            else "none"
        )
        totals[coverage] += 1
        by["kind"][e.kind][coverage] += 1
        by["industry"][e.industry_section][coverage] += 1
        by["region"][e.region_code][coverage] += 1
        for tag in e.tags:
            by["tag"][tag][coverage] += 1
        n = e.member_count
        if e.org_mode != "own" and n is not None:
            if n >= 3:
                recs["form_standalone"] += 1
            elif n >= 1 and e.org_mode is None:
                recs["join_joint"] += 1
            elif n == 0 and e.org_mode is None and e.id not in instructed:
                recs["assign_instructor"] += 1
    return {"totals": totals, "recs": recs, "by": by}


async def test_statistics_equal_a_recount_of_the_rows(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c, _, _ = await _mixed_county(client, db, settings)
    stats = (
        await client.get(f"{API}/stats", params={"org_id": c.county.id}, headers=c.admin.headers)
    ).json()
    recount = await _recount(db)
    totals = recount["totals"]
    assert stats["total"] == sum(totals.values()) == 35
    for coverage in ("organization", "joint", "work", "none"):
        assert stats[coverage] == totals[coverage], coverage
    assert stats["organization_rate"] == round((totals["organization"] + totals["joint"]) / 35, 4)
    assert stats["coverage_rate"] == round((35 - totals["none"]) / 35, 4)
    assert stats["recommendations"] == {
        k: recount["recs"][k] for k in ("form_standalone", "join_joint", "assign_instructor")
    }
    for dim, key in (
        ("kind", "by_kind"),
        ("industry", "by_industry"),
        ("region", "by_region"),
        ("tag", "by_tag"),
    ):
        got = {
            g["key"]: (g["total"], g["organization"], g["joint"], g["work"], g["none"])
            for g in stats[key]
        }
        want = {
            k: (sum(v.values()), v["organization"], v["joint"], v["work"], v["none"])
            for k, v in recount["by"][dim].items()
        }
        assert got == want, dim
    # The tally the statistics read equals a grouping of the entities themselves.
    tally = await db.execute(
        text(
            "SELECT dim, key, responsible_org_id, trade_org_id, org_mode, member_count, "
            "instructed, n FROM census_tally WHERE n <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7"
        )
    )
    grouped = await db.execute(
        text(
            "SELECT d.dim, d.key, responsible_org_id, coalesce(trade_org_id, 0), "
            "coalesce(org_mode, ''), "
            "CASE WHEN member_count IS NULL THEN -1 ELSE least(member_count, 3) END, "
            "instructor_count > 0, count(*) FROM census_entities e CROSS JOIN LATERAL "
            "(VALUES ('kind', kind), ('industry', industry_section), ('region', region_code) "
            "UNION ALL SELECT 'tag', t FROM unnest(e.tags) t) d (dim, key) "
            "WHERE status = 'active' GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7"
        )
    )
    assert tally.all() == grouped.all()
    names = {g["key"]: g["name"] for g in stats["by_region"]}
    assert names["511621"] == "四川省广安市岳池县"

    # The ledger agrees with the statistics, filter by filter.
    for coverage in ("organization", "joint", "work", "none"):
        page = await client.get(
            f"{API}/entities", params={"coverage": coverage, "limit": 100}, headers=c.admin.headers
        )
        assert len(page.json()["items"]) == stats[coverage]
    for rec, count in stats["recommendations"].items():
        page = await client.get(
            f"{API}/entities", params={"recommendation": rec, "limit": 100}, headers=c.admin.headers
        )
        assert len(page.json()["items"]) == count


async def test_ledger_filters_and_pages(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c, entities, round_id = await _mixed_county(client, db, settings)

    async def ids(**params: Any) -> set[int]:
        seen: set[int] = set()
        cursor = None
        while True:
            query = params | {"limit": 7} | ({"cursor": cursor} if cursor else {})
            body = (
                await client.get(f"{API}/entities", params=query, headers=c.admin.headers)
            ).json()
            seen |= {e["id"] for e in body["items"]}
            cursor = body["next_cursor"]
            if cursor is None:
                return seen

    rows = {e.id: e for e in (await db.execute(select(CensusEntity))).scalars().all()}
    active = {i for i, e in rows.items() if e.status == "active"}
    assert await ids() == active
    assert await ids(status="closed") == {entities[2]["id"]}
    assert await ids(kind="social_org") == {i for i in active if rows[i].kind == "social_org"}
    assert await ids(industry_code="G") == {i for i in active if rows[i].industry_section == "G"}
    assert await ids(industry_code="62") == {i for i in active if rows[i].industry_division == "62"}
    assert await ids(tag="ride_hailing") == {i for i in active if "ride_hailing" in rows[i].tags}
    assert await ids(region_code="511600") == active  # the city matches its counties
    assert await ids(region_code="511602") == {i for i in active if rows[i].region_code == "511602"}
    assert await ids(org_id=c.street_b.id) == {
        i for i in active if rows[i].responsible_org_id == c.street_b.id
    }
    unsurveyed = {e["id"] for n, e in enumerate(entities) if n % 4 == 3} & active
    assert await ids(round_id=round_id, surveyed="false") == unsurveyed
    assert await ids(round_id=round_id, surveyed="true") == active - unsurveyed
    assert await ids(q=entities[5]["credit_code"]) == {entities[5]["id"]}
    problem(
        await client.get(f"{API}/entities", params={"surveyed": "true"}, headers=c.admin.headers),
        422,
        "census.round_required",
    )
    problem(
        await client.get(f"{API}/entities", params={"cursor": "bm9wZQ"}, headers=c.admin.headers),
        422,
        "pagination.invalid_cursor",
    )
    problem(
        await client.get(
            f"{API}/entities", params={"org_id": c.other_county.id}, headers=c.admin.headers
        ),
        404,
        "census.org_not_found",
    )


async def _two_rounds(client: httpx.AsyncClient, c: County) -> list[int]:
    """The county's rounds 2026Q3 and 2026Q4 (ids)."""
    ids = []
    for period in ("2026Q3", "2026Q4"):
        r = await client.post(
            f"{API}/rounds",
            json={"org_id": c.county.id, "period": period, "due_on": "2026-12-31"},
            headers=c.admin.headers,
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def test_rates_between_rounds(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    a = await create_entity(client, c.admin, c.street_a)
    b = await create_entity(client, c.admin, c.street_a)
    ids = await _two_rounds(client, c)
    for entity in (a, b):
        await client.post(
            f"{API}/entities/{entity['id']}/surveys",
            json=survey_body(ids[0], 3),
            headers=c.admin.headers,
        )
    await client.post(
        f"{API}/entities/{a['id']}/organization",
        json={"mode": "own", "new_org": {"name": "甲公司党支部", "parent_id": c.street_a.id}},
        headers=c.admin.headers,
    )
    for entity in (a, b):
        await client.post(
            f"{API}/entities/{entity['id']}/surveys",
            json=survey_body(ids[1], 3),
            headers=c.admin.headers,
        )
    stats = (
        await client.get(f"{API}/stats", params={"round_id": ids[1]}, headers=c.admin.headers)
    ).json()
    assert [(r["period"], r["surveyed"], r["organization_rate"]) for r in stats["rounds"]] == [
        ("2026Q3", 2, 0.0),
        ("2026Q4", 2, 0.5),
    ]
    assert stats["change"] == {
        "from_period": "2026Q3",
        "to_period": "2026Q4",
        "organization_rate": 0.5,
        "coverage_rate": 0.5,
    }


async def test_exports(client: httpx.AsyncClient, db: AsyncSession, settings: Settings) -> None:
    c = await county(db, settings)
    phone = f.unique_phone()
    tricky = await create_entity(
        client,
        c.admin,
        c.street_a,
        name='=HYPERLINK("x")公司',
        contact_phone=phone,
        person_in_charge="钱七",
    )
    await create_entity(client, c.admin, c.street_b)
    response = await client.get(
        f"{API}/export", params={"org_id": c.street_a.id}, headers=c.admin.headers
    )
    assert response.status_code == 200 and response.headers["x-total-count"] == "1"
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert len(rows) == 1
    assert (
        rows[0][1] == tricky["credit_code"] and rows[0][2] == '\'=HYPERLINK("x")公司'
    )  # neutralised
    assert sheet.cell(3, 3).data_type == "s"  # text, not a formula
    assert rows[0][9] == "钱*" and rows[0][10] == phone[:3] + "****" + phone[-4:]

    problem(
        await client.get(f"{API}/export", params={"full": "true"}, headers=c.admin.headers),
        422,
        "census.export_reason_required",
    )
    full = await client.get(
        f"{API}/export",
        params={"full": "true", "export_reason": "上报组织部"},
        headers=c.admin.headers,
    )
    rows = list(
        load_workbook(io.BytesIO(full.content)).active.iter_rows(min_row=3, values_only=True)
    )
    assert {(r[9], r[10]) for r in rows if r[1] == tricky["credit_code"]} == {("钱七", phone)}
    actions = (
        await db.execute(
            select(AuditEntry.action, AuditEntry.reason).where(
                AuditEntry.action.like("census.export%")
            )
        )
    ).all()
    assert sorted(actions) == [("census.export", None), ("census.export_full", "上报组织部")]

    file = await client.get(f"{API}/entities/{tricky['id']}/export", headers=c.admin.headers)
    book = load_workbook(io.BytesIO(file.content))
    profile = dict(book["单位档案"].iter_rows(values_only=True))
    assert profile["统一社会信用代码"] == tricky["credit_code"] and profile["负责人"] == "钱*"


async def test_members_found_by_the_survey_are_matched_to_the_roster(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    entity = await create_entity(client, c.admin, c.street_a)
    here = await f.member(db, settings, c.street_a, "本地党员")
    elsewhere_id = f.unique_id_number()
    await f.member(db, settings, c.other_county, "口袋党员", id_number=elsewhere_id)
    here_id = await _id_number_of(db, settings, here.id)
    r = await client.post(
        f"{API}/rounds",
        json={"org_id": c.county.id, "period": "2026Q4", "due_on": "2026-12-31"},
        headers=c.admin.headers,
    )
    members = [
        {"name": "本地党员", "id_number": here_id},
        {"name": "口袋党员", "id_number": elsewhere_id},
        {"name": "新来的", "id_number": f.unique_id_number()},
    ]
    saved = await client.post(
        f"{API}/entities/{entity['id']}/surveys",
        json=survey_body(r.json()["id"], 3, members=members),
        headers=c.admin.headers,
    )
    assert saved.status_code == 201, saved.text
    found = (await client.get(f"{API}/found-members", headers=c.admin.headers)).json()["items"]
    assert {m["name"]: m["match"] for m in found} == {
        "本地党员": "registered_here",
        "口袋党员": "registered_elsewhere",
        "新来的": "not_in_roster",
    }
    assert all("*" in m["id_number"] for m in found)
    pocket = [m for m in found if m["match"] == "registered_elsewhere"]
    assert pocket[0]["home_org"]["id"] == c.other_county.id
    only = await client.get(
        f"{API}/found-members", params={"match": "not_in_roster"}, headers=c.admin.headers
    )
    assert [m["name"] for m in only.json()["items"]] == ["新来的"]
    theirs = await client.get(f"{API}/found-members", headers=c.other_admin.headers)
    assert theirs.json()["items"] == []


async def _id_number_of(db: AsyncSession, settings: Settings, member_id: int) -> str:
    from app.core import pii
    from app.members.models import Member

    member = await db.get(Member, member_id)
    assert member is not None
    return pii.keyring(settings).decrypt(member.id_number_enc, context=pii.ID_NUMBER)


async def test_change_between_rounds_equals_a_recount_of_the_surveys(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """The rates per round (and their change) read the round tally; they equal a recount
    of the surveys themselves, for the county and narrowed to a street or the trade
    committee, also after a survey is corrected in the same round."""
    c = await county(db, settings)
    rounds = await _two_rounds(client, c)
    joint = await f.org(db, "联合党支部", parent=c.street_b)
    instructor = await f.member(db, settings, c.street_a, "指导员")
    entities = [
        await create_entity(
            client,
            c.admin,
            c.street_a if i % 2 else c.street_b,
            **({"trade_org_id": c.trade.id} if i % 3 == 0 else {}),
        )
        for i in range(14)
    ]

    async def survey(round_id: int, entity: dict[str, Any], members: int) -> None:
        response = await client.post(
            f"{API}/entities/{entity['id']}/surveys",
            json=survey_body(round_id, members),
            headers=c.admin.headers,
        )
        assert response.status_code in (200, 201), response.text

    for i, entity in enumerate(entities[:11]):
        await survey(rounds[0], entity, i % 4)
    # Between the rounds: organisations founded and joined, instructors assigned.
    for i, entity in enumerate(entities):
        if i % 4 == 0:
            body: dict[str, Any] = {"mode": "joint", "org_id": joint.id}
        elif i % 5 == 1:
            new_org = {"name": f"企业{i}党支部", "parent_id": c.street_a.id}
            body = {"mode": "own", "new_org": new_org}
        elif i % 3 == 2:
            await client.post(
                f"{API}/entities/{entity['id']}/instructors",
                json={"member_id": instructor.id},
                headers=c.admin.headers,
            )
            continue
        else:
            continue
        linked = await client.post(
            f"{API}/entities/{entity['id']}/organization", json=body, headers=c.admin.headers
        )
        assert linked.status_code in (200, 201), linked.text
    for i, entity in enumerate(entities[2:]):
        await survey(rounds[1], entity, i % 3)
    # A correction in the open round after the entity got its own organisation.
    corrected = entities[3]
    await client.post(
        f"{API}/entities/{corrected['id']}/organization",
        json={"mode": "own", "new_org": {"name": "更正后党支部", "parent_id": c.street_a.id}},
        headers=c.admin.headers,
    )
    await survey(rounds[1], corrected, 4)

    surveys = (
        await db.execute(
            text(
                "SELECT s.round_id, s.coverage, ro.path AS responsible, tro.path AS trade "
                "FROM census_surveys s JOIN organizations ro ON ro.id = s.responsible_org_id "
                "LEFT JOIN organizations tro ON tro.id = s.trade_org_id"
            )
        )
    ).all()
    assert {s.coverage for s in surveys} == {"organization", "joint", "work", "none"}
    assert len(surveys) == 11 + 12

    def recount(path: str) -> list[tuple[str, int, float, float]]:
        rates = []
        for period, round_id in zip(("2026Q3", "2026Q4"), rounds, strict=True):
            found = Counter(
                s.coverage
                for s in surveys
                if s.round_id == round_id
                and (s.responsible.startswith(path) or (s.trade or "").startswith(path))
            )
            n = sum(found.values())
            rates.append(
                (
                    period,
                    n,
                    round((found["organization"] + found["joint"]) / n, 4) if n else 0.0,
                    round((n - found["none"]) / n, 4) if n else 0.0,
                )
            )
        return rates

    for org in (c.county, c.street_a, c.street_b, c.trade):
        stats = (
            await client.get(
                f"{API}/stats",
                params={"org_id": org.id, "round_id": rounds[1]},
                headers=c.admin.headers,
            )
        ).json()
        want = recount(org.path)
        got = [
            (r["period"], r["surveyed"], r["organization_rate"], r["coverage_rate"])
            for r in stats["rounds"]
        ]
        assert got == want, org.name
        assert stats["change"] == {
            "from_period": "2026Q3",
            "to_period": "2026Q4",
            "organization_rate": round(want[1][2] - want[0][2], 4),
            "coverage_rate": round(want[1][3] - want[0][3], 4),
        }, org.name
    assert recount(c.county.path)[1][1] == 12

    # The round tally equals a grouping of the surveys themselves.
    tally = await db.execute(
        text(
            "SELECT round_id, responsible_org_id, trade_org_id, coverage, n "
            "FROM census_round_tally WHERE n <> 0 ORDER BY 1, 2, 3, 4"
        )
    )
    grouped = await db.execute(
        text(
            "SELECT round_id, responsible_org_id, coalesce(trade_org_id, 0), coverage, count(*) "
            "FROM census_surveys GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        )
    )
    assert tally.all() == grouped.all()
