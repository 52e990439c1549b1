# ruff: noqa: F811 - the shared fixtures are imported from test_mobility
"""Ledger, flags (day before/of/after in Asia/Shanghai), statistics, export, escalation,
reminders and races."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.members.models import Member
from app.mobility.jobs import escalate_lost_contact, remind_reports_due
from app.mobility.models import MemberConsent, Outflow
from app.mobility.rules import FLAG_COLUMNS
from app.notify.models import Notification
from app.organization.models import Organization
from tests import factories
from tests.api.test_mobility import (  # noqa: F401 - fixtures
    NANSHAN,
    Clock,
    World,
    accept,
    approve,
    checkin,
    clock,
    consent,
    ledger_ids,
    make_world,
    register,
    world,
)
from tests.conftest import problem
from tests.support.mobility import outflow_body

APPROVED = date(2026, 3, 2)

FLAG_CASES = [
    # flag, due day (inclusive, still in time), how to get there
    ("checkin_overdue", APPROVED + timedelta(days=30)),
    ("report_overdue", APPROVED + timedelta(days=90)),
    ("lost_contact", APPROVED + timedelta(days=180)),
    ("transfer_suggested", date(2026, 3, 1) + timedelta(days=183)),
]


@pytest.mark.parametrize(("flag", "due"), FLAG_CASES)
async def test_flag_boundaries_in_shanghai(
    client: httpx.AsyncClient, world: World, clock: Clock, flag: str, due: date
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    cases = [(due - timedelta(days=1), False), (due, False), (due + timedelta(days=1), True)]
    for day, flagged in cases:
        # 00:30 in Shanghai is still the previous day in UTC: the day counts in Shanghai.
        clock.set_day(day, hour_shanghai=0)
        ids = await ledger_ids(client, world.branch_admin, f"flag={flag}")
        assert (o["id"] in ids) is flagged, (flag, day)
        mine = (await client.get("/api/v1/me/outflow", headers=world.member.headers)).json()
        assert (flag in mine["flags"]) is flagged, (flag, day)
        # 23:30 Shanghai on the same day: same answer.
        clock.set_day(day, hour_shanghai=23)
        assert (o["id"] in await ledger_ids(client, world.branch_admin, f"flag={flag}")) is flagged


async def test_approval_day_is_the_shanghai_day(
    client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    # 2026-03-01 16:30 UTC is already 2026-03-02 00:30 in Shanghai.
    clock.set_day(date(2026, 3, 2), hour_shanghai=0)
    clock.now = clock.now.replace(minute=30)
    assert clock.now.day == 1
    o = await approve(client, world.branch_admin, await register(client, world.member))
    assert o["due"]["checkin_due_on"] == "2026-04-01"


async def test_accepted_checkin_clears_checkin_flag_and_report_resets_others(
    client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    await consent(client, world.member)
    clock.set_day(date(2026, 9, 1))
    assert await ledger_ids(client, world.branch_admin, "flag=lost_contact") == [o["id"]]
    report = await client.post(
        f"/api/v1/outflows/{o['id']}/reports",
        json={"lat": NANSHAN[0], "lon": NANSHAN[1]},
        headers=world.member.headers,
    )
    assert report.status_code == 201
    assert await ledger_ids(client, world.branch_admin, "flag=lost_contact") == []
    assert await ledger_ids(client, world.branch_admin, "flag=report_overdue") == []
    assert await ledger_ids(client, world.branch_admin, "flag=checkin_overdue") == [o["id"]]
    fresh = (await client.get(f"/api/v1/outflows/{o['id']}", headers=world.member.headers)).json()
    await accept(client, world, await checkin(client, world, fresh))
    assert await ledger_ids(client, world.branch_admin, "flag=checkin_overdue") == []


async def test_org_settings_override_intervals(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    # The county sets 10 days; the nearest ancestor wins over the default 30.
    await db.execute(
        update(Organization)
        .where(Organization.id == world.county.id)
        .values(settings={"checkin_deadline_days": 10, "report_interval_days": "bad"})
    )
    o = await approve(client, world.branch_admin, await register(client, world.member))
    assert o["due"]["checkin_due_on"] == "2026-03-12"
    assert o["due"]["report_due_on"] == "2026-05-31"  # a broken value keeps the default


async def test_ledger_filters_scope_and_pagination(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession, settings: Settings
) -> None:
    problem(await client.get("/api/v1/outflows"), 401, "auth.missing_token")
    problem(
        await client.get("/api/v1/outflows", headers=world.member.headers),
        403,
        "auth.admin_required",
    )
    names = ["甲一", "乙二", "丙三", "丁四", "戊五"]
    created = []
    for i, name in enumerate(names):
        actor = await factories.member_actor(db, settings, world.branch, name)
        region = "440305" if i % 2 == 0 else "330106"
        o = await register(
            client,
            actor,
            destination_region_code=region,
            reason="business" if i == 1 else "work",
        )
        created.append(o)
    await approve(client, world.branch_admin, created[0])
    outsider = await factories.member_actor(db, settings, world.other_county, "外县人")
    foreign = await register(client, outsider)

    all_ids = await ledger_ids(client, world.county_admin, "limit=100")
    assert all_ids == [o["id"] for o in reversed(created)]
    assert foreign["id"] not in all_ids
    assert await ledger_ids(client, world.other_admin) == [foreign["id"]]

    assert await ledger_ids(client, world.county_admin, "destination_region_code=440000") == [
        created[4]["id"],
        created[2]["id"],
        created[0]["id"],
    ]
    assert await ledger_ids(client, world.county_admin, "destination_region_code=330100") == [
        created[3]["id"],
        created[1]["id"],
    ]
    assert await ledger_ids(client, world.county_admin, "reason=business") == [created[1]["id"]]
    assert await ledger_ids(client, world.county_admin, "status=active") == [created[0]["id"]]
    assert await ledger_ids(client, world.county_admin, "q=丙") == [created[2]["id"]]
    assert len(await ledger_ids(client, world.county_admin, "consent=false")) == 5
    # The ledger shows who has (not) consented to location collection.
    first = await client.get(
        f"/api/v1/outflows/{created[0]['id']}", headers=world.county_admin.headers
    )
    assert first.json()["location_consent"] is False
    assert await ledger_ids(client, world.county_admin, f"org_id={world.branch.id}&q=甲") == [
        created[0]["id"]
    ]
    problem(
        await client.get(
            f"/api/v1/outflows?org_id={world.other_county.id}", headers=world.county_admin.headers
        ),
        404,
        "org.not_found",
    )
    problem(
        await client.get("/api/v1/outflows?flag=nope", headers=world.county_admin.headers),
        422,
        "validation.failed",
    )

    seen: list[int] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (
            await client.get(f"/api/v1/outflows?{query}", headers=world.county_admin.headers)
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == all_ids
    problem(
        await client.get("/api/v1/outflows?cursor=garbage!", headers=world.county_admin.headers),
        422,
        "pagination.invalid_cursor",
    )


async def test_stats(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession, settings: Settings
) -> None:
    problem(await client.get("/api/v1/outflows/stats"), 401, "auth.missing_token")
    regions = ["440305", "440304", "330106"]
    for i, region in enumerate(regions):
        actor = await factories.member_actor(db, settings, world.branch, f"成员{i}")
        o = await register(client, actor, destination_region_code=region, reason="work")
        if i < 2:
            await approve(client, world.branch_admin, o)
    clock.set_day(date(2026, 4, 5))
    stats = (
        await client.get(
            f"/api/v1/outflows/stats?org_id={world.county.id}", headers=world.county_admin.headers
        )
    ).json()
    assert stats["total"] == 3
    assert stats["by_status"] == {"active": 2, "pending": 1}
    assert stats["by_flag"]["checkin_overdue"] == 2
    assert stats["by_flag"]["lost_contact"] == 0
    assert stats["by_reason"] == {"work": 3}
    assert stats["location_consent_missing"] == 2
    assert stats["by_province"][0] == {"code": "440000", "name": "广东省", "count": 2}
    assert {"code": "330100", "name": "浙江省杭州市", "count": 1} in stats["by_city"]
    other = (await client.get("/api/v1/outflows/stats", headers=world.other_admin.headers)).json()
    assert other["total"] == 0


async def test_stats_equal_a_recount_after_transitions(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession, settings: Settings
) -> None:
    """The one-pass statistics count what the rows say, also with filters: approved,
    rejected, returned and pending outflows; consent granted, granted then withdrawn, never
    given; flags raised by the clock."""
    plans = [
        ("440305", "work", "consent"),
        ("440304", "study", "withdrawn"),
        ("330106", "business", "none"),
        ("440305", "other", "reject"),
        ("330106", "work", "return"),
        ("440305", "work", "pending"),
    ]
    for i, (region, reason, plan) in enumerate(plans):
        actor = await factories.member_actor(db, settings, world.branch, f"统计{i}")
        o = await register(client, actor, destination_region_code=region, reason=reason)
        if plan == "pending":
            continue
        if plan == "reject":
            response = await client.post(
                f"/api/v1/outflows/{o['id']}/reject",
                json={"version": o["version"], "reason": "材料不全"},
                headers=world.branch_admin.headers,
            )
            assert response.status_code == 200, response.text
            continue
        o = await approve(client, world.branch_admin, o)
        if plan in ("consent", "withdrawn"):
            await consent(client, actor)
        if plan == "withdrawn":
            await consent(client, actor, granted=False)
        if plan == "return":
            response = await client.post(
                f"/api/v1/outflows/{o['id']}/return",
                json={"returned_on": "2026-03-02", "version": o["version"]},
                headers=actor.headers,
            )
            assert response.status_code == 200, response.text
    today = date(2026, 6, 15)  # check-in and report overdue for the active ones
    clock.set_day(today)

    async def recount(status: str | None, name: str | None) -> dict[str, Any]:
        rows = (
            await db.execute(
                select(Outflow, Member.name)
                .join(Member, Member.id == Outflow.member_id)
                .where(Outflow.home_org_id == world.branch.id)
            )
        ).all()
        picked = [
            o
            for o, member_name in rows
            if (status is None or o.status == status) and (name is None or name in member_name)
        ]
        latest: dict[int, bool] = {}
        for member_id, granted in await db.execute(
            select(MemberConsent.member_id, MemberConsent.granted).order_by(MemberConsent.id)
        ):
            latest[member_id] = granted
        return {
            "total": len(picked),
            "by_status": dict(Counter(o.status for o in picked)),
            "by_reason": dict(Counter(o.reason for o in picked)),
            "by_flag": {
                flag: sum(1 for o in picked if (getattr(o, column) or date.max) < today)
                for flag, column in FLAG_COLUMNS.items()
            },
            "location_consent_missing": sum(
                1 for o in picked if o.status == "active" and not latest.get(o.member_id, False)
            ),
        }

    for query, status, name in [
        ("", None, None),
        ("&status=active", "active", None),
        ("&q=统计1", None, "统计1"),
    ]:
        stats = (
            await client.get(
                f"/api/v1/outflows/stats?org_id={world.county.id}{query}",
                headers=world.county_admin.headers,
            )
        ).json()
        expected = await recount(status, name)
        assert {key: stats[key] for key in expected} == expected, query
        assert sum(p["count"] for p in stats["by_province"]) == expected["total"]
    everything = await recount(None, None)
    assert everything["total"] == 6
    assert everything["by_status"] == {"active": 3, "rejected": 1, "returned": 1, "pending": 1}
    assert everything["location_consent_missing"] == 2
    assert everything["by_flag"]["checkin_overdue"] == 3


async def _export(client: httpx.AsyncClient, headers: dict[str, str], query: str = "") -> Any:
    response = await client.get(f"/api/v1/outflows/export?{query}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return load_workbook(io.BytesIO(response.content), read_only=True).active


async def test_export_matches_ledger_row_for_row(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession, settings: Settings
) -> None:
    problem(await client.get("/api/v1/outflows/export"), 401, "auth.missing_token")
    for i in range(4):
        actor = await factories.member_actor(db, settings, world.branch, f"导出{i}")
        o = await register(client, actor, contact_phone=f"1391234567{i}")
        if i % 2 == 0:
            await approve(client, world.branch_admin, o)
    ledger = (
        await client.get("/api/v1/outflows?limit=100", headers=world.county_admin.headers)
    ).json()["items"]
    sheet = await _export(client, world.county_admin.headers)
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[1]
    assert header[:16] == (
        "序号", "姓名", "性别", "所在支部", "外出原因", "流入地", "详细地址", "工作单位",
        "联系电话", "外出日期", "预计返回", "活动证编号", "状态", "报到组织", "最近报告", "标记",
    )  # fmt: skip
    data = rows[2:]
    assert len(data) == len(ledger) == 4
    for index, (row, item) in enumerate(zip(data, ledger, strict=True), start=1):
        assert row[0] == index
        assert row[1] == item["member"]["name"]
        assert row[3] == "花园村党支部"
        assert row[5] == "广东省深圳市南山区"
        assert row[8] == item["contact_phone"] and "****" in row[8]
        assert row[9].date().isoformat() == item["departed_on"]
        assert (row[11] or None) == item["certificate_no"]
        assert row[12] == ("外出中" if item["status"] == "active" else "待审批")
    active_only = await _export(client, world.county_admin.headers, "status=active")
    assert len(list(active_only.iter_rows(values_only=True))) - 2 == 2
    outsider = await _export(client, world.other_admin.headers)
    assert len(list(outsider.iter_rows(values_only=True))) == 2  # title and header only


async def test_full_export_needs_reason_and_is_audited(
    client: httpx.AsyncClient, world: World, db: AsyncSession
) -> None:
    await register(client, world.member)
    problem(
        await client.get("/api/v1/outflows/export?full=true", headers=world.county_admin.headers),
        422,
        "outflow.export_reason_required",
    )
    sheet = await _export(
        client, world.county_admin.headers, "full=true&export_reason=县委组织部年度核查"
    )
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[2][8] == "13912345678"
    audit = (
        await db.execute(select(AuditEntry).where(AuditEntry.action == "outflow.export_full"))
    ).scalar_one()
    assert audit.reason == "县委组织部年度核查"
    assert audit.actor_account_id == world.county_admin.account.id
    assert audit.detail["rows"] == 1


async def test_escalate_lost_contact_notifies_parent_committee_once(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession, settings: Settings
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    lost_on = APPROVED + timedelta(days=180)
    town = (
        await db.execute(select(Organization).where(Organization.name == "石垭镇党委"))
    ).scalar_one()
    town_admin = await factories.admin_actor(db, settings, town, name="镇委书记")
    assert await escalate_lost_contact(db, lost_on) == 0  # the due day itself: not yet
    assert await escalate_lost_contact(db, lost_on + timedelta(days=1)) == 1
    assert await escalate_lost_contact(db, lost_on + timedelta(days=2)) == 0  # once
    notes = (
        await db.execute(
            select(Notification.account_id, Notification.template).where(
                Notification.template == "outflow_lost_contact"
            )
        )
    ).all()
    # The parent committee of the branch is the town: its admin, not the county's.
    assert notes == [(town_admin.account.id, "outflow_lost_contact")]
    row = await db.get(Outflow, o["id"])
    assert row is not None
    await db.refresh(row)
    assert row.lost_contact_escalated_at is not None
    detail = (
        await client.get(f"/api/v1/outflows/{o['id']}", headers=world.branch_admin.headers)
    ).json()
    assert detail["lost_contact_escalated_at"] is not None


async def test_remind_reports_due_once_per_due_date(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    await approve(client, world.branch_admin, await register(client, world.member))
    due = APPROVED + timedelta(days=90)
    assert await remind_reports_due(db, due - timedelta(days=8)) == 0
    assert await remind_reports_due(db, due - timedelta(days=7)) == 1
    assert await remind_reports_due(db, due - timedelta(days=3)) == 0
    count = (
        await db.execute(
            select(func.count()).where(
                Notification.account_id == world.member.account.id,
                Notification.template == "report_due",
            )
        )
    ).scalar_one()
    assert count == 1


# ---------------------------------------------------------------------------
# Races on real connections
# ---------------------------------------------------------------------------


async def _committed_world(engine: AsyncEngine, settings: Settings) -> World:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        w = await make_world(session, settings)
        await session.commit()
        return w


async def test_concurrent_registrations_one_wins(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    w = await _committed_world(engine, settings)
    responses = await asyncio.gather(
        *(
            committing_client.post(
                "/api/v1/outflows", json=outflow_body(), headers=w.member.headers
            )
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "outflow.already_active"
    async with AsyncSession(engine) as session:
        count = (await session.execute(select(func.count()).select_from(Outflow))).scalar_one()
    assert count == 1


async def test_concurrent_approvals_and_escalations(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    w = await _committed_world(engine, settings)
    created = await register(committing_client, w.member)
    results = await asyncio.gather(
        *(
            committing_client.post(
                f"/api/v1/outflows/{created['id']}/approve",
                json={"version": 1},
                headers=admin.headers,
            )
            for admin in (w.branch_admin, w.county_admin, w.branch_admin)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409]
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"conflict.stale_version"}

    # Two scheduler instances escalate at once: exactly one claims the outflow.
    async def run() -> int:
        async with AsyncSession(engine) as session:
            n = await escalate_lost_contact(session, date.today() + timedelta(days=400))
            await session.commit()
            return n

    counts = await asyncio.gather(run(), run(), run())
    assert sorted(counts) == [0, 0, 1]
    async with AsyncSession(engine) as session:
        notes = (
            await session.execute(
                select(func.count()).where(Notification.template == "outflow_lost_contact")
            )
        ).scalar_one()
    # The town committee has no admin here: the escalation goes up to the county's.
    assert notes == 1
