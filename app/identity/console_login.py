"""Logging in to the web console by scanning a QR code with the mini-program.

1. The console asks for a ticket (:func:`create_ticket`): a public id, shown as a QR
   code, and a poll secret that only that browser holds (an HttpOnly cookie).
2. The secretary scans it in the mini-program, which confirms it with his bearer token
   (:func:`confirm_ticket`); only admins may.
3. The console, polling with its poll secret (:func:`poll_ticket`), gets a session once:
   a random cookie whose SHA-256 is stored in ``console_sessions`` with its CSRF token.

Every console request reads its session row (:func:`authenticate`) and the account's
standing from the auth cache (:mod:`app.identity.sessions`, kept fresh by LISTEN/NOTIFY),
so a logout, a disabled account or a removed admin role ends the session at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import clock, ratelimit
from app.core.config import Settings
from app.core.db import ConnectionSource
from app.core.security import TokenClaims
from app.identity import errors, service
from app.identity import repository as repo
from app.identity.principal import Principal
from app.identity.sessions import SessionCache, account_state
from app.wechat.client import WeChatClient

TICKET_TTL_S: Final = 120
SESSION_TTL_S: Final = 8 * 3600
SESSION_COOKIE: Final = "bl_console"
POLL_COOKIE: Final = "bl_console_poll"
POLL_COOKIE_PATH: Final = "/api/v1/auth/console"
QR_PREFIX: Final = "branchlink://console-login?ticket="
TICKETS_PER_IP = ratelimit.Policy("console-ticket-ip", limit=120, window_s=60)
# The demo accounts the WeChat simulator can "scan" with (dev only).
SIMULATED_SCANNERS: Final = {
    "demo-admin": "李明华（县委组织部）",
    "demo-secretary": "张秀英（支部书记）",
}


def poll_cookie(settings: Settings) -> dict[str, Any]:
    """Where the poll secret lives: only the ticket endpoints ever see it."""
    return {
        "key": POLL_COOKIE,
        "max_age": TICKET_TTL_S,
        "path": POLL_COOKIE_PATH,
        "httponly": True,
        "samesite": "strict",
        "secure": settings.env == "prod",
    }


def session_cookie(settings: Settings) -> dict[str, Any]:
    return {
        "key": SESSION_COOKIE,
        "max_age": SESSION_TTL_S,
        "path": "/",
        "httponly": True,
        "samesite": "lax",
        "secure": settings.env == "prod",
    }


TicketStatus = Literal["pending", "confirmed", "expired"]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


@dataclass(frozen=True)
class NewTicket:
    ticket: str
    poll_secret: str
    qr_content: str
    expires_in: int


async def create_ticket(
    session: AsyncSession, engine: AsyncEngine, *, client_ip: str | None
) -> NewTicket:
    await ratelimit.hit(engine, TICKETS_PER_IP, client_ip or "unknown")
    ticket = secrets.token_urlsafe(24)
    poll_secret = secrets.token_urlsafe(32)
    expires_at = clock.now() + timedelta(seconds=TICKET_TTL_S)
    await repo.add_console_ticket(session, ticket, _digest(poll_secret), expires_at)
    return NewTicket(ticket, poll_secret, QR_PREFIX + ticket, TICKET_TTL_S)


async def confirm_ticket(session: AsyncSession, principal: Principal, ticket_id: str) -> None:
    """The mini-program confirms a scanned ticket for its (admin) account."""
    if not principal.is_admin:
        raise errors.console_admin_required()
    now = clock.now()
    ticket = await repo.lock_console_ticket(session, ticket_id)
    if ticket is None:
        raise errors.console_ticket_not_found()
    if ticket.confirmed_at is not None or ticket.consumed_at is not None:
        raise errors.console_ticket_used()
    if ticket.expires_at <= now:
        raise errors.console_ticket_expired()
    await repo.confirm_console_ticket(session, ticket_id, principal.account_id, now)
    await service.audit_admin_login(
        session,
        principal.account_id,
        principal.roles,
        principal.superadmin,
        action="auth.console_login",
    )


@dataclass(frozen=True)
class PollResult:
    status: TicketStatus
    expires_in: int
    session_token: str | None = None


async def poll_ticket(session: AsyncSession, ticket_id: str, poll_secret: str | None) -> PollResult:
    """The console's poll: a confirmed ticket turns into a session, once. Only the browser
    holding the ticket's poll secret learns anything about it (404 for everyone else)."""
    now = clock.now()
    ticket = await repo.lock_console_ticket(session, ticket_id)
    if (
        ticket is None
        or poll_secret is None
        or not hmac.compare_digest(ticket.poll_hash, _digest(poll_secret))
    ):
        raise errors.console_ticket_not_found()
    if ticket.consumed_at is not None or (ticket.confirmed_at is None and ticket.expires_at <= now):
        return PollResult("expired", 0)
    if ticket.confirmed_by is None:
        return PollResult("pending", max(0, int((ticket.expires_at - now).total_seconds())))
    token = secrets.token_urlsafe(32)
    await repo.consume_console_ticket(session, ticket_id, now)
    await repo.add_console_session(
        session,
        _digest(token),
        ticket.confirmed_by,
        secrets.token_urlsafe(32),
        now + timedelta(seconds=SESSION_TTL_S),
    )
    return PollResult("confirmed", SESSION_TTL_S, token)


@dataclass(frozen=True)
class ConsoleIdentity:
    """Who is behind a console request: his session and his standing now."""

    session_id: int
    principal: Principal
    csrf_token: str


async def authenticate(
    session: AsyncSession, cache: SessionCache, source: ConnectionSource, token: str | None
) -> ConsoleIdentity | int | None:
    """The open session of the cookie ``token`` with its account's standing now. None
    without an open session; the session's id when it must end now (the account was
    disabled or is no longer an admin: the caller revokes it with :func:`end_session`)."""
    if not token:
        return None
    found = await repo.open_console_session(session, _digest(token), clock.now())
    if found is None:
        return None
    session_id, account_id, csrf = found
    claims = TokenClaims(account_id=account_id, kind="admin", member_id=None, superadmin=False)
    state = await account_state(cache, source, claims)
    if state is None or state.disabled or not (state.superadmin or state.roles):
        return session_id
    principal = Principal(
        account_id=account_id,
        kind=state.kind,
        member_id=state.member_id,
        superadmin=state.superadmin,
        roles=state.roles,
    )
    return ConsoleIdentity(session_id, principal, csrf)


async def end_session(session: AsyncSession, session_id: int) -> None:
    await repo.revoke_console_session(session, session_id, clock.now())


def csrf_matches(identity: ConsoleIdentity, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(
        identity.csrf_token.encode(), presented.encode()
    )


async def logout(session: AsyncSession, identity: ConsoleIdentity) -> None:
    await end_session(session, identity.session_id)


async def display_name(session: AsyncSession, account_id: int) -> str:
    return await repo.account_display_name(session, account_id) or "管理员"


async def simulate_scan(
    session: AsyncSession,
    settings: Settings,
    wechat: WeChatClient,
    engine: AsyncEngine,
    *,
    ticket_id: str,
    openid: str,
    client_ip: str | None,
) -> None:
    """Dev only: what the mini-program does after a scan, for a demo admin: ``wx.login``
    through the WeChat simulator, then the confirmation with his token's claims."""
    if not settings.simulator_enabled or openid not in SIMULATED_SCANNERS:
        raise errors.console_ticket_not_found()
    pair = await service.login(
        session,
        settings,
        wechat,
        engine,
        code=f"{openid}.console-{secrets.token_hex(6)}",
        client_ip=client_ip,
    )
    claims = pair.claims
    principal = Principal(
        account_id=claims.account_id,
        kind=claims.kind,
        member_id=claims.member_id,
        superadmin=claims.superadmin,
        roles=claims.roles,
    )
    await confirm_ticket(session, principal, ticket_id)


# Kept a while after they end (the audit log has the logins themselves).
TICKETS_KEPT: Final = timedelta(days=1)
SESSIONS_KEPT: Final = timedelta(days=30)


async def purge(session: AsyncSession, now: datetime) -> int:
    """Scheduled hourly (app/notify/scheduler.py): old tickets and ended sessions go."""
    return await repo.purge_console_logins(session, now - TICKETS_KEPT, now - SESSIONS_KEPT)
