"""Dependencies shared by the orders and time-bank routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.db import SessionDep
from app.core.errors import AppError
from app.core.pagination import decode_cursor, invalid_cursor
from app.organization.scope import PrincipalDep, Scope, build_scope


async def get_scope(principal: PrincipalDep, session: SessionDep) -> Scope:
    """Any caller's scope: admins get their subtrees, everybody else an empty one."""
    return await build_scope(session, principal)


ScopeDep = Annotated[Scope, Depends(get_scope, scope="function")]


def after_id(cursor: str | None) -> int | None:
    """The id cursor of an id-descending list."""
    values = decode_cursor(cursor, 1)
    if values is None:
        return None
    if not isinstance(values[0], int) or isinstance(values[0], bool):
        error: AppError = invalid_cursor()
        raise error
    return values[0]
