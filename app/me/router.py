"""HTTP endpoints of the caller's own view: ``GET /me`` and binding to the roster."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.db import SessionDep
from app.identity.principal import PrincipalDep
from app.identity.schemas import AUTH_ERRORS, AccountOut, BindIn, TokenPairOut
from app.me import service
from app.me.schemas import MemberProfileOut, MeOrgOut, MeOut, MeRoleOut

router = APIRouter(tags=["identity"])


def _org_out(org: object) -> MeOrgOut:
    return MeOrgOut.model_validate(org, from_attributes=True)


@router.get("/me", response_model=MeOut, responses=AUTH_ERRORS)
async def me(principal: PrincipalDep, session: SessionDep) -> MeOut:
    """当前用户：账号、党员信息（脱敏）、管理角色及其组织、所在支部。"""
    mine = await service.me(session, principal)
    profile = mine.profile
    account = profile.account
    member = profile.member
    return MeOut(
        account=AccountOut.of(account.id, profile.kind, account.member_id),
        # A member who bound by ID number never gave a display name: show his roster name.
        display_name=account.display_name or (member.name if member else None),
        is_superadmin=account.is_superadmin,
        member=MemberProfileOut.model_validate(member, from_attributes=True) if member else None,
        home_org=_org_out(profile.home_org) if profile.home_org else None,
        roles=[
            MeRoleOut(id=role.id, role=role.role, org=_org_out(org)) for role, org in profile.roles
        ],
        active_outflow=mine.active_outflow,
    )


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
