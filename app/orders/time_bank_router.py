"""HTTP endpoints of the time bank: balance, rewards, redemptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from app.core.db import SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page, decode_cursor, page_of
from app.core.routing import DomainRouter
from app.core.types import ParamId
from app.identity.principal import MemberDep
from app.orders import time_bank
from app.orders.deps import ScopeDep
from app.orders.models import TimeBankEntry, TimeBankReward
from app.orders.schemas import (
    EntryOut,
    RedemptionIn,
    RedemptionOut,
    RewardIn,
    RewardOut,
    TimeBankOut,
)
from app.organization.scope import AdminScopeDep

# Tagged as when it was included through the orders router (the OpenAPI document).
router = DomainRouter(tags=["orders", "time-bank"])


def entry_out(entry: TimeBankEntry) -> EntryOut:
    return EntryOut(
        id=entry.id,
        kind=entry.kind,
        hours=float(entry.hours),
        balance_after=float(entry.balance_after),
        order_id=entry.order_id,
        reward_id=entry.reward_id,
        reward_name=entry.reward_name,
        note=entry.note,
        created_at=entry.created_at,
    )


def reward_out(reward: TimeBankReward) -> RewardOut:
    return RewardOut(
        id=reward.id,
        org_id=reward.org_id,
        name=reward.name,
        description=reward.description,
        hours=float(reward.hours),
        stock=reward.stock,
        active=reward.active,
        created_at=reward.created_at,
    )


@router.get("/me/time-bank", response_model=TimeBankOut)
async def my_time_bank(
    session: SessionDep,
    principal: MemberDep,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> TimeBankOut:
    """Hours earned, redeemed, the balance and the ledger entries (newest first)."""
    assert principal.member_id is not None
    balance, rows = await time_bank.balance_and_entries(
        session, principal.member_id, after_id=decode_cursor(cursor, int), limit=limit
    )
    page, next_cursor = page_of(rows, limit, lambda e: (e.id,))
    return TimeBankOut(
        hours_earned=float(balance.hours_earned),
        hours_redeemed=float(balance.hours_redeemed),
        balance=float(balance.balance),
        entries=[entry_out(e) for e in page],
        next_cursor=next_cursor,
    )


@router.get("/time-bank/rewards", response_model=Page[RewardOut])
async def list_rewards(
    session: SessionDep,
    scope: ScopeDep,
    org_id: Annotated[ParamId | None, Query()] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[RewardOut]:
    """Rewards a member can redeem (those of his home branch's and co-managing
    organisations' ancestors) and, for admins, those of their subtrees (extension)."""
    rows = await time_bank.list_rewards(
        session, scope, org_id=org_id, after_id=decode_cursor(cursor, int), limit=limit
    )
    page, next_cursor = page_of(rows, limit, lambda r: (r.id,))
    return Page(items=[reward_out(r) for r in page], next_cursor=next_cursor)


@router.post("/time-bank/rewards", status_code=201, response_model=RewardOut)
async def create_reward(
    body: RewardIn, session: SessionDep, scope: AdminScopeDep, idem: IdempotencyDep
) -> Response:
    """An organisation lists a reward (admins of its subtree; extension)."""

    async def _run() -> RewardOut:
        return reward_out(await time_bank.create_reward(session, scope, body))

    return await idem.run(_run, status_code=201)


@router.post("/time-bank/redemptions", status_code=201, response_model=RedemptionOut)
async def redeem(
    body: RedemptionIn, session: SessionDep, principal: MemberDep, idem: IdempotencyDep
) -> Response:
    """Redeem hours: ``reward_id`` of a listed reward (hours default to its price), or a
    ``reward`` name with ``hours``. Never below zero: 409 ``time_bank.insufficient_balance``."""

    async def _run() -> RedemptionOut:
        entry, balance = await time_bank.redeem(session, principal, body)
        return RedemptionOut(
            entry=entry_out(entry),
            hours_earned=float(balance.hours_earned),
            hours_redeemed=float(balance.hours_redeemed),
            balance=float(balance.balance),
        )

    return await idem.run(_run, status_code=201)
