"""Request and response models of login, refresh, the caller's profile and binding."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.identity.validators import IdNumber
from app.members.schemas import Gender, MemberStatus
from app.mobility.schemas import ActiveOutflowOut
from app.organization.schemas import OrgKind, RoleName

AccountKind = Literal["member", "resident", "admin"]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=128, description="wx.login 返回的临时登录凭证")


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="只注销这个刷新令牌所在的登录；不传则注销该账号的全部登录",
    )


class BindIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50, description="名册中的姓名")
    id_number: IdNumber = Field(description="18 位居民身份证号")


class PhoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=128, description="getPhoneNumber 按钮回调中的 code")


class AccountOut(BaseModel):
    id: int
    kind: AccountKind
    member_id: int | None


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="访问令牌有效秒数")
    account: AccountOut


class MeOrgOut(BaseModel):
    id: int
    name: str
    kind: OrgKind


class MeRoleOut(BaseModel):
    id: int
    role: RoleName
    org: MeOrgOut


class MemberProfileOut(BaseModel):
    id: int
    name: str
    gender: Gender
    birth_date: date
    status: MemberStatus
    joined_on: date | None
    id_number_masked: str
    phone_masked: str | None


class MeOut(BaseModel):
    account: AccountOut
    display_name: str | None
    is_superadmin: bool
    member: MemberProfileOut | None
    home_org: MeOrgOut | None
    roles: list[MeRoleOut]
    active_outflow: ActiveOutflowOut | None = Field(
        default=None, description="待审批或进行中的外出登记摘要；没有则为 null"
    )


class PhoneOut(BaseModel):
    phone_masked: str
