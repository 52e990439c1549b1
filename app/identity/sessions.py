"""Access that ends at once: logout, a disabled account, a removed or granted role.

An access token lives ``APP_ACCESS_TOKEN_TTL_S`` (600 s) and is verified without the
database. What it cannot know (its login session was logged out, the account was
disabled, a role was granted or removed) is read from the database once per account,
session and process, and kept in :class:`SessionCache`, so the hot path adds no round
trip. Every write that changes it (any UPDATE of ``accounts.disabled_at``,
``is_superadmin`` or ``member_id``; any change of ``role_assignments``; a refresh token
revoked) fires a trigger that calls ``pg_notify('auth_changed', <account id>)``; the
notification is delivered at commit to every process of every replica, and each
process's :class:`AuthListener` drops that account's entries. The next request reads
the account again.

If the listener's connection is down, notifications may be missed, so nothing cached is
trusted: every request reads its account (one indexed query) until the listener is
back, and the cache starts empty then. A connection that dies silently is noticed by a
health check within ``HEALTH_INTERVAL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import structlog
from starlette.requests import Request

from app.core.config import Settings
from app.core.db import ConnectionSource, connect_args, direct_url, to_driver_url
from app.core.security import RoleClaim, TokenClaims

log = structlog.stdlib.get_logger("app.identity.sessions")

CHANNEL: Final = "auth_changed"
HEALTH_INTERVAL_S: Final = 5.0
MAX_ACCOUNTS: Final = 20_000
# How long a change this process is making keeps its accounts out of the cache if no
# notification confirms it (the transaction rolled back, or the listener is slow).
HOLD_S: Final = 5.0

# One indexed lookup per account: the account, its roles, and whether the token's login
# session (refresh-token family) is still open. ``$2`` is NULL for tokens without one.
STATE_SQL: Final = """
SELECT a.member_id,
       a.is_superadmin,
       a.disabled_at IS NOT NULL AS disabled,
       ARRAY(SELECT r.role FROM role_assignments r
             WHERE r.member_id = a.member_id ORDER BY r.org_id, r.id) AS role_names,
       ARRAY(SELECT r.org_id FROM role_assignments r
             WHERE r.member_id = a.member_id ORDER BY r.org_id, r.id) AS role_orgs,
       ($2::uuid IS NULL OR EXISTS (
           SELECT 1 FROM refresh_tokens t
           WHERE t.family_id = $2::uuid AND t.account_id = a.id AND t.revoked_at IS NULL
       )) AS session_open
FROM accounts a
WHERE a.id = $1
"""


@dataclass(frozen=True, slots=True)
class AccountState:
    """What the database says now about a token's account and session."""

    member_id: int | None
    superadmin: bool
    disabled: bool
    roles: tuple[RoleClaim, ...]
    session_open: bool

    @property
    def kind(self) -> str:
        return kind_of(self.superadmin, self.member_id, self.roles)


def kind_of(superadmin: bool, member_id: int | None, roles: tuple[RoleClaim, ...]) -> str:
    if superadmin or roles:
        return "admin"
    return "member" if member_id is not None else "resident"


class SessionCache:
    """Account states by account and session, per process; trusted only while the
    listener is connected (:attr:`trusted`)."""

    def __init__(self, max_accounts: int = MAX_ACCOUNTS) -> None:
        self._entries: dict[int, dict[str | None, AccountState]] = {}
        self._max_accounts = max_accounts
        self.trusted = False
        # Bumped by every forget/clear: a state read before a change is not stored after it.
        self.generation = 0
        self.notifications = 0
        self.changed = asyncio.Event()
        self._held_accounts: dict[int, float] = {}
        self._held_members: dict[int, float] = {}

    def get(self, account_id: int, session_id: str | None) -> AccountState | None:
        if not self.trusted:
            return None
        entries = self._entries.get(account_id)
        return entries.get(session_id) if entries is not None else None

    def put(
        self, account_id: int, session_id: str | None, state: AccountState, generation: int
    ) -> None:
        if not self.trusted or generation != self.generation:
            return
        if self._held(self._held_accounts, account_id) or (
            state.member_id is not None and self._held(self._held_members, state.member_id)
        ):
            return
        entries = self._entries.get(account_id)
        if entries is None:
            if len(self._entries) >= self._max_accounts:
                self._entries.pop(next(iter(self._entries)))
            entries = self._entries[account_id] = {}
        entries[session_id] = state

    def forget(self, account_id: int) -> None:
        self._entries.pop(account_id, None)
        self.generation += 1

    def hold(self, *, account_id: int | None = None, member_id: int | None = None) -> None:
        """A change of this account (or of the account bound to this member) is being
        written in this process: drop what is cached and cache nothing of it until the
        notification of the commit arrives (at most :data:`HOLD_S`). Requests meanwhile
        read the database, so the change shows the moment it commits, even before the
        notification comes back to this process."""
        until = time.monotonic() + HOLD_S
        if account_id is not None:
            self._held_accounts[account_id] = until
            self._entries.pop(account_id, None)
        if member_id is not None:
            self._held_members[member_id] = until
            for key in [
                key
                for key, entries in self._entries.items()
                if any(state.member_id == member_id for state in entries.values())
            ]:
                del self._entries[key]
        self.generation += 1

    @staticmethod
    def _held(holds: dict[int, float], key: int) -> bool:
        until = holds.get(key)
        if until is None:
            return False
        if until < time.monotonic():
            del holds[key]
            return False
        return True

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1

    def notified(self, payload: str) -> None:
        try:
            account_id = int(payload)
        except ValueError:
            self.clear()
        else:
            self.forget(account_id)
            self._held_accounts.pop(account_id, None)
        self.notifications += 1
        self.changed.set()
        self.changed = asyncio.Event()


async def account_state(
    cache: SessionCache, source: ConnectionSource, claims: TokenClaims
) -> AccountState | None:
    """The state of ``claims``' account and session: cached, or read (and cached).
    None when the account no longer exists."""
    state = cache.get(claims.account_id, claims.session_id)
    if state is not None:
        return state
    generation = cache.generation
    family = _family(claims.session_id)
    async with source.connection() as conn:
        row = await conn.fetchrow(STATE_SQL, claims.account_id, family)
    if row is None:
        return None
    state = AccountState(
        member_id=row["member_id"],
        superadmin=row["is_superadmin"],
        disabled=row["disabled"],
        roles=tuple(
            RoleClaim(role, org_id)
            for role, org_id in zip(row["role_names"], row["role_orgs"], strict=True)
        ),
        session_open=row["session_open"],
    )
    cache.put(claims.account_id, claims.session_id, state, generation)
    return state


def _family(session_id: str | None) -> uuid.UUID | None:
    if session_id is None:
        return None
    try:
        return uuid.UUID(session_id)
    except ValueError:
        return uuid.UUID(int=0)  # no family has it: the session counts as closed


def cache_of(request: Request) -> SessionCache:
    cache: SessionCache = request.app.state.sessions
    return cache


class AuthListener:
    """LISTEN auth_changed on a connection of its own, reconnecting with backoff."""

    def __init__(self, settings: Settings, url: str, cache: SessionCache) -> None:
        self._settings = settings
        # LISTEN needs a session of its own: never through PgBouncer's transaction pool.
        self._url = to_driver_url(direct_url(settings, url))
        self._cache = cache
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None

    def start(self) -> None:
        if self._settings.db_pgbouncer and not self._settings.database_direct_url:
            # Every request then reads its account (correct, one more query each).
            log.warning("auth listener off: APP_DB_PGBOUNCER without APP_DATABASE_DIRECT_URL")
            return
        self._task = asyncio.create_task(self._run(), name="auth-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._cache.trusted = False

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._listen()
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is away: try again later
                log.warning("auth listener down", error=type(error).__name__)
            finally:
                self._cache.trusted = False
                await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _listen(self) -> None:
        options = connect_args(self._settings, pooled=False)
        options["server_settings"] = {
            **options["server_settings"],
            "application_name": "branchlink-auth-listener",
        }
        conn: asyncpg.Connection = await asyncpg.connect(self._url, **options)
        self._conn = conn
        closed = asyncio.Event()
        conn.add_termination_listener(_on_close(closed))
        await conn.add_listener(CHANNEL, self._on_notification)
        # Anything cached before this point may have missed a notification.
        self._cache.clear()
        self._cache.trusted = True
        log.info("auth listener up")
        while not closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), HEALTH_INTERVAL_S)
            if not closed.is_set():
                await conn.fetchval("SELECT 1", timeout=HEALTH_INTERVAL_S)
        raise ConnectionError("listener connection closed")

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._cache.notified(payload)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)


def _on_close(closed: asyncio.Event) -> Callable[[Any], None]:
    def callback(_conn: Any) -> None:
        closed.set()

    return callback
