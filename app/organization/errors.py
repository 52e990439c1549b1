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


# A malformed or implausible ``near=<lat>,<lon>`` of the directory search: one code,
# three details (literals, so that docs/errors.md lists them).
def near_malformed() -> AppError:
    return _invalid_near(
        AppError("directory.invalid_near", 422, "位置格式应为“纬度,经度”，例如 23.13,113.33")
    )


def near_out_of_range() -> AppError:
    return _invalid_near(
        AppError(
            "directory.invalid_near", 422, "纬度须在 -90 到 90 之间，经度须在 -180 到 180 之间"
        )
    )


def near_swapped() -> AppError:
    return _invalid_near(
        AppError("directory.invalid_near", 422, "纬度和经度似乎填反了，请按“纬度,经度”的顺序填写")
    )


def _invalid_near(error: AppError) -> AppError:
    """The same problem, naming the ``near`` query parameter as the field at fault."""
    return AppError(
        error.code,
        error.status,
        error.detail,
        errors=[
            {"field": "near", "location": "query", "type": error.code, "message": error.detail}
        ],
    )


def incomplete_location() -> AppError:
    return AppError(
        "org.incomplete_location",
        422,
        "纬度和经度须同时填写或同时清空",
        errors=[
            {
                "field": "lat",
                "location": "body",
                "type": "org.incomplete_location",
                "message": "纬度和经度须同时填写或同时清空",
            }
        ],
    )
