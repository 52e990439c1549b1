"""The whole life cycle on the one clock: nobody waits, the clock moves.

A member from approval through ``checkin_overdue``, ``report_overdue`` and
``lost_contact`` to the escalation to the county; an order through its SLA to the
escalation and, once resolved, to the automatic close. Everything goes through the API
and the real scheduler (its own connections and commits, as in the worker), with the
app's clock moved forward the way ``APP_CLOCK_OFFSET`` moves it for a tester
(docs/demo-walk.md is the same walk by hand).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.db import make_sessionmaker
from app.notify.scheduler import Scheduler
from tests import factories
from tests.clock import Clock
from tests.factories import Actor

OUTFLOWS = "/api/v1/outflows"


@dataclass
class Cast:
    member: Actor
    secretary: Actor
    county_admin: Actor
    resident: Actor
    branch_id: int


@pytest.fixture
async def cast(engine: AsyncEngine, settings: Settings) -> Cast:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        county = await factories.org(s, "演练县委", region_code="440883")
        branch = await factories.org(s, "演练村党支部", parent=county, region_code="440883")
        people = Cast(
            member=await factories.member_actor(s, settings, branch, "陈远行"),
            secretary=await factories.admin_actor(s, settings, branch, "branch_admin", "张书记"),
            county_admin=await factories.admin_actor(s, settings, county, name="李部长"),
            resident=await factories.resident_actor(s, settings),
            branch_id=branch.id,
        )
        await s.commit()
    return people


@pytest.fixture
def scheduler(committing_app: FastAPI, engine: AsyncEngine, settings: Settings) -> Scheduler:
    """The worker's scheduler; ``tick()`` without a time reads the app's clock."""
    return Scheduler(
        make_sessionmaker(engine),
        settings=settings,
        wechat=committing_app.state.wechat,
        engine=engine,
    )


async def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def flagged(client: httpx.AsyncClient, admin: Actor, flag: str) -> list[int]:
    page = await ok(await client.get(f"{OUTFLOWS}?flag={flag}", headers=admin.headers))
    return [item["id"] for item in page["items"]]


async def inbox(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    page = await ok(await client.get("/api/v1/me/notifications?limit=100", headers=actor.headers))
    return list(page["items"])


def templates(messages: list[dict[str, Any]]) -> list[str]:
    return [m["template"] for m in messages]


async def test_a_member_turns_overdue_lost_and_is_escalated(
    committing_client: httpx.AsyncClient, cast: Cast, clock: Clock, scheduler: Scheduler
) -> None:
    client, member, secretary = committing_client, cast.member, cast.secretary
    # Tomorrow 10:00 in Shanghai (after the 09:00 of the daily jobs), then only forward.
    clock.set_day(clock.today() + timedelta(days=1), hour_shanghai=10)
    day0 = clock.today()
    registered = await ok(
        await client.post(
            OUTFLOWS,
            json={
                "destination_region_code": "440106",
                "destination_address": "广东省广州市天河区天河路 385 号",
                "reason": "work",
                "departed_on": day0.isoformat(),
                "expected_return_on": (day0 + timedelta(days=365)).isoformat(),
                "employer": "广州某物流公司",
                "contact_phone": "13912345678",
            },
            headers=member.headers,
        )
    )
    outflow_id = registered["id"]
    approved = await ok(
        await client.post(
            f"{OUTFLOWS}/{outflow_id}/approve", json={"version": 1}, headers=secretary.headers
        )
    )
    assert (
        approved["status"] == "active"
        and approved["due"]["checkin_due_on"] == (day0 + timedelta(days=30)).isoformat()
    )
    assert await flagged(client, secretary, "checkin_overdue") == []

    # Day 30 is the last day in time; on day 31 the check-in is overdue.
    clock.advance(days=30)
    assert await flagged(client, secretary, "checkin_overdue") == []
    clock.advance(days=1)
    assert await flagged(client, secretary, "checkin_overdue") == [outflow_id]
    mine = await ok(await client.get("/api/v1/me/outflow", headers=member.headers))
    assert mine["flags"] == ["checkin_overdue"]
    checkin_action = next(a for a in mine["next_actions"] if a["code"] == "checkin")
    assert "已逾期 1 天" in checkin_action["text"]

    # Day 84: the report falls due within a week; the morning job reminds him once.
    clock.advance(days=84 - 31)
    ran = await scheduler.tick()
    assert ran["mobility.remind_reports_due"] == "ran"
    assert templates(await inbox(client, member)).count("report_due") == 1

    # Day 91: the report is overdue too (due on day 90).
    clock.advance(days=91 - 84)
    assert await flagged(client, secretary, "report_overdue") == [outflow_id]
    assert await flagged(client, secretary, "lost_contact") == []

    # Day 181: no contact since the approval for more than 180 days: lost.
    clock.advance(days=90)
    assert await flagged(client, secretary, "lost_contact") == [outflow_id]
    mine = await ok(await client.get("/api/v1/me/outflow", headers=member.headers))
    assert set(mine["flags"]) == {"checkin_overdue", "report_overdue", "lost_contact"}
    assert "lost_contact" not in templates(await inbox(client, cast.county_admin))

    # The morning job escalates him to the committee above his branch, once.
    ran = await scheduler.tick()
    assert ran["mobility.escalate_lost_contact"] == "ran"
    county_inbox = await inbox(client, cast.county_admin)
    assert templates(county_inbox).count("outflow_lost_contact") == 1
    warning = next(m for m in county_inbox if m["template"] == "outflow_lost_contact")
    assert "陈远行" in warning["body"]
    row = await ok(await client.get(f"{OUTFLOWS}/{outflow_id}", headers=secretary.headers))
    assert row["lost_contact_escalated_at"] is not None
    clock.advance(days=1)
    assert (await scheduler.tick())["mobility.escalate_lost_contact"] == "ran"
    assert templates(await inbox(client, cast.county_admin)).count("outflow_lost_contact") == 1


async def test_an_order_passes_its_sla_is_escalated_and_closes_by_itself(
    committing_client: httpx.AsyncClient, cast: Cast, clock: Clock, scheduler: Scheduler
) -> None:
    client, resident, secretary = committing_client, cast.resident, cast.secretary
    clock.set_day(clock.today() + timedelta(days=1), hour_shanghai=10)
    order = await ok(
        await client.post(
            "/api/v1/orders",
            json={
                "category": "policy_consulting",  # 8 h to accept, 48 h to resolve
                "title": "咨询流动党员活动证办理",
                "description": "想了解在外务工如何办理流动党员活动证。",
                "contact_phone": "13912345678",
                "org_id": cast.branch_id,
            },
            headers=resident.headers,
        )
    )
    url = f"/api/v1/orders/{order['id']}"
    assert order["status"] == "submitted" and order["overdue"] is False

    # Within the 8 hours: nothing to escalate.
    clock.advance(hours=7, minutes=59)
    assert (await scheduler.tick())["orders.escalate_overdue"] == "ran"
    assert (await ok(await client.get(url, headers=secretary.headers)))["escalated_at"] is None

    # Past the acceptance deadline: overdue, and the next run escalates it to the county.
    clock.advance(minutes=16)
    detail = await ok(await client.get(url, headers=secretary.headers))
    assert detail["overdue"] is True and detail["escalated_at"] is None
    assert (await scheduler.tick())["orders.escalate_overdue"] == "ran"
    detail = await ok(await client.get(url, headers=secretary.headers))
    assert detail["escalated_at"] is not None
    assert [e["action"] for e in detail["timeline"]][-1] == "escalate"
    county_inbox = await inbox(client, cast.county_admin)
    assert any(m["title"] == "诉求超时督办" for m in county_inbox)

    # The branch takes it up and answers; the resident does not rate it.
    for action, note in (("accept", None), ("start", None), ("resolve", "已电话说明办理流程")):
        body: dict[str, Any] = {"action": action, "version": detail["version"]}
        if note:
            body["note"] = note
        detail = await ok(
            await client.post(f"{url}/transitions", json=body, headers=secretary.headers)
        )
    assert detail["status"] == "resolved"

    # Within the seven days after the resolution it stays open to a rating ...
    clock.advance(days=6, hours=23)
    assert (await scheduler.tick())["orders.auto_close_resolved"] == "ran"
    assert (await ok(await client.get(url, headers=resident.headers)))["status"] == "resolved"
    # ... and the hourly job closes it once they have passed.
    clock.advance(hours=1)
    assert (await scheduler.tick())["orders.auto_close_resolved"] == "ran"
    detail = await ok(await client.get(url, headers=resident.headers))
    assert detail["status"] == "closed" and detail["closed_at"] is not None
    assert detail["rating"] is None
    assert [e["action"] for e in detail["timeline"]][-1] == "close"


async def test_two_moves_in_one_instant_keep_a_known_updated_at(
    committing_client: httpx.AsyncClient, cast: Cast, clock: Clock
) -> None:
    """A stopped clock gives two moves the same instant: ``updated_at`` does not change,
    and its on-update value must still be known after the flush (no lazy load, no 500)."""
    client = committing_client
    clock.set_day(clock.today() + timedelta(days=1), hour_shanghai=10)
    order = await ok(
        await client.post(
            "/api/v1/orders",
            json={
                "category": "life_support",
                "title": "独居老人家中漏水",
                "description": "请帮忙联系维修。",
                "contact_phone": "13912345678",
                "org_id": cast.branch_id,
            },
            headers=cast.resident.headers,
        )
    )
    for action in ("accept", "start"):
        order = await ok(
            await client.post(
                f"/api/v1/orders/{order['id']}/transitions",
                json={"action": action, "version": order["version"]},
                headers=cast.secretary.headers,
            )
        )
    assert order["status"] == "in_progress" and order["version"] == 3
    assert order["updated_at"] == order["submitted_at"]
