"""The census's hidden members (口袋党员 / 隐形党员): a survey names members working at an
entity; one registered elsewhere is prompted to show himself, one not on the roster
becomes an inflow candidate of the entity's responsible organisation."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.inflows.models import Inflow
from app.notify.models import Notification
from tests import factories as f
from tests.support.census import (
    County,
    census_day,  # noqa: F401 - autouse: 2026-12-01
    county,
    create_entity,
    survey_body,
)

API = "/api/v1/inflows"


async def _templates(db: AsyncSession, account_id: int) -> list[tuple[str, str | None]]:
    rows = await db.execute(
        select(Notification.template, Notification.page)
        .where(Notification.account_id == account_id)
        .order_by(Notification.id)
    )
    return [(t, p) for t, p in rows]


def _declaration(id_number: str, name: str, c: County) -> dict[str, Any]:
    return {
        "name": name,
        "id_number": id_number,
        "phone": f.unique_phone(),
        "home_org_name": "邻县某支部",
        "home_region_code": "511622",
        "employer": "快递公司",
        "arrived_on": "2025-05-01",
        "org_id": c.street_a.id,
    }


async def _round(client: httpx.AsyncClient, c: County) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/census/rounds",
        json={"org_id": c.county.id, "period": "2026Q4", "due_on": "2026-12-31"},
        headers=c.admin.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_survey_prompts_members_from_elsewhere_and_lists_candidates(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    entity = await create_entity(client, c.admin, c.street_a)
    census_round = await _round(client, c)
    elsewhere_number, here_number, unknown_number = (f.unique_id_number() for _ in range(3))
    elsewhere = await f.member(db, settings, c.other_county, "周外地", id_number=elsewhere_number)
    elsewhere_account = await f.account(db, member=elsewhere)
    here = await f.member(db, settings, c.street_a, "吴本地", id_number=here_number)
    here_account = await f.account(db, member=here)
    members = [
        {"name": "周外地", "id_number": elsewhere_number},
        {"name": "吴本地", "id_number": here_number},
        {"name": "郑口袋", "id_number": unknown_number},
    ]

    async def survey(**extra: Any) -> httpx.Response:
        return await client.post(
            f"/api/v1/census/entities/{entity['id']}/surveys",
            json=survey_body(census_round["id"], 3, members=members, **extra),
            headers=c.admin.headers,
        )

    saved = await survey()
    assert saved.status_code in (200, 201), saved.text

    # Registered elsewhere: prompted, with the declaration page of the street preselected.
    assert await _templates(db, elsewhere_account.id) == [
        ("inflow_prompt", f"pages/inflow/declare?org_id={c.street_a.id}")
    ]
    # Registered here: nothing to tell.
    assert await _templates(db, here_account.id) == []
    # Not on the roster: a candidate in the street's inflow ledger, its admin told.
    ledger = await client.get(
        API, params={"org_id": c.street_a.id, "source": "census"}, headers=c.street_admin.headers
    )
    items = ledger.json()["items"]
    assert [(i["name"], i["status"], i["source"]) for i in items] == [
        ("郑口袋", "candidate", "census")
    ]
    assert items[0]["entity"] == {"id": entity["id"], "name": entity["name"]}
    assert items[0]["id_number"] == unknown_number[:4] + "*" * 10 + unknown_number[-4:]
    assert items[0]["phone"] is None
    assert [t for t, _ in await _templates(db, c.street_admin.account.id)] == ["inflow_declared"]

    # Saving the survey again (a correction) neither duplicates nor prompts twice.
    again = await survey(note="复核")
    assert again.status_code in (200, 201), again.text
    count = (await db.execute(select(Inflow.id).where(Inflow.org_id == c.street_a.id))).all()
    assert len(count) == 1
    assert len(await _templates(db, elsewhere_account.id)) == 1

    # The prompted member may declare at the street although it is not listed; nobody else.
    outsider = await f.resident_actor(db, settings)
    refused = await client.post(
        API, json=_declaration(elsewhere_number, "周外地", c), headers=outsider.headers
    )
    assert refused.status_code == 404 and refused.json()["code"] == "inflow.org_not_found"
    prompted = await f.login(db, settings, elsewhere_account, elsewhere)
    shown = await client.post(
        API, json=_declaration(elsewhere_number, "周外地", c), headers=prompted.headers
    )
    assert shown.status_code == 201, shown.text
    linked = await client.post(
        f"{API}/{shown.json()['id']}/verify", json={"version": 1}, headers=c.street_admin.headers
    )
    assert linked.json()["matched_member_id"] == elsewhere.id
    assert linked.json()["outflow_id"] is not None  # co-managed by the street now

    # The pocket member shows himself at the street: the candidate becomes his declaration.
    c.street_a.listed = True
    await db.flush()
    pocket = await f.resident_actor(db, settings)
    declared = await client.post(
        API,
        json={
            "name": "郑口袋",
            "id_number": unknown_number,
            "phone": f.unique_phone(),
            "home_org_name": "重庆市某社区党支部",
            "home_region_code": "500103",
            "employer": entity["name"],
            "arrived_on": "2025-05-01",
            "org_id": c.street_a.id,
        },
        headers=pocket.headers,
    )
    assert declared.status_code == 201, declared.text
    body = declared.json()
    assert (body["id"], body["status"], body["source"]) == (items[0]["id"], "pending", "census")
    verified = await client.post(
        f"{API}/{body['id']}/verify",
        json={"version": body["version"]},
        headers=c.street_admin.headers,
    )
    assert verified.json()["status"] == "verified"
    assert verified.json()["flags"] == ["transfer_suggested"]
    mine = await client.get("/api/v1/me/inflows", headers=pocket.headers)
    assert [i["id"] for i in mine.json()["items"]] == [body["id"]]


async def test_a_candidate_can_be_dismissed(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    entity = await create_entity(client, c.admin, c.street_b)
    census_round = await _round(client, c)
    await client.post(
        f"/api/v1/census/entities/{entity['id']}/surveys",
        json=survey_body(
            census_round["id"], 1, members=[{"name": "冯线索", "id_number": f.unique_id_number()}]
        ),
        headers=c.admin.headers,
    )
    candidate = (await client.get(API, headers=c.admin.headers)).json()["items"][0]
    # Not the street A admin's: 404.
    outside = await client.post(
        f"{API}/{candidate['id']}/reject",
        json={"version": 1, "note": "查无此人"},
        headers=c.street_admin.headers,
    )
    assert outside.status_code == 404
    dismissed = await client.post(
        f"{API}/{candidate['id']}/reject",
        json={"version": 1, "note": "已离职，查无此人"},
        headers=c.admin.headers,
    )
    assert dismissed.json()["status"] == "rejected"
    assert (await db.get(Inflow, candidate["id"])) is not None
