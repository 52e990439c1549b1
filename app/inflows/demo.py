"""Demo inflows for ``make run``, at the 天河 business-district committee (days count
back from the day the demo is seeded):

==========================  ====================================================
赵志远 (demo resident)       pending: declared himself today, waits for the
                            district's admin (the resident's login)
钱海涛                      pending for 40 days: ``verify_overdue``
孙丽                        verified, not on the roster: managed in the district's
                            inflow ledger, ``transfer_suggested`` (logs in as
                            ``demo-inflow.1``)
陈志强 (吴川商会党支部)       verified, on the roster: his account is linked and he is
                            co-managed by the district through an outflow checked in
                            there (logs in as ``demo-pocket.1``)
李伟                        rejected, with the reason
==========================  ====================================================
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, pii
from app.core.config import Settings
from app.demo_names import DEMO_DISTRICT
from app.identity.models import Account
from app.identity.principal import Principal
from app.identity.validators import id_check_digit
from app.inflows import service
from app.inflows.models import Inflow
from app.inflows.schemas import InflowCreate
from app.members.models import Member
from app.organization.models import Organization, RoleAssignment
from app.organization.scope import Scope

# name -> (login openid, birth, order, home organisation as he knows it, its region,
# days since he came, what the district decided: None, "verify" or "reject")
DECLARANTS: dict[str, tuple[str, date, int, str, str, int, str | None]] = {
    "赵志远": (
        "demo-resident",
        date(1990, 4, 12),
        61,
        "湖南省衡阳县某村党支部",
        "430421",
        30,
        None,
    ),
    "钱海涛": (
        "demo-inflow-2",
        date(1983, 8, 2),
        63,
        "江西省赣州市某社区党支部",
        "360702",
        45,
        None,
    ),
    "孙丽": ("demo-inflow", date(1994, 2, 20), 64, "广西玉林市某村党支部", "450902", 90, "verify"),
    "李伟": ("demo-inflow-3", date(1987, 6, 6), 65, "四川省某县党支部", "511621", 20, "reject"),
}
POCKET = "陈志强"  # on the roster (吴川商会党支部): verification starts dual management


def _id_number(birth: date, order: int, region: str) -> str:
    first17 = f"{region}{birth:%Y%m%d}{order:03d}"
    return first17 + id_check_digit(first17)


async def seed(session: AsyncSession, settings: Settings) -> None:
    if not settings.demo_data or settings.env == "prod":
        return
    district = (
        await session.execute(select(Organization).where(Organization.name == DEMO_DISTRICT))
    ).scalar_one_or_none()
    if district is None:
        return
    if (await session.execute(select(Inflow.id).where(Inflow.org_id == district.id))).first():
        return
    admin_account = (
        await session.execute(
            select(Account.id)
            .join(RoleAssignment, RoleAssignment.member_id == Account.member_id)
            .order_by(Account.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if admin_account is None:
        return
    admin = Scope(Principal(admin_account, "admin", None, False, ()), (district.path,))
    today = clock.today()
    people: list[tuple[str, str, str, str, str, int, str | None]] = [
        (name, openid, _id_number(birth, order, "440106"), home, region, days, decision)
        for name, (openid, birth, order, home, region, days, decision) in DECLARANTS.items()
    ]
    pocket = (
        await session.execute(select(Member).where(Member.name == POCKET))
    ).scalar_one_or_none()
    if pocket is not None:
        number = pii.keyring(settings).decrypt(pocket.id_number_enc, context=pii.ID_NUMBER)
        people.append(
            (POCKET, "demo-pocket", number, "吴川商会（广州）党支部", "440883", 60, "verify")
        )
    for name, openid, id_number, home, region, days, decision in people:
        account = (
            await session.execute(select(Account).where(Account.openid == openid))
        ).scalar_one_or_none()
        if account is None:
            account = Account(openid=openid, display_name=name)
            session.add(account)
            await session.flush()
        declarant = Principal(account.id, "resident", None, False, ())
        inflow = await service.declare(
            session,
            settings,
            declarant,
            InflowCreate(
                name=name,
                id_number=id_number,
                phone=f"1390000{len(name)}{days:03d}",
                home_org_name=home,
                home_region_code=region,
                employer="天河路商圈商户",
                arrived_on=today - timedelta(days=days),
                org_id=district.id,
            ),
        )
        if decision == "verify":
            await service.verify(
                session, settings, admin, inflow.id, version=inflow.version, note="已与原党组织核实"
            )
        elif decision == "reject":
            await service.reject(
                session, admin, inflow.id, version=inflow.version, note="原党组织查无此人"
            )
        elif days > 40:  # declared long ago and still waiting
            await session.execute(
                update(Inflow)
                .where(Inflow.id == inflow.id)
                .values(created_at=clock.now() - timedelta(days=40))
            )
