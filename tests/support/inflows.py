"""Builders of the inflow tests: a home county, a listed business-district committee in
Guangzhou with its admin, declaration bodies (no tests of its own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.organization.models import Organization
from tests import factories as f
from tests.clock import Clock
from tests.factories import Actor

TODAY = date(2026, 12, 1)


@pytest.fixture(autouse=True)
def inflow_day(clock: Clock) -> Clock:
    """Inflow tests run on 2026-12-01 (Asia/Shanghai), whatever the real date."""
    clock.set_day(TODAY)
    return clock


@dataclass
class World:
    county: Organization  # the members' home county (岳池)
    branch: Organization
    district: Organization  # a listed business-district committee in Guangzhou
    other: Organization  # another county: outside everyone's scope here
    home_admin: Actor
    district_admin: Actor
    other_admin: Actor


async def world(db: AsyncSession, settings: Settings) -> World:
    county = await f.org(db, "岳池县委")
    branch = await f.org(db, "九龙村党支部", parent=county)
    district = await f.org(
        db,
        "天河路商圈党委",
        kind="committee",
        region_code="440106",
        host="business_district",
        listed=True,
        lat=23.1310,
        lon=113.3270,
        address="广州市天河区天河路",
    )
    other = await f.org(db, "邻县县委", region_code="511622", listed=True)
    return World(
        county=county,
        branch=branch,
        district=district,
        other=other,
        home_admin=await f.admin_actor(db, settings, county, name="县委书记"),
        district_admin=await f.admin_actor(db, settings, district, name="商圈书记"),
        other_admin=await f.admin_actor(db, settings, other, name="邻县书记"),
    )


def declaration(org: Organization, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "赵流入",
        "id_number": f.unique_id_number(),
        "phone": f.unique_phone(),
        "home_org_name": "湖南省衡阳市某村党支部",
        "home_region_code": "430400",
        "employer": "天河城某商户",
        "arrived_on": "2026-09-01",
        "org_id": org.id,
    }
    return body | over
