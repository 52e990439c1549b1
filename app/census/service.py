"""Census rules for entities: registration, changes, organisation links, instructors.

Rounds, surveys and statistics are in :mod:`app.census.rounds`.

Reads go through :mod:`app.census.repository` with the caller's scope; writes lock the
entity (or round) they change and check ``version`` where a client sends one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, and_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.census import errors
from app.census import repository as repo
from app.census.codes import parse_industry
from app.census.models import CensusEntity
from app.census.repository import LedgerFilter
from app.census.schemas import (
    EntityCreate,
    EntityFile,
    EntityOut,
    EntityUpdate,
    InstructorGroupIn,
    InstructorGroupOut,
    LinkIn,
)
from app.census.views import entity_file, entity_out, mask_name
from app.core import pii
from app.core.config import Settings
from app.core.crypto import mask_phone
from app.core.errors import stale_version
from app.organization import service as org_service
from app.organization.models import Organization
from app.organization.schemas import OrgCreate
from app.organization.scope import Scope, get_visible_org
from app.regions.service import is_valid_region_code

PERSON_IN_CHARGE = "census.person_in_charge"
CONTACT_PHONE = "census.contact_phone"
SURVEY_ID_NUMBER = "census.survey_member.id_number"


# ------------------------------------------------------------------ visibility
async def visible_org(session: AsyncSession, scope: Scope, org_id: int) -> Organization:
    org = await get_visible_org(session, scope, org_id)
    if org is None:
        raise errors.org_not_found()
    return org


async def entity_scope(
    session: AsyncSession, scope: Scope, org_id: int | None
) -> ColumnElement[bool]:
    """The caller's visible entities, narrowed to ``org_id``'s subtree if given."""
    visible = repo.entity_visible(scope)
    if org_id is None:
        return visible
    org = await visible_org(session, scope, org_id)
    return and_(visible, repo.under_org(org.path))


# --------------------------------------------------------------------- entities
def check_codes(industry_code: str | None, region_code: str | None) -> tuple[str, str | None]:
    section_division: tuple[str, str | None] = ("", None)
    if industry_code is not None:
        try:
            section_division = parse_industry(industry_code)
        except ValueError:
            raise errors.invalid_field(
                "industry_code", "行业代码应为国民经济行业分类（GB/T 4754）的门类或大类"
            ) from None
    if region_code is not None and not is_valid_region_code(region_code):
        raise errors.invalid_field("region_code", "行政区划代码不存在")
    return section_division


def seal_contact(settings: Settings, person: str | None, phone: str | None) -> dict[str, Any]:
    ring = pii.keyring(settings)
    return {
        "person_in_charge_enc": ring.encrypt(person, context=PERSON_IN_CHARGE) if person else None,
        "person_in_charge_masked": mask_name(person),
        "contact_phone_enc": ring.encrypt(phone, context=CONTACT_PHONE) if phone else None,
        "contact_phone_idx": ring.blind_index(phone, context=pii.PHONE) if phone else None,
        "contact_phone_masked": mask_phone(phone) if phone else None,
    }


async def _check_orgs(
    session: AsyncSession, scope: Scope, responsible_org_id: int | None, trade_org_id: int | None
) -> None:
    if responsible_org_id is not None:
        await visible_org(session, scope, responsible_org_id)
    if trade_org_id is not None:
        await visible_org(session, scope, trade_org_id)


async def create_entity(
    session: AsyncSession, settings: Settings, scope: Scope, data: EntityCreate
) -> EntityOut:
    section, division = check_codes(data.industry_code, data.region_code)
    await _check_orgs(session, scope, data.responsible_org_id, data.trade_org_id)
    if await repo.credit_code_exists(session, data.credit_code):
        raise errors.credit_code_taken()
    entity = CensusEntity(
        credit_code=data.credit_code,
        name=data.name,
        kind=data.kind,
        industry_section=section,
        industry_division=division,
        tags=sorted(set(data.tags)),
        region_code=data.region_code,
        address=data.address,
        lat=data.lat,
        lon=data.lon,
        staff_count=data.staff_count,
        responsible_org_id=data.responsible_org_id,
        trade_org_id=data.trade_org_id,
        **seal_contact(settings, data.person_in_charge, data.contact_phone),
    )
    try:
        async with session.begin_nested():
            session.add(entity)
            await session.flush()
    except IntegrityError:
        raise errors.credit_code_taken() from None
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.entity_created",
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
    )
    return await entity_view(session, scope, entity.id)


async def entity_view(session: AsyncSession, scope: Scope, entity_id: int) -> EntityOut:
    row = await repo.entity_row(session, entity_id, repo.entity_visible(scope))
    if row is None:
        raise errors.entity_not_found()
    return entity_out(row)


async def get_entity_file(session: AsyncSession, scope: Scope, entity_id: int) -> EntityFile:
    row = await repo.entity_file(session, entity_id, repo.entity_visible(scope))
    if row is None:
        raise errors.entity_not_found()
    return entity_file(row)


async def lock(session: AsyncSession, scope: Scope, entity_id: int) -> CensusEntity:
    entity = await repo.lock_entity(session, entity_id, repo.entity_visible(scope))
    if entity is None:
        raise errors.entity_not_found()
    return entity


_PLAIN_FIELDS = ("name", "kind", "address", "lat", "lon", "staff_count", "status", "closed_on")


async def update_entity(
    session: AsyncSession, settings: Settings, scope: Scope, entity_id: int, data: EntityUpdate
) -> EntityOut:
    entity = await lock(session, scope, entity_id)
    if entity.version != data.version:
        raise stale_version()
    given = data.model_fields_set
    section, division = check_codes(data.industry_code, data.region_code)
    await _check_orgs(session, scope, data.responsible_org_id, data.trade_org_id)
    for name in _PLAIN_FIELDS:
        if name in given:
            setattr(entity, name, getattr(data, name))
    if data.industry_code is not None:
        entity.industry_section, entity.industry_division = section, division
    if data.tags is not None:
        entity.tags = sorted(set(data.tags))
    if data.region_code is not None:
        entity.region_code = data.region_code
    if data.responsible_org_id is not None:
        entity.responsible_org_id = data.responsible_org_id
    if "trade_org_id" in given:
        entity.trade_org_id = data.trade_org_id
    if "person_in_charge" in given or "contact_phone" in given:
        sealed = seal_contact(settings, data.person_in_charge, data.contact_phone)
        for key, value in sealed.items():
            field = "person_in_charge" if key.startswith("person") else "contact_phone"
            if field in given:
                setattr(entity, key, value)
    if "status" in given and data.status == "closed" and entity.closed_on is None:
        raise errors.invalid_field("closed_on", "注销单位须填写注销日期")
    if "status" in given and data.status == "active":
        entity.closed_on = None
    entity.version += 1
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.entity_updated",
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
        detail={"fields": sorted(given - {"version"})},
    )
    return await entity_view(session, scope, entity.id)


# --------------------------------------------------------- organisation links
async def link_org(
    session: AsyncSession, scope: Scope, entity_id: int, data: LinkIn, now: datetime
) -> EntityOut:
    """发现一个、组建一个: link the entity's own or a joint organisation, or found one."""
    entity = await lock(session, scope, entity_id)
    if entity.status == "closed":
        raise errors.entity_closed()
    if entity.org_mode == "own" and data.org_id != entity.org_id:
        raise errors.already_linked()
    if data.new_org is not None:
        org = await org_service.create_org(
            session,
            scope,
            OrgCreate(
                name=data.new_org.name,
                kind=data.new_org.kind,
                parent_id=data.new_org.parent_id,
                region_code=entity.region_code,
                address=entity.address,
                lat=entity.lat,
                lon=entity.lon,
            ),
        )
        org_id = org.id
    else:
        assert data.org_id is not None
        org_id = (await visible_org(session, scope, data.org_id)).id
    entity.org_id, entity.org_mode, entity.org_linked_at = org_id, data.mode, now
    entity.version += 1
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.org_linked",
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
        detail={"org_id": org_id, "mode": data.mode, "founded": data.new_org is not None},
    )
    return await entity_view(session, scope, entity.id)


async def unlink_org(session: AsyncSession, scope: Scope, entity_id: int) -> EntityOut:
    entity = await lock(session, scope, entity_id)
    previous = entity.org_id
    entity.org_id = entity.org_mode = entity.org_linked_at = None
    entity.version += 1
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.org_unlinked",
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
        detail={"org_id": previous},
    )
    return await entity_view(session, scope, entity.id)


# ----------------------------------------------------------------- instructors
async def assign_instructor(
    session: AsyncSession, scope: Scope, entity_id: int, member_id: int, group: str | None
) -> EntityOut:
    entity = await lock(session, scope, entity_id)
    if not await repo.visible_member_ids(session, scope, [member_id]):
        raise errors.member_not_found()
    added = await repo.assign_instructors(
        session, [(entity.id, member_id)], group_name=group, account_id=scope.principal.account_id
    )
    if not added:
        raise errors.already_instructor()
    await _audit_instructors(session, scope, entity, "census.instructor_assigned", [member_id])
    return await entity_view(session, scope, entity.id)


async def end_instructor(
    session: AsyncSession, scope: Scope, entity_id: int, member_id: int, now: datetime
) -> None:
    entity = await lock(session, scope, entity_id)
    assignment = await repo.open_instructor(session, entity.id, member_id)
    if assignment is None:
        raise errors.instructor_not_found()
    assignment.ended_at = now
    await session.flush()
    await _audit_instructors(session, scope, entity, "census.instructor_ended", [member_id])


async def assign_group(
    session: AsyncSession, scope: Scope, data: InstructorGroupIn
) -> InstructorGroupOut:
    """组团式指导: every instructor of the group over every listed entity."""
    member_ids = sorted(set(data.member_ids))
    entity_ids = sorted(set(data.entity_ids))
    if len(await repo.visible_member_ids(session, scope, member_ids)) != len(member_ids):
        raise errors.member_not_found()
    visible = await repo.visible_entity_ids(session, entity_ids, repo.entity_visible(scope))
    if len(visible) != len(entity_ids):
        raise errors.entity_not_found()
    pairs = [(e, m) for e in visible for m in member_ids]
    added = await repo.assign_instructors(
        session, pairs, group_name=data.group_name, account_id=scope.principal.account_id
    )
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.instructor_group_assigned",
        subject_type="census_instructor_group",
        detail={"group": data.group_name, "members": member_ids, "entities": len(visible)},
    )
    return InstructorGroupOut(group_name=data.group_name, assigned=added)


async def _audit_instructors(
    session: AsyncSession, scope: Scope, entity: CensusEntity, action: str, members: list[int]
) -> None:
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action=action,
        org_id=entity.responsible_org_id,
        subject_type="census_entity",
        subject_id=entity.id,
        detail={"members": members},
    )


async def ledger_rows(
    session: AsyncSession,
    scope: Scope,
    org_id: int | None,
    filters: LedgerFilter,
    *,
    limit: int,
    before_id: int | None,
) -> Sequence[RowMapping]:
    """One page of the entity ledger within the caller's scope (or ``org_id``'s subtree)."""
    where = await entity_scope(session, scope, org_id)
    return await repo.ledger_page(session, where, filters, limit=limit, before_id=before_id)


async def instructor_ledger_rows(
    session: AsyncSession,
    member_id: int | None,
    filters: LedgerFilter,
    *,
    limit: int,
    before_id: int | None,
) -> Sequence[RowMapping]:
    """One page of the entities ``member_id`` is 党建工作指导员 of."""
    return await repo.ledger_page(
        session, repo.instructed_by(member_id), filters, limit=limit, before_id=before_id
    )
