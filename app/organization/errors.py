"""Errors of the organisation domain: stable codes, Chinese details."""

from __future__ import annotations

from app.core.errors import AppError, forbidden, not_found


def org_not_found() -> AppError:
    return not_found("org.not_found", "组织不存在或无权访问")


def parent_not_found() -> AppError:
    return AppError("org.parent_not_found", 404, "上级组织不存在或无权访问")


def invalid_region_code() -> AppError:
    return AppError(
        "org.invalid_region_code",
        422,
        "行政区划代码无效，请填写6位国家标准区划代码",
        errors=[
            {
                "field": "region_code",
                "location": "body",
                "type": "org.invalid_region_code",
                "message": "行政区划代码无效",
            }
        ],
    )


def root_requires_superadmin() -> AppError:
    return forbidden("org.root_requires_superadmin", "只有超级管理员可以创建或移动顶级组织")


def move_forbidden() -> AppError:
    return forbidden(
        "org.move_forbidden", "只有同时管辖原上级组织和新上级组织的管理员可以移动该组织"
    )


def move_into_own_subtree() -> AppError:
    return AppError("org.move_into_descendant", 422, "不能把组织移动到它自身或它的下级组织之下")
