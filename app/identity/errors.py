"""Errors of the identity domain: login, refresh tokens, binding to the roster."""

from __future__ import annotations

from app.core.errors import AppError
from app.core.security import unauthorized

WECHAT_RETRY_AFTER_S = 5
WECHAT_RATE_LIMIT_RETRY_AFTER_S = 60


def invalid_code() -> AppError:
    return unauthorized("微信登录凭证无效或已使用，请重新进入小程序", "auth.invalid_code")


def wechat_blocked() -> AppError:
    return AppError("auth.blocked", 403, "该微信账号存在风险，暂时无法登录")


def wechat_rate_limited() -> AppError:
    return AppError(
        "wechat.rate_limited",
        429,
        "微信登录请求过于频繁，请稍后再试",
        headers={"Retry-After": str(WECHAT_RATE_LIMIT_RETRY_AFTER_S)},
    )


def wechat_unavailable() -> AppError:
    return AppError(
        "wechat.unavailable",
        503,
        "微信服务暂时不可用，请稍后重试",
        headers={"Retry-After": str(WECHAT_RETRY_AFTER_S)},
    )


def account_disabled() -> AppError:
    return AppError("auth.account_disabled", 403, "该账号已被停用，请联系组织管理员")


def invalid_refresh() -> AppError:
    return unauthorized("登录状态已失效，请重新登录", "auth.invalid_refresh")


def refresh_reused() -> AppError:
    return unauthorized(
        "登录凭证已被使用，为保护账号安全已退出登录，请重新登录", "auth.refresh_reused"
    )


def account_not_found() -> AppError:
    # The token names an account that no longer exists: the token is worthless.
    return unauthorized("登录已失效，请重新登录", "auth.invalid_token")


def not_found_in_roster() -> AppError:
    return AppError(
        "member.not_found_in_roster",
        404,
        "未在党员名册中找到与姓名和身份证号相符的记录，请核对后重试或联系所在支部",
    )


def already_bound() -> AppError:
    return AppError(
        "member.already_bound", 409, "该党员身份已绑定微信账号，或当前账号已绑定党员身份"
    )


def invalid_phone_code() -> AppError:
    return AppError("phone.invalid_code", 422, "手机号授权已失效，请重新授权")


def phone_not_mainland() -> AppError:
    return AppError("phone.not_mainland", 422, "仅支持绑定中国大陆手机号")


def console_ticket_not_found() -> AppError:
    return AppError("console.ticket_not_found", 404, "登录二维码不存在，请刷新控制台页面")


def console_ticket_expired() -> AppError:
    return AppError("console.ticket_expired", 410, "登录二维码已过期，请刷新控制台页面重新扫码")


def console_ticket_used() -> AppError:
    return AppError("console.ticket_used", 409, "该登录二维码已确认过，请勿重复扫码")


def console_admin_required() -> AppError:
    return AppError("console.admin_required", 403, "仅组织管理员可以登录管理控制台")
