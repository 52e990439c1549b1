"""HTTP endpoints of the identity domain: login, refresh, logout, the caller's profile."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import SessionDep
from app.core.errors import app_error_response
from app.core.idempotency import IdempotencyDep
from app.identity import service
from app.identity.schemas import (
    AccountOut,
    BindIn,
    LoginIn,
    LogoutIn,
    MemberProfileOut,
    MeOrgOut,
    MeOut,
    MeRoleOut,
    PhoneIn,
    PhoneOut,
    RefreshIn,
    TokenPairOut,
)
from app.organization.scope import MemberDep, PrincipalDep
from app.wechat.client import WeChatClient

router = APIRouter(tags=["identity"])

_AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "未登录或令牌无效（problem+json）"},
    403: {"description": "账号已停用或无权操作（problem+json）"},
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def _wechat(request: Request) -> WeChatClient:
    wechat: WeChatClient = request.app.state.wechat
    return wechat


def _account_out(account_id: int, kind: str, member_id: int | None) -> AccountOut:
    return AccountOut.model_validate({"id": account_id, "kind": kind, "member_id": member_id})


def _pair_out(pair: service.TokenPair) -> TokenPairOut:
    claims = pair.claims
    return TokenPairOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        account=_account_out(claims.account_id, claims.kind, claims.member_id),
    )


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
    return _pair_out(pair)


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
    """用刷新令牌换一对新令牌；每个刷新令牌只能用一次。"""
    result = await service.refresh(session, _settings(request), body.refresh_token)
    if isinstance(result, service.RefreshRejected):
        # Returned, not raised: the session commits the revoked family before we answer.
        return app_error_response(result.error)
    return _pair_out(result)


@router.post("/auth/logout", status_code=204, responses=_AUTH_ERRORS)
async def logout(
    principal: PrincipalDep, session: SessionDep, body: LogoutIn | None = None
) -> Response:
    """注销登录：传 refresh_token 则注销该登录，否则注销此账号的全部登录。"""
    await service.logout(session, principal, body.refresh_token if body else None)
    return Response(status_code=204)


def _org_out(org: object) -> MeOrgOut:
    return MeOrgOut.model_validate(org, from_attributes=True)


@router.get("/me", response_model=MeOut, responses=_AUTH_ERRORS)
async def me(principal: PrincipalDep, session: SessionDep) -> MeOut:
    """当前用户：账号、党员信息（脱敏）、管理角色及其组织、所在支部。"""
    profile = await service.profile(session, principal)
    account = profile.account
    member = profile.member
    return MeOut(
        account=_account_out(account.id, profile.kind, account.member_id),
        display_name=account.display_name,
        is_superadmin=account.is_superadmin,
        member=MemberProfileOut.model_validate(member, from_attributes=True) if member else None,
        home_org=_org_out(profile.home_org) if profile.home_org else None,
        roles=[
            MeRoleOut(id=role.id, role=role.role, org=_org_out(org)) for role, org in profile.roles
        ],
        active_outflow=profile.active_outflow,
    )


@router.post(
    "/me/bind",
    response_model=TokenPairOut,
    responses={
        404: {"description": "member.not_found_in_roster"},
        409: {"description": "member.already_bound"},
        429: {"description": "rate_limited（带 Retry-After）"},
        **_AUTH_ERRORS,
    },
)
async def bind(
    body: BindIn, principal: PrincipalDep, request: Request, session: SessionDep
) -> TokenPairOut:
    """用姓名和身份证号把微信账号绑定到党员名册；返回新的令牌。"""
    pair = await service.bind(
        session,
        _settings(request),
        _engine(request),
        principal,
        name=body.name,
        id_number=body.id_number,
    )
    return _pair_out(pair)


@router.post(
    "/me/phone",
    response_model=PhoneOut,
    responses={
        422: {"description": "phone.invalid_code / phone.not_mainland"},
        503: {"description": "wechat.unavailable"},
        **_AUTH_ERRORS,
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
