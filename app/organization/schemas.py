"""Request and response models of the organisation domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.openapi import NotNull, omittable
from app.core.types import Id, ParamId, Version
from app.organization.models import Organization, RoleAssignment

OrgId = Annotated[ParamId, Path(description="组织编号")]  # the ``{org_id}`` of ``/orgs/…``

OrgKind = Literal["committee", "general_branch", "branch"]
OrgHost = Literal["chamber_of_commerce", "business_district", "building", "industry", "mobile"]
RoleName = Literal["branch_admin", "org_admin"]

OrgName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
RegionCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: OrgName
    kind: OrgKind
    parent_id: Id | None = None
    host: OrgHost | None = None
    region_code: RegionCode | None = None
    address: Address | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    listed: bool = False


class OrgUpdate(BaseModel):
    """Partial update; a changed ``parent_id`` moves the node with its subtree."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[OrgName | None, NotNull] = omittable()
    kind: Annotated[OrgKind | None, NotNull] = omittable()
    parent_id: Id | None = None
    host: OrgHost | None = None
    region_code: RegionCode | None = None
    address: Address | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    # Shown in the directory (党员找组织) that members and residents search.
    listed: Annotated[bool | None, NotNull] = omittable()
    # Optional for plain edits (the admin console may omit it); checked when given.
    version: Version | None = None


class OrgMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parent_id: Id
    version: Version


class OrgOut(BaseModel):
    id: int
    name: str
    kind: OrgKind
    parent_id: int | None
    host: OrgHost | None
    region_code: str | None
    address: str | None
    lat: float | None
    lon: float | None
    listed: bool
    path: str
    depth: int
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, org: Organization) -> OrgOut:
        return cls(
            id=org.id,
            name=org.name,
            kind=org.kind,
            parent_id=org.parent_id,
            host=org.host,
            region_code=org.region_code,
            address=org.address,
            lat=org.lat,
            lon=org.lon,
            listed=org.listed,
            path=org.path,
            depth=path_depth(org.path),
            version=org.version,
            created_at=org.created_at,
            updated_at=org.updated_at,
        )


class DirectoryItem(BaseModel):
    """A listed organisation as the directory (党员找组织) shows it."""

    id: int
    name: str
    kind: OrgKind
    host: OrgHost | None
    region_code: str | None
    address: str | None
    lat: float | None
    lon: float | None
    distance_m: int | None = Field(description="到 near 的距离（米），未给 near 时为空")


DirectoryPurpose = Literal["checkin", "orders"]
DirectoryRegion = Annotated[
    str, StringConstraints(pattern=r"^\d{2}(\d{2}){0,2}$")
]  # province (2), city (4) or county (6) digits: a prefix of the region code
DirectoryQuery = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)
]


def path_depth(path: str) -> int:
    """``"/1/"`` is depth 0, ``"/1/7/42/"`` depth 2."""
    return path.count("/") - 2


class RoleGrant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: Id
    role: RoleName


class RoleOut(BaseModel):
    id: int
    org_id: int
    member_id: int
    member_name: str
    role: RoleName
    granted_by_account_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, assignment: RoleAssignment, member_name: str) -> RoleOut:
        return cls(
            id=assignment.id,
            org_id=assignment.org_id,
            member_id=assignment.member_id,
            member_name=member_name,
            role=assignment.role,
            granted_by_account_id=assignment.granted_by_account_id,
            created_at=assignment.created_at,
        )
