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


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as the access token describes him."""

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
    return Principal(
        account_id=claims.account_id,
        kind=claims.kind,
        member_id=claims.member_id,
        superadmin=claims.superadmin,
        roles=claims.roles,
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_member_principal(principal: PrincipalDep) -> Principal:
    if principal.member_id is None:
        raise forbidden("auth.member_required", "请先绑定党员身份")
    return principal


MemberDep = Annotated[Principal, Depends(get_member_principal)]
