"""Errors of the activity domain: stable codes, Chinese details."""

from __future__ import annotations

from datetime import datetime

from app.core.errors import AppError, InvalidTransition, rfc3339


def activity_not_found() -> AppError:
    return AppError("activity.not_found", 404, "活动不存在或无权访问")


def org_not_found() -> AppError:
    return AppError("activity.org_not_found", 404, "组织不存在或不在您的管理范围内")


def window_closed(opens_at: datetime, closes_at: datetime) -> AppError:
    return AppError(
        "activity.window_closed",
        422,
        "当前不在签到时间内",
        extra={
            "checkin_opens_at": rfc3339(opens_at),
            "checkin_closes_at": rfc3339(closes_at),
        },
    )


def too_far(distance_m: float, radius_m: int) -> AppError:
    return AppError(
        "activity.too_far",
        422,
        f"您距离活动地点约 {round(distance_m)} 米，超出签到范围（{radius_m} 米）",
        extra={"distance_m": round(distance_m), "radius_m": radius_m},
    )


def invalid_qr() -> AppError:
    return AppError("activity.invalid_qr", 422, "签到二维码无效或已过期，请重新扫描现场二维码")


def location_required() -> AppError:
    return AppError(
        "activity.location_required", 422, "线下活动签到需要提供当前位置或扫描现场二维码"
    )


def full() -> AppError:
    return AppError("activity.full", 409, "活动报名人数已满")


def signup_closed() -> AppError:
    return AppError("activity.signup_closed", 422, "活动已开始，不能再报名或取消报名")


def already_attended() -> AppError:
    return AppError("activity.already_attended", 409, "您已签到参加该活动，不能再取消报名")


def signup_required() -> AppError:
    return AppError("activity.signup_required", 422, "该活动限定名额，请先报名再签到")


def signup_not_found() -> AppError:
    return AppError("activity.signup_not_found", 404, "您没有报名该活动")


def invalid_signup_transition(state: str, action: str) -> InvalidTransition:
    return InvalidTransition(
        "activity.invalid_transition",
        state,
        action,
        state_labels={"signed_up": "已报名", "cancelled": "已取消报名"},
        action_labels={"sign_up": "报名", "cancel": "取消报名"},
    )
