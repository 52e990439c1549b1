"""Errors of the study domain: stable codes, Chinese details."""

from __future__ import annotations

from app.core.errors import AppError, not_found


def item_not_found() -> AppError:
    return not_found("study.item_not_found", "学习内容不存在或无权访问")


def session_not_found() -> AppError:
    return not_found("study.session_not_found", "学习记录不存在或无权访问")


def org_not_found() -> AppError:
    return not_found("study.org_not_found", "组织不存在或无权访问")


def org_required() -> AppError:
    return AppError(
        "study.org_required",
        422,
        "请指定学习内容所属的组织",
        errors=[
            {"field": "org_id", "location": "body", "type": "missing", "message": "缺少必填字段"}
        ],
    )


def too_short(seconds_remaining: int) -> AppError:
    return AppError(
        "study.too_short",
        422,
        f"学习时间不足，还需学习 {seconds_remaining} 秒才能打卡",
        extra={"seconds_remaining": seconds_remaining, "points_awarded": 0},
    )


# Codes of per-event results in an offline batch (not raised: reported per event).
TOO_SHORT = "study.too_short"
SESSION_NOT_FOUND = "study.session_not_found"
FUTURE_TIME = "study.future_time"
BEFORE_SESSION = "study.before_session"
EVENT_TOO_OLD = "study.event_too_old"
