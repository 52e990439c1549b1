"""Request and response models of the orders domain and the time bank."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.errors import FieldError
from app.core.types import Id, Version
from app.identity.validators import MobilePhone
from app.orders.models import DEFAULT_MAX_HOURS_PER_RESOLVE

OrderStatus = Literal[
    "submitted",
    "accepted",
    "in_progress",
    "resolved",
    "closed",
    "transferred",
    "rejected",
    "cancelled",
]
PublicAction = Literal["accept", "start", "transfer", "resolve", "reject", "cancel", "reopen"]

Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]
Hours = Annotated[Decimal, Field(gt=0, le=1000, max_digits=5, decimal_places=1)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ categories


class CategoryOut(BaseModel):
    code: str
    name: str
    accept_hours: int
    resolve_hours: int
    max_hours_per_resolve: int = Field(description="单次办结最多登记的志愿服务时长（小时）")
    org_id: int | None = Field(description="定义该时限的组织；null 表示全局默认")


class CategoryConfigIn(_Request):
    org_id: Id = Field(description="该组织及其下级组织使用此配置")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    accept_hours: int = Field(ge=1, le=24 * 90, description="受理时限（小时）")
    resolve_hours: int = Field(ge=1, le=24 * 365, description="办结时限（小时，自提交起）")
    max_hours_per_resolve: int = Field(
        default=DEFAULT_MAX_HOURS_PER_RESOLVE,
        ge=1,
        le=24,
        description="时间银行：单次办结最多登记的志愿服务时长（小时）",
    )
    active: bool = True

    @model_validator(mode="after")
    def _resolve_after_accept(self) -> CategoryConfigIn:
        if self.resolve_hours < self.accept_hours:
            raise FieldError("resolve_hours", "办结时限不能短于受理时限")
        return self


# ------------------------------------------------------------------ orders


class OrderCreate(_Request):
    category: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)
    ] = Field(description="类别代码（如 life_support）或名称（如 生活帮扶）")
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
    ]
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    contact_phone: MobilePhone
    org_id: Id = Field(description="受理诉求的组织")

    @model_validator(mode="after")
    def _both_coordinates(self) -> OrderCreate:
        if (self.lat is None) != (self.lon is None):
            raise FieldError("lon" if self.lon is None else "lat", "lat 与 lon 须同时提供")
        return self


class TransitionIn(_Request):
    action: PublicAction
    version: Version
    note: Note | None = None
    to_org_id: Id | None = Field(default=None, description="transfer：转办目标组织")
    volunteer_member_id: Id | None = Field(
        default=None, description="accept / start / resolve：指派的志愿者（党员 id）"
    )
    hours: Hours | None = Field(default=None, description="resolve：志愿服务时长（小时）")


class RatingIn(_Request):
    score: int = Field(ge=1, le=5)
    comment: Text500 | None = None
    version: Version = Field(description="订单当前的 version（乐观锁）")


class RevealIn(_Request):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]


class RevealOut(BaseModel):
    field: Literal["contact_phone"] = "contact_phone"
    value: str


class RatingOut(BaseModel):
    score: int
    comment: str | None
    rated_at: datetime


class TimelineItem(BaseModel):
    id: int
    action: str
    from_status: OrderStatus | None
    to_status: OrderStatus
    actor_account_id: int | None
    actor_role: Literal["admin", "submitter", "system"]
    note: str | None
    from_org_id: int | None
    to_org_id: int | None
    at: datetime


class OrderOut(BaseModel):
    id: int
    category: str
    category_name: str
    title: str
    description: str
    address: str | None
    lat: float | None
    lon: float | None
    contact_phone: str = Field(description="脱敏手机号，如 138****5678")
    org_id: int
    status: OrderStatus
    version: int
    needs_review: bool
    review_reason: str | None
    submitted_at: datetime = Field(description="群众首次提交的时间（转办后不变）")
    received_at: datetime = Field(description="到达当前受理组织的时间（转办后重新计时）")
    accept_due_at: datetime
    due_at: datetime
    overdue: bool
    escalated_at: datetime | None
    accepted_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reply: str | None
    reject_reason: str | None
    volunteer_member_id: int | None
    hours: float | None
    rating: RatingOut | None
    mine: bool
    created_at: datetime
    updated_at: datetime


class OrderDetail(OrderOut):
    timeline: list[TimelineItem]


# ------------------------------------------------------------------ statistics


class Durations(BaseModel):
    count: int
    mean_hours: float | None
    p90_hours: float | None


class CategoryCount(BaseModel):
    category: str
    name: str
    count: int


class OrderStats(BaseModel):
    org_id: int | None
    from_: date | None = Field(serialization_alias="from")
    to: date | None
    total: int
    by_status: dict[str, int]
    by_category: list[CategoryCount]
    overdue: int = Field(description="未办结且已超过办结时限")
    escalated: int
    resolved_late: int = Field(description="办结时已超过办结时限")
    time_to_accept: Durations = Field(description="到达当前组织至受理")
    time_to_resolve: Durations = Field(description="提交至办结")
    mean_rating: float | None
    rating_count: int


# ------------------------------------------------------------------ time bank


class RewardIn(_Request):
    org_id: Id
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    description: Text500 | None = None
    hours: Hours
    stock: int | None = Field(default=None, ge=0, le=1_000_000)


class RewardOut(BaseModel):
    id: int
    org_id: int
    name: str
    description: str | None
    hours: float
    stock: int | None
    active: bool
    created_at: datetime


class RedemptionIn(_Request):
    reward_id: Id | None = Field(default=None, description="兑换已发布的项目（推荐）")
    reward: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)] | None
    ) = Field(default=None, description="兑换项目名称；未指定 reward_id 时使用")
    hours: Hours | None = Field(default=None, description="指定 reward_id 时可省略")

    @model_validator(mode="after")
    def _reward_given(self) -> RedemptionIn:
        if self.reward_id is None and self.reward is None:
            raise FieldError("reward", "请指定 reward_id 或 reward")
        if self.reward_id is None and self.hours is None:
            raise FieldError("hours", "按名称兑换时须填写 hours")
        return self


class EntryOut(BaseModel):
    id: int
    kind: Literal["earn", "redeem"]
    hours: float = Field(description="获得为正，兑换为负")
    balance_after: float
    order_id: int | None
    reward_id: int | None
    reward_name: str | None
    note: str | None
    created_at: datetime


class TimeBankOut(BaseModel):
    hours_earned: float
    hours_redeemed: float
    balance: float
    entries: list[EntryOut]
    next_cursor: str | None = None


class RedemptionOut(BaseModel):
    entry: EntryOut
    hours_earned: float
    hours_redeemed: float
    balance: float
