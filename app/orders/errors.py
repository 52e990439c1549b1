"""Errors of the orders domain and the time bank: stable codes, Chinese details."""

from __future__ import annotations

from app.core.errors import AppError, InvalidTransition, forbidden, not_found


def order_not_found() -> AppError:
    return not_found("order.not_found", "诉求不存在或无权访问")


STATE_LABELS = {
    "submitted": "待受理",
    "accepted": "已受理",
    "in_progress": "办理中",
    "resolved": "已办结",
    "closed": "已关闭",
    "transferred": "已转办",
    "rejected": "未受理",
    "cancelled": "已取消",
}
ACTION_LABELS = {
    "submit": "提交",
    "accept": "受理",
    "start": "开始办理",
    "transfer": "转办",
    "resolve": "办结",
    "reject": "不予受理",
    "cancel": "撤销",
    "reopen": "重新办理",
    "rate": "评价",
    "close": "关闭",
    "arrive": "转入",
    "reveal": "查看联系电话",
}


def invalid_transition(state: str, action: str) -> InvalidTransition:
    return InvalidTransition(
        "order.invalid_transition",
        state,
        action,
        state_labels=STATE_LABELS,
        action_labels=ACTION_LABELS,
    )


def action_forbidden(action: str) -> AppError:
    what = ACTION_LABELS.get(action)
    error = forbidden(
        "order.action_forbidden",
        f"当前身份无权{what}该诉求" if what else "当前身份无权对该诉求执行此操作",
    )
    error.extra["action"] = action
    return error


def content_risky() -> AppError:
    return AppError(
        "content.risky",
        422,
        "标题或内容含有违规信息，请修改后再提交",
        errors=[{"field": "description", "location": "body", "type": "content.risky"}],
    )


def category_not_found(field: str = "category") -> AppError:
    return AppError(
        "order.category_not_found",
        422,
        "诉求类别不存在或已停用",
        errors=[
            {"field": field, "location": "body", "type": "order.category_not_found"},
        ],
    )


def org_not_found(field: str = "org_id") -> AppError:
    return AppError(
        "order.org_not_found",
        422,
        "所选组织不存在",
        errors=[{"field": field, "location": "body", "type": "order.org_not_found"}],
    )


def scope_org_not_found() -> AppError:
    return not_found("org.not_found", "组织不存在或无权访问")


def field_required(field: str, detail: str) -> AppError:
    return AppError(
        f"order.{field}_required",
        422,
        detail,
        errors=[{"field": field, "location": "body", "type": "missing", "message": detail}],
    )


def transfer_target_invalid() -> AppError:
    return AppError(
        "order.transfer_target_invalid",
        422,
        "转办目标组织不存在或与当前组织相同",
        errors=[
            {"field": "to_org_id", "location": "body", "type": "order.transfer_target_invalid"}
        ],
    )


def own_order() -> AppError:
    return forbidden("order.own_order", "不能受理或办理本人提交的诉求，请由本组织的其他管理员办理")


def volunteer_is_submitter() -> AppError:
    return AppError(
        "order.volunteer_is_submitter",
        422,
        "诉求的提交人不能登记为该诉求的志愿者",
        errors=[
            {
                "field": "volunteer_member_id",
                "location": "body",
                "type": "order.volunteer_is_submitter",
            }
        ],
    )


def _hours_field(code: str) -> list[dict[str, str]]:
    return [{"field": "hours", "location": "body", "type": code}]


def hours_over_cap(cap: int) -> AppError:
    return AppError(
        "order.hours_over_cap",
        422,
        f"该类诉求单次办结最多登记 {cap} 小时服务时长",
        errors=_hours_field("order.hours_over_cap"),
        extra={"max_hours": cap},
    )


def hours_over_elapsed(elapsed: float) -> AppError:
    return AppError(
        "order.hours_over_elapsed",
        422,
        f"服务时长不能超过从开始办理到办结的时间（{elapsed:.1f} 小时）",
        errors=_hours_field("order.hours_over_elapsed"),
        extra={"elapsed_hours": round(elapsed, 1)},
    )


def volunteer_invalid() -> AppError:
    return AppError(
        "order.volunteer_invalid",
        422,
        "志愿者不存在，或不是办理组织可以服务的党员",
        errors=[
            {"field": "volunteer_member_id", "location": "body", "type": "order.volunteer_invalid"}
        ],
    )


def hours_need_volunteer() -> AppError:
    return AppError(
        "order.hours_need_volunteer",
        422,
        "登记服务时长时须同时指定志愿者",
        errors=[{"field": "hours", "location": "body", "type": "order.hours_need_volunteer"}],
    )


def reopen_window_closed() -> AppError:
    return AppError("order.reopen_window_closed", 409, "办结已超过 7 天，不能再重新打开")


def already_rated() -> AppError:
    return AppError("order.already_rated", 409, "该诉求已评价，每个诉求只能评价一次")


def insufficient_balance() -> AppError:
    return AppError("time_bank.insufficient_balance", 409, "时间银行余额不足")


def reward_not_found() -> AppError:
    return not_found("time_bank.reward_not_found", "兑换项目不存在或不可兑换")


def reward_out_of_stock() -> AppError:
    return AppError("time_bank.out_of_stock", 409, "该兑换项目已兑完")


def reward_hours_mismatch() -> AppError:
    return AppError(
        "time_bank.hours_mismatch",
        422,
        "兑换时长与兑换项目所需时长不一致",
        errors=[{"field": "hours", "location": "body", "type": "time_bank.hours_mismatch"}],
    )
