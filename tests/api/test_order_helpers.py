"""Building blocks shared by the order and time-bank tests (no tests of its own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.notify.models import Notification
from app.orders.models import DEFAULT_CATEGORIES, OrderCategory
from app.organization.models import Organization
from tests import factories as f
from tests.clock import Clock


@dataclass(frozen=True)
class Org:
    """Plain values of an organisation: ORM objects expire when a failed request rolls
    the test session back, these do not."""

    id: int
    name: str
    path: str


@dataclass(frozen=True)
class Who:
    account_id: int
    member_id: int | None
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def org_ref(o: Organization) -> Org:
    return Org(o.id, o.name, o.path)


def who(actor: Who) -> Who:
    return Who(actor.account.id, actor.member.id if actor.member else None, actor.token)


@dataclass(frozen=True)
class World:
    county: Org
    town: Org
    village: Org
    other_county: Org
    other_branch: Org
    county_admin: Who
    town_admin: Who
    village_admin: Who
    other_admin: Who
    submitter: Who
    resident: Who
    stranger: Who
    volunteer: Who


async def ensure_default_categories(db: AsyncSession) -> None:
    """The migration seeds the default categories; committing tests truncate every table
    (tests/conftest.py keeps only alembic_version), so put them back if they are gone."""
    await db.execute(
        insert(OrderCategory)
        .values(
            [
                {
                    "code": code,
                    "name": name,
                    "accept_hours": accept,
                    "resolve_hours": resolve,
                    "sort_order": position,
                }
                for position, (code, name, accept, resolve) in enumerate(DEFAULT_CATEGORIES)
            ]
        )
        .on_conflict_do_nothing()
    )


async def world(db: AsyncSession, settings: Settings) -> World:
    """Two county trees: 县委 → 镇党委 → 村支部, and an unrelated county with a branch."""
    await ensure_default_categories(db)
    county = await f.org(db, "县委")
    town = await f.org(db, "镇党委", parent=county, kind="committee")
    village = await f.org(db, "村支部", parent=town)
    other_county = await f.org(db, "外县县委")
    other_branch = await f.org(db, "外县支部", parent=other_county)
    built = World(
        county=org_ref(county),
        town=org_ref(town),
        village=org_ref(village),
        other_county=org_ref(other_county),
        other_branch=org_ref(other_branch),
        county_admin=who(await f.admin_actor(db, settings, county, name="县管理员")),
        town_admin=who(await f.admin_actor(db, settings, town, name="镇管理员")),
        village_admin=who(await f.admin_actor(db, settings, village, "branch_admin", "村书记")),
        other_admin=who(await f.admin_actor(db, settings, other_county, name="外县管理员")),
        submitter=who(await f.member_actor(db, settings, village, "王建国")),
        resident=who(await f.resident_actor(db, settings)),
        stranger=who(await f.member_actor(db, settings, village, "刘芳")),
        volunteer=who(await f.member_actor(db, settings, village, "陈志愿")),
    )
    # The test app rolls the session back to its last commit when a request fails:
    # commit the setup so it survives (the outer transaction still rolls back).
    await db.commit()
    return built


def order_body(org: Org, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "life_support",
        "title": "独居老人家中水管漏水",
        "description": "家里厨房水管漏水两天了，老人行动不便，请帮忙联系维修。",
        "address": "石垭镇花园村三组",
        "lat": 30.5392,
        "lon": 106.4405,
        "contact_phone": "13812345678",
        "org_id": org.id,
    }
    body.update(overrides)
    return body


async def submit(
    client: httpx.AsyncClient, actor: Who, org: Org, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/orders", json=order_body(org, **overrides), headers=actor.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def act(
    client: httpx.AsyncClient,
    actor: Who,
    order: dict[str, Any],
    action: str,
    **fields: Any,
) -> httpx.Response:
    """POST a transition with the order's current version (unless given)."""
    payload: dict[str, Any] = {"action": action, "version": order["version"], **fields}
    if action in ("transfer", "reject", "resolve") and "note" not in fields:
        payload["note"] = "处理说明"
    return await client.post(
        f"/api/v1/orders/{order['id']}/transitions", json=payload, headers=actor.headers
    )


async def moved(
    client: httpx.AsyncClient, actor: Who, order: dict[str, Any], action: str, **fields: Any
) -> dict[str, Any]:
    response = await act(client, actor, order, action, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def notifications(db: AsyncSession, account_id: int, template: str) -> list[Notification]:
    rows = await db.execute(
        select(Notification)
        .where(Notification.account_id == account_id, Notification.template == template)
        .order_by(Notification.id)
    )
    return list(rows.scalars().all())


async def count(db: AsyncSession, model: Any, *where: Any) -> int:
    return int(
        (await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
    )


async def in_progress(
    client: httpx.AsyncClient, clock: Clock, admin: Who, order: dict[str, Any], hours: float
) -> dict[str, Any]:
    """Accept and start the order as ``admin``, then let ``hours`` pass: a resolve credits
    at most the hours the order was in progress."""
    for action in ("accept", "start"):
        order = await moved(client, admin, order, action)
    clock.advance(hours=hours)
    return order
