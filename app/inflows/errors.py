"""Errors of the inflow domain, with stable codes and Chinese details."""

from __future__ import annotations

from app.core.errors import AppError, InvalidTransition, forbidden, not_found


def inflow_not_found() -> AppError:
    return not_found("inflow.not_found", "流入登记不存在或无权访问")


def org_not_found() -> AppError:
    return not_found("inflow.org_not_found", "该党组织不存在或未开放流入登记")


def already_declared() -> AppError:
    return AppError("inflow.already_declared", 409, "已在该党组织登记过流入信息，请勿重复登记")


def not_declarant() -> AppError:
    return forbidden("inflow.not_declarant", "只有登记人本人可以撤回流入登记")


def outflow_pending() -> AppError:
    return AppError(
        "inflow.outflow_pending",
        409,
        "该党员的外出登记尚待所在党支部审批，请审批后再核实流入登记",
    )


def export_reason_required() -> AppError:
    return AppError("inflow.export_reason_required", 422, "完整导出须填写用途")


def arrived_in_future() -> AppError:
    return AppError("inflow.arrived_in_future", 422, "到达日期不能晚于今天")


STATE_LABELS = {
    "new": "未登记",
    "candidate": "摸排线索",
    "pending": "待核实",
    "verified": "已核实",
    "rejected": "未通过",
    "withdrawn": "已撤回",
}
ACTION_LABELS = {
    "declare": "登记",
    "discover": "登记摸排线索",
    "verify": "核实通过",
    "reject": "驳回",
    "withdraw": "撤回",
}


def invalid_transition(state: str, action: str) -> InvalidTransition:
    return InvalidTransition(
        "inflow.invalid_transition",
        state,
        action,
        state_labels=STATE_LABELS,
        action_labels=ACTION_LABELS,
    )
