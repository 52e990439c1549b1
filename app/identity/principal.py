"""Who is calling: the authenticated principal, as the access token describes him.

Authentication only; what he may see and change is :mod:`app.organization.scope`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings
from app.core.errors import forbidden
from app.core.security import RoleClaim, decode_access_token, unauthorized
from app.identity import errors, sessions


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: who the access token names, with his roles and binding
    as the database has them now."""

    account_id: int
    kind: str  # member | resident | admin
    member_id: int | None
    superadmin: bool
    roles: tuple[RoleClaim, ...]

    @property
    def is_admin(self) -> bool:
        return self.superadmin or bool(self.roles)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_principal(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header or not header.lower().startswith("bearer "):
        raise unauthorized("请先登录", "auth.missing_token")
    claims = decode_access_token(_settings(request), header[7:].strip())
    request.state.account_id = claims.account_id
    # Roles, binding and standing as the database has them now, not as when the token
    # was signed (app/identity/sessions.py: no round trip while nothing changed).
    state = await sessions.account_state(
        request.app.state.sessions, request.app.state.driver_pool, claims
    )
    if state is None or not state.session_open:
        raise unauthorized("登录已失效，请重新登录", "auth.session_ended")
    if state.disabled:
        raise errors.account_disabled()
    return Principal(
        account_id=claims.account_id,
        kind=state.kind,
        member_id=state.member_id,
        superadmin=state.superadmin,
        roles=state.roles,
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_member_principal(principal: PrincipalDep) -> Principal:
    if principal.member_id is None:
        raise forbidden("auth.member_required", "请先绑定党员身份")
    return principal


MemberDep = Annotated[Principal, Depends(get_member_principal)]
