"""The coverage census through the API: entities, rounds, surveys, coverage and
recommendation, founding an organisation, statistics equal to a recount."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.census.models import CensusEntity, CensusSurvey, CensusSurveyMember
from app.core import pii
from app.core.config import Settings
from app.organization.models import Organization
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


async def _round(client: httpx.AsyncClient, c: County, period: str = "2026Q4") -> dict[str, Any]:
    response = await client.post(
        f"{API}/rounds",
        json={"org_id": c.county.id, "period": period, "due_on": "2026-12-31"},
        headers=c.admin.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _survey(
    client: httpx.AsyncClient,
    c: County,
    entity_id: int,
    round_id: int,
    member_count: int,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        f"{API}/entities/{entity_id}/surveys",
        json=survey_body(round_id, member_count, **extra),
        headers=c.admin.headers,
    )


async def test_entity_is_stored_encrypted_and_shown_masked(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    phone = f.unique_phone()
    created = await create_entity(
        client,
        c.admin,
        c.street_a,
        person_in_charge="欧阳明华",
        contact_phone=phone,
        trade_org_id=c.trade.id,
        industry_code="I64",
        tags=["food_delivery", "internet_platform"],
    )
    assert created["person_in_charge"] == "欧**华"
    assert created["contact_phone"] == phone[:3] + "****" + phone[-4:]
    assert created["industry"] == {
        "code": "64",
        "section": "I",
        "division": "64",
        "name": "互联网和相关服务",
    }
    assert created["coverage"] == "none" and created["recommendation"] is None
    assert created["responsible_org"] == {"id": c.street_a.id, "name": "九龙街道党工委"}
    assert created["trade_org"]["id"] == c.trade.id
    row = (
        await db.execute(select(CensusEntity).where(CensusEntity.id == created["id"]))
    ).scalar_one()
    ring = pii.keyring(settings)
    assert b"\xe6\xac\xa7" not in (row.person_in_charge_enc or b"")  # "欧" is not in clear
    assert (
        ring.decrypt(row.person_in_charge_enc or b"", context="census.person_in_charge")
        == "欧阳明华"
    )
    assert row.contact_phone_idx == ring.blind_index(phone, context=pii.PHONE)

    again = await client.post(
        f"{API}/entities",
        json={
            **created,
            "credit_code": created["credit_code"],
            "person_in_charge": "某",
            "responsible_org_id": c.street_a.id,
            "industry_code": "64",
            "contact_phone": None,
            "trade_org_id": None,
        }
        | {k: None for k in ()},
        headers=c.admin.headers,
    )
    assert again.status_code == 422  # response fields are not a request body


async def test_bad_entities_are_refused_with_reasons(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    good = await create_entity(client, c.admin, c.street_a)
    cases = [
        ({"credit_code": good["credit_code"]}, 409, "census.credit_code_taken"),
        ({"credit_code": "91350100M000100Y44"}, 422, "validation.failed"),
        ({"region_code": "519999"}, 422, "census.invalid_field"),
        ({"industry_code": "98"}, 422, "census.invalid_field"),
        ({"responsible_org_id": c.other_county.id}, 404, "census.org_not_found"),
        ({"tags": ["space_travel"]}, 422, "validation.failed"),
    ]
    from tests.support.census import entity_body

    before = (await db.execute(select(func.count()).select_from(CensusEntity))).scalar_one()
    for change, status, code in cases:
        response = await client.post(
            f"{API}/entities", json=entity_body(c.street_a, **change), headers=c.admin.headers
        )
        if code == "validation.failed":
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        else:
            problem(response, status, code)
    after = (await db.execute(select(func.count()).select_from(CensusEntity))).scalar_one()
    assert after == before


async def test_recommendation_follows_the_members_found_and_founding_changes_coverage(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    three = await create_entity(client, c.admin, c.street_a, name="三名党员公司")
    one = await create_entity(client, c.admin, c.street_a, name="一名党员公司")
    none = await create_entity(client, c.admin, c.street_b, name="无党员公司")
    census_round = await _round(client, c)
    assert census_round["total"] == 3 and census_round["surveyed"] == 0

    members = [{"name": f"党员{i}", "id_number": f.unique_id_number()} for i in range(3)]
    first = await _survey(client, c, three["id"], census_round["id"], 3, members=members)
    assert first.status_code == 201, first.text
    assert (await _survey(client, c, one["id"], census_round["id"], 1)).status_code == 201
    assert (await _survey(client, c, none["id"], census_round["id"], 0)).status_code == 201

    ledger = await client.get(f"{API}/entities", headers=c.admin.headers)
    by_name = {e["name"]: e for e in ledger.json()["items"]}
    assert by_name["三名党员公司"]["recommendation"] == "form_standalone"
    assert "3 名" in by_name["三名党员公司"]["recommendation_reason"]
    assert by_name["一名党员公司"]["recommendation"] == "join_joint"
    assert by_name["无党员公司"]["recommendation"] == "assign_instructor"
    assert {e["coverage"] for e in by_name.values()} == {"none"}

    stats = (
        await client.get(f"{API}/stats", params={"org_id": c.county.id}, headers=c.admin.headers)
    ).json()
    assert (stats["total"], stats["none"], stats["organization_rate"]) == (3, 3, 0.0)
    assert stats["recommendations"] == {
        "form_standalone": 1,
        "join_joint": 1,
        "assign_instructor": 1,
    }

    # 发现一个、组建一个: found its own branch; coverage and the county's rate change at once.
    founded = await client.post(
        f"{API}/entities/{three['id']}/organization",
        json={"mode": "own", "new_org": {"name": "三名党员公司党支部", "parent_id": c.street_a.id}},
        headers=c.admin.headers,
    )
    assert founded.status_code == 200, founded.text
    body = founded.json()
    assert body["coverage"] == "organization" and body["recommendation"] is None
    org = (
        await db.execute(select(Organization).where(Organization.id == body["organization"]["id"]))
    ).scalar_one()
    assert org.parent_id == c.street_a.id and org.name == "三名党员公司党支部"
    stats = (
        await client.get(f"{API}/stats", params={"org_id": c.county.id}, headers=c.admin.headers)
    ).json()
    assert (stats["organization"], stats["none"]) == (1, 2)
    assert stats["organization_rate"] == round(1 / 3, 4)
    assert stats["recommendations"]["form_standalone"] == 0

    # The one-member company joins a joint branch; the empty one gets an instructor.
    joint = await f.org(db, "九龙街道非公企业联合党支部", parent=c.street_a)
    linked = await client.post(
        f"{API}/entities/{one['id']}/organization",
        json={"mode": "joint", "org_id": joint.id},
        headers=c.admin.headers,
    )
    assert linked.json()["coverage"] == "joint" and linked.json()["recommendation"] is None
    instructor = await f.member(db, settings, c.street_b, "指导员甲")
    assigned = await client.post(
        f"{API}/entities/{none['id']}/instructors",
        json={"member_id": instructor.id},
        headers=c.admin.headers,
    )
    assert assigned.status_code == 201, assigned.text
    assert assigned.json()["coverage"] == "work" and assigned.json()["recommendation"] is None
    stats = (await client.get(f"{API}/stats", headers=c.admin.headers)).json()
    assert (stats["organization"], stats["joint"], stats["work"], stats["none"]) == (1, 1, 1, 0)
    assert (stats["organization_rate"], stats["coverage_rate"]) == (round(2 / 3, 4), 1.0)

    # The survey members are encrypted and masked, and the file shows every answer.
    stored = (await db.execute(select(CensusSurveyMember))).scalars().all()
    assert len(stored) == 3 and all("*" in m.id_number_masked for m in stored)
    file = (await client.get(f"{API}/entities/{three['id']}", headers=c.admin.headers)).json()
    assert [s["member_count"] for s in file["surveys"]] == [3]
    assert len(file["surveys"][0]["members"]) == 3
    assert file["open_rounds"] == [
        {
            "id": census_round["id"],
            "org_id": c.county.id,
            "period": "2026Q4",
            "due_on": "2026-12-31",
            "surveyed": True,
        }
    ]


async def test_the_next_round_starts_from_the_last_answers(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    entity = await create_entity(client, c.admin, c.street_a)
    q3 = await _round(client, c, "2026Q3")
    members = [{"name": "张三", "id_number": f.unique_id_number()}]
    assert (await _survey(client, c, entity["id"], q3["id"], 2, members=members)).status_code == 201
    q4 = await _round(client, c, "2026Q4")
    second = await client.post(
        f"{API}/entities/{entity['id']}/surveys",
        json={"round_id": q4["id"], "surveyed_on": "2026-12-01", "member_count": 4},
        headers=c.admin.headers,
    )
    assert second.status_code == 201, second.text
    surveys = second.json()["surveys"]
    assert [s["period"] for s in surveys] == ["2026Q4", "2026Q3"]
    latest = surveys[0]
    assert (latest["member_count"], latest["operating"], latest["union"]) == (4, "operating", True)
    assert [m["name"] for m in latest["members"]] == ["张三"]
    assert second.json()["recommendation"] == "form_standalone"

    # Correcting the same round updates it (200), and an older round never overrides it.
    corrected = await _survey(client, c, entity["id"], q4["id"], 1)
    assert corrected.status_code == 200 and corrected.json()["member_count"] == 1
    older = await _survey(client, c, entity["id"], q3["id"], 5)
    assert older.status_code == 200 and older.json()["member_count"] == 1
    count = (await db.execute(select(func.count()).select_from(CensusSurvey))).scalar_one()
    assert count == 2


async def test_survey_rules(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    entity = await create_entity(client, c.admin, c.street_a)
    census_round = await _round(client, c)
    first_partial = await client.post(
        f"{API}/entities/{entity['id']}/surveys",
        json={"round_id": census_round["id"], "surveyed_on": "2026-12-01", "member_count": 1},
        headers=c.admin.headers,
    )
    problem(first_partial, 422, "census.invalid_field")
    too_many = await _survey(
        client,
        c,
        entity["id"],
        census_round["id"],
        0,
        members=[{"name": "李四", "id_number": f.unique_id_number()}],
    )
    problem(too_many, 422, "census.invalid_field")
    future = await _survey(client, c, entity["id"], census_round["id"], 0, surveyed_on="2099-01-01")
    problem(future, 422, "census.invalid_field")
    bad_id = await _survey(
        client,
        c,
        entity["id"],
        census_round["id"],
        1,
        members=[{"name": "李四", "id_number": "110101199003071234"}],
    )
    assert bad_id.status_code == 422 and bad_id.json()["code"] == "validation.failed"
    other_round = await client.post(
        f"{API}/rounds",
        json={"org_id": c.other_county.id, "period": "2026Q4", "due_on": "2026-12-31"},
        headers=c.other_admin.headers,
    )
    outside = await _survey(client, c, entity["id"], other_round.json()["id"], 0)
    problem(outside, 404, "census.round_not_found")
    assert (await db.execute(select(func.count()).select_from(CensusSurvey))).scalar_one() == 0

    closed = await client.post(
        f"{API}/rounds/{census_round['id']}/close", json={"version": 1}, headers=c.admin.headers
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    late = await _survey(client, c, entity["id"], census_round["id"], 0)
    problem(late, 409, "census.round_invalid_transition")
    again = await client.post(
        f"{API}/rounds/{census_round['id']}/close", json={"version": 2}, headers=c.admin.headers
    )
    problem(again, 409, "census.round_invalid_transition")
    duplicate = await client.post(
        f"{API}/rounds",
        json={"org_id": c.county.id, "period": "2026Q4", "due_on": "2026-12-31"},
        headers=c.admin.headers,
    )
    problem(duplicate, 409, "census.round_exists")


async def test_street_admin_and_instructor_fill_surveys_of_the_county_round(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    mine = await create_entity(client, c.admin, c.street_a)
    theirs = await create_entity(client, c.admin, c.street_b)
    census_round = await _round(client, c)
    body = survey_body(census_round["id"], 1)
    ok = await client.post(
        f"{API}/entities/{mine['id']}/surveys", json=body, headers=c.street_admin.headers
    )
    assert ok.status_code == 201, ok.text
    hidden = await client.post(
        f"{API}/entities/{theirs['id']}/surveys", json=body, headers=c.street_admin.headers
    )
    problem(hidden, 404, "census.entity_not_found")

    instructor = await f.member_actor(db, settings, c.street_b, "指导员乙")
    assert instructor.member is not None
    before = await client.get(f"{API}/entities/{theirs['id']}", headers=instructor.headers)
    problem(before, 404, "census.entity_not_found")
    await client.post(
        f"{API}/instructor-groups",
        json={
            "group_name": "朝阳街道指导组",
            "member_ids": [instructor.member.id],
            "entity_ids": [theirs["id"], mine["id"]],
        },
        headers=c.admin.headers,
    )
    seen = await client.get(f"{API}/me/entities", headers=instructor.headers)
    assert {e["id"] for e in seen.json()["items"]} == {theirs["id"], mine["id"]}
    filled = await client.post(
        f"{API}/entities/{theirs['id']}/surveys", json=body, headers=instructor.headers
    )
    assert filled.status_code == 201, filled.text
    assert filled.json()["instructors"][0]["group_name"] == "朝阳街道指导组"

    progress = (
        await client.get(f"{API}/rounds/{census_round['id']}", headers=c.admin.headers)
    ).json()
    assert (progress["total"], progress["surveyed"], progress["rate"]) == (2, 2, 1.0)
    assert {p["org"]["id"]: p["light"] for p in progress["progress"]} == {
        c.street_a.id: "blue",
        c.street_b.id: "blue",
    }
    # Ending the assignment takes the entity out of the instructor's view.
    ended = await client.delete(
        f"{API}/entities/{theirs['id']}/instructors/{instructor.member.id}", headers=c.admin.headers
    )
    assert ended.status_code == 204
    seen = await client.get(f"{API}/me/entities", headers=instructor.headers)
    assert [e["id"] for e in seen.json()["items"]] == [mine["id"]]
