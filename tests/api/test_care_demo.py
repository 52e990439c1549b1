"""The demo care: two festival greetings scheduled, three hardship cases."""

from __future__ import annotations

from datetime import date

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.care import demo
from app.core.config import Settings
from app.demo import seed_demo
from app.identity.models import Account
from tests import factories as f
from tests.clock import Clock
from tests.support.care import API


async def _login(db: AsyncSession, settings: Settings, openid: str) -> dict[str, str]:
    account = (await db.execute(select(Account).where(Account.openid == openid))).scalar_one()
    return (await f.login(db, settings, account)).headers


async def test_demo_care(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    clock.set_day(date(2026, 12, 1))
    demo_settings = settings.model_copy(update={"demo_data": True})
    await seed_demo(db, demo_settings)
    await demo.seed(db, demo_settings)  # a second run adds nothing

    admin = await _login(db, settings, "demo-admin")
    campaigns = (await client.get(f"{API}/campaigns", headers=admin)).json()["items"]
    assert sorted((c["festival"], c["send_on"], c["status"]) for c in campaigns) == [
        ("mid_autumn", "2027-09-15", "scheduled"),
        ("spring_festival", "2027-02-06", "scheduled"),
    ]
    cases = (await client.get(f"{API}/cases", headers=admin)).json()["items"]
    assert sorted((c["member_name"], c["status"]) for c in cases) == [
        ("刘芳", "open"),
        ("王建国", "open"),
        ("陈志强", "closed"),
    ]
    stats = (await client.get(f"{API}/cases/stats", headers=admin)).json()
    assert stats["open"] == 2 and stats["closed"] == 1 and stats["funds_yuan"] == 3000.0

    member = await _login(db, settings, "demo-member")
    (mine,) = (await client.get(f"{API}/me/cases", headers=member)).json()["items"]
    detail = (await client.get(f"{API}/cases/{mine['id']}", headers=member)).json()
    assert detail["description"].startswith("腰椎手术") and detail["help"][0]["form"] == "visit"
