"""HTTP endpoints of the caller's own view: ``GET /me`` and binding to the roster."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from app.core.db import ReaderDep, SessionDep
from app.core.responses import json_response
from app.core.routing import DomainRouter, PlainRoute
from app.identity.principal import PrincipalDep
from app.identity.schemas import AUTH_ERRORS, BindIn, TokenPairOut
from app.me import service
from app.me.schemas import MeOut

router = DomainRouter(tags=["identity"])


async def me(principal: PrincipalDep, reader: ReaderDep) -> Response:
    """当前用户：账号、党员信息（脱敏）、管理角色及其组织、所在支部。"""
    return json_response(await service.me(reader, principal))


# What a phone asks whenever the mini-program opens: plain requests (no Origin) take the
# plain route (app/core/routing.py), browsers the documented one; same endpoint.
router.add_api_route("/me", me, methods=["GET"], route_class_override=PlainRoute)
router.add_api_route("/me", me, methods=["GET"], response_model=MeOut, responses=AUTH_ERRORS)


@router.post(
    "/me/bind",
    response_model=TokenPairOut,
    responses={
        404: {"description": "member.not_found_in_roster"},
        409: {"description": "member.already_bound"},
        429: {"description": "rate_limited（带 Retry-After）"},
        **AUTH_ERRORS,
    },
)
async def bind(
    body: BindIn, principal: PrincipalDep, request: Request, session: SessionDep
) -> TokenPairOut:
    """用姓名和身份证号把微信账号绑定到党员名册；返回新的令牌。"""
    pair = await service.bind(
        session,
        request.app.state.settings,
        request.app.state.engine,
        principal,
        name=body.name,
        id_number=body.id_number,
    )
    return TokenPairOut.of(pair)
