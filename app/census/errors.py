"""Errors of the census domain, each with a stable code and a Chinese detail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.core.errors import AppError, InvalidTransition, not_found


def entity_not_found() -> AppError:
    return not_found("census.entity_not_found", "单位不存在或不在您的管辖范围内")


def round_not_found() -> AppError:
    return not_found("census.round_not_found", "摸排轮次不存在或不在您的管辖范围内")


def org_not_found() -> AppError:
    return not_found("census.org_not_found", "组织不存在或不在您的管辖范围内")


def member_not_found() -> AppError:
    return not_found("census.member_not_found", "党员不存在或不在您的管辖范围内")


def instructor_not_found() -> AppError:
    return not_found("census.instructor_not_found", "该党员不是此单位的党建工作指导员")


def credit_code_taken() -> AppError:
    return AppError("census.credit_code_taken", 409, "该统一社会信用代码的单位已登记")


def invalid_field(field: str, message: str) -> AppError:
    return AppError(
        "census.invalid_field",
        422,
        message,
        errors=[{"loc": ["body", field], "field": field, "message": message}],
    )


def round_exists() -> AppError:
    return AppError("census.round_exists", 409, "该组织本期摸排已开启，请勿重复开启")


def round_closed(state: str, action: str) -> AppError:
    return InvalidTransition("census.round_invalid_transition", state, action)


def entity_closed() -> AppError:
    return AppError("census.entity_closed", 409, "该单位已注销，不再摸排")


def already_linked() -> AppError:
    return AppError("census.already_linked", 409, "该单位已有本单位党组织，无需再关联")


def already_instructor() -> AppError:
    return AppError("census.already_instructor", 409, "该党员已是此单位的党建工作指导员")


def missing_columns(columns: Sequence[str]) -> AppError:
    return AppError(
        "import.missing_columns",
        422,
        "名录缺少必填列：" + "、".join(columns),
        errors=[{"row": 1, "field": column, "message": "缺少该列"} for column in columns],
    )


def empty_file() -> AppError:
    return AppError("import.empty", 422, "名录中没有数据行")


def invalid_rows(errors: Sequence[Mapping[str, Any]]) -> AppError:
    return AppError(
        "import.invalid_rows",
        422,
        f"名录中有 {len({e['row'] for e in errors})} 行数据有误，未导入任何数据；"
        "请修改后重新上传，或选择仅导入正确的行",
        errors=errors,
        extra={"created": 0, "updated": 0, "closed": 0, "unchanged": 0},
    )


def import_conflict() -> AppError:
    return AppError("import.conflict", 409, "名录中的部分单位刚刚被他人登记，请稍后重新导入")


def export_reason_required() -> AppError:
    return AppError("census.export_reason_required", 422, "导出完整联系方式须填写事由")
