"""Greeting campaigns (节日问候): festival days from the calendar package, the send by
two racing workers reaching each member of the audience exactly once, the counts."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.care import repository as care_repo
from app.care.models import CareCampaign, CareCampaignRecipient
from app.core.config import Settings
from app.core.db import make_sessionmaker
from app.identity.models import Account
from app.notify import repository as notify_repo
from app.notify.models import Notification
from app.notify.scheduler import REGISTRY
from app.notify.worker import Worker, WorkerConfig
from app.wechat.simulator import WeChatSimulator
from tests import factories as f
from tests.clock import Clock
from tests.conftest import problem
from tests.support.care import API, make_mobile

CARE_JOB = next(job for job in REGISTRY if job.name == "care.send_due_campaigns")


async def test_festival_days_come_from_the_lunar_calendar(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    clock.set_day(date(2026, 12, 1))
    county = await f.org(db, "岳池县委")
    admin = await f.admin_actor(db, settings, county)
    body = {
        "org_id": county.id,
        "title": "中秋问候",
        "message": "月圆人团圆",
        "audience": "mobile_members",
    }

    # No year: the next Mid-Autumn on or after today (2026's, 09-25, is past).
    created = await client.post(
        f"{API}/campaigns", json={**body, "festival": "mid_autumn"}, headers=admin.headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["send_on"] == "2027-09-15"
    assert created.json()["status"] == "scheduled"
    row = await db.get(CareCampaign, created.json()["id"])
    assert row is not None and row.send_on == date(2027, 9, 15) and row.festival == "mid_autumn"

    spring = await client.post(
        f"{API}/campaigns",
        json={**body, "festival": "spring_festival", "year": 2027},
        headers=admin.headers,
    )
    assert spring.json()["send_on"] == "2027-02-06"
    dragon = await client.post(
        f"{API}/campaigns",
        json={**body, "festival": "dragon_boat", "year": 2027},
        headers=admin.headers,
    )
    assert dragon.json()["send_on"] == "2027-06-09"
    dated = await client.post(
        f"{API}/campaigns", json={**body, "send_on": "2026-12-01"}, headers=admin.headers
    )
    assert dated.json()["send_on"] == "2026-12-01"

    before = (await db.execute(select(func.count()).select_from(CareCampaign))).scalar_one()
    refused = {
        "care.send_on_past": {**body, "festival": "mid_autumn", "year": 2026},
        "care.send_on_required": body,
        "care.year_without_festival": {**body, "send_on": "2027-01-01", "year": 2027},
        "care.send_on_conflict": {**body, "festival": "lantern", "send_on": "2027-02-20"},
    }
    for code, bad in refused.items():
        problem(await client.post(f"{API}/campaigns", json=bad, headers=admin.headers), 422, code)
    past = await client.post(
        f"{API}/campaigns", json={**body, "send_on": "2026-11-30"}, headers=admin.headers
    )
    assert problem(past, 422, "care.send_on_past")["errors"][0]["field"] == "send_on"
    problem(
        await client.post(
            f"{API}/campaigns", json={**body, "festival": "qingming"}, headers=admin.headers
        ),
        422,
        "validation.failed",
    )
    after = (await db.execute(select(func.count()).select_from(CareCampaign))).scalar_one()
    assert after == before == 4

    listed = await client.get(
        f"{API}/campaigns", params={"org_id": county.id}, headers=admin.headers
    )
    assert [c["send_on"] for c in listed.json()["items"]] == [
        "2026-12-01",
        "2027-06-09",
        "2027-02-06",
        "2027-09-15",
    ]
    first = listed.json()["items"][-1]
    assert first["festival_name"] == "中秋节" and first["recipients"] == 0


async def test_campaigns_of_other_subtrees_are_not_found(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    clock.set_day(date(2026, 12, 1))
    county_a = await f.org(db, "A县委")
    county_b = await f.org(db, "B县委")
    admin_a = await f.admin_actor(db, settings, county_a)
    admin_b = await f.admin_actor(db, settings, county_b)
    member = await f.member_actor(db, settings, county_a)
    body = {
        "org_id": county_a.id,
        "title": "问候",
        "message": "天冷加衣",
        "audience": "all_members",
        "send_on": "2026-12-20",
    }
    created = (await client.post(f"{API}/campaigns", json=body, headers=admin_a.headers)).json()

    problem(
        await client.get(f"{API}/campaigns/{created['id']}", headers=admin_b.headers),
        404,
        "care.campaign_not_found",
    )
    problem(
        await client.get(
            f"{API}/campaigns", params={"org_id": county_a.id}, headers=admin_b.headers
        ),
        404,
        "care.org_not_found",
    )
    assert (await client.get(f"{API}/campaigns", headers=admin_b.headers)).json()["items"] == []
    problem(
        await client.post(f"{API}/campaigns", json=body, headers=admin_b.headers),
        404,
        "care.org_not_found",
    )
    problem(
        await client.post(
            f"{API}/campaigns/{created['id']}/cancel", json={"version": 1}, headers=admin_b.headers
        ),
        404,
        "care.campaign_not_found",
    )
    problem(
        await client.get(f"{API}/campaigns", headers=member.headers), 403, "auth.admin_required"
    )
    problem(await client.get(f"{API}/campaigns"), 401, "auth.missing_token")
    problem(await client.get(f"{API}/campaigns/{created['id']}"), 401, "auth.missing_token")

    # Cancel before sending; once cancelled (or sent), no more moves.
    stale = await client.post(
        f"{API}/campaigns/{created['id']}/cancel", json={"version": 9}, headers=admin_a.headers
    )
    problem(stale, 409, "conflict.stale_version")
    cancelled = await client.post(
        f"{API}/campaigns/{created['id']}/cancel", json={"version": 1}, headers=admin_a.headers
    )
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["version"] == 2
    again = await client.post(
        f"{API}/campaigns/{created['id']}/cancel", json={"version": 2}, headers=admin_a.headers
    )
    assert problem(again, 409, "care.campaign_invalid_transition")["state"] == "cancelled"


def _worker(app: FastAPI, engine: AsyncEngine, name: str) -> Worker:
    return Worker(
        make_sessionmaker(engine),
        settings=app.state.settings,
        wechat=app.state.wechat,
        engine=engine,
        config=WorkerConfig(),
        registry=(CARE_JOB,),
        name=name,
    )


async def test_mid_autumn_greeting_reaches_each_mobile_member_once_with_two_workers(
    committing_app: FastAPI,
    committing_client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    clock: Clock,
) -> None:
    clock.set_day(date(2026, 12, 1))
    simulator: WeChatSimulator = committing_app.state.wechat_simulator
    async with make_sessionmaker(engine)() as db:
        county = await f.org(db, "岳池县委")
        village = await f.org(db, "花园村党支部", parent=county)
        elsewhere = await f.org(db, "邻县县委")
        admin = await f.admin_actor(db, settings, county)
        subscribed = [await f.member_actor(db, settings, village, f"外出党员{i}") for i in range(3)]
        unsubscribed = await f.member_actor(db, settings, village, "未订阅党员")
        no_account = await f.member(db, settings, village, "未绑定党员")
        at_home = await f.member_actor(db, settings, village, "在家党员")
        other = await f.member_actor(db, settings, elsewhere, "邻县外出党员")
        for actor in (*subscribed, unsubscribed, at_home, other):
            assert actor.member is not None
            if actor is not at_home:
                await make_mobile(db, settings, actor.member)
        await make_mobile(db, settings, no_account)
        for actor in subscribed:
            await notify_repo.record_decision(db, actor.account.id, "care_greeting", True)
        await db.commit()

    body = {
        "org_id": county.id,
        "title": "中秋节问候",
        "message": "月圆人团圆，家乡党组织挂念您",
        "audience": "mobile_members",
        "festival": "mid_autumn",
    }
    created = (
        await committing_client.post(f"{API}/campaigns", json=body, headers=admin.headers)
    ).json()
    assert created["send_on"] == "2027-09-15"
    cancelled = (
        await committing_client.post(
            f"{API}/campaigns", json={**body, "title": "取消的问候"}, headers=admin.headers
        )
    ).json()
    await committing_client.post(
        f"{API}/campaigns/{cancelled['id']}/cancel", json={"version": 1}, headers=admin.headers
    )

    first, second = _worker(committing_app, engine, "w1"), _worker(committing_app, engine, "w2")
    # The day before, and the festival's morning before 09:00: nothing goes out.
    for day, hour in ((date(2027, 9, 14), 20), (date(2027, 9, 15), 8)):
        clock.set_day(day, hour_shanghai=hour)
        await asyncio.gather(first.scheduler.tick(), second.scheduler.tick())
    assert simulator.sent == []

    clock.set_day(date(2027, 9, 15), hour_shanghai=10)
    reports = await asyncio.gather(first.scheduler.tick(), second.scheduler.tick())
    assert sorted(r[CARE_JOB.name] for r in reports)[1] == "ran"
    await asyncio.gather(first.drain(), second.drain(), first.drain(), second.drain())
    # Later runs (the next quarter hour, another worker) find nothing left to send.
    clock.set_day(date(2027, 9, 15), hour_shanghai=11)
    await asyncio.gather(first.scheduler.tick(), second.scheduler.tick())
    await asyncio.gather(first.drain(), second.drain())

    mobile_ids = {a.member.id for a in (*subscribed, unsubscribed) if a.member} | {no_account.id}
    async with AsyncSession(engine) as db:
        recipients = (
            (
                await db.execute(
                    select(CareCampaignRecipient.member_id).where(
                        CareCampaignRecipient.campaign_id == created["id"]
                    )
                )
            )
            .scalars()
            .all()
        )
        assert sorted(recipients) == sorted(mobile_ids)
        # A second expansion of the same campaign adds no one: the primary key holds.
        assert (
            await care_repo.add_recipients(db, created["id"], "mobile_members", county.path) == []
        )
        await db.rollback()
        inbox = (
            await db.execute(
                select(Account.member_id, func.count())
                .join(Notification, Notification.account_id == Account.id)
                .where(Notification.template == "care_greeting")
                .group_by(Account.member_id)
            )
        ).all()
        assert dict(inbox) == {a.member.id: 1 for a in (*subscribed, unsubscribed) if a.member}
        never = (
            await db.execute(
                select(func.count())
                .select_from(CareCampaignRecipient)
                .where(CareCampaignRecipient.campaign_id == cancelled["id"])
            )
        ).scalar_one()
        assert never == 0
    pushed = sorted(s["touser"] for s in simulator.sent)
    assert pushed == sorted(a.account.openid for a in subscribed)

    reader = subscribed[0]
    mine = (await committing_client.get("/api/v1/me/notifications", headers=reader.headers)).json()[
        "items"
    ]
    greeting = next(n for n in mine if n["template"] == "care_greeting")
    assert greeting["title"] == "中秋节问候" and greeting["data"]["campaign_id"] == created["id"]
    await committing_client.post(
        f"/api/v1/me/notifications/{greeting['id']}/read", headers=reader.headers
    )

    shown = (
        await committing_client.get(f"{API}/campaigns/{created['id']}", headers=admin.headers)
    ).json()
    assert shown["status"] == "sent" and shown["sent_at"] is not None
    counts = {
        k: shown[k]
        for k in ("recipients", "sent", "read", "unsubscribed", "pending", "failed", "no_account")
    }
    assert counts == {
        "recipients": 5,
        "sent": 3,
        "read": 1,
        "unsubscribed": 1,
        "pending": 0,
        "failed": 0,
        "no_account": 1,
    }
    late = await committing_client.post(
        f"{API}/campaigns/{created['id']}/cancel",
        json={"version": shown["version"]},
        headers=admin.headers,
    )
    problem(late, 409, "care.campaign_invalid_transition")


async def test_audiences_all_members_and_hardship(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    from app.care.campaigns import send_due_campaigns

    clock.set_day(date(2026, 12, 1))
    county = await f.org(db, "岳池县委")
    village = await f.org(db, "花园村党支部", parent=county)
    admin = await f.admin_actor(db, settings, county)
    people = [await f.member_actor(db, settings, village, f"党员{i}") for i in range(3)]
    await f.member_actor(db, settings, await f.org(db, "邻县县委"), "邻县党员")
    assert people[0].member is not None
    await client.post(
        f"{API}/cases", json={"kind": "illness", "description": "住院"}, headers=people[0].headers
    )
    closed = (
        await client.post(
            f"{API}/cases",
            json={"kind": "other", "description": "已解决"},
            headers=people[1].headers,
        )
    ).json()
    await client.post(
        f"{API}/cases/{closed['id']}/close", json={"version": 1}, headers=admin.headers
    )
    ids = {}
    for audience in ("all_members", "hardship"):
        created = await client.post(
            f"{API}/campaigns",
            json={
                "org_id": village.id,
                "title": "问候",
                "message": "天冷加衣",
                "audience": audience,
                "send_on": "2026-12-01",
            },
            headers=admin.headers,
        )
        ids[audience] = created.json()["id"]

    clock.set_day(date(2026, 12, 1), hour_shanghai=8)
    assert await send_due_campaigns(db, clock.now) == 0
    clock.set_day(date(2026, 12, 1), hour_shanghai=9)
    assert await send_due_campaigns(db, clock.now) == 3 + 1
    assert await send_due_campaigns(db, clock.now) == 0
    reached = {
        audience: set(
            (
                await db.execute(
                    select(CareCampaignRecipient.member_id).where(
                        CareCampaignRecipient.campaign_id == campaign_id
                    )
                )
            ).scalars()
        )
        for audience, campaign_id in ids.items()
    }
    members = {p.member.id for p in people if p.member}
    assert reached == {"all_members": members, "hardship": {people[0].member.id}}
    shown = (await client.get(f"{API}/campaigns/{ids['hardship']}", headers=admin.headers)).json()
    assert (shown["status"], shown["recipients"], shown["pending"]) == ("sent", 1, 1)
