"""Errors of the members domain: stable codes, Chinese details."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.core.errors import AppError, forbidden, not_found


def member_not_found() -> AppError:
    return not_found("member.not_found", "党员不存在或无权访问")


def org_not_found() -> AppError:
    return not_found("org.not_found", "组织不存在或无权访问")


def home_org_required() -> AppError:
    return forbidden(
        "member.home_org_required",
        "该党员的档案由其所在党组织管理；共管（流入地）组织可以查看和联系他，但不能修改档案或查看身份证号",
    )


def id_number_taken() -> AppError:
    # One answer wherever the number is registered (inside the caller's scope or not),
    # with the proper path: his own organisation transfers his relation (组织关系转接).
    return AppError(
        "member.id_number_taken",
        409,
        "该身份证号已登记在党员名册中，不能重复登记。"
        "如该党员的组织关系需转入本组织，请通过组织关系转接办理",
        extra={"links": [TRANSFER_LINK]},
    )


# Where the id_number_taken answer points (machine-readable): the relation transfer,
# which the member himself or his own organisation requests (it names no one).
TRANSFER_LINK: dict[str, str] = {
    "rel": "transfer",
    "method": "POST",
    "href": "/api/v1/transfers",
    "title": "组织关系转接：由党员本人或其组织关系所在党组织申请",
}


class IdNumberTaken(AppError):
    """``member.id_number_taken``, knowing the holder (kept on the server side, for the
    audit entries of :mod:`app.members.conflicts`)."""

    def __init__(self, holder_id: int | None = None, holder_home_org_id: int | None = None):
        answer = id_number_taken()
        super().__init__(answer.code, answer.status, answer.detail, extra=answer.extra)
        self.holder_id = holder_id
        self.holder_home_org_id = holder_home_org_id


def id_mismatch(fields: Sequence[str]) -> AppError:
    labels = {"birth_date": "出生日期", "gender": "性别"}
    return AppError(
        "member.id_mismatch",
        422,
        "出生日期或性别与身份证号不一致",
        errors=[
            {
                "field": field,
                "location": "body",
                "type": "member.id_mismatch",
                "message": f"{labels.get(field, field)}与身份证号不一致",
            }
            for field in fields
        ],
    )


def unsupported_format() -> AppError:
    return AppError(
        "import.unsupported_format", 422, "仅支持 .xlsx 或 .csv 格式的名册文件，请使用下载的模板"
    )


def missing_columns(columns: Sequence[str]) -> AppError:
    return AppError(
        "import.missing_columns",
        422,
        "名册缺少必填列：" + "、".join(columns),
        errors=[{"row": 1, "field": column, "message": "缺少该列"} for column in columns],
    )


def empty_file() -> AppError:
    return AppError("import.empty", 422, "名册中没有数据行")


def invalid_rows(errors: Sequence[Mapping[str, Any]]) -> AppError:
    return AppError(
        "import.invalid_rows",
        422,
        f"名册中有 {len({e['row'] for e in errors})} 行数据有误，未导入任何数据；"
        "请修改后重新上传，或选择仅导入正确的行",
        errors=errors,
        extra={"created": 0, "updated": 0},
    )


def import_conflict() -> AppError:
    return AppError("import.conflict", 409, "名册中的部分党员刚刚被他人登记，请稍后重新导入")


def role_not_found() -> AppError:
    return not_found("role.not_found", "该任职记录不存在或无权访问")


def role_already_granted() -> AppError:
    return AppError("role.already_granted", 409, "该党员在此组织已担任该角色")


def role_forbidden() -> AppError:
    return forbidden("role.forbidden", "支部管理员只能授予或撤销支部管理员角色")
