"""HTTP endpoints of the identity domain: login, refresh, logout, the caller's phone.

``GET /me`` and binding to the roster compose other domains: they are in ``app/me``."""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import SessionDep
from app.core.errors import app_error_response
from app.core.idempotency import IdempotencyDep
from app.core.routing import DomainRouter
from app.identity import service, sessions
from app.identity.principal import MemberDep, PrincipalDep
from app.identity.schemas import (
    AUTH_ERRORS,
    LoginIn,
    LogoutIn,
    PhoneIn,
    PhoneOut,
    RefreshIn,
    TokenPairOut,
)
from app.wechat.client import WeChatClient

router = DomainRouter(tags=["identity"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def _wechat(request: Request) -> WeChatClient:
    wechat: WeChatClient = request.app.state.wechat
    return wechat


@router.post(
    "/auth/wechat/login",
    response_model=TokenPairOut,
    responses={
        401: {"description": "auth.invalid_code：登录凭证无效或已使用"},
        403: {"description": "auth.blocked / auth.account_disabled"},
        429: {"description": "rate_limited / wechat.rate_limited（带 Retry-After）"},
        503: {"description": "wechat.unavailable（带 Retry-After）"},
    },
)
async def wechat_login(body: LoginIn, request: Request, session: SessionDep) -> TokenPairOut:
    """用 wx.login 的 code 登录；首次登录自动创建群众账号。"""
    pair = await service.login(
        session,
        _settings(request),
        _wechat(request),
        _engine(request),
        code=body.code,
        client_ip=request.client.host if request.client else None,
    )
    return TokenPairOut.of(pair)


@router.post(
    "/auth/refresh",
    response_model=TokenPairOut,
    responses={
        401: {"description": "auth.invalid_refresh / auth.refresh_reused（整个登录已被注销）"},
        403: {"description": "auth.account_disabled"},
    },
)
async def refresh_tokens(
    body: RefreshIn, request: Request, session: SessionDep
) -> TokenPairOut | Response:
    """用刷新令牌换一对新令牌；每个刷新令牌只能用一次。

    同一客户端（地址与 User-Agent 相同）在 30 秒内重复提交同一刷新令牌（如网络重发）时，
    返回与第一次相同的一对令牌；超过时限或来自其他客户端的重复使用会注销整个登录。"""
    client = service.client_fingerprint(
        request.client.host if request.client else None, request.headers.get("user-agent")
    )
    result = await service.refresh(session, _settings(request), body.refresh_token, client=client)
    if isinstance(result, service.RefreshRejected):
        # Returned, not raised: the session commits the revoked family before we answer.
        return app_error_response(result.error)
    return TokenPairOut.of(result)


@router.post("/auth/logout", status_code=204, responses=AUTH_ERRORS)
async def logout(
    principal: PrincipalDep, request: Request, session: SessionDep, body: LogoutIn | None = None
) -> Response:
    """注销登录：传 refresh_token 则注销该登录，否则注销此账号的全部登录。"""
    sessions.cache_of(request).hold(account_id=principal.account_id)
    await service.logout(session, principal, body.refresh_token if body else None)
    return Response(status_code=204)


@router.post(
    "/me/phone",
    response_model=PhoneOut,
    responses={
        422: {"description": "phone.invalid_code / phone.not_mainland"},
        503: {"description": "wechat.unavailable"},
        **AUTH_ERRORS,
    },
)
async def bind_phone(
    body: PhoneIn,
    principal: MemberDep,
    request: Request,
    session: SessionDep,
    idem: IdempotencyDep,
) -> Response:
    """用手机号快速验证组件的 code 绑定手机号（加密保存，返回脱敏号码）。

    A retry with the same ``Idempotency-Key`` replays the first answer instead of sending
    the (single-use) code to WeChat again. Login, refresh and bind take no key on purpose:
    their answers carry tokens, which must never be stored.
    """

    async def run() -> PhoneOut:
        masked = await service.bind_phone(
            session, _settings(request), _wechat(request), principal, code=body.code
        )
        return PhoneOut(phone_masked=masked)

    return await idem.run(run)
