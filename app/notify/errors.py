"""Errors of the notify domain (stable codes, Chinese details)."""

from __future__ import annotations

from app.core.errors import AppError, not_found


def notification_not_found() -> AppError:
    return not_found("notification.not_found", "消息不存在或已被删除")
