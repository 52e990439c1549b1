"""Demo roster for ``make run``: a second branch under the demo town with its own
secretary, a probationary member, and more members in the demo village (most of them
away from home, see app/mobility/demo.py), so the roster list, name search, status
filter and subtree views have something to show."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.demo_names import DEMO_TOWN, DEMO_VILLAGE
from app.identity.validators import id_check_digit
from app.members.service import create_member, find_by_id_number
from app.organization.models import Organization, RoleAssignment
from app.organization.service import create_organization

DEMO_OFFICE = "吴阳镇机关党支部"

# name, birth date, sequence (odd male, even female), branch key, status, role
PEOPLE = (
    ("黄志刚", date(1976, 4, 12), 61, "office", "full", "branch_admin"),
    ("梁晓敏", date(1990, 8, 3), 62, "office", "full", None),
    ("吴海燕", date(1998, 2, 14), 64, "office", "probationary", None),
    ("杨国华", date(1969, 10, 1), 65, "village", "full", None),
    ("林小梅", date(2001, 6, 18), 66, "village", "probationary", None),
    # Mobile members whose outflows show the other states and flags (app/mobility/demo.py).
    ("周丽娟", date(1987, 3, 9), 68, "village", "full", None),
    ("陈国栋", date(1979, 12, 5), 67, "village", "full", None),
    ("何文斌", date(1983, 7, 22), 69, "village", "full", None),
    ("郑雪梅", date(1994, 1, 28), 70, "village", "full", None),
    ("罗永强", date(1975, 5, 16), 71, "village", "full", None),
    ("谢春花", date(1991, 9, 9), 72, "office", "full", None),
)


def _id_number(birth: date, order: int) -> str:
    first17 = f"440883{birth:%Y%m%d}{order:03d}"
    return first17 + id_check_digit(first17)


async def seed(session: AsyncSession, settings: Settings) -> None:
    if not settings.demo_data or settings.env == "prod":
        return
    found = await session.execute(
        select(Organization.name, Organization).where(
            Organization.name.in_([DEMO_TOWN, DEMO_VILLAGE, DEMO_OFFICE])
        )
    )
    orgs = {name: org for name, org in found.tuples()}
    if DEMO_TOWN not in orgs or DEMO_VILLAGE not in orgs or DEMO_OFFICE in orgs:
        return
    office = await create_organization(
        session,
        name=DEMO_OFFICE,
        kind="branch",
        parent_id=orgs[DEMO_TOWN].id,
        region_code="440883",
        address="广东省湛江市吴川市吴阳镇人民政府",
    )
    homes = {"office": office, "village": orgs[DEMO_VILLAGE]}
    for index, (name, birth, order, home, status, role) in enumerate(PEOPLE):
        number = _id_number(birth, order)
        if await find_by_id_number(session, settings, number) is not None:
            continue
        member = await create_member(
            session,
            settings,
            name=name,
            id_number=number,
            phone=f"1390000{index:04d}",
            home_org_id=homes[home].id,
            # A probationary member joined within the last year (预备期一年).
            joined_on=date(2025, 12, 1)
            if status == "probationary"
            else date(birth.year + 25, 7, 1),
            status=status,
        )
        if role:
            session.add(RoleAssignment(org_id=homes[home].id, member_id=member.id, role=role))
    await session.flush()
