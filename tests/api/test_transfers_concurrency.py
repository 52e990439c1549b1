"""Races on relation transfers with real parallel connections: accepts and withdrawals of
one transfer, requests for one member. The row locks keep the member, the outflow and the
transfer consistent whoever wins."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.members.models import Member
from app.mobility.models import Outflow
from app.transfers.models import RelationTransfer, RelationTransferEvent
from tests.api.test_mobility import World, approve, make_world, register
from tests.api.test_transfers import BASE, move, request


async def _world(engine: AsyncEngine, settings: Settings) -> World:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        world = await make_world(session, settings)
        await session.commit()
        return world


async def test_parallel_accepts_and_withdrawals_move_the_transfer_once(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    w = await _world(engine, settings)
    client = committing_client
    assert w.member.member is not None
    mid = w.member.member.id
    outflow = await approve(client, w.branch_admin, await register(client, w.member))
    t = await request(client, w.member, w.destination.id)
    t = await move(client, w.branch_admin, t, "approve", letter_no="L-1")

    async def attempt(action: str) -> httpx.Response:
        actor = w.dest_admin if action == "accept" else w.member
        return await client.post(
            f"{BASE}/{t['id']}/{action}", json={"version": t["version"]}, headers=actor.headers
        )

    actions = ["accept", "withdraw"] * 5
    responses = await asyncio.gather(*(attempt(a) for a in actions))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: len(actions) - 1}, [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
        "conflict.stale_version",
        "transfer.invalid_transition",
    }
    winner = next(r.json() for r in responses if r.status_code == 200)

    async with AsyncSession(engine) as session:
        row = await session.get(RelationTransfer, t["id"])
        assert row is not None and row.status == winner["status"]
        assert row.version == t["version"] + 1
        moves = (
            await session.execute(
                select(func.count()).where(
                    RelationTransferEvent.transfer_id == t["id"],
                    RelationTransferEvent.action.in_(("accept", "withdraw")),
                )
            )
        ).scalar_one()
        assert moves == 1
        member = await session.get(Member, mid)
        closed = await session.get(Outflow, outflow["id"])
        assert member is not None and closed is not None
        if winner["status"] == "completed":
            assert (member.home_org_id, member.version) == (w.destination.id, 2)
            assert closed.status == "transferred" and row.outflow_id == closed.id
        else:
            assert winner["status"] == "withdrawn"
            assert (member.home_org_id, member.version) == (w.branch.id, 1)
            assert closed.status == "active" and row.outflow_id is None


async def test_parallel_requests_for_one_member_open_one_transfer(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    w = await _world(engine, settings)
    client = committing_client
    assert w.member.member is not None
    mid = w.member.member.id

    async def attempt(n: int) -> httpx.Response:
        actor = w.member if n % 2 else w.branch_admin
        target = w.destination.id if n % 3 else w.other_county.id
        return await client.post(
            BASE,
            json={"member_id": mid, "to_org_id": target, "reason": f"第{n}次申请"},
            headers=actor.headers,
        )

    responses = await asyncio.gather(*(attempt(n) for n in range(8)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 7}, [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "transfer.already_open"
    }
    async with AsyncSession(engine) as session:
        count = (
            await session.execute(select(func.count()).where(RelationTransfer.member_id == mid))
        ).scalar_one()
        assert count == 1
