"""Errors of the mobility domain, with stable codes and Chinese details."""

from __future__ import annotations

from app.core.errors import AppError, InvalidTransition, forbidden, not_found


def outflow_not_found() -> AppError:
    return not_found("outflow.not_found", "外出登记不存在或无权访问")


def no_current_outflow() -> AppError:
    return not_found("outflow.none", "当前没有进行中的外出登记")


def already_active() -> AppError:
    return AppError("outflow.already_active", 409, "已有待审批或进行中的外出登记，请勿重复登记")


STATE_LABELS = {
    "pending": "待审批",
    "active:none": "已外出、尚未报到",
    "active:pending": "报到待流入地确认",
    "active:accepted": "已在流入地报到",
    "active:refused": "报到未被接收",
    "rejected": "未通过审批",
    "returned": "已返回",
    "withdrawn": "已撤回",
    "cancelled": "已取消",
    "transferred": "已转接组织关系",
}
ACTION_LABELS = {
    "approve": "审批通过",
    "reject": "驳回",
    "checkin": "申请流入地报到",
    "accept_checkin": "接收报到",
    "refuse_checkin": "拒绝报到",
    "report": "提交定期报告",
    "relocate": "变更流入地",
    "return": "办理返回登记",
    "withdraw": "撤回登记",
    "cancel": "取消外出",
    "inflow": "核实流入登记",
    "transfer": "转接组织关系",
}


def invalid_transition(state: str, action: str) -> InvalidTransition:
    return InvalidTransition(
        "outflow.invalid_transition",
        state,
        action,
        state_labels=STATE_LABELS,
        action_labels=ACTION_LABELS,
    )


def not_home_admin() -> AppError:
    return forbidden("outflow.home_admin_required", "仅党员所在党组织的管理员可执行此操作")


def not_destination_admin() -> AppError:
    return forbidden("outflow.destination_admin_required", "仅报到的流入地党组织管理员可执行此操作")


def not_owner() -> AppError:
    return forbidden("outflow.owner_required", "仅外出党员本人可执行此操作")


def consent_required() -> AppError:
    return AppError(
        "consent.location_required",
        403,
        "提交位置报告前，请先单独同意收集位置信息（可随时撤回）",
    )


def content_risky() -> AppError:
    return AppError("content.risky", 422, "报告内容未通过内容安全检测，请修改后重试")


def destination_org_not_found() -> AppError:
    return not_found("outflow.checkin_org_not_found", "报到组织不存在")


def destination_org_mismatch() -> AppError:
    return AppError(
        "outflow.checkin_org_not_at_destination",
        422,
        "报到组织不在登记的流入地，请先办理流入地变更",
    )


def checkin_to_home_subtree() -> AppError:
    return AppError(
        "outflow.checkin_org_is_home", 422, "不能向本人组织关系所在的党组织或其上级报到"
    )


def returned_before_departure() -> AppError:
    return AppError("outflow.returned_before_departure", 422, "返回日期不能早于外出日期")


def returned_in_future() -> AppError:
    return AppError("outflow.returned_in_future", 422, "返回日期不能晚于今天")


def location_outside_china() -> AppError:
    return AppError("outflow.location_invalid", 422, "无法识别该位置，请重新定位")


def export_reason_required() -> AppError:
    return AppError(
        "outflow.export_reason_required",
        422,
        "导出完整联系电话须填写用途，该操作将记入审计日志",
        errors=[
            {"field": "reason", "location": "query", "type": "missing", "message": "缺少必填字段"}
        ],
    )


def org_not_found() -> AppError:
    return not_found("org.not_found", "组织不存在或无权访问")


def already_departed() -> AppError:
    return AppError(
        "outflow.already_departed",
        409,
        "党员已按登记日期外出，不能再撤销；请在其返回后办理返回登记",
    )
