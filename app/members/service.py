"""Roster rules: creating members with their personal data encrypted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pii
from app.core.config import Settings
from app.core.crypto import mask_id_number, mask_phone
from app.core.errors import AppError
from app.identity.validators import parse_id_number
from app.members.models import Member


@dataclass(frozen=True)
class SealedPii:
    id_number_enc: bytes
    id_number_idx: bytes
    id_number_masked: str
    phone_enc: bytes | None
    phone_idx: bytes | None
    phone_masked: str | None


def seal_pii(settings: Settings, id_number: str, phone: str | None) -> SealedPii:
    """Encrypt, index and mask an ID number and phone (already validated/normalised)."""
    ring = pii.keyring(settings)
    return SealedPii(
        id_number_enc=ring.encrypt(id_number, context=pii.ID_NUMBER),
        id_number_idx=ring.blind_index(id_number, context=pii.ID_NUMBER),
        id_number_masked=mask_id_number(id_number),
        phone_enc=ring.encrypt(phone, context=pii.PHONE) if phone else None,
        phone_idx=ring.blind_index(phone, context=pii.PHONE) if phone else None,
        phone_masked=mask_phone(phone) if phone else None,
    )


def id_number_taken() -> AppError:
    return AppError("member.id_number_taken", 409, "该身份证号已在党员名册中")


async def find_by_id_number(
    session: AsyncSession, settings: Settings, id_number: str
) -> Member | None:
    index = pii.keyring(settings).blind_index(id_number, context=pii.ID_NUMBER)
    return (
        await session.execute(select(Member).where(Member.id_number_idx == index))
    ).scalar_one_or_none()


async def create_member(
    session: AsyncSession,
    settings: Settings,
    *,
    name: str,
    id_number: str,
    home_org_id: int,
    phone: str | None = None,
    joined_on: date | None = None,
    status: str = "full",
) -> Member:
    info = parse_id_number(id_number)
    if await find_by_id_number(session, settings, id_number) is not None:
        raise id_number_taken()
    sealed = seal_pii(settings, id_number, phone)
    member = Member(
        name=name,
        gender=info.gender,
        birth_date=info.birth_date,
        home_org_id=home_org_id,
        joined_on=joined_on,
        status=status,
        id_number_enc=sealed.id_number_enc,
        id_number_idx=sealed.id_number_idx,
        id_number_masked=sealed.id_number_masked,
        phone_enc=sealed.phone_enc,
        phone_idx=sealed.phone_idx,
        phone_masked=sealed.phone_masked,
    )
    session.add(member)
    await session.flush()
    return member
