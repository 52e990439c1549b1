"""The time bank through the HTTP API: credits, rewards, redemptions, the ledger."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.orders.models import TimeBankAccount, TimeBankEntry, TimeBankReward
from tests.api.test_order_helpers import (
    Who,
    World,
    count,
    in_progress,
    moved,
    submit,
    world,
)
from tests.clock import Clock
from tests.conftest import problem


async def _earn(
    client: httpx.AsyncClient, clock: Clock, w: World, volunteer: Who, hours: float
) -> None:
    order = await in_progress(
        client, clock, w.village_admin, await submit(client, w.submitter, w.village), hours
    )
    await moved(
        client,
        w.village_admin,
        order,
        "resolve",
        note="已办结",
        volunteer_member_id=volunteer.member_id,
        hours=hours,
    )


async def _reward(
    client: httpx.AsyncClient, admin: Who, org_id: int, name: str, hours: float, **extra: object
) -> dict[str, object]:
    response = await client.post(
        "/api/v1/time-bank/rewards",
        json={"org_id": org_id, "name": name, "hours": hours, **extra},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_balance_starts_empty_and_needs_a_member(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    empty = await client.get("/api/v1/me/time-bank", headers=w.volunteer.headers)
    assert empty.json() == {
        "hours_earned": 0.0,
        "hours_redeemed": 0.0,
        "balance": 0.0,
        "entries": [],
        "next_cursor": None,
    }
    problem(await client.get("/api/v1/me/time-bank"), 401, "auth.missing_token")
    problem(
        await client.get("/api/v1/me/time-bank", headers=w.resident.headers),
        403,
        "auth.member_required",
    )


async def test_credits_accumulate_and_entries_page(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await world(db, settings)
    for hours in (1.5, 2, 0.5):
        await _earn(client, clock, w, w.volunteer, hours)
    first = (await client.get("/api/v1/me/time-bank?limit=2", headers=w.volunteer.headers)).json()
    assert first["hours_earned"] == 4.0 and first["balance"] == 4.0
    assert [e["hours"] for e in first["entries"]] == [0.5, 2.0]
    assert [e["balance_after"] for e in first["entries"]] == [4.0, 3.5]
    rest = (
        await client.get(
            f"/api/v1/me/time-bank?limit=2&cursor={first['next_cursor']}",
            headers=w.volunteer.headers,
        )
    ).json()
    assert [e["hours"] for e in rest["entries"]] == [1.5] and rest["next_cursor"] is None
    # Other members see only their own bank.
    assert (await client.get("/api/v1/me/time-bank", headers=w.stranger.headers)).json()[
        "balance"
    ] == 0.0


async def test_rewards_are_listed_by_organisations_and_scoped(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    town = await _reward(client, w.town_admin, w.town.id, "爱心超市兑换券", 2, stock=1)
    far = await _reward(client, w.other_admin, w.other_branch.id, "外县理发券", 1)
    problem(
        await client.post(
            "/api/v1/time-bank/rewards",
            json={"org_id": w.other_branch.id, "name": "越权", "hours": 1},
            headers=w.village_admin.headers,
        ),
        404,
        "org.not_found",
    )
    problem(
        await client.post(
            "/api/v1/time-bank/rewards",
            json={"org_id": w.village.id, "name": "成员不可发布", "hours": 1},
            headers=w.volunteer.headers,
        ),
        403,
        "auth.admin_required",
    )
    problem(
        await client.post(
            "/api/v1/time-bank/rewards",
            json={"org_id": w.town.id, "name": "负数", "hours": -1},
            headers=w.town_admin.headers,
        ),
        422,
        "validation.failed",
    )

    def ids(response: httpx.Response) -> set[object]:
        assert response.status_code == 200, response.text
        return {r["id"] for r in response.json()["items"]}

    # A member of 村支部 sees the rewards of its ancestors, not of another county.
    assert ids(await client.get("/api/v1/time-bank/rewards", headers=w.volunteer.headers)) == {
        town["id"]
    }
    assert ids(await client.get("/api/v1/time-bank/rewards", headers=w.other_admin.headers)) == {
        far["id"]
    }
    problem(await client.get("/api/v1/time-bank/rewards"), 401, "auth.missing_token")


async def test_redemptions_by_reward_id_name_and_free_form(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await world(db, settings)
    await _earn(client, clock, w, w.volunteer, 6)
    voucher = await _reward(client, w.town_admin, w.town.id, "爱心超市兑换券", 2, stock=1)
    far = await _reward(client, w.other_admin, w.other_branch.id, "外县理发券", 1)
    url = "/api/v1/time-bank/redemptions"
    h = w.volunteer.headers

    problem(
        await client.post(url, json={"reward_id": voucher["id"], "hours": 3}, headers=h),
        422,
        "time_bank.hours_mismatch",
    )
    by_id = await client.post(url, json={"reward_id": voucher["id"]}, headers=h)
    assert by_id.status_code == 201, by_id.text
    assert by_id.json()["balance"] == 4.0 and by_id.json()["entry"]["hours"] == -2.0
    assert by_id.json()["entry"]["reward_name"] == "爱心超市兑换券"
    stock = await db.scalar(select(TimeBankReward.stock).where(TimeBankReward.id == voucher["id"]))
    assert stock == 0
    problem(
        await client.post(url, json={"reward_id": voucher["id"]}, headers=h),
        409,
        "time_bank.out_of_stock",
    )
    problem(
        await client.post(url, json={"reward_id": far["id"]}, headers=h),
        404,
        "time_bank.reward_not_found",
    )
    free = await client.post(url, json={"reward": "社区食堂餐券", "hours": 1.5}, headers=h)
    assert free.status_code == 201 and free.json()["balance"] == 2.5
    assert free.json()["entry"]["reward_id"] is None
    problem(await client.post(url, json={"reward": "缺时长"}, headers=h), 422, "validation.failed")
    problem(await client.post(url, json={}, headers=h), 422, "validation.failed")
    problem(
        await client.post(url, json={"reward": "太多", "hours": 2.6}, headers=h),
        409,
        "time_bank.insufficient_balance",
    )
    problem(
        await client.post(url, json={"reward": "无会员", "hours": 1}, headers=w.resident.headers),
        403,
        "auth.member_required",
    )
    account = await db.get(TimeBankAccount, w.volunteer.member_id, populate_existing=True)
    assert account is not None
    assert (account.hours_earned, account.hours_redeemed, account.balance) == (
        Decimal("6.0"),
        Decimal("3.5"),
        Decimal("2.5"),
    )
    kinds = (
        await db.execute(
            select(TimeBankEntry.kind, TimeBankEntry.hours)
            .where(TimeBankEntry.member_id == w.volunteer.member_id)
            .order_by(TimeBankEntry.id)
        )
    ).all()
    assert [(k, float(h)) for k, h in kinds] == [("earn", 6.0), ("redeem", -2.0), ("redeem", -1.5)]


async def test_redemption_is_idempotent(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await world(db, settings)
    await _earn(client, clock, w, w.volunteer, 3)
    headers = {**w.volunteer.headers, "Idempotency-Key": "redeem-1"}
    body = {"reward": "理发券", "hours": 1}
    first = await client.post("/api/v1/time-bank/redemptions", json=body, headers=headers)
    again = await client.post("/api/v1/time-bank/redemptions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    entries = await count(
        db,
        TimeBankEntry,
        TimeBankEntry.member_id == w.volunteer.member_id,
        TimeBankEntry.kind == "redeem",
    )
    assert entries == 1


async def test_ledger_is_append_only_and_balance_cannot_go_negative(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await world(db, settings)
    await _earn(client, clock, w, w.volunteer, 1)
    mine_entries = TimeBankEntry.member_id == w.volunteer.member_id
    for statement in (
        update(TimeBankEntry).where(mine_entries).values(note="改账"),
        delete(TimeBankEntry).where(mine_entries),
        update(TimeBankAccount)
        .where(TimeBankAccount.member_id == w.volunteer.member_id)
        .values(balance=-1, hours_redeemed=2),
    ):
        savepoint = await db.begin_nested()
        with pytest.raises(DBAPIError):
            await db.execute(statement)
        await savepoint.rollback()
    assert await count(db, TimeBankEntry, TimeBankEntry.member_id == w.volunteer.member_id) == 1
