"""Queries of the time bank: balances, the append-only ledger, rewards."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import ColumnElement, false, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.members.models import Member
from app.orders.models import TimeBankAccount, TimeBankEntry, TimeBankReward
from app.organization.models import Organization, path_ids
from app.organization.scope import Scope, co_managing_org_ids


async def add_hours(session: AsyncSession, member_id: int, hours: Decimal) -> TimeBankAccount:
    """Credit ``hours``: one UPSERT, so concurrent credits serialise on the row."""
    result = await session.execute(
        insert(TimeBankAccount)
        .values(member_id=member_id, hours_earned=hours, hours_redeemed=0, balance=hours)
        .on_conflict_do_update(
            index_elements=[TimeBankAccount.member_id],
            set_={
                "hours_earned": TimeBankAccount.hours_earned + hours,
                "balance": TimeBankAccount.balance + hours,
            },
        )
        .returning(TimeBankAccount)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def take_hours(
    session: AsyncSession, member_id: int, hours: Decimal
) -> TimeBankAccount | None:
    """Debit ``hours`` only if the balance covers it (a conditional UPDATE: the row lock
    makes a concurrent redemption re-check the new balance). None when it does not."""
    result = await session.execute(
        update(TimeBankAccount)
        .where(TimeBankAccount.member_id == member_id, TimeBankAccount.balance >= hours)
        .values(
            balance=TimeBankAccount.balance - hours,
            hours_redeemed=TimeBankAccount.hours_redeemed + hours,
        )
        .returning(TimeBankAccount)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def get_account(session: AsyncSession, member_id: int) -> TimeBankAccount | None:
    return await session.get(TimeBankAccount, member_id, populate_existing=True)


async def add_entry(session: AsyncSession, entry: TimeBankEntry) -> TimeBankEntry:
    session.add(entry)
    await session.flush()
    await session.refresh(entry)  # created_at comes from the server
    return entry


async def entries(
    session: AsyncSession, member_id: int, *, after_id: int | None, limit: int
) -> Sequence[TimeBankEntry]:
    stmt = select(TimeBankEntry).where(TimeBankEntry.member_id == member_id)
    if after_id is not None:
        stmt = stmt.where(TimeBankEntry.id < after_id)
    return (
        (await session.execute(stmt.order_by(TimeBankEntry.id.desc()).limit(limit + 1)))
        .scalars()
        .all()
    )


async def member_org_ids(session: AsyncSession, member_id: int) -> list[int]:
    """Organisations whose rewards a member may redeem: every ancestor of his home branch
    and of the organisations that co-manage him (open dual-management grants)."""
    home = select(Member.home_org_id).where(Member.id == member_id)
    guests = co_managing_org_ids(member_id)
    paths = await session.execute(
        select(Organization.path).where(or_(Organization.id.in_(home), Organization.id.in_(guests)))
    )
    ids: set[int] = set()
    for (path,) in paths:
        ids.update(path_ids(path))
    return sorted(ids)


def rewards_visible(scope: Scope, member_org_ids: list[int]) -> ColumnElement[bool]:
    own = TimeBankReward.org_id.in_(member_org_ids) if member_org_ids else false()
    if scope.is_empty:
        return own
    return or_(own, scope.org_visible(TimeBankReward.org_id))


async def rewards(
    session: AsyncSession,
    visible: ColumnElement[bool],
    *,
    org_id: int | None,
    after_id: int | None,
    limit: int,
) -> list[TimeBankReward]:
    stmt = select(TimeBankReward).where(visible, TimeBankReward.active.is_(True))
    if org_id is not None:
        stmt = stmt.where(TimeBankReward.org_id == org_id)
    if after_id is not None:
        stmt = stmt.where(TimeBankReward.id < after_id)
    rows = await session.execute(stmt.order_by(TimeBankReward.id.desc()).limit(limit + 1))
    return list(rows.scalars().all())


async def reward_for_member(
    session: AsyncSession, member_org_ids: list[int], *, reward_id: int | None, name: str | None
) -> TimeBankReward | None:
    if not member_org_ids:
        return None
    stmt = select(TimeBankReward).where(
        TimeBankReward.org_id.in_(member_org_ids), TimeBankReward.active.is_(True)
    )
    if reward_id is not None:
        stmt = stmt.where(TimeBankReward.id == reward_id)
    else:
        stmt = stmt.where(TimeBankReward.name == name).order_by(TimeBankReward.id)
    return (await session.execute(stmt.limit(1))).scalar_one_or_none()


async def take_stock(session: AsyncSession, reward_id: int) -> bool:
    """One fewer in stock if any is left (unlimited rewards have ``stock`` NULL)."""
    result = await session.execute(
        update(TimeBankReward)
        .where(
            TimeBankReward.id == reward_id,
            or_(TimeBankReward.stock.is_(None), TimeBankReward.stock > 0),
        )
        .values(stock=TimeBankReward.stock - 1)
        .returning(TimeBankReward.id)
    )
    return result.first() is not None
