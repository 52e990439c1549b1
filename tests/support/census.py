"""Builders of the census tests: valid credit codes, a county with two streets, and
entities created through the API (no tests of its own)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.census.codes import CREDIT_ALPHABET, credit_check_char
from app.core.config import Settings
from app.organization.models import Organization
from tests import factories as f
from tests.clock import Clock
from tests.factories import Actor

_codes = itertools.count(1)
TODAY = date(2026, 12, 1)


@pytest.fixture(autouse=True)
def census_day(clock: Clock) -> Clock:
    """Census tests run on 2026-12-01 (Asia/Shanghai), whatever the real date."""
    clock.set_day(TODAY)
    return clock


REGION = "511621"  # 岳池县


def credit_code(region: str = REGION) -> str:
    """A valid, unique code: 9 (market regulation), 1 (company), region, 9-char org code.

    The organisation code starts with a letter, so the code never looks like an ID number.
    """
    body = f"MA{next(_codes):05d}" + "".join(random.choices(CREDIT_ALPHABET[10:], k=2))
    first17 = f"91{region}{body}"
    return first17 + credit_check_char(first17)


@dataclass
class County:
    county: Organization
    street_a: Organization
    street_b: Organization
    trade: Organization
    other_county: Organization
    admin: Actor
    street_admin: Actor
    other_admin: Actor


async def county(db: AsyncSession, settings: Settings) -> County:
    top = await f.org(db, "岳池县委")
    street_a = await f.org(db, "九龙街道党工委", parent=top, kind="committee")
    street_b = await f.org(db, "朝阳街道党工委", parent=top, kind="committee")
    trade = await f.org(db, "县快递物流行业党委", parent=top, kind="committee")
    other = await f.org(db, "邻县县委")
    return County(
        county=top,
        street_a=street_a,
        street_b=street_b,
        trade=trade,
        other_county=other,
        admin=await f.admin_actor(db, settings, top),
        street_admin=await f.admin_actor(db, settings, street_a, name="街道书记"),
        other_admin=await f.admin_actor(db, settings, other, name="邻县书记"),
    )


def entity_body(responsible: Organization, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "credit_code": credit_code(),
        "name": f"岳池县测试企业{next(_codes)}有限公司",
        "kind": "enterprise",
        "industry_code": "54",
        "tags": ["express_delivery"],
        "region_code": REGION,
        "address": "九龙街道滨河路1号",
        "staff_count": 40,
        "person_in_charge": "王老板",
        "contact_phone": f.unique_phone(),
        "responsible_org_id": responsible.id,
    }
    return body | extra


async def create_entity(
    client: httpx.AsyncClient, actor: Actor, responsible: Organization, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/census/entities", json=entity_body(responsible, **extra), headers=actor.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def survey_body(round_id: int, member_count: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "round_id": round_id,
        "operating": "operating",
        "staff_count": 30,
        "member_count": member_count,
        "person_in_charge_is_member": False,
        "no_org_reason": "党员人数不足" if member_count < 3 else None,
        "union": True,
        "youth_league": False,
        "womens_org": False,
        "surveyed_on": "2026-12-01",
        "note": "实地走访",
    }
    return body | extra
