"""Request and response models of care. A case's description and help notes appear
only in the detail (``GET /care/cases/{id}``), and only for whom may read them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.care.festivals import FIRST_YEAR, LAST_YEAR
from app.core.errors import FieldError
from app.core.types import Id, Version
from app.mobility.schemas import CleanStr, Day

Audience = Literal["mobile_members", "all_members", "hardship"]
Festival = Literal["spring_festival", "lantern", "dragon_boat", "mid_autumn", "double_ninth"]
CampaignStatus = Literal["scheduled", "sent", "cancelled"]
CaseKind = Literal["illness", "accident", "family", "financial", "other"]
CaseStatus = Literal["open", "closed"]
HelpForm = Literal["visit", "call", "funds", "crowdfunding", "mutual_aid"]
# Forms that move money: an amount is required; a visit or a call has none.
MONEY_FORMS = ("funds", "crowdfunding")
NO_MONEY_FORMS = ("visit", "call")


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_id: Id = Field(description="发起组织；受众为其下级组织（含本级）的党员")
    title: Annotated[CleanStr, Field(min_length=1, max_length=100)]
    message: Annotated[CleanStr, Field(min_length=1, max_length=500)]
    audience: Audience = Field(
        description="mobile_members：外出中的流动党员；all_members：全体党员；"
        "hardship：有未结帮扶的困难党员"
    )
    send_on: Day | None = Field(default=None, description="发送日（北京时间 9 时起发送）")
    festival: Festival | None = Field(default=None, description="按节日发送：日期由农历推算")
    year: int | None = Field(
        default=None,
        ge=FIRST_YEAR,
        le=LAST_YEAR,
        description="节日所在年份；不填为今天起的下一次",
    )


class CampaignCreated(BaseModel):
    id: int
    send_on: date
    status: CampaignStatus
    version: int


class CampaignCounts(BaseModel):
    recipients: int = Field(description="发送时受众中的党员人数")
    sent: int = Field(description="订阅消息已送达")
    read: int = Field(description="站内消息已读")
    unsubscribed: int = Field(description="未订阅（无订阅额度或用户拒收），仅站内消息")
    pending: int = Field(description="订阅消息待发送")
    failed: int = Field(description="订阅消息发送失败，仅站内消息")
    no_account: int = Field(description="未绑定微信账号，无法送达")


class CampaignOut(CampaignCounts):
    id: int
    org_id: int
    org_name: str
    title: str
    message: str
    audience: Audience
    festival: Festival | None
    festival_name: str | None
    send_on: date
    status: CampaignStatus
    version: int
    created_at: datetime
    sent_at: datetime | None
    cancelled_at: datetime | None


class CareVersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: Version = Field(description="对象当前的 version（乐观锁）")


class CareCloseIn(CareVersionIn):
    note: Annotated[CleanStr, Field(min_length=1, max_length=200)] | None = None


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    member_id: Id | None = Field(
        default=None, description="管理员为党员登记时填写；党员为自己申请时不填"
    )
    kind: CaseKind
    description: Annotated[CleanStr, Field(min_length=1, max_length=1000)] = Field(
        description="困难情况（敏感个人信息，加密存储）"
    )


class HelpIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given_on: Day
    form: HelpForm
    amount_yuan: Decimal | None = Field(
        default=None, gt=0, le=Decimal("9999999999.99"), max_digits=12, decimal_places=2
    )
    note: Annotated[CleanStr, Field(min_length=1, max_length=500)] | None = None

    @model_validator(mode="after")
    def _amount_fits_form(self) -> HelpIn:
        if self.form in MONEY_FORMS and self.amount_yuan is None:
            raise FieldError("amount_yuan", "资金帮扶、众筹须填写金额")
        if self.form in NO_MONEY_FORMS and self.amount_yuan is not None:
            raise FieldError("amount_yuan", "走访、电话慰问不填写金额")
        return self


class HelpOut(BaseModel):
    id: int
    given_on: date
    form: HelpForm
    amount_yuan: float | None
    note: str | None = Field(description="仅党员本人和组织关系所在党组织可见")
    recorded_at: datetime


class CaseOut(BaseModel):
    id: int
    member_id: int
    member_name: str
    home_org_id: int
    home_org_name: str
    kind: CaseKind
    status: CaseStatus
    requested_by: Literal["member", "admin"]
    opened_on: date
    closed_at: datetime | None
    help_count: int
    funds_yuan: float = Field(description="资金、众筹、互助金额合计（元）")
    version: int


class CaseDetail(CaseOut):
    description: str | None = Field(
        description="困难情况：仅党员本人和组织关系所在党组织可见（查看记入审计）；共管组织为 null"
    )
    close_note: str | None
    help: list[HelpOut]


class CareKindCount(BaseModel):
    kind: CaseKind
    open: int
    closed: int


class CareFormTotal(BaseModel):
    form: HelpForm
    count: int
    amount_yuan: float


class CaseStats(BaseModel):
    open: int
    closed: int
    by_kind: list[CareKindCount]
    help: list[CareFormTotal]
    help_count: int
    funds_yuan: float
