"""Demo data for ``make run``: a county tree, an admin, a secretary and members.

Runs once (it does nothing if the demo county exists) and never in ``prod``.
"""

from __future__ import annotations

import importlib
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.demo_names import DEMO_CHAMBER, DEMO_COUNTY, DEMO_DISTRICT, DEMO_TOWN, DEMO_VILLAGE
from app.identity.models import Account
from app.identity.validators import id_check_digit
from app.members.service import create_member
from app.organization.models import Organization, RoleAssignment
from app.organization.service import create_organization

# In dependency order: study rules before activities that award credits, outflows
# before orders, notifications last.
DOMAIN_SEEDS = (
    "members",
    "study",
    "activity",
    "mobility",
    "orders",
    "census",
    "inflows",
    "transfers",
    "care",
    "notify",
)

LOGIN_HELP = """\
Demo logins (WeChat simulator; POST /api/v1/auth/wechat/login {"code": ...}):
  county admin      code "demo-admin.1"      (org_admin of the county)
  branch secretary  code "demo-secretary.1"  (branch_admin of 吴阳镇蛤岭村党支部)
  member            code "demo-member.1"     (王建国, home branch 蛤岭村)
  resident          code "demo-resident.1"
  leaving member    code "demo-leaving.1"    (刘芳, her outflow awaits approval)
  mobile member     code "demo-mobile.1"     (何文斌, away for more than 6 months)
  inflow member     code "demo-inflow.1"     (孙丽, verified at 天河商圈, not on the roster)
  pocket member     code "demo-pocket.1"     (陈志强, verified at 天河商圈: co-managed there)
Each code works once, like a real wx.login code: change the suffix (.2, .3, ...) to log in again."""


def _id_number(birth: date, order: int, region: str = "440883") -> str:
    first17 = f"{region}{birth:%Y%m%d}{order:03d}"
    return first17 + id_check_digit(first17)


async def seed_demo(session: AsyncSession, settings: Settings) -> str:
    if not settings.demo_data or settings.env == "prod":
        return "demo data disabled"
    exists = (
        await session.execute(select(Organization.id).where(Organization.name == DEMO_COUNTY))
    ).first()
    if exists:
        return "demo data already present\n\n" + LOGIN_HELP
    county = await create_organization(
        session, name=DEMO_COUNTY, kind="committee", parent_id=None, region_code="440883"
    )
    town = await create_organization(
        session, name=DEMO_TOWN, kind="committee", parent_id=county.id, region_code="440883"
    )
    village = await create_organization(
        session,
        name=DEMO_VILLAGE,
        kind="branch",
        parent_id=town.id,
        region_code="440883",
        lat=21.4283,
        lon=110.7790,
        listed=True,
        address="广东省湛江市吴川市吴阳镇",
    )
    chamber = await create_organization(
        session,
        name=DEMO_CHAMBER,
        kind="branch",
        parent_id=county.id,
        host="chamber_of_commerce",
        region_code="440106",
        lat=23.1247,
        lon=113.3612,
        listed=True,
        address="广东省广州市天河区",
    )
    await create_organization(
        session,
        name=DEMO_DISTRICT,
        kind="committee",
        parent_id=None,
        host="business_district",
        region_code="440106",
        lat=23.1310,
        lon=113.3270,
        listed=True,
        address="广东省广州市天河区天河路商圈",
    )

    people = [
        ("李明华", date(1972, 3, 8), 11, county, "org_admin", "demo-admin"),
        ("张秀英", date(1980, 9, 21), 22, village, "branch_admin", "demo-secretary"),
        ("王建国", date(1988, 5, 2), 33, village, None, "demo-member"),
        ("刘芳", date(1992, 11, 30), 44, village, None, None),
        ("陈志强", date(1985, 1, 17), 55, chamber, None, None),
    ]
    for index, (name, birth, order, home, role, openid) in enumerate(people):
        member = await create_member(
            session,
            settings,
            name=name,
            id_number=_id_number(birth, order),
            phone=f"1380000{index:04d}",
            home_org_id=home.id,
            joined_on=date(2010 + index, 7, 1),
        )
        if role:
            session.add(RoleAssignment(org_id=home.id, member_id=member.id, role=role))
        if openid:
            session.add(Account(openid=openid, member_id=member.id, display_name=name))
    session.add(Account(openid="demo-resident", display_name="群众演示"))
    await session.flush()
    # Each domain adds its own demo rows on top of the tree (imported here: the domain
    # modules import this one for the organisation names).
    for domain in DOMAIN_SEEDS:
        module = importlib.import_module(f"app.{domain}.demo")
        await module.seed(session, settings)
    return "demo data created\n\n" + LOGIN_HELP
