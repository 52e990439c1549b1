"""Request and response models of the inflow ledger.

Responses never carry personal data in clear: ``id_number`` and ``phone`` are the
masked forms (``4403**********1234``, ``138****5678``); the full value is an audited
reveal.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.types import Id
from app.identity.validators import IdNumber, MobilePhone
from app.inflows.models import INFLOW_STATUSES, SOURCES
from app.members.schemas import PersonName, RevealOut, RevealRequest
from app.mobility.schemas import CleanStr, Day, RegionCode, RegionCount, Text200, Version

InflowStatus = Literal["candidate", "pending", "verified", "rejected", "withdrawn"]
InflowSource = Literal["declaration", "census"]
InflowFlag = Literal["transfer_suggested", "verify_overdue"]
assert set(InflowStatus.__args__) == set(INFLOW_STATUSES)  # type: ignore[attr-defined]
assert set(InflowSource.__args__) == set(SOURCES)  # type: ignore[attr-defined]

__all__ = ["RevealOut", "RevealRequest"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InflowCreate(_In):
    """流入登记（亮身份）：外地党员向所在地的党组织登记。"""

    name: PersonName
    id_number: IdNumber
    phone: MobilePhone
    home_org_name: Text200 = Field(description="原所在党组织（本人所知的名称）")
    home_region_code: RegionCode = Field(description="原所在党组织的行政区划代码")
    employer: CleanStr | None = Field(default=None, max_length=100)
    arrived_on: Day = Field(description="到本地的日期（不晚于今天）")
    org_id: Id = Field(description="登记的党组织（组织目录中开放登记的组织）")


class VerifyIn(_In):
    version: Version
    note: CleanStr | None = Field(default=None, max_length=200)


class RejectIn(_In):
    version: Version
    note: Text200 = Field(description="驳回原因（告知登记人）")


class WithdrawIn(_In):
    version: Version


class OrgRef(BaseModel):
    id: int
    name: str


class InflowOut(BaseModel):
    id: int
    org: OrgRef
    source: InflowSource = Field(description="declaration：本人登记；census：摸排发现的线索")
    status: InflowStatus
    name: str
    id_number: str = Field(description="脱敏后的身份证号")
    phone: str | None = Field(description="脱敏后的手机号")
    home_org_name: str | None
    home_region_code: str | None
    home_region_name: str | None
    employer: str | None
    arrived_on: date | None
    entity: OrgRef | None = Field(description="摸排线索所在的企业或社会组织")
    matched_member_id: int | None = Field(description="核实时按身份证号匹配到的名册党员")
    outflow_id: int | None = Field(description="匹配到名册党员时，双向共管所依托的外出登记")
    flags: list[InflowFlag]
    prompt: str | None = Field(description="给登记人的下一步提示（如建议转接组织关系）")
    decided_at: datetime | None
    decision_note: str | None
    version: int
    created_at: datetime


class InflowStats(BaseModel):
    total: int
    by_status: dict[str, int]
    by_source: dict[str, int]
    by_flag: dict[str, int]
    matched: int = Field(description="已核实且匹配到名册党员（双向共管）的人数")
    by_home_province: list[RegionCount]
