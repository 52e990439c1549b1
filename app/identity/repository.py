"""All queries of the identity domain: accounts, refresh tokens, the caller's roles."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.identity.models import Account, ConsoleSession, ConsoleTicket, RefreshToken
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


# -- web console: login tickets and sessions ---------------------------------------------


async def add_console_ticket(
    session: AsyncSession, ticket_id: str, poll_hash: bytes, expires_at: datetime
) -> None:
    await session.execute(
        insert(ConsoleTicket).values(id=ticket_id, poll_hash=poll_hash, expires_at=expires_at)
    )


async def lock_console_ticket(session: AsyncSession, ticket_id: str) -> ConsoleTicket | None:
    return (
        await session.execute(
            select(ConsoleTicket)
            .where(ConsoleTicket.id == ticket_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def confirm_console_ticket(
    session: AsyncSession, ticket_id: str, account_id: int, at: datetime
) -> None:
    await session.execute(
        update(ConsoleTicket)
        .where(ConsoleTicket.id == ticket_id)
        .values(confirmed_by=account_id, confirmed_at=at)
    )


async def consume_console_ticket(session: AsyncSession, ticket_id: str, at: datetime) -> None:
    await session.execute(
        update(ConsoleTicket).where(ConsoleTicket.id == ticket_id).values(consumed_at=at)
    )


async def add_console_session(
    session: AsyncSession, token_hash: bytes, account_id: int, csrf_token: str, expires_at: datetime
) -> None:
    await session.execute(
        insert(ConsoleSession).values(
            token_hash=token_hash,
            account_id=account_id,
            csrf_token=csrf_token,
            expires_at=expires_at,
        )
    )


# The console's one lookup per request: its open session and whose it is.
_OPEN_CONSOLE_SESSION = select(
    ConsoleSession.id, ConsoleSession.account_id, ConsoleSession.csrf_token
).where(
    ConsoleSession.token_hash == bindparam("token_hash"),
    ConsoleSession.revoked_at.is_(None),
    ConsoleSession.expires_at > bindparam("now"),
)


async def open_console_session(
    session: AsyncSession, token_hash: bytes, now: datetime
) -> tuple[int, int, str] | None:
    row = (
        await session.execute(_OPEN_CONSOLE_SESSION, {"token_hash": token_hash, "now": now})
    ).one_or_none()
    return (row.id, row.account_id, row.csrf_token) if row is not None else None


async def revoke_console_session(session: AsyncSession, session_id: int, at: datetime) -> None:
    await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=at)
    )


async def revoke_account_console_sessions(
    session: AsyncSession, account_id: int, at: datetime
) -> int:
    result = await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.account_id == account_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def account_display_name(session: AsyncSession, account_id: int) -> str | None:
    return (
        await session.execute(
            select(func.coalesce(Member.name, Account.display_name))
            .select_from(Account)
            .outerjoin(Member, Member.id == Account.member_id)
            .where(Account.id == account_id)
        )
    ).scalar_one_or_none()


async def purge_console_logins(
    session: AsyncSession, tickets_before: datetime, sessions_before: datetime
) -> int:
    """Delete tickets that expired before ``tickets_before`` and sessions that expired or
    were revoked before ``sessions_before``."""
    tickets = await session.execute(
        delete(ConsoleTicket).where(ConsoleTicket.expires_at < tickets_before)
    )
    ended = await session.execute(
        delete(ConsoleSession).where(
            or_(
                ConsoleSession.expires_at < sessions_before,
                ConsoleSession.revoked_at < sessions_before,
            )
        )
    )
    return int(getattr(tickets, "rowcount", 0) or 0) + int(getattr(ended, "rowcount", 0) or 0)
