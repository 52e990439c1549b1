"""The demo census: a county's entities, a finished and a running round."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.census import demo
from app.census.models import CensusEntity
from app.core.config import Settings
from app.demo import seed_demo
from app.identity.models import Account
from tests import factories as f
from tests.support.census import census_day  # noqa: F401 - autouse: 2026-12-01


async def _login(db: AsyncSession, settings: Settings, openid: str) -> dict[str, str]:
    account = (await db.execute(select(Account).where(Account.openid == openid))).scalar_one()
    return (await f.login(db, settings, account)).headers


async def test_demo_census(client: httpx.AsyncClient, db: AsyncSession, settings: Settings) -> None:
    demo_settings = settings.model_copy(update={"demo_data": True})
    await seed_demo(db, demo_settings)
    await demo.seed(db, demo_settings)  # a second run adds nothing
    entities = (await db.execute(select(CensusEntity.id))).scalars().all()
    assert len(entities) == demo.ENTITIES

    admin = await _login(db, settings, "demo-admin")
    rounds = (await client.get("/api/v1/census/rounds", headers=admin)).json()["items"]
    by_status = {r["status"]: r for r in rounds}
    assert set(by_status) == {"open", "closed"}
    assert by_status["open"]["period"] == "2026Q4" and by_status["closed"]["period"] == "2026Q3"
    assert by_status["closed"]["surveyed"] == by_status["closed"]["total"] == demo.ENTITIES
    assert 0 < by_status["open"]["surveyed"] < by_status["open"]["total"]

    stats = (
        await client.get(
            "/api/v1/census/stats", params={"round_id": by_status["open"]["id"]}, headers=admin
        )
    ).json()
    assert stats["total"] == demo.ENTITIES
    assert min(stats["organization"], stats["joint"], stats["work"], stats["none"]) > 0
    assert all(stats["recommendations"].values())
    assert [r["period"] for r in stats["rounds"]] == ["2026Q3", "2026Q4"]
    assert stats["change"]["organization_rate"] > 0

    member = await _login(db, settings, "demo-member")
    mine = (await client.get("/api/v1/census/me/entities", headers=member)).json()["items"]
    assert mine and all(e["coverage"] == "work" for e in mine)
