"""Request and response models of the census. Personal data is masked in every response."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.census.codes import CreditCodeError, normalize_credit_code
from app.identity.validators import IdNumber, MobilePhone

Kind = Literal["enterprise", "social_org", "individual"]
Coverage = Literal["organization", "joint", "work", "none"]
Recommendation = Literal["form_standalone", "join_joint", "assign_instructor"]
Tag = Literal[
    "express_delivery",
    "ride_hailing",
    "food_delivery",
    "internet_platform",
    "trucking",
    "construction_site",
    "business_district",
    "office_building",
    "industrial_park",
    "trade_association",
]
Operating = Literal["operating", "suspended", "closed"]
Light = Literal["blue", "yellow", "red"]
EntityStatus = Literal["active", "closed"]


def _credit_code(value: str) -> str:
    try:
        return normalize_credit_code(value)
    except CreditCodeError as error:
        raise ValueError(error.message) from None


CreditCode = Annotated[str, AfterValidator(_credit_code)]
Text50 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
IndustryCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Ta-t]?[0-9]{0,4}$")
]
RegionCode = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{5}$")]
Period = Annotated[str, StringConstraints(pattern=r"^20[0-9]{2}Q[1-4]$")]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]


class EntityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credit_code: CreditCode
    name: Text100
    kind: Kind
    industry_code: IndustryCode = Field(description="GB/T 4754 门类字母（I）或大类代码（64、I64）")
    tags: list[Tag] = Field(default_factory=list, max_length=10)
    region_code: RegionCode
    address: Text200 | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    staff_count: Count | None = None
    person_in_charge: Text50 | None = Field(default=None, description="出资人或负责人（加密存储）")
    contact_phone: MobilePhone | None = None
    responsible_org_id: Id = Field(description="属地党组织（街道、乡镇党（工）委）")
    trade_org_id: Id | None = Field(default=None, description="行业党委")


class EntityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    name: Text100 | None = None
    kind: Kind | None = None
    industry_code: IndustryCode | None = None
    tags: list[Tag] | None = Field(default=None, max_length=10)
    region_code: RegionCode | None = None
    address: Text200 | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    staff_count: Count | None = None
    person_in_charge: Text50 | None = None
    contact_phone: MobilePhone | None = None
    responsible_org_id: Id | None = None
    trade_org_id: Id | None = None
    status: EntityStatus | None = None
    closed_on: date | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> EntityUpdate:
        for name in ("name", "kind", "industry_code", "tags", "region_code", "responsible_org_id"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} 不能为空")
        return self


class OrgRef(BaseModel):
    id: int
    name: str


class CoveringOrg(OrgRef):
    mode: Literal["own", "joint"]


class Industry(BaseModel):
    code: str = Field(description="大类代码（两位）或门类字母")
    section: str
    division: str | None
    name: str


class EntityOut(BaseModel):
    id: int
    credit_code: str
    name: str
    kind: Kind
    status: EntityStatus
    closed_on: date | None
    industry: Industry
    tags: list[str]
    region_code: str
    region_name: str | None
    address: str | None
    lat: float | None
    lon: float | None
    staff_count: int | None
    person_in_charge: str | None = Field(description="脱敏后的负责人姓名")
    contact_phone: str | None = Field(description="脱敏后的联系电话")
    responsible_org: OrgRef
    trade_org: OrgRef | None
    organization: CoveringOrg | None
    member_count: int | None = Field(description="最近一次摸排的党员人数")
    last_surveyed_on: date | None
    last_round_id: int | None
    instructor_count: int
    coverage: Coverage
    recommendation: Recommendation | None
    recommendation_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class FoundMember(BaseModel):
    name: str
    id_number: str = Field(description="脱敏后的身份证号")
    matched_member_id: int | None
    matched_org_id: int | None


class SurveyOut(BaseModel):
    id: int
    round_id: int
    period: str
    operating: Operating
    staff_count: int
    member_count: int
    members: list[FoundMember]
    person_in_charge_is_member: bool
    no_org_reason: str | None
    union: bool
    youth_league: bool
    womens_org: bool
    surveyed_on: date
    surveyed_by_account_id: int | None
    note: str | None
    coverage: Coverage = Field(description="保存时的覆盖情况")
    version: int
    updated_at: datetime


class InstructorOut(BaseModel):
    member_id: int
    name: str
    group_name: str | None
    assigned_at: datetime


class OpenRound(BaseModel):
    id: int
    org_id: int
    period: str
    due_on: date
    surveyed: bool


class EntityFile(EntityOut):
    """一企一档：档案、覆盖与建议、指导员、历次摸排。"""

    surveys: list[SurveyOut]
    instructors: list[InstructorOut]
    open_rounds: list[OpenRound]


class SurveyMemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text50
    id_number: IdNumber


class SurveyIn(BaseModel):
    """The five (six) clears. A field left out keeps the entity's last answer."""

    model_config = ConfigDict(extra="forbid")

    round_id: Id
    operating: Operating | None = None
    staff_count: Count | None = None
    member_count: Count | None = None
    members: list[SurveyMemberIn] | None = Field(default=None, max_length=500)
    person_in_charge_is_member: bool | None = None
    no_org_reason: Text200 | None = None
    union: bool | None = None
    youth_league: bool | None = None
    womens_org: bool | None = None
    surveyed_on: date
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None


class NewOrg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text100
    parent_id: Id
    kind: Literal["committee", "general_branch", "branch"] = "branch"


class LinkIn(BaseModel):
    """Link an existing organisation, or found one (发现一个、组建一个)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["own", "joint"]
    org_id: Id | None = None
    new_org: NewOrg | None = None

    @model_validator(mode="after")
    def _one_of(self) -> LinkIn:
        if (self.org_id is None) == (self.new_org is None):
            raise ValueError("org_id 与 new_org 须且只须填写一项")
        if self.new_org is not None and self.mode != "own":
            raise ValueError("新建的党组织只能作为本单位党组织（mode=own）")
        return self


class InstructorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: Id
    group_name: Text50 | None = None


class InstructorGroupIn(BaseModel):
    """组团式指导: 1–5 instructors over many entities."""

    model_config = ConfigDict(extra="forbid")

    group_name: Text50
    member_ids: list[Id] = Field(min_length=1, max_length=5)
    entity_ids: list[Id] = Field(min_length=1, max_length=500)


class InstructorGroupOut(BaseModel):
    group_name: str
    assigned: int = Field(description="新增的指派数（已指派的不重复计算）")


class RoundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: Id
    period: Period = Field(description="如 2026Q4")
    due_on: date


class ProgressRow(BaseModel):
    org: OrgRef
    total: int
    surveyed: int
    rate: float
    light: Light


class RoundOut(BaseModel):
    id: int
    org: OrgRef
    period: str
    opened_on: date
    due_on: date
    status: Literal["open", "closed"]
    closed_at: datetime | None
    total: int
    surveyed: int
    rate: float
    light: Light
    progress: list[ProgressRow]
    version: int


class RoundCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)


class CoverageCounts(BaseModel):
    total: int
    organization: int
    joint: int
    work: int
    none: int
    organization_rate: float = Field(description="组织覆盖率：单独或联合建立党组织的比例")
    coverage_rate: float = Field(description="两个覆盖率：组织覆盖或工作覆盖的比例")


class CoverageGroup(CoverageCounts):
    key: str
    name: str | None


class RoundRate(BaseModel):
    round_id: int
    period: str
    surveyed: int
    organization_rate: float
    coverage_rate: float


class RateChange(BaseModel):
    from_period: str
    to_period: str
    organization_rate: float
    coverage_rate: float


class CensusStats(CoverageCounts):
    recommendations: dict[str, int]
    by_kind: list[CoverageGroup]
    by_industry: list[CoverageGroup]
    by_region: list[CoverageGroup]
    by_tag: list[CoverageGroup]
    rounds: list[RoundRate] = Field(description="各轮摸排时的覆盖率（按摸排时记录）")
    change: RateChange | None = Field(description="最近两轮之间覆盖率的变化")


class ImportRowError(BaseModel):
    row: int
    field: str
    message: str


class ImportRowResult(BaseModel):
    row: int
    credit_code: str
    result: Literal["created", "updated", "closed"]


class ImportResult(BaseModel):
    created: int
    updated: int
    closed: int
    unchanged: int
    rows: list[ImportRowResult] = Field(description="新增、变更、注销的行")
    errors: list[ImportRowError]


class FoundMemberOut(BaseModel):
    id: int
    name: str
    id_number: str = Field(description="脱敏后的身份证号")
    entity: OrgRef
    round_id: int
    surveyed_on: date
    match: Literal["registered_here", "registered_elsewhere", "not_in_roster"]
    member_id: int | None
    home_org: OrgRef | None
