"""Dependencies shared by the orders and time-bank routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.db import SessionDep
from app.identity.principal import PrincipalDep
from app.organization.scope import Scope, build_scope


async def get_scope(principal: PrincipalDep, session: SessionDep) -> Scope:
    """Any caller's scope: admins get their subtrees, everybody else an empty one."""
    return await build_scope(session, principal)


ScopeDep = Annotated[Scope, Depends(get_scope, scope="function")]
