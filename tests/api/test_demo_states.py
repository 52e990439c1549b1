"""The demo data shows every state and flag a trainer needs, seen through the API with the
demo logins (WeChat simulator codes), as ``make run`` leaves it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.demo import seed_demo

LOGIN = "/api/v1/auth/wechat/login"


async def login(client: httpx.AsyncClient, code: str) -> dict[str, str]:
    response = await client.post(LOGIN, json={"code": code})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def get(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Any:
    response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def names(client: httpx.AsyncClient, query: str, headers: dict[str, str]) -> set[str]:
    page = await get(client, f"/api/v1/outflows?limit=100&{query}", headers)
    return {item["member"]["name"] for item in page["items"]}


@pytest.fixture
async def seeded(db: AsyncSession, settings: Settings) -> None:
    on = settings.model_copy(update={"demo_data": True, "env": "dev"})
    first = await seed_demo(db, on)
    assert first.startswith("demo data created")
    assert (await seed_demo(db, on)).startswith("demo data already present")


async def test_the_outflow_ledger_has_every_flag_and_state(
    client: httpx.AsyncClient, seeded: None
) -> None:
    county = await login(client, "demo-admin.1")
    assert await names(client, "flag=checkin_overdue", county) == {"杨国华", "陈国栋"}
    assert await names(client, "flag=report_overdue", county) == {"周丽娟", "陈国栋"}
    assert await names(client, "flag=lost_contact", county) == {"陈国栋"}
    assert await names(client, "flag=transfer_suggested", county) == {"陈国栋", "何文斌"}
    assert await names(client, "status=pending", county) == {"刘芳"}
    assert await names(client, "status=returned", county) == {"罗永强"}
    assert await names(client, "status=rejected", county) == {"谢春花"}
    assert await names(client, "status=withdrawn", county) == {"刘芳"}
    assert await names(client, "status=cancelled", county) == {"罗永强"}
    assert await names(client, "status=withdrawn", county) == {"刘芳"}
    assert await names(client, "status=cancelled", county) == {"罗永强"}

    page = await get(client, "/api/v1/outflows?limit=100&status=active", county)
    checkin = {item["member"]["name"]: item["checkin"]["status"] for item in page["items"]}
    assert checkin["林小梅"] == "pending" and checkin["郑雪梅"] == "refused"
    assert checkin["王建国"] == "accepted" and checkin["杨国华"] == "none"
    clean = next(item for item in page["items"] if item["member"]["name"] == "王建国")
    assert clean["flags"] == [] and clean["last_report_at"] is not None
    lost = next(item for item in page["items"] if item["member"]["name"] == "陈国栋")
    assert lost["lost_contact_escalated_at"] is not None

    # The escalation reached the county's inbox; the rejection keeps its reason.
    inbox = await get(client, "/api/v1/me/notifications?limit=100", county)
    assert "outflow_lost_contact" in {m["template"] for m in inbox["items"]}
    rejected = await get(client, "/api/v1/outflows?status=rejected", county)
    assert rejected["items"][0]["reject_reason"]

    # The member the demo walk starts with waits for the approval.
    leaving = await get(client, "/api/v1/me/outflow", await login(client, "demo-leaving.1"))
    assert leaving["status"] == "pending"
    assert [a["code"] for a in leaving["next_actions"]] == ["await_approval"]
    # The member who has been away for half a year is told to transfer his relation.
    mobile = await get(client, "/api/v1/me/outflow", await login(client, "demo-mobile.1"))
    assert mobile["flags"] == ["transfer_suggested"]
    assert "transfer" in {a["code"] for a in mobile["next_actions"]}


async def test_orders_are_in_every_state(client: httpx.AsyncClient, seeded: None) -> None:
    county = await login(client, "demo-admin.1")
    page = await get(client, "/api/v1/orders?limit=100", county)
    orders = page["items"]
    assert {o["status"] for o in orders} == {
        "submitted",
        "accepted",
        "in_progress",
        "resolved",
        "closed",
        "rejected",
        "cancelled",
    }
    overdue = [o for o in orders if o["overdue"]]
    assert len(overdue) == 1 and overdue[0]["escalated_at"] is not None
    awaiting_rating = [o for o in orders if o["status"] == "resolved"]
    assert len(awaiting_rating) == 1 and awaiting_rating[0]["rating"] is None
    closed = [o for o in orders if o["status"] == "closed"]
    assert sorted(o["rating"] is None for o in closed) == [False, True]  # rated, auto-closed

    timelines = [
        [e["action"] for e in (await get(client, f"/api/v1/orders/{o['id']}", county))["timeline"]]
        for o in orders
    ]
    assert any("transfer" in t and t[-1] == "arrive" for t in timelines)
    assert any(t[-1] == "close" for t in timelines)
    assert any(t[-1] == "escalate" for t in timelines)


async def test_activities_include_one_open_now_and_a_roll_with_an_absence(
    client: httpx.AsyncClient, seeded: None
) -> None:
    secretary = await login(client, "demo-secretary.1")
    page = await get(client, "/api/v1/activities?limit=100", secretary)
    by_title = {a["title"]: a for a in page["items"]}
    open_now = by_title["志愿服务：村道环境整治"]
    qr = await get(client, f"/api/v1/activities/{open_now['id']}/qr", secretary)
    assert qr["qr_token"]
    roll = await get(
        client,
        f"/api/v1/activities/{by_title['支部党员大会：讨论发展党员']['id']}/attendance",
        secretary,
    )
    assert [m["name"] for m in roll["attended"]] == ["张秀英"]
    assert {m["name"] for m in roll["signed_up"]} == {"张秀英", "杨国华"}
    assert "杨国华" in {m["name"] for m in roll["absent"]}
