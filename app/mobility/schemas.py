"""Request and response models of the mobility API."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.core.errors import FieldError
from app.core.types import Id
from app.core.types import Version as StrictVersion
from app.members.schemas import Gender
from app.mobility.rules import TRANSITIONS
from app.regions import service as regions

Reason = Literal["work", "business", "study", "other"]
Status = Literal[
    "pending", "active", "rejected", "returned", "withdrawn", "cancelled", "transferred"
]
CheckinStatus = Literal["none", "pending", "accepted", "refused"]
Flag = Literal["checkin_overdue", "report_overdue", "lost_contact", "transfer_suggested"]
NextActionCode = Literal[
    "await_approval", "checkin", "await_checkin", "consent", "report", "transfer", "return"
]
if TYPE_CHECKING:
    OutflowState = str
    OutflowAction = str
else:
    # The timeline's states and actions are the transition table's (plus the registration,
    # from "new"), so the document follows the table.
    OutflowState = Literal[
        tuple(sorted({"new", *(state for state, _ in TRANSITIONS), *TRANSITIONS.values()}))
    ]
    OutflowAction = Literal[tuple(sorted({"register", *(action for _, action in TRANSITIONS)}))]


def _region_code(value: str) -> str:
    if not regions.is_valid_region_code(value):
        raise ValueError("行政区划代码无效（应为 6 位国家标准代码）")
    return value


def _clean_text(value: str) -> str:
    if any(ord(ch) < 32 and ch not in "\t\n" for ch in value):
        raise ValueError("不能包含控制字符")
    return value


def _sane_date(value: date) -> date:
    if not date(2000, 1, 1) <= value <= date(2099, 12, 31):
        raise ValueError("日期超出允许范围（2000-01-01 至 2099-12-31）")
    return value


CleanStr = Annotated[str, AfterValidator(_clean_text)]
Day = Annotated[date, AfterValidator(_sane_date)]
RegionCode = Annotated[str, Field(pattern=r"^[1-9][0-9]{5}$"), AfterValidator(_region_code)]
Phone = Annotated[str, Field(pattern=r"^1[3-9][0-9]{9}$", description="11 位手机号")]
Text200 = Annotated[CleanStr, Field(min_length=1, max_length=200)]
Version = Annotated[StrictVersion, Field(description="对象当前的 version（乐观锁）")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------


class ConsentIn(_In):
    kind: Literal["location"]
    granted: bool


class OutflowCreate(_In):
    destination_region_code: RegionCode
    destination_address: Text200
    reason: Reason
    departed_on: Day
    expected_return_on: Day
    employer: CleanStr | None = Field(default=None, max_length=100)
    contact_phone: Phone

    @model_validator(mode="after")
    def _dates(self) -> OutflowCreate:
        if self.expected_return_on < self.departed_on:
            raise FieldError("expected_return_on", "预计返回日期不能早于外出日期")
        return self


class ApproveIn(_In):
    version: Version
    note: CleanStr | None = Field(default=None, max_length=200)


class DecisionWithReasonIn(_In):
    version: Version
    reason: Text200


class AcceptCheckinIn(_In):
    version: Version


class CheckinIn(_In):
    org_id: Id
    version: Version


class ReportIn(_In):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    note: CleanStr | None = Field(default=None, max_length=500)


class RelocateIn(_In):
    destination_region_code: RegionCode
    destination_address: Text200
    employer: CleanStr | None = Field(default=None, max_length=100)
    contact_phone: Phone | None = None
    version: Version


class WithdrawIn(_In):
    version: Version
    reason: CleanStr | None = Field(default=None, max_length=200)


class CancelIn(_In):
    version: Version
    reason: Text200


class ReturnIn(_In):
    returned_on: Day
    version: Version


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------


class ConsentOut(BaseModel):
    id: int
    kind: Literal["location"]
    granted: bool
    created_at: datetime


class OrgRef(BaseModel):
    id: int
    name: str


class MemberRef(BaseModel):
    id: int
    name: str
    gender: Gender


class CheckinOut(BaseModel):
    status: CheckinStatus
    org: OrgRef | None
    requested_at: datetime | None
    decided_at: datetime | None
    refuse_reason: str | None


class DueDates(BaseModel):
    checkin_due_on: date | None
    report_due_on: date | None
    lost_contact_on: date | None
    transfer_suggest_on: date | None


class Link(BaseModel):
    """An action the client can take next (the path it calls and how)."""

    rel: Literal["transfer"]
    method: Literal["POST"]
    href: str
    title: str


class OutflowOut(BaseModel):
    id: int
    member: MemberRef
    home_org: OrgRef
    status: Status
    reason: Reason
    destination_region_code: str
    destination_region_name: str | None
    destination_address: str
    employer: str | None
    contact_phone: str = Field(description="脱敏后的联系电话")
    departed_on: date
    expected_return_on: date
    certificate_no: str | None
    decided_at: datetime | None
    reject_reason: str | None
    cancel_reason: str | None = Field(description="党组织撤销已批准登记的原因")
    checkin: CheckinOut
    last_report_at: datetime | None
    last_report_region_code: str | None
    last_report_far: bool | None
    due: DueDates
    flags: list[Flag]
    location_consent: bool
    lost_contact_escalated_at: datetime | None
    returned_on: date | None
    links: list[Link] = Field(
        description="建议转接（transfer_suggested）时：发起组织关系转接的接口"
        "（管理员带 member_id，党员本人不带）"
    )
    version: int
    created_at: datetime
    updated_at: datetime


class EventOut(BaseModel):
    id: int
    action: OutflowAction
    from_state: OutflowState
    to_state: OutflowState
    actor_account_id: int | None
    note: str | None
    data: dict[str, object]
    created_at: datetime


class ReportOut(BaseModel):
    id: int
    lat: float
    lon: float
    region_code: str | None
    region_name: str | None
    distance_m: float | None
    far_from_destination: bool
    note: str | None
    reported_on: date
    created_at: datetime


class OutflowDetail(OutflowOut):
    events: list[EventOut]
    recent_reports: list[ReportOut]


class MyOutflowHistoryItem(OutflowOut):
    decisions: list[EventOut] = Field(
        description="审批、驳回、撤回、撤销、报到确认与返回等决定，按时间先后；note 为原因"
    )


class NextAction(BaseModel):
    code: NextActionCode
    text: str
    due_on: date | None


class ActiveOutflowOut(BaseModel):
    """The member's pending or active outflow as ``GET /me`` summarises it."""

    id: int
    status: Status
    certificate_no: str | None
    destination_region_code: str
    destination_region_name: str | None
    checkin_status: CheckinStatus
    flags: list[Flag]
    next_actions: list[NextAction]
    version: int = Field(description="外出登记各项操作须带上的 version")


class MyOutflowOut(OutflowOut):
    next_actions: list[NextAction]


class RegionCount(BaseModel):
    code: str
    name: str | None
    count: int


class OutflowStats(BaseModel):
    total: int
    by_status: dict[str, int]
    by_flag: dict[str, int]
    by_reason: dict[str, int]
    by_province: list[RegionCount]
    by_city: list[RegionCount]
    location_consent_missing: int = Field(description="进行中但未授权位置信息的人数")
