"""Dependencies shared by the orders and time-bank routers."""

from __future__ import annotations

import inspect
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import SessionDep, get_session
from app.identity.principal import PrincipalDep
from app.organization.scope import Scope, build_scope


async def get_scope(principal: PrincipalDep, session: SessionDep) -> Scope:
    """Any caller's scope: admins get their subtrees, everybody else an empty one."""
    return await build_scope(session, principal)


ScopeDep = Annotated[Scope, Depends(get_scope, scope="function")]


class SessionOnDemand:
    """The request's session, opened only by a request that needs one: ``get_session``
    (or the app's override of it, as FastAPI would resolve it) run as a context manager,
    so it commits when the block ends and rolls back on an error, as ``SessionDep``
    does when the endpoint returns. For an endpoint on a plain route
    (app/core/routing.py resolves no generator dependency) whose hot case reads on the
    driver pool and whose other cases need the session: ``GET /orders``."""

    def __init__(self, request: Request) -> None:
        self._request = request

    def open(self) -> AbstractAsyncContextManager[AsyncSession]:
        provide = self._request.app.dependency_overrides.get(get_session, get_session)
        takes_request = "request" in inspect.signature(provide).parameters
        session = asynccontextmanager(provide)
        return session(self._request) if takes_request else session()


async def session_on_demand(request: Request) -> SessionOnDemand:
    return SessionOnDemand(request)


SessionOnDemandDep = Annotated[SessionOnDemand, Depends(session_on_demand)]
