"""Request and response models of the members domain.

Responses never carry personal data in clear: ``id_number`` and ``phone`` hold the
masked forms stored beside the ciphertext (``4403**********1234``, ``138****5678``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from app.core.openapi import NotNull, omittable
from app.core.types import Id, Version
from app.identity.validators import (
    BirthDate,
    IdNumber,
    JoinedOn,
    MobilePhone,
    normalize_person_name,
)
from app.members.models import Member

Gender = Literal["male", "female"]
MemberStatus = Literal["full", "probationary"]
# Stored and searched in one normal form (``王　伟`` -> ``王伟``), see normalize_person_name.
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    AfterValidator(normalize_person_name),
]


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PersonName
    id_number: IdNumber
    # Derived from the ID number when omitted; must agree with it when given.
    gender: Gender | None = None
    birth_date: BirthDate | None = None
    phone: MobilePhone | None = None
    home_org_id: Id
    joined_on: JoinedOn | None = None
    status: MemberStatus = "full"


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Version
    name: Annotated[PersonName | None, NotNull] = omittable()
    id_number: Annotated[IdNumber | None, NotNull] = omittable()
    gender: Annotated[Gender | None, NotNull] = omittable()
    birth_date: Annotated[BirthDate | None, NotNull] = omittable()
    phone: MobilePhone | None = None  # null clears the phone
    home_org_id: Annotated[Id | None, NotNull] = omittable()
    joined_on: JoinedOn | None = None
    status: Annotated[MemberStatus | None, NotNull] = omittable()


class MemberOut(BaseModel):
    id: int
    name: str
    gender: Gender
    birth_date: date
    id_number: str = Field(description="脱敏后的身份证号")
    phone: str | None = Field(description="脱敏后的手机号")
    home_org_id: int
    joined_on: date | None
    status: MemberStatus
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, member: Member) -> MemberOut:
        return cls(
            id=member.id,
            name=member.name,
            gender=member.gender,
            birth_date=member.birth_date,
            id_number=member.id_number_masked,
            phone=member.phone_masked,
            home_org_id=member.home_org_id,
            joined_on=member.joined_on,
            status=member.status,
            version=member.version,
            created_at=member.created_at,
            updated_at=member.updated_at,
        )


class RevealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: Literal["id_number", "phone"]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]


class RevealOut(BaseModel):
    field: Literal["id_number", "phone"]
    value: str | None


class ImportRowError(BaseModel):
    row: int
    field: str
    message: str


class ImportResult(BaseModel):
    created: int
    updated: int
    unchanged: int = Field(default=0, description="与名册一致、未作修改的行数（version 不变）")
    errors: list[ImportRowError]
