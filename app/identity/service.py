"""Accounts and tokens: WeChat login, refresh-token rotation, the caller's profile, binding.

Refresh tokens rotate on every use. Each login starts a *family*; a refresh marks the
presented token used and issues the next one in the same family. Presenting a token
that was already used means two parties hold it (RFC 9700 §4.14): the whole family is
revoked and the caller must log in again. Such rejections must survive the request, so
:func:`refresh` *returns* them (the router answers after the commit) instead of raising.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import orjson
import structlog
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.service import record
from app.core import clock, pii, ratelimit
from app.core.config import Settings
from app.core.crypto import mask_phone
from app.core.errors import AppError, forbidden
from app.core.security import (
    RoleClaim,
    TokenClaims,
    decode_access_token,
    hash_token,
    issue_access_token,
    new_refresh_token,
    open_with_token,
    seal_with_token,
)
from app.identity import errors
from app.identity import repository as repo
from app.identity.models import Account, RefreshToken
from app.identity.principal import Principal
from app.identity.sessions import kind_of
from app.identity.validators import (
    MobilePhoneError,
    normalize_mobile_phone,
    normalize_person_name,
)
from app.organization.models import RoleAssignment
from app.wechat.client import WeChatClient
from app.wechat.errors import (
    CODE_USED,
    INVALID_CODE,
    RATE_LIMITED,
    USER_BLOCKED,
    WeChatError,
    WeChatUnavailable,
)

log = structlog.stdlib.get_logger("app.identity")

# Rate limits (fixed windows shared by all replicas through PostgreSQL). Read at call
# time, so a deployment or a test can replace them. Mobile carriers put many phones
# behind one address (CGNAT), hence the generous per-address login limit.
LOGIN_PER_IP = ratelimit.Policy("login-ip", limit=120, window_s=60)
LOGIN_PER_OPENID = ratelimit.Policy("login-openid", limit=10, window_s=60)
# Binding guesses a name for an ID number: few attempts per account and per target.
BIND_PER_ACCOUNT = ratelimit.Policy("bind-account", limit=5, window_s=900)
BIND_PER_TARGET = ratelimit.Policy("bind-target", limit=5, window_s=900)


# WeChat down, or an answer of the right shape with wrong types (``{"errcode": "x"}``) that
# makes the client's parsing raise: for the caller both are "WeChat is not working", not a 500.
WECHAT_DOWN: tuple[type[Exception], ...] = (WeChatUnavailable, ValueError, TypeError, KeyError)


def account_kind(account: Account, roles: tuple[RoleClaim, ...]) -> str:
    return kind_of(account.is_superadmin, account.member_id, roles)


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
    family_id = family_id or uuid.uuid4()
    claims = replace(await claims_for(session, account), session_id=str(family_id))
    refresh = new_refresh_token()
    await session.execute(
        insert(RefreshToken).values(
            family_id=family_id,
            account_id=account.id,
            token_hash=hash_token(refresh),
            expires_at=clock.now() + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    return TokenPair(
        access_token=issue_access_token(settings, claims),
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_s,
        claims=claims,
    )


# -- login -------------------------------------------------------------------------------


def _login_error(error: WeChatError) -> AppError:
    if error.errcode in (INVALID_CODE, CODE_USED):
        return errors.invalid_code()
    if error.errcode == RATE_LIMITED:
        return errors.wechat_rate_limited()
    if error.errcode == USER_BLOCKED:
        return errors.wechat_blocked()
    # -1 after the client's retries, a bad app secret, anything unknown: not the user's
    # fault and not something he can fix by changing his request.
    log.warning("wechat login failed", errcode=error.errcode)
    return errors.wechat_unavailable()


async def audit_admin_login(
    session: AsyncSession,
    account_id: int,
    roles: tuple[RoleClaim, ...],
    superadmin: bool,
    action: str = "auth.login",
) -> None:
    """One entry per organisation where he administers, so each one's admins see it
    (a login to the mini-program, or ``auth.console_login`` to the web console)."""
    detail = {"roles": [[r.role, r.org_id] for r in roles], "superadmin": superadmin}
    org_ids: list[int | None] = [*sorted({r.org_id for r in roles})] or [None]
    for org_id in org_ids:
        await record(
            session,
            actor_account_id=account_id,
            action=action,
            org_id=org_id,
            subject_type="account",
            subject_id=account_id,
            detail=detail,
        )


async def login(
    session: AsyncSession,
    settings: Settings,
    wechat: WeChatClient,
    engine: AsyncEngine,
    *,
    code: str,
    client_ip: str | None,
) -> TokenPair:
    """Exchange a ``wx.login`` code for tokens; the first login creates a resident account."""
    await ratelimit.hit(engine, LOGIN_PER_IP, client_ip or "unknown")
    try:
        wx_session = await wechat.code2session(code)
    except WeChatError as error:
        raise _login_error(error) from None
    except WECHAT_DOWN as error:
        log.warning("wechat unavailable for login", error=type(error).__name__)
        raise errors.wechat_unavailable() from None
    await ratelimit.hit(engine, LOGIN_PER_OPENID, wx_session.openid)

    account = await repo.upsert_account(session, wx_session.openid, wx_session.unionid)
    if account.disabled_at is not None:
        raise errors.account_disabled()
    await repo.touch_login(session, account, wx_session.unionid)
    pair = await issue_token_pair(session, settings, account)
    if pair.claims.kind == "admin":
        await audit_admin_login(session, account.id, pair.claims.roles, pair.claims.superadmin)
    return pair


# -- refresh and logout ------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshRejected:
    """A refused refresh whose side effects (a revoked family) must be committed."""

    error: AppError


def client_fingerprint(address: str | None, user_agent: str | None) -> bytes:
    """Who presented a refresh token, as far as the server can tell."""
    return hashlib.sha256(f"{address or ''}\n{user_agent or ''}".encode()).digest()


async def refresh(
    session: AsyncSession, settings: Settings, token: str, *, client: bytes
) -> TokenPair | RefreshRejected:
    """``client``: :func:`client_fingerprint` of the caller."""
    now = clock.now()
    # FOR UPDATE: of two concurrent refreshes with one token, the second waits and then
    # sees ``used_at`` set, so exactly one of them makes a new pair.
    row = await repo.lock_refresh_token(session, hash_token(token))
    if row is None:
        return RefreshRejected(errors.invalid_refresh())
    if row.used_at is not None:
        again = await _double_send(session, settings, row, token, client, now)
        if again is not None:
            return again
        revoked = await repo.revoke_family(session, row.family_id, now)
        if revoked:
            await record(
                session,
                actor_account_id=row.account_id,
                action="auth.refresh_reused",
                subject_type="account",
                subject_id=row.account_id,
                detail={"family_id": str(row.family_id), "revoked": revoked},
            )
        return RefreshRejected(errors.refresh_reused())
    if row.revoked_at is not None or row.expires_at <= now:
        return RefreshRejected(errors.invalid_refresh())
    account = await repo.get_account(session, row.account_id)
    if account is None:
        return RefreshRejected(errors.invalid_refresh())
    if account.disabled_at is not None:
        await repo.revoke_family(session, row.family_id, now)
        return RefreshRejected(errors.account_disabled())
    # New claims from the database: removed roles and new bindings take effect now.
    pair = await issue_token_pair(session, settings, account, family_id=row.family_id)
    sealed = seal_with_token(
        token,
        orjson.dumps({"a": pair.access_token, "r": pair.refresh_token, "e": pair.expires_in}),
    )
    await repo.mark_used(session, row.id, now, used_by=client, successor=sealed)
    return pair


async def _double_send(
    session: AsyncSession,
    settings: Settings,
    row: RefreshToken,
    token: str,
    client: bytes,
    now: datetime,
) -> TokenPair | RefreshRejected | None:
    """The pair an earlier use of ``token`` got, if this is that client again within
    the grace window (a phone sending the same refresh twice); None: a real reuse."""
    if (
        row.revoked_at is not None
        or row.used_at is None
        or row.successor_sealed is None
        or row.used_by is None
        or not hmac.compare_digest(row.used_by, client)
        or now - row.used_at > timedelta(seconds=settings.refresh_reuse_grace_s)
    ):
        return None
    opened = open_with_token(token, row.successor_sealed)
    if opened is None:
        return None
    sealed = orjson.loads(opened)
    successor = await repo.find_refresh_token(session, hash_token(sealed["r"]))
    if successor is None or successor.revoked_at is not None:
        return RefreshRejected(errors.invalid_refresh())
    if successor.used_at is not None:
        # The client moved on with the new pair already; this late copy gets nothing,
        # and the login it holds stays.
        return RefreshRejected(errors.invalid_refresh())
    return TokenPair(
        access_token=sealed["a"],
        refresh_token=sealed["r"],
        expires_in=int(sealed["e"]),
        claims=decode_access_token(settings, sealed["a"]),
    )


async def logout(session: AsyncSession, principal: Principal, refresh_token: str | None) -> int:
    """Revoke the family of ``refresh_token`` (if it is the caller's) or all his families."""
    now = clock.now()
    if refresh_token is None:
        # Logging out everywhere ends the web console's sessions too.
        await repo.revoke_account_console_sessions(session, principal.account_id, now)
        return await repo.revoke_account_tokens(session, principal.account_id, now)
    row = await repo.find_refresh_token(session, hash_token(refresh_token))
    if row is None or row.account_id != principal.account_id:
        # Someone else's or unknown token: nothing to do, and nothing to tell.
        return 0
    return await repo.revoke_family(session, row.family_id, now)


# -- the caller ----------------------------------------------------------------------------


async def current_account(
    session: AsyncSession, principal: Principal, *, lock: bool = False
) -> Account:
    """The caller's account as the database has it now; refused once it is disabled."""
    account = await repo.get_account(session, principal.account_id, lock=lock)
    if account is None:
        raise errors.account_not_found()
    if account.disabled_at is not None:
        raise errors.account_disabled()
    return account


# -- binding to the roster -------------------------------------------------------------


def normalize_name(name: str) -> str:
    """Names as typed on a phone, compared leniently: the roster's normal form without
    any whitespace (full-width forms, stray spaces, variant middle dots)."""
    return "".join(normalize_person_name(name).split())


async def unbound_account(
    session: AsyncSession,
    settings: Settings,
    engine: AsyncEngine,
    principal: Principal,
    id_number: str,
) -> Account:
    """The caller's account, locked, before it is bound to a roster member: refused if it
    already is; counts the attempt per account and per target ID number, each in its own
    transaction (a rolled-back request still counts), so the roster cannot be enumerated."""
    account = await current_account(session, principal, lock=True)
    if account.member_id is not None:
        raise errors.already_bound()
    target = pii.keyring(settings).blind_index(id_number, context=pii.ID_NUMBER)
    await ratelimit.hit(engine, BIND_PER_ACCOUNT, str(account.id))
    await ratelimit.hit(engine, BIND_PER_TARGET, target.hex())
    return account


async def bind_member(
    session: AsyncSession, settings: Settings, account: Account, member_id: int
) -> TokenPair:
    """Link ``account`` (from :func:`unbound_account`) to the roster member; new tokens."""
    # Lock the member: of two accounts binding him at once, the second sees the first.
    member = await repo.get_member(session, member_id, lock=True)
    if member is None:
        raise errors.not_found_in_roster()
    if await repo.account_bound_to(session, member.id) is not None:
        raise errors.already_bound()
    await repo.bind_member(session, account, member.id)
    await record(
        session,
        actor_account_id=account.id,
        action="member.bind",
        org_id=member.home_org_id,
        subject_type="member",
        subject_id=member.id,
    )
    return await issue_token_pair(session, settings, account)


async def link_verified(
    session: AsyncSession, account_id: int, member_id: int, *, verified_by: int, via: str
) -> bool:
    """Link an account to a roster member an admin has verified him to be (an inflow
    declaration, say), when neither is linked yet; audited like a bind. False if either
    already was (nothing changes then)."""
    account = await repo.get_account(session, account_id, lock=True)
    member = await repo.get_member(session, member_id, lock=True)
    if account is None or member is None or account.member_id is not None:
        return False
    if await repo.account_bound_to(session, member.id) is not None:
        return False
    await repo.bind_member(session, account, member.id)
    await record(
        session,
        actor_account_id=verified_by,
        action="member.bind",
        org_id=member.home_org_id,
        subject_type="member",
        subject_id=member.id,
        detail={"account_id": account.id, "via": via},
    )
    return True


def _phone_error(error: WeChatError) -> AppError:
    if error.errcode in (INVALID_CODE, CODE_USED):
        return errors.invalid_phone_code()
    if error.errcode == RATE_LIMITED:
        return errors.wechat_rate_limited()
    return errors.wechat_unavailable()


async def bind_phone(
    session: AsyncSession,
    settings: Settings,
    wechat: WeChatClient,
    principal: Principal,
    *,
    code: str,
) -> str:
    """Store the phone number WeChat vouches for on the caller's member record (encrypted)."""
    try:
        raw = await wechat.phone_number(code)
    except WeChatError as error:
        raise _phone_error(error) from None
    except WECHAT_DOWN as error:
        log.warning("wechat unavailable for phone number", error=type(error).__name__)
        raise errors.wechat_unavailable() from None
    try:
        phone = normalize_mobile_phone(raw)
    except MobilePhoneError:
        raise errors.phone_not_mainland() from None

    account = await current_account(session, principal)
    if account.member_id is None:
        raise forbidden("auth.member_required", "请先绑定党员身份")
    member = await repo.get_member(session, account.member_id, lock=True)
    if member is None:
        raise forbidden("auth.member_required", "请先绑定党员身份")
    ring = pii.keyring(settings)
    masked = mask_phone(phone)
    await repo.store_phone(
        session,
        member,
        phone_enc=ring.encrypt(phone, context=pii.PHONE),
        phone_idx=ring.blind_index(phone, context=pii.PHONE),
        phone_masked=masked,
    )
    await record(
        session,
        actor_account_id=account.id,
        action="member.phone_bound",
        org_id=member.home_org_id,
        subject_type="member",
        subject_id=member.id,
        detail={"source": "wechat"},
    )
    return masked
