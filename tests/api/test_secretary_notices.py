"""What a secretary is told (issue 15, "Secretaries"): new registrations to the home
branch, check-in requests to the destination, one daily digest per branch of members
turning overdue or lost; every message carries the mini-program page it opens."""

from __future__ import annotations

from datetime import date

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.mobility.jobs import digest_overdue
from app.notify.models import Notification
from tests import factories
from tests.api.test_mobility import Clock, World, approve, checkin, clock, register, world

__all__ = ["clock", "world"]  # fixtures used by name


async def inbox(db: AsyncSession, account_id: int, template: str) -> list[Notification]:
    rows = await db.execute(
        select(Notification)
        .where(Notification.account_id == account_id, Notification.template == template)
        .order_by(Notification.id)
    )
    return list(rows.scalars())


async def test_registration_tells_the_home_branch_admins(
    client: httpx.AsyncClient, world: World, db: AsyncSession, settings: Settings
) -> None:
    created = await register(client, world.member)
    told = await inbox(db, world.branch_admin.account.id, "outflow_registered")
    assert [(n.title, n.page) for n in told] == [
        ("外出登记待审批", f"pages/admin/outflows?id={created['id']}")
    ]
    assert "王建国" in told[0].body and "广东省深圳市南山区" in told[0].body
    assert told[0].data["outflow_id"] == created["id"]  # ids are integers everywhere
    # The branch's own secretary is told; the county above and the destination are not.
    assert await inbox(db, world.county_admin.account.id, "outflow_registered") == []
    assert await inbox(db, world.dest_admin.account.id, "outflow_registered") == []

    # A branch without a secretary: its nearest administered ancestor hears it.
    town = await factories.org(db, "无书记镇党委", parent=world.county, kind="committee")
    bare = await factories.org(db, "无书记村支部", parent=town)
    lonely = await factories.member_actor(db, settings, bare, "周明")
    await register(client, lonely)
    county_told = await inbox(db, world.county_admin.account.id, "outflow_registered")
    assert len(county_told) == 1 and "周明" in county_told[0].body


async def test_checkin_request_tells_the_destination_with_its_page(
    client: httpx.AsyncClient, world: World, db: AsyncSession
) -> None:
    approved = await approve(client, world.branch_admin, await register(client, world.member))
    await checkin(client, world, approved)
    told = await inbox(db, world.dest_admin.account.id, "checkin_requested")
    assert [(n.title, n.page) for n in told] == [
        ("流动党员报到申请", f"pages/admin/outflows?id={approved['id']}")
    ]


async def test_daily_digest_per_branch_not_per_member(
    client: httpx.AsyncClient,
    world: World,
    clock: Clock,
    db: AsyncSession,
    settings: Settings,
) -> None:
    clock.set_day(date(2026, 3, 2))
    second = await factories.member_actor(db, settings, world.branch, "刘芳")
    for actor in (world.member, second):
        await approve(client, world.branch_admin, await register(client, actor))
    # Approved 2026-03-02: check-in due 04-01, report due 05-31, lost contact after 08-29.
    assert await digest_overdue(db, date(2026, 4, 1)) == 0  # the due day is still in time
    assert await inbox(db, world.branch_admin.account.id, "outflow_overdue_digest") == []

    assert await digest_overdue(db, date(2026, 4, 2)) == 1
    assert await digest_overdue(db, date(2026, 4, 2)) == 1  # a re-run sends nothing new
    told = await inbox(db, world.branch_admin.account.id, "outflow_overdue_digest")
    assert len(told) == 1
    digest = told[0]
    assert digest.page == f"pages/admin/outflows?org_id={world.branch.id}"
    assert digest.data["count"] == 2 and digest.data["checkin_overdue"] == 2
    assert digest.data["org_id"] == world.branch.id
    assert "逾期未报到 2 人" in digest.body
    assert "王建国" in digest.body and "刘芳" in digest.body
    # Only the branch's admins: not the county, not the destination.
    assert await inbox(db, world.county_admin.account.id, "outflow_overdue_digest") == []

    assert await digest_overdue(db, date(2026, 4, 3)) == 0  # nothing turned today
    assert await digest_overdue(db, date(2026, 6, 1)) == 1  # reports overdue
    assert await digest_overdue(db, date(2026, 8, 30)) == 1  # lost contact
    told = await inbox(db, world.branch_admin.account.id, "outflow_overdue_digest")
    assert [n.data.get("report_overdue") for n in told] == [None, 2, None]
    assert [n.data.get("lost_contact") for n in told] == [None, None, 2]
    assert "失联 2 人" in told[2].body
