"""The demo inflows at the 天河 business-district committee, seen through the API."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests import factories as f
from tests.api.test_demo_states import (
    get,
    login,
    seeded,  # noqa: F401 - the fixture
)


@pytest.mark.usefixtures("seeded")
async def test_demo_inflows_show_every_state(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
) -> None:
    root = await f.superadmin_actor(db, settings)
    page = await get(client, "/api/v1/inflows?limit=100", root.headers)
    by_name = {i["name"]: i for i in page["items"]}
    assert {n: i["status"] for n, i in by_name.items()} == {
        "赵志远": "pending",
        "钱海涛": "pending",
        "孙丽": "verified",
        "陈志强": "verified",
        "李伟": "rejected",
    }
    assert by_name["钱海涛"]["flags"] == ["verify_overdue"]
    assert by_name["孙丽"]["flags"] == ["transfer_suggested"]
    assert by_name["陈志强"]["matched_member_id"] is not None
    assert by_name["陈志强"]["outflow_id"] is not None

    # 陈志强's account was linked by the verification: he is a member, co-managed there.
    pocket = await login(client, "demo-pocket.1")
    mine = await get(client, "/api/v1/me/outflow", pocket)
    assert mine["checkin"]["status"] == "accepted"
    assert mine["checkin"]["org"]["name"] == "广州天河商圈党委"
    resident = await login(client, "demo-resident.1")
    own = await get(client, "/api/v1/me/inflows", resident)
    assert [i["name"] for i in own["items"]] == ["赵志远"]
