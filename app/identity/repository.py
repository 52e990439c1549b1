"""All queries of the identity domain: accounts, refresh tokens, the caller's roles."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.identity.models import Account, RefreshToken
from app.members.models import Member


async def upsert_account(session: AsyncSession, openid: str, unionid: str | None) -> Account:
    """The account of a WeChat openid, created on first login, locked for this request.

    ``ON CONFLICT DO NOTHING`` makes two simultaneous first logins of one user safe.
    """
    await session.execute(
        insert(Account)
        .values(openid=openid, unionid=unionid)
        .on_conflict_do_nothing(index_elements=[Account.openid])
    )
    account = (
        await session.execute(
            select(Account)
            .where(Account.openid == openid)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return account


async def get_account(
    session: AsyncSession, account_id: int, *, lock: bool = False
) -> Account | None:
    stmt = select(Account).where(Account.id == account_id)
    if lock:
        stmt = stmt.with_for_update()
    return (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def touch_login(session: AsyncSession, account: Account, unionid: str | None) -> None:
    values: dict[str, object] = {"last_login_at": func.now()}
    if unionid and account.unionid != unionid:
        values["unionid"] = unionid
    await session.execute(update(Account).where(Account.id == account.id).values(**values))


async def lock_refresh_token(session: AsyncSession, token_hash: bytes) -> RefreshToken | None:
    """The refresh-token row, locked: concurrent refreshes of one token run one at a time."""
    return (
        await session.execute(
            select(RefreshToken)
            .where(RefreshToken.token_hash == token_hash)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def find_refresh_token(session: AsyncSession, token_hash: bytes) -> RefreshToken | None:
    return (
        await session.execute(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
    ).scalar_one_or_none()


async def mark_used(
    session: AsyncSession, token_id: int, at: datetime, *, used_by: bytes, successor: bytes
) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id)
        .values(used_at=at, used_by=used_by, successor_sealed=successor)
    )


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, at: datetime) -> int:
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def revoke_account_tokens(session: AsyncSession, account_id: int, at: datetime) -> int:
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def get_member(session: AsyncSession, member_id: int, *, lock: bool = False) -> Member | None:
    stmt = select(Member).where(Member.id == member_id)
    if lock:
        stmt = stmt.with_for_update()
    return (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def account_bound_to(session: AsyncSession, member_id: int) -> int | None:
    return (
        await session.execute(select(Account.id).where(Account.member_id == member_id))
    ).scalar_one_or_none()


async def bind_member(session: AsyncSession, account: Account, member_id: int) -> None:
    account.member_id = member_id
    await session.flush()


async def store_phone(
    session: AsyncSession,
    member: Member,
    *,
    phone_enc: bytes,
    phone_idx: bytes,
    phone_masked: str,
) -> None:
    await session.execute(
        update(Member)
        .where(Member.id == member.id)
        .values(
            phone_enc=phone_enc,
            phone_idx=phone_idx,
            phone_masked=phone_masked,
            version=Member.version + 1,
        )
    )
