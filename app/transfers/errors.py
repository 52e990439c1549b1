"""Errors of relation transfers, with stable codes and Chinese details."""

from __future__ import annotations

from app.core.errors import AppError, InvalidTransition, forbidden, not_found
from app.members.errors import member_not_found, org_not_found

__all__ = ["member_not_found", "org_not_found"]  # re-exported: the members' answers

STATE_LABELS = {
    "new": "未申请",
    "requested": "待转出党组织审批",
    "approved": "待接收党组织接收",
    "completed": "已完成转接",
    "rejected": "转出党组织未同意",
    "refused": "接收党组织未接收",
    "withdrawn": "已撤回",
}
ACTION_LABELS = {
    "request": "申请转接",
    "approve": "同意转出",
    "reject": "不同意转出",
    "accept": "接收",
    "refuse": "拒绝接收",
    "withdraw": "撤回申请",
}


def invalid_transition(state: str, action: str) -> InvalidTransition:
    return InvalidTransition(
        "transfer.invalid_transition",
        state,
        action,
        state_labels=STATE_LABELS,
        action_labels=ACTION_LABELS,
    )


def transfer_not_found() -> AppError:
    return not_found("transfer.not_found", "组织关系转接申请不存在或无权访问")


def receiving_org_not_found() -> AppError:
    return not_found("transfer.receiving_org_not_found", "接收党组织不存在")


def already_open() -> AppError:
    return AppError(
        "transfer.already_open",
        409,
        "该党员已有正在办理的组织关系转接，请等待办结或先撤回",
    )


def same_org() -> AppError:
    return AppError(
        "transfer.same_org",
        422,
        "接收党组织与党员现在的组织关系所在党组织相同",
        errors=[
            {
                "field": "to_org_id",
                "location": "body",
                "type": "transfer.same_org",
                "message": "接收党组织不能是其现在所在的党组织",
            }
        ],
    )


def home_changed() -> AppError:
    return AppError(
        "transfer.home_changed",
        409,
        "该党员的组织关系所在党组织在申请后已变更，本次转接不能继续，请撤回后重新申请",
    )


def home_admin_required() -> AppError:
    return forbidden("transfer.home_admin_required", "仅党员组织关系所在党组织的管理员可审批转出")


def receiving_admin_required() -> AppError:
    return forbidden("transfer.receiving_admin_required", "仅接收党组织的管理员可接收或拒绝")


def requester_required() -> AppError:
    return forbidden(
        "transfer.requester_required",
        "仅申请人、党员本人或其所在党组织的管理员可撤回转接申请",
    )


def member_required() -> AppError:
    return forbidden(
        "transfer.member_required",
        "请先绑定党员身份；管理员为他人申请时须填写 member_id",
    )
