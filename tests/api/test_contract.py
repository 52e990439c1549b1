"""One contract, consistently: version on every transition, errors that name the field
and speak Chinese, one timestamp format, integer ids, defaults and 404s like elsewhere."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.ratelimit import wait_text
from app.mobility.models import Outflow
from app.study.models import StudyItem
from tests import factories as f
from tests.api.test_mobility import (
    World,
    approve,
    clock,
    outflow_body,
    register,
    world,
)
from tests.api.test_order_helpers import moved, order_body, submit
from tests.api.test_order_helpers import world as order_world
from tests.clock import Clock
from tests.conftest import problem

__all__ = ["clock", "world"]  # fixtures used by name

MACHINE_WORD = re.compile(r"[a-z]+[_:][a-z_:]+|\b(approve|reject|return|relocate|accept)\b")


async def _outflow_row(db: AsyncSession, outflow_id: int) -> tuple[str, int]:
    row = (await db.execute(select(Outflow).where(Outflow.id == outflow_id))).scalar_one()
    await db.refresh(row)
    return row.status, row.version


async def test_every_outflow_transition_requires_the_version_me_hands_out(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    me = (await client.get("/api/v1/me", headers=world.member.headers)).json()
    summary = me["active_outflow"]
    assert summary["id"] == o["id"] and summary["version"] == o["version"]
    base = f"/api/v1/outflows/{o['id']}"
    bodies: dict[str, dict[str, Any]] = {
        "destination-checkin": {"org_id": world.destination.id},
        "relocate": {
            "destination_region_code": "440104",
            "destination_address": "广州市越秀区某街道",
        },
        "return": {"returned_on": "2026-03-02"},
    }
    for action, body in bodies.items():
        missing = problem(
            await client.post(f"{base}/{action}", json=body, headers=world.member.headers),
            422,
            "validation.failed",
        )
        assert [e["field"] for e in missing["errors"]] == ["version"], action
        stale = await client.post(
            f"{base}/{action}", json={**body, "version": 1}, headers=world.member.headers
        )
        problem(stale, 409, "conflict.stale_version")
    assert await _outflow_row(db, o["id"]) == ("active", summary["version"])
    done = await client.post(
        f"{base}/return",
        json={**bodies["return"], "version": summary["version"]},
        headers=world.member.headers,
    )
    assert done.status_code == 200, done.text
    assert await _outflow_row(db, o["id"]) == ("returned", summary["version"] + 1)


async def test_rating_an_order_requires_its_version(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await order_world(db, settings)
    order = await submit(client, w.submitter, w.village)
    for action in ("accept", "start", "resolve"):
        order = await moved(client, w.village_admin, order, action)
    url = f"/api/v1/orders/{order['id']}/rating"
    missing = problem(
        await client.post(url, json={"score": 5}, headers=w.submitter.headers),
        422,
        "validation.failed",
    )
    assert [e["field"] for e in missing["errors"]] == ["version"]
    still = (await client.get(f"/api/v1/orders/{order['id']}", headers=w.submitter.headers)).json()
    assert still["status"] == "resolved" and still["rating"] is None
    rated = await client.post(
        url, json={"score": 5, "version": order["version"]}, headers=w.submitter.headers
    )
    assert rated.status_code == 200 and rated.json()["status"] == "closed"


async def test_cross_field_errors_name_the_field(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession, settings: Settings
) -> None:
    bad = problem(
        await client.post(
            "/api/v1/outflows",
            json=outflow_body(departed_on="2026-03-01", expected_return_on="2026-02-01"),
            headers=world.member.headers,
        ),
        422,
        "validation.failed",
    )
    assert bad["errors"] == [
        {
            "field": "expected_return_on",
            "location": "body",
            "type": "value_error",
            "message": "预计返回日期不能早于外出日期",
        }
    ]
    assert (await db.execute(select(func.count()).select_from(Outflow))).scalar_one() == 0

    w = await order_world(db, settings)
    latitude_only = order_body(w.village)
    del latitude_only["lon"]
    half = problem(
        await client.post("/api/v1/orders", json=latitude_only, headers=w.submitter.headers),
        422,
        "validation.failed",
    )
    assert [e["field"] for e in half["errors"]] == ["lon"]


async def test_common_mistakes_get_specific_chinese_messages(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await order_world(db, settings)
    swapped = problem(
        await client.post(
            "/api/v1/orders",
            json=order_body(w.village, lat=106.4405, lon=30.5392),
            headers=w.submitter.headers,
        ),
        422,
        "validation.failed",
    )
    assert [e["field"] for e in swapped["errors"]] == ["lat"]
    assert "填反" in swapped["detail"] and "填反" in swapped["errors"][0]["message"]

    naive = problem(
        await client.post(
            "/api/v1/activities",
            json={
                "title": "主题党日",
                "org_id": w.village.id,
                "kind": "party_class",
                "starts_at": "2026-12-05T09:00:00",
                "ends_at": "2026-12-05T11:00:00+08:00",
                "checkin_opens_at": "2026-12-05T08:30:00+08:00",
                "checkin_closes_at": "2026-12-05T10:00:00+08:00",
                "online": True,
            },
            headers=w.village_admin.headers,
        ),
        422,
        "validation.failed",
    )
    assert naive["errors"][0]["field"] == "starts_at"
    assert "时区" in naive["detail"] and "+08:00" in naive["detail"]

    order = await submit(client, w.submitter, w.village)
    order = await moved(client, w.village_admin, order, "accept")
    order = await moved(client, w.village_admin, order, "start")
    decimals = problem(
        await client.post(
            f"/api/v1/orders/{order['id']}/transitions",
            json={
                "action": "resolve",
                "version": order["version"],
                "note": "已修好",
                "volunteer_member_id": w.volunteer.member_id,
                "hours": 2.25,
            },
            headers=w.village_admin.headers,
        ),
        422,
        "validation.failed",
    )
    assert decimals["errors"][0]["field"] == "hours"
    assert decimals["detail"] == "小数位数过多（最多 1 位）"


async def test_invalid_transitions_speak_chinese_and_keep_machine_names_aside(
    client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    again = problem(
        await client.post(
            f"/api/v1/outflows/{o['id']}/approve",
            json={"version": o["version"]},
            headers=world.branch_admin.headers,
        ),
        409,
        "outflow.invalid_transition",
    )
    assert again["state"] == "active:none" and again["action"] == "approve"
    assert again["detail"] == "当前状态为“已外出、尚未报到”，不能审批通过"
    assert not MACHINE_WORD.search(again["detail"])


async def test_rate_limit_says_minutes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    resident = await f.resident_actor(db, settings)
    body = {"name": "查无此人", "id_number": f.unique_id_number()}
    answers = [
        await client.post("/api/v1/me/bind", json=body, headers=resident.headers) for _ in range(6)
    ]
    assert [a.status_code for a in answers[:5]] == [404] * 5
    limited = problem(answers[5], 429, "rate_limited")
    seconds = int(answers[5].headers["Retry-After"])
    # The fixed 15-minute window may be about to end: the wording follows the wait.
    assert limited["retry_after_s"] == seconds and 0 < seconds <= 900
    assert limited["detail"] == f"操作过于频繁，请{wait_text(seconds)}后再试"
    if seconds >= 60:
        assert re.fullmatch(r"操作过于频繁，请 \d+ 分钟后再试", limited["detail"])
    assert wait_text(683) == " 12 分钟" and wait_text(30) == " 30 秒"
    assert wait_text(3600) == " 1 小时" and wait_text(60) == " 1 分钟"


async def test_notification_data_ids_are_integers(
    client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    inbox = (await client.get("/api/v1/me/notifications", headers=world.member.headers)).json()
    approved = [n for n in inbox["items"] if n["template"] == "outflow_approved"]
    assert approved and approved[0]["data"]["outflow_id"] == o["id"]
    assert isinstance(approved[0]["data"]["outflow_id"], int)


async def test_hong_kong_macao_taiwan_take_gb_t_2260_codes(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    vendor = problem(
        await client.post(
            "/api/v1/outflows",
            json=outflow_body(destination_region_code="810001"),
            headers=world.member.headers,
        ),
        422,
        "validation.failed",
    )
    assert [e["field"] for e in vendor["errors"]] == ["destination_region_code"]
    assert (await db.execute(select(func.count()).select_from(Outflow))).scalar_one() == 0
    created = await register(client, world.member, destination_region_code="810000")
    assert created["destination_region_name"] == "香港特别行政区"


async def test_study_item_defaults_to_the_admins_organisation(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await f.org(db, "默认组织县委")
    other = await f.org(db, "默认组织外县")
    admin = await f.admin_actor(db, settings, county)
    both = await f.admin_actor(db, settings, county, name="两地书记")
    await f.grant(db, both.member, other)  # type: ignore[arg-type]
    county_id = county.id
    await db.commit()
    body = {"title": "党章学习", "kind": "article", "url": "https://e.org/a", "min_seconds": 60}
    created = await client.post("/api/v1/study/items", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    assert created.json()["org_id"] == county_id
    row = await db.get(StudyItem, created.json()["id"])
    assert row is not None and row.org_id == county_id
    # Administering two organisations, he must say which.
    problem(
        await client.post("/api/v1/study/items", json=body, headers=both.headers),
        422,
        "study.org_required",
    )


async def test_leaderboard_outside_scope_is_404_for_every_caller(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await f.org(db, "榜单县委")
    resident = await f.resident_actor(db, settings)
    member = await f.member_actor(db, settings, await f.org(db, "榜单外县"))
    for actor in (resident, member):
        problem(
            await client.get(
                "/api/v1/study/leaderboard", params={"org_id": county.id}, headers=actor.headers
            ),
            404,
            "study.org_not_found",
        )
