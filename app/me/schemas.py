"""Response models of ``GET /me``."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from app.identity.schemas import AccountOut


class MeOrgOut(BaseModel):
    id: int
    name: str
    kind: str


class MeRoleOut(BaseModel):
    id: int
    role: str
    org: MeOrgOut


class MemberProfileOut(BaseModel):
    id: int
    name: str
    gender: str
    birth_date: date
    status: str
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
    active_outflow: dict[str, Any] | None = Field(
        default=None, description="进行中的外出登记摘要；没有则为 null"
    )
