"""Roster rules: members with their personal data encrypted, scoped reads and edits,
audited reveals.

Personal data is stored as ciphertext + blind index + masked form (see ``seal_pii``);
the plaintext exists only in the request that writes it and in an audited reveal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.service import audited_refusal, record
from app.core import pii
from app.core.config import Settings
from app.core.crypto import mask_id_number, mask_phone
from app.core.errors import AppError, stale_version
from app.identity.validators import IdInfo, normalize_person_name, parse_id_number
from app.members import conflicts, errors
from app.members import repository as repo
from app.members.models import Member
from app.members.schemas import MemberCreate, MemberUpdate
from app.organization.models import Organization
from app.organization.scope import Scope, get_visible_org


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
    holder = await find_by_id_number(session, settings, id_number)
    if holder is not None:
        raise errors.IdNumberTaken(holder.id, holder.home_org_id)
    sealed = seal_pii(settings, id_number, phone)
    member = Member(
        name=normalize_person_name(name),
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
    try:
        async with session.begin_nested():
            session.add(member)
            await session.flush()
    except IntegrityError:
        # A concurrent insert of the same ID number won the race on the unique index.
        raise errors.IdNumberTaken() from None
    return member


def check_identity(
    id_number: str, gender: str | None, birth_date: date | None
) -> tuple[IdInfo, list[str]]:
    """What the ID number says, and which given fields contradict it."""
    info = parse_id_number(id_number)
    wrong = []
    if birth_date is not None and birth_date != info.birth_date:
        wrong.append("birth_date")
    if gender is not None and gender != info.gender:
        wrong.append("gender")
    return info, wrong


async def _visible_org(session: AsyncSession, scope: Scope, org_id: int) -> Organization:
    org = await get_visible_org(session, scope, org_id)
    if org is None:
        raise errors.org_not_found()
    return org


async def _refuse_taken(
    engine: AsyncEngine,
    scope: Scope,
    taken: errors.IdNumberTaken,
    *,
    via: str,
    org_id: int,
    subject_id: int | None = None,
) -> AppError:
    holders = []
    if taken.holder_id is not None and taken.holder_home_org_id is not None:
        holders.append(conflicts.Holder(taken.holder_id, taken.holder_home_org_id))
    return await conflicts.refused(
        engine,
        scope,
        taken,
        via=via,
        org_id=org_id,
        holders=holders,
        subject_id=subject_id,
        count=1,
    )


async def register_member(
    session: AsyncSession,
    settings: Settings,
    engine: AsyncEngine,
    scope: Scope,
    data: MemberCreate,
) -> Member:
    """An admin adds a member to an organisation of his subtree."""
    await _visible_org(session, scope, data.home_org_id)
    _, wrong = check_identity(data.id_number, data.gender, data.birth_date)
    if wrong:
        raise errors.id_mismatch(wrong)
    try:
        member = await create_member(
            session,
            settings,
            name=data.name,
            id_number=data.id_number,
            home_org_id=data.home_org_id,
            phone=data.phone,
            joined_on=data.joined_on,
            status=data.status,
        )
    except errors.IdNumberTaken as taken:
        raise await _refuse_taken(
            engine, scope, taken, via="create", org_id=data.home_org_id
        ) from None
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="member.created",
        org_id=member.home_org_id,
        subject_type="member",
        subject_id=member.id,
    )
    return member


async def get_member(session: AsyncSession, scope: Scope, member_id: int) -> Member:
    member = await repo.get_visible(session, scope, member_id)
    if member is None:
        raise errors.member_not_found()
    return member


def phone_index(settings: Settings, phone: str) -> bytes:
    """The blind index of a (normalised) mobile number: exact lookup without decrypting."""
    return pii.keyring(settings).blind_index(phone, context=pii.PHONE)


async def list_members(
    session: AsyncSession,
    scope: Scope,
    *,
    org_id: int | None,
    q: str | None,
    phone_index: bytes | None = None,
    mobile: bool | None,
    status: str | None,
    after_id: int | None,
    limit: int,
) -> Sequence[Member]:
    org = await _visible_org(session, scope, org_id) if org_id is not None else None
    return await repo.list_members(
        session,
        scope,
        org=org,
        q=normalize_person_name(q) if q else None,
        phone_index=phone_index,
        mobile=mobile,
        status=status,
        after_id=after_id,
        limit=limit,
    )


async def _member_to_change(
    session: AsyncSession, scope: Scope, member_id: int, *, attempt: str, for_update: bool = False
) -> Member:
    """The *change* verb: only the member's home subtree changes his record or reads his
    ID number; a co-managing organisation sees him (404 otherwise) but is refused (403),
    and the refused attempt stays in the home subtree's audit log."""
    member, owned = await repo.get_for_change(session, scope, member_id, for_update=for_update)
    if member is None:
        raise errors.member_not_found()
    if not owned:
        raise audited_refusal(
            errors.home_org_required(),
            actor_account_id=scope.principal.account_id,
            action="member.change_refused",
            org_id=member.home_org_id,
            subject_type="member",
            subject_id=member_id,
            detail={"attempt": attempt},
        )
    return member


async def update_member(
    session: AsyncSession,
    settings: Settings,
    engine: AsyncEngine,
    scope: Scope,
    member_id: int,
    data: MemberUpdate,
) -> Member:
    member = await _member_to_change(session, scope, member_id, attempt="update", for_update=True)
    if member.version != data.version:
        raise stale_version()
    fields = data.model_fields_set - {"version"}
    ring = pii.keyring(settings)
    previous_home = member.home_org_id
    if "home_org_id" in fields and data.home_org_id is not None:
        await _visible_org(session, scope, data.home_org_id)
        member.home_org_id = data.home_org_id
    if "id_number" in fields and data.id_number is not None:
        new_index = ring.blind_index(data.id_number, context=pii.ID_NUMBER)
        if new_index != member.id_number_idx:
            holder = await find_by_id_number(session, settings, data.id_number)
            if holder is not None:
                taken = errors.IdNumberTaken(holder.id, holder.home_org_id)
                raise await _refuse_taken(
                    engine,
                    scope,
                    taken,
                    via="update",
                    org_id=member.home_org_id,
                    subject_id=member.id,
                )
            sealed = seal_pii(settings, data.id_number, None)
            member.id_number_enc = sealed.id_number_enc
            member.id_number_idx = sealed.id_number_idx
            member.id_number_masked = sealed.id_number_masked
        info, wrong = check_identity(data.id_number, data.gender, data.birth_date)
        if wrong:
            raise errors.id_mismatch(wrong)
        member.gender = info.gender
        member.birth_date = info.birth_date
    else:
        current = ring.decrypt(member.id_number_enc, context=pii.ID_NUMBER)
        _, wrong = check_identity(current, data.gender, data.birth_date)
        if wrong:
            raise errors.id_mismatch(wrong)
    if "phone" in fields:
        if data.phone is None:
            member.phone_enc = member.phone_idx = member.phone_masked = None
        else:
            member.phone_enc = ring.encrypt(data.phone, context=pii.PHONE)
            member.phone_idx = ring.blind_index(data.phone, context=pii.PHONE)
            member.phone_masked = mask_phone(data.phone)
    for name in ("name", "joined_on", "status"):
        if name in fields:
            setattr(member, name, getattr(data, name))
    member.version = member.version + 1
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        taken = errors.IdNumberTaken()
        raise await _refuse_taken(
            engine, scope, taken, via="update", org_id=member.home_org_id, subject_id=member.id
        ) from None
    await session.refresh(member)
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="member.updated",
        org_id=member.home_org_id,
        # A move stays in the log of the subtree he left as well.
        member_home_org_id=previous_home if previous_home != member.home_org_id else None,
        subject_type="member",
        subject_id=member.id,
        detail={"fields": sorted(fields)},
    )
    return member


async def reveal(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    member_id: int,
    *,
    field: str,
    reason: str,
) -> str | None:
    """Decrypt one personal field for an admin in scope; the reveal is audited.

    A co-managing organisation may reveal the phone (to reach the member), never the ID
    number: that takes the *change* verb, the member's home subtree.
    """
    if field == "id_number":
        member = await _member_to_change(session, scope, member_id, attempt="reveal_id_number")
    else:
        member = await get_member(session, scope, member_id)
    ring = pii.keyring(settings)
    if field == "id_number":
        value: str | None = ring.decrypt(member.id_number_enc, context=pii.ID_NUMBER)
    else:
        value = ring.decrypt(member.phone_enc, context=pii.PHONE) if member.phone_enc else None
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="pii.reveal",
        org_id=member.home_org_id,
        subject_type="member",
        subject_id=member.id,
        reason=reason,
        detail={"field": field},
    )
    return value
