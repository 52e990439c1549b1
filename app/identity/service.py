"""Accounts and tokens: what a login or a refresh hands out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import (
    RoleClaim,
    TokenClaims,
    hash_token,
    issue_access_token,
    new_refresh_token,
)
from app.identity.models import Account, RefreshToken
from app.organization.models import RoleAssignment


def account_kind(account: Account, roles: tuple[RoleClaim, ...]) -> str:
    if account.is_superadmin or roles:
        return "admin"
    return "member" if account.member_id is not None else "resident"


async def claims_for(session: AsyncSession, account: Account) -> TokenClaims:
    roles: tuple[RoleClaim, ...] = ()
    if account.member_id is not None:
        rows = await session.execute(
            select(RoleAssignment.role, RoleAssignment.org_id)
            .where(RoleAssignment.member_id == account.member_id)
            .order_by(RoleAssignment.org_id)
        )
        roles = tuple(RoleClaim(role, org_id) for role, org_id in rows)
    return TokenClaims(
        account_id=account.id,
        kind=account_kind(account, roles),
        member_id=account.member_id,
        superadmin=account.is_superadmin,
        roles=roles,
    )


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    claims: TokenClaims


async def issue_token_pair(
    session: AsyncSession,
    settings: Settings,
    account: Account,
    *,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    """A fresh access token and the next refresh token of the family (a new one if None)."""
    claims = await claims_for(session, account)
    refresh = new_refresh_token()
    await session.execute(
        insert(RefreshToken).values(
            family_id=family_id or uuid.uuid4(),
            account_id=account.id,
            token_hash=hash_token(refresh),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    return TokenPair(
        access_token=issue_access_token(settings, claims),
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_s,
        claims=claims,
    )
