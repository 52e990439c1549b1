"""Request and response models of login, refresh, the caller's profile and binding."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.identity.validators import IdNumber

if TYPE_CHECKING:
    from app.identity.service import TokenPair

AccountKind = Literal["member", "resident", "admin"]

AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "未登录或令牌无效（problem+json）"},
    403: {"description": "账号已停用或无权操作（problem+json）"},
}


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

    @classmethod
    def of(cls, account_id: int, kind: str, member_id: int | None) -> AccountOut:
        return cls.model_validate({"id": account_id, "kind": kind, "member_id": member_id})


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="访问令牌有效秒数")
    account: AccountOut

    @classmethod
    def of(cls, pair: TokenPair) -> TokenPairOut:
        claims = pair.claims
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            expires_in=pair.expires_in,
            account=AccountOut.of(claims.account_id, claims.kind, claims.member_id),
        )


class PhoneOut(BaseModel):
    phone_masked: str
