"""Building blocks for tests: organisations, members, accounts and their tokens."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.identity.models import Account
from app.identity.service import issue_token_pair
from app.identity.validators import id_check_digit
from app.members.models import Member
from app.members.service import create_member
from app.organization.models import Organization, RoleAssignment
from app.organization.service import create_organization

_seq = itertools.count(1)


_id_numbers: set[str] = set()


def make_id_number(
    birth: date = date(1985, 6, 15), *, female: bool = False, region: str = "511621"
) -> str:
    """A valid 18-digit ID number (GB 11643 check digit) for that birth date and gender."""
    order = random.randrange(0, 500) * 2 + (0 if female else 1)
    first17 = f"{region}{birth:%Y%m%d}{order:03d}"
    return first17 + id_check_digit(first17)


def unique_id_number(*, female: bool = False) -> str:
    while True:
        birth = date(1960 + random.randint(0, 40), random.randint(1, 12), random.randint(1, 28))
        number = make_id_number(birth, female=female)
        if number not in _id_numbers:
            _id_numbers.add(number)
            return number


def unique_phone() -> str:
    return f"13{random.randint(0, 9)}{random.randint(10_000_000, 99_999_999)}"


async def org(
    db: AsyncSession,
    name: str = "测试支部",
    *,
    parent: Organization | None = None,
    kind: str | None = None,
    region_code: str = "511621",
    **extra: object,
) -> Organization:
    return await create_organization(
        db,
        name=name,
        kind=kind or ("committee" if parent is None else "branch"),
        parent_id=parent.id if parent else None,
        region_code=region_code,
        **extra,  # type: ignore[arg-type]
    )


async def member(
    db: AsyncSession,
    settings: Settings,
    home: Organization,
    name: str = "张三",
    *,
    id_number: str | None = None,
    phone: str | None = None,
    status: str = "full",
) -> Member:
    return await create_member(
        db,
        settings,
        name=name,
        id_number=id_number or unique_id_number(),
        phone=phone or unique_phone(),
        home_org_id=home.id,
        status=status,
    )


async def account(
    db: AsyncSession,
    *,
    member: Member | None = None,
    superadmin: bool = False,
    openid: str | None = None,
) -> Account:
    acc = Account(
        openid=openid or f"o-test-{next(_seq)}-{random.randint(0, 10**9)}",
        member_id=member.id if member else None,
        is_superadmin=superadmin,
    )
    db.add(acc)
    await db.flush()
    return acc


async def grant(
    db: AsyncSession, who: Member, where: Organization, role: str = "org_admin"
) -> RoleAssignment:
    assignment = RoleAssignment(org_id=where.id, member_id=who.id, role=role)
    db.add(assignment)
    await db.flush()
    return assignment


@dataclass
class Actor:
    account: Account
    member: Member | None
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def login(
    db: AsyncSession, settings: Settings, acc: Account, m: Member | None = None
) -> Actor:
    pair = await issue_token_pair(db, settings, acc)
    return Actor(acc, m, pair.access_token)


async def member_actor(
    db: AsyncSession, settings: Settings, home: Organization, name: str = "张三"
) -> Actor:
    m = await member(db, settings, home, name)
    acc = await account(db, member=m)
    return await login(db, settings, acc, m)


async def admin_actor(
    db: AsyncSession,
    settings: Settings,
    where: Organization,
    role: str = "org_admin",
    name: str = "李书记",
) -> Actor:
    m = await member(db, settings, where, name)
    await grant(db, m, where, role)
    acc = await account(db, member=m)
    return await login(db, settings, acc, m)


async def resident_actor(db: AsyncSession, settings: Settings) -> Actor:
    acc = await account(db)
    return await login(db, settings, acc)


async def superadmin_actor(db: AsyncSession, settings: Settings) -> Actor:
    acc = await account(db, superadmin=True)
    return await login(db, settings, acc)
