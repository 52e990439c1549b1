"""Demo outflows for ``make run``.

王建国 (the demo member) works in Guangzhou: his outflow is approved (activity
certificate issued), checked in and accepted at the 天河 business-district committee,
so that committee co-manages him; he has consented to location collection. 刘芳's
outflow to Shenzhen waits for the branch secretary's approval.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.config import Settings
from app.identity.models import Account
from app.members.models import Member
from app.mobility import service
from app.mobility.models import Outflow
from app.mobility.schemas import OutflowCreate
from app.organization.models import Organization
from app.organization.scope import Principal, Scope


async def seed(session: AsyncSession, settings: Settings) -> None:
    if not settings.demo_data or settings.env == "prod":
        return
    # Imported here: app.demo wires this module in, a top-level import would be circular.
    from app.demo import DEMO_COUNTY, DEMO_DISTRICT, DEMO_VILLAGE

    orgs = {
        name: org
        for name, org in (
            await session.execute(
                select(Organization.name, Organization).where(
                    Organization.name.in_([DEMO_COUNTY, DEMO_VILLAGE, DEMO_DISTRICT])
                )
            )
        ).tuples()
    }
    people = {
        name: (member, account)
        for name, member, account in (
            await session.execute(
                select(Member.name, Member, Account)
                .outerjoin(Account, Account.member_id == Member.id)
                .where(Member.name.in_(["王建国", "刘芳", "张秀英", "李明华"]))
            )
        ).tuples()
    }
    if len(orgs) < 3 or len(people) < 4:
        return
    wang, wang_account = people["王建国"]
    liu, _ = people["刘芳"]
    _, secretary_account = people["张秀英"]
    if wang_account is None or secretary_account is None:
        return
    existing = await session.execute(
        select(Outflow.id).where(Outflow.member_id.in_([wang.id, liu.id])).limit(1)
    )
    if existing.first() is not None:
        return

    now = clock.now()
    today = clock.shanghai_day(now)
    county, district = orgs[DEMO_COUNTY], orgs[DEMO_DISTRICT]
    member = Principal(wang_account.id, "member", wang.id, False, ())
    county_admin = Scope(Principal(secretary_account.id, "admin", None, False, ()), (county.path,))
    district_admin = Scope(
        Principal(secretary_account.id, "admin", None, False, ()), (district.path,)
    )

    outflow = await service.register(
        session,
        settings,
        member,
        OutflowCreate(
            destination_region_code="440106",
            destination_address="广东省广州市天河区天河路 385 号",
            reason="work",
            departed_on=today - timedelta(days=40),
            expected_return_on=today + timedelta(days=300),
            employer="广州某电子商务有限公司",
            contact_phone="13800000002",
        ),
        now - timedelta(days=45),
    )
    await service.approve(
        session, county_admin, outflow.id, version=1, note=None, now=now - timedelta(days=42)
    )
    member_scope = Scope(member, ())
    await service.request_checkin(
        session,
        member_scope,
        outflow.id,
        org_id=district.id,
        version=None,
        now=now - timedelta(days=30),
    )
    await service.accept_checkin(
        session, district_admin, outflow.id, version=outflow.version, now=now - timedelta(days=29)
    )
    await service.record_consent(
        session, member, kind="location", granted=True, now=now - timedelta(days=29)
    )

    await service.register(
        session,
        settings,
        Principal(secretary_account.id, "admin", liu.id, False, ()),
        OutflowCreate(
            destination_region_code="440305",
            destination_address="广东省深圳市南山区科技园",
            reason="business",
            departed_on=today + timedelta(days=7),
            expected_return_on=today + timedelta(days=200),
            employer=None,
            contact_phone="13800000003",
        ),
        now,
    )
    await session.flush()
