"""Errors of care, each with a stable code and a Chinese detail."""

from __future__ import annotations

from app.core.errors import AppError, forbidden, not_found


def org_not_found() -> AppError:
    return not_found("care.org_not_found", "组织不存在或不在您的管辖范围内")


def campaign_not_found() -> AppError:
    return not_found("care.campaign_not_found", "关怀活动不存在或不在您的管辖范围内")


def case_not_found() -> AppError:
    return not_found("care.case_not_found", "帮扶记录不存在或不在您的管辖范围内")


def member_not_found() -> AppError:
    return not_found("care.member_not_found", "党员不存在或不在您的管辖范围内")


def home_only() -> AppError:
    return forbidden("care.home_only", "仅党员组织关系所在党组织可查看详情、结案或导出")


def admin_required() -> AppError:
    return forbidden("care.admin_required", "仅组织管理员可为其他党员登记帮扶")


def send_on_past() -> AppError:
    return AppError(
        "care.send_on_past",
        422,
        "发送日期不能早于今天",
        errors=_field("send_on", "发送日期不能早于今天"),
    )


def send_on_required() -> AppError:
    return AppError(
        "care.send_on_required",
        422,
        "请填写发送日期或选择节日",
        errors=_field("send_on", "请填写发送日期或选择节日"),
    )


def send_on_conflict() -> AppError:
    return AppError(
        "care.send_on_conflict",
        422,
        "已选择节日时发送日期由节日决定，请勿同时填写",
        errors=_field("send_on", "已选择节日时发送日期由节日决定，请勿同时填写"),
    )


def year_without_festival() -> AppError:
    return AppError(
        "care.year_without_festival",
        422,
        "年份只能与节日一起填写",
        errors=_field("year", "年份只能与节日一起填写"),
    )


def help_in_future() -> AppError:
    return AppError(
        "care.help_in_future",
        422,
        "帮扶日期不能晚于今天",
        errors=_field("given_on", "帮扶日期不能晚于今天"),
    )


def _field(field: str, message: str) -> list[dict[str, object]]:
    return [{"loc": ["body", field], "field": field, "message": message}]
