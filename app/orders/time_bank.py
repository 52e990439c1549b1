"""The time bank (时间银行): volunteer hours from resolved orders, redeemed for rewards.

Invariants, each enforced by the database as well as here:

* the balance never goes below zero: redemptions debit with a conditional UPDATE on the
  member's balance row (``balance >= hours``), which serialises concurrent redemptions,
  and a CHECK constraint backs it up;
* ``balance = hours_earned - hours_redeemed`` (CHECK);
* every credit and debit is a row of ``time_bank_entries``, which a trigger keeps
  append-only; ``balance_after`` records the running balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record as audit
from app.identity.principal import Principal
from app.members import repository as members_repo
from app.orders import errors
from app.orders import time_bank_repository as repo
from app.orders.models import TimeBankAccount, TimeBankEntry, TimeBankReward
from app.orders.schemas import RedemptionIn, RewardIn
from app.organization.scope import Scope, get_visible_org

ZERO = Decimal("0.0")


@dataclass(frozen=True)
class Balance:
    hours_earned: Decimal
    hours_redeemed: Decimal
    balance: Decimal

    @classmethod
    def of(cls, account: TimeBankAccount | None) -> Balance:
        if account is None:
            return cls(ZERO, ZERO, ZERO)
        return cls(account.hours_earned, account.hours_redeemed, account.balance)


async def credit(
    session: AsyncSession,
    *,
    member_id: int,
    hours: Decimal,
    order_id: int,
    org_id: int,
    actor_account_id: int | None,
) -> TimeBankEntry:
    """Credit a volunteer for a resolved order (called by the order state machine).

    Every credit is audited, under the handling organisation and the volunteer's home
    organisation (so his own branch sees hours credited to him elsewhere).
    """
    account = await repo.add_hours(session, member_id, hours)
    await audit(
        session,
        actor_account_id=actor_account_id,
        action="time_bank.credited",
        org_id=org_id,
        member_home_org_id=await members_repo.home_org_id_of(session, member_id),
        subject_type="member",
        subject_id=member_id,
        detail={"order_id": order_id, "hours": str(hours), "balance": str(account.balance)},
    )
    return await repo.add_entry(
        session,
        TimeBankEntry(
            member_id=member_id,
            kind="earn",
            hours=hours,
            balance_after=account.balance,
            order_id=order_id,
            note="志愿服务",
            actor_account_id=actor_account_id,
        ),
    )


async def balance_and_entries(
    session: AsyncSession, member_id: int, *, after_id: int | None, limit: int
) -> tuple[Balance, list[TimeBankEntry]]:
    account = await repo.get_account(session, member_id)
    rows = await repo.entries(session, member_id, after_id=after_id, limit=limit)
    return Balance.of(account), list(rows)


async def redeem(
    session: AsyncSession, principal: Principal, data: RedemptionIn
) -> tuple[TimeBankEntry, Balance]:
    member_id = principal.member_id
    assert member_id is not None
    reward: TimeBankReward | None = None
    org_ids = await repo.member_org_ids(session, member_id)
    if data.reward_id is not None:
        reward = await repo.reward_for_member(session, org_ids, reward_id=data.reward_id, name=None)
        if reward is None:
            raise errors.reward_not_found()
    else:
        # A name that matches a listed reward redeems that reward; any other name is a
        # free-form redemption an organisation hands out offline (hours are required).
        reward = await repo.reward_for_member(session, org_ids, reward_id=None, name=data.reward)
    if reward is not None:
        hours = reward.hours
        if data.hours is not None and data.hours != reward.hours:
            raise errors.reward_hours_mismatch()
        if not await repo.take_stock(session, reward.id):
            raise errors.reward_out_of_stock()
    else:
        assert data.hours is not None and data.reward is not None
        hours = data.hours
    account = await repo.take_hours(session, member_id, hours)
    if account is None:
        raise errors.insufficient_balance()
    entry = await repo.add_entry(
        session,
        TimeBankEntry(
            member_id=member_id,
            kind="redeem",
            hours=-hours,
            balance_after=account.balance,
            reward_id=reward.id if reward else None,
            reward_name=reward.name if reward else data.reward,
            note="兑换",
            actor_account_id=principal.account_id,
        ),
    )
    return entry, Balance.of(account)


async def create_reward(session: AsyncSession, scope: Scope, data: RewardIn) -> TimeBankReward:
    if await get_visible_org(session, scope, data.org_id) is None:
        raise errors.scope_org_not_found()
    reward = TimeBankReward(
        org_id=data.org_id,
        name=data.name,
        description=data.description,
        hours=data.hours,
        stock=data.stock,
        created_by_account_id=scope.principal.account_id,
    )
    session.add(reward)
    await session.flush()
    await session.refresh(reward)
    await audit(
        session,
        actor_account_id=scope.principal.account_id,
        action="time_bank.reward_created",
        org_id=data.org_id,
        subject_type="time_bank_reward",
        subject_id=reward.id,
        detail={"name": data.name, "hours": str(data.hours)},
    )
    return reward


async def list_rewards(
    session: AsyncSession, scope: Scope, *, org_id: int | None, after_id: int | None, limit: int
) -> list[TimeBankReward]:
    member_id = scope.principal.member_id
    org_ids = await repo.member_org_ids(session, member_id) if member_id is not None else []
    return await repo.rewards(
        session, repo.rewards_visible(scope, org_ids), org_id=org_id, after_id=after_id, limit=limit
    )
