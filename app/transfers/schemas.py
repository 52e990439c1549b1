"""Request and response models of relation transfers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.types import Id
from app.mobility.schemas import CleanStr, OrgRef, Text200, Version
from app.transfers.rules import ACTIONS, STATES

if TYPE_CHECKING:
    TransferState = str
    TransferAction = str
else:  # the timeline's states and actions are the transition table's
    TransferState = Literal[STATES]
    TransferAction = Literal[ACTIONS]

Status = Literal["requested", "approved", "completed", "rejected", "refused", "withdrawn"]
Direction = Literal["out", "in"]
LetterNo = Annotated[
    CleanStr,
    Field(
        min_length=1,
        max_length=40,
        pattern=r"^[^\s]",
        description="介绍信编号（转出党组织开具）",
        examples=["岳组转〔2026〕015号"],
    ),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TransferCreate(_In):
    member_id: Id | None = Field(
        default=None, description="转接的党员；不填为本人申请（管理员为他人申请时必填）"
    )
    to_org_id: Id = Field(description="接收党组织（可在组织树任何位置，可从组织目录查找）")
    reason: Text200 = Field(description="转接原因，如：工作调动、在外定居")
    note: CleanStr | None = Field(default=None, max_length=500)


class TransferApproveIn(_In):
    version: Version
    letter_no: LetterNo


class TransferReasonIn(_In):
    """Reject (home side) or refuse (receiving side): the reason is required."""

    version: Version
    reason: Text200


class TransferAcceptIn(_In):
    version: Version
    reason: CleanStr | None = Field(default=None, max_length=200, description="接收意见（可选）")


class TransferWithdrawIn(_In):
    version: Version
    reason: CleanStr | None = Field(default=None, max_length=200)


class TransferMember(BaseModel):
    id: int
    name: str


class TransferOut(BaseModel):
    id: int
    member: TransferMember
    from_org: OrgRef = Field(description="转出党组织（申请时的组织关系所在党组织）")
    to_org: OrgRef = Field(description="接收党组织")
    status: Status
    reason: str
    note: str | None
    letter_no: str | None
    requested_by_account_id: int | None
    approved_at: datetime | None
    closed_at: datetime | None = Field(description="办结（完成、未同意、未接收、撤回）时间")
    close_reason: str | None = Field(description="未同意、未接收或撤回的原因，接收意见")
    outflow_id: int | None = Field(description="完成转接时一并关闭（transferred）的外出登记")
    version: int
    created_at: datetime
    updated_at: datetime


class TransferEvent(BaseModel):
    id: int
    action: TransferAction
    from_state: TransferState
    to_state: TransferState
    actor_account_id: int | None
    actor_name: str | None
    note: str | None
    data: dict[str, object]
    created_at: datetime


class TransferDetail(TransferOut):
    timeline: list[TransferEvent]
