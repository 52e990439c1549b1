"""Response models of ``GET /me``."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from app.identity.schemas import AccountOut
from app.members.schemas import Gender, MemberStatus
from app.mobility.schemas import ActiveOutflowOut
from app.organization.schemas import OrgKind, RoleName


class MeOrgOut(BaseModel):
    id: int
    name: str
    kind: OrgKind


class MeRoleOut(BaseModel):
    id: int
    role: RoleName
    org: MeOrgOut


class MemberProfileOut(BaseModel):
    id: int
    name: str
    gender: Gender
    birth_date: date
    status: MemberStatus
    joined_on: date | None
    id_number_masked: str
    phone_masked: str | None


class MeOut(BaseModel):
    account: AccountOut
    display_name: str | None
    is_superadmin: bool
    member: MemberProfileOut | None
    home_org: MeOrgOut | None
    roles: list[MeRoleOut]
    active_outflow: ActiveOutflowOut | None = Field(
        default=None, description="待审批或进行中的外出登记摘要；没有则为 null"
    )
