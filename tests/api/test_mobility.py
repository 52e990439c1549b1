"""Outflow life cycle through the API: registration, approval, check-in, dual management,
reports with consent, relocation, return; scope and version rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core import pii
from app.core.config import Settings
from app.mobility.models import Outflow, OutflowReport
from app.notify.models import Notification
from app.organization.models import DualManagementGrant, Organization
from tests import factories
from tests.clock import Clock
from tests.conftest import problem
from tests.factories import Actor
from tests.support.mobility import outflow_body

NANSHAN = (22.5333, 113.9305)  # GCJ-02, 深圳市南山区
GUANGZHOU = (23.1291, 113.2644)  # GCJ-02, 广州市越秀区


@dataclass
class World:
    county: Organization
    branch: Organization
    other_county: Organization
    destination: Organization
    member: Actor
    branch_admin: Actor
    county_admin: Actor
    other_admin: Actor
    dest_admin: Actor


@pytest.fixture
def clock(clock: Clock) -> Clock:
    """The app's clock, stopped at 2026-03-02 12:00 in Shanghai."""
    clock.now = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
    return clock


async def make_world(db: AsyncSession, settings: Settings) -> World:
    county = await factories.org(db, "岳池县委", region_code="511621")
    town = await factories.org(db, "石垭镇党委", parent=county, kind="committee")
    branch = await factories.org(db, "花园村党支部", parent=town)
    other = await factories.org(db, "邻县县委", region_code="511622")
    destination = await factories.org(db, "南山商圈党委", region_code="440305")
    return World(
        county=county,
        branch=branch,
        other_county=other,
        destination=destination,
        member=await factories.member_actor(db, settings, branch, "王建国"),
        branch_admin=await factories.admin_actor(db, settings, branch, "branch_admin", "张书记"),
        county_admin=await factories.admin_actor(db, settings, county, name="李部长"),
        other_admin=await factories.admin_actor(db, settings, other, name="赵书记"),
        dest_admin=await factories.admin_actor(db, settings, destination, name="陈书记"),
    )


@pytest.fixture
async def world(db: AsyncSession, settings: Settings) -> World:
    return await make_world(db, settings)


async def register(client: httpx.AsyncClient, actor: Actor, **over: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/outflows", json=outflow_body(**over), headers=actor.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def approve(client: httpx.AsyncClient, admin: Actor, o: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/outflows/{o['id']}/approve", json={"version": o["version"]}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def checkin(client: httpx.AsyncClient, w: World, o: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/outflows/{o['id']}/destination-checkin",
        json={"org_id": w.destination.id, "version": o["version"]},
        headers=w.member.headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def accept(client: httpx.AsyncClient, w: World, o: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/outflows/{o['id']}/destination-checkin/accept",
        json={"version": o["version"]},
        headers=w.dest_admin.headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def consent(client: httpx.AsyncClient, actor: Actor, granted: bool = True) -> None:
    response = await client.post(
        "/api/v1/me/consents", json={"kind": "location", "granted": granted}, headers=actor.headers
    )
    assert response.status_code == 201, response.text


async def ledger_ids(client: httpx.AsyncClient, admin: Actor, query: str = "") -> list[int]:
    response = await client.get(f"/api/v1/outflows?{query}", headers=admin.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# ---------------------------------------------------------------------------


async def test_register_approve_issues_certificate_and_notifies(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession, settings: Settings
) -> None:
    created = await register(client, world.member)
    assert created["status"] == "pending" and created["version"] == 1
    assert created["contact_phone"] == "139****5678"
    assert created["member"]["name"] == "王建国"
    assert created["destination_region_name"] == "广东省深圳市南山区"
    row = await db.get(Outflow, created["id"])
    assert row is not None and b"13912345678" not in row.contact_phone_enc
    ring = pii.keyring(settings)
    assert ring.decrypt(row.contact_phone_enc, context="outflow.contact_phone") == "13912345678"

    approved = await approve(client, world.branch_admin, created)
    assert approved["status"] == "active"
    assert approved["certificate_no"] == "511621-2026-00001"
    assert approved["version"] == 2
    assert approved["due"]["checkin_due_on"] == "2026-04-01"  # approved 2026-03-02 + 30
    assert approved["due"]["report_due_on"] == "2026-05-31"  # + 90
    assert approved["due"]["lost_contact_on"] == "2026-08-29"  # + 180
    assert approved["due"]["transfer_suggest_on"] == "2026-08-31"  # departed 03-01 + 183

    audits = (
        await db.execute(select(AuditEntry.action).where(AuditEntry.subject_id == created["id"]))
    ).scalars()
    assert "outflow.approved" in list(audits)
    templates = (
        await db.execute(
            select(Notification.template).where(Notification.account_id == world.member.account.id)
        )
    ).scalars()
    assert list(templates) == ["outflow_approved"]

    # The next approval in the same region and year gets the next number.
    second = await factories.member_actor(db, settings, world.branch, "刘芳")
    other = await register(client, second)
    assert (await approve(client, world.county_admin, other))["certificate_no"] == (
        "511621-2026-00002"
    )


async def test_one_open_outflow_per_member(client: httpx.AsyncClient, world: World) -> None:
    await register(client, world.member)
    again = await client.post("/api/v1/outflows", json=outflow_body(), headers=world.member.headers)
    problem(again, 409, "outflow.already_active")


async def test_register_validation(client: httpx.AsyncClient, world: World) -> None:
    bad = await client.post(
        "/api/v1/outflows",
        json=outflow_body(
            destination_region_code="999999", contact_phone="123", reason="fun", extra=1
        ),
        headers=world.member.headers,
    )
    body = problem(bad, 422, "validation.failed")
    fields = {e["field"] for e in body["errors"]}
    assert {"destination_region_code", "contact_phone", "reason", "extra"} <= fields
    dates = await client.post(
        "/api/v1/outflows",
        json=outflow_body(departed_on="2026-05-01", expected_return_on="2026-04-01"),
        headers=world.member.headers,
    )
    problem(dates, 422, "validation.failed")


async def test_register_is_idempotent(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world.member.headers, "Idempotency-Key": "reg-1"}
    first = await client.post("/api/v1/outflows", json=outflow_body(), headers=headers)
    second = await client.post("/api/v1/outflows", json=outflow_body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("idempotent-replayed") == "true"


async def test_reject_needs_reason_and_notifies(
    client: httpx.AsyncClient, world: World, db: AsyncSession
) -> None:
    o = await register(client, world.member)
    url = f"/api/v1/outflows/{o['id']}/reject"
    problem(
        await client.post(url, json={"version": 1}, headers=world.branch_admin.headers),
        422,
        "validation.failed",
    )
    rejected = await client.post(
        url, json={"version": 1, "reason": "材料不全"}, headers=world.branch_admin.headers
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reject_reason"] == "材料不全"
    # A rejected outflow is closed: approving it is an invalid transition.
    problem(
        await client.post(
            f"/api/v1/outflows/{o['id']}/approve",
            json={"version": 2},
            headers=world.branch_admin.headers,
        ),
        409,
        "outflow.invalid_transition",
    )
    notes = (
        await db.execute(
            select(Notification.template).where(Notification.account_id == world.member.account.id)
        )
    ).scalars()
    assert list(notes) == ["outflow_rejected"]
    # ...and the member may register again.
    await register(client, world.member)


async def test_stale_version_is_409(client: httpx.AsyncClient, world: World) -> None:
    o = await register(client, world.member)
    await approve(client, world.branch_admin, o)
    stale = await client.post(
        f"/api/v1/outflows/{o['id']}/approve",
        json={"version": 1},
        headers=world.county_admin.headers,
    )
    problem(stale, 409, "conflict.stale_version")


async def test_approve_scope_and_roles(client: httpx.AsyncClient, world: World) -> None:
    o = await register(client, world.member)
    url = f"/api/v1/outflows/{o['id']}/approve"
    problem(await client.post(url, json={"version": 1}), 401, "auth.missing_token")
    problem(
        await client.post(url, json={"version": 1}, headers=world.other_admin.headers),
        404,
        "outflow.not_found",
    )
    problem(
        await client.post(url, json={"version": 1}, headers=world.member.headers),
        403,
        "auth.admin_required",
    )


async def test_get_outflow_scope(client: httpx.AsyncClient, world: World) -> None:
    o = await register(client, world.member)
    url = f"/api/v1/outflows/{o['id']}"
    problem(await client.get(url), 401, "auth.missing_token")
    problem(await client.get(url, headers=world.other_admin.headers), 404, "outflow.not_found")
    problem(await client.get(url, headers=world.dest_admin.headers), 404, "outflow.not_found")
    mine = await client.get(url, headers=world.member.headers)
    assert mine.status_code == 200
    assert [e["action"] for e in mine.json()["events"]] == ["register"]
    admin = await client.get(url, headers=world.county_admin.headers)
    assert admin.json()["id"] == o["id"]


async def test_checkin_accept_dual_management_until_return(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    # Before check-in: the destination admin does not see the member.
    assert o["id"] not in await ledger_ids(client, world.dest_admin)

    requested = await checkin(client, world, o)
    assert requested["checkin"]["status"] == "pending"
    assert requested["checkin"]["org"] == {"id": world.destination.id, "name": "南山商圈党委"}
    # A pending request is visible to the destination so that it can decide ...
    assert await ledger_ids(client, world.dest_admin, "checkin_status=pending") == [o["id"]]
    # ... but only its admins may decide, not the home branch.
    problem(
        await client.post(
            f"/api/v1/outflows/{o['id']}/destination-checkin/accept",
            json={"version": requested["version"]},
            headers=world.branch_admin.headers,
        ),
        403,
        "outflow.destination_admin_required",
    )
    accepted = await accept(client, world, requested)
    assert accepted["checkin"]["status"] == "accepted"
    assert accepted["due"]["checkin_due_on"] is None
    grants = (
        await db.execute(
            select(DualManagementGrant).where(DualManagementGrant.outflow_id == o["id"])
        )
    ).scalars()
    grant_rows = list(grants)
    assert len(grant_rows) == 1 and grant_rows[0].ended_at is None
    # After acceptance: the destination admin sees and serves him.
    assert await ledger_ids(client, world.dest_admin) == [o["id"]]
    detail = await client.get(f"/api/v1/outflows/{o['id']}", headers=world.dest_admin.headers)
    assert detail.status_code == 200
    notes = (
        await db.execute(
            select(Notification.template).where(Notification.account_id == world.member.account.id)
        )
    ).scalars()
    assert "checkin_accepted" in list(notes)
    # The destination admin cannot approve or return on the home branch's behalf.
    problem(
        await client.post(
            f"/api/v1/outflows/{o['id']}/return",
            json={"returned_on": "2026-03-02", "version": accepted["version"]},
            headers=world.dest_admin.headers,
        ),
        403,
        "outflow.home_admin_required",
    )

    returned = await client.post(
        f"/api/v1/outflows/{o['id']}/return",
        json={"returned_on": "2026-03-02", "version": accepted["version"]},
        headers=world.member.headers,
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["status"] == "returned"
    assert returned.json()["flags"] == []
    await db.refresh(grant_rows[0])
    assert grant_rows[0].ended_at is not None
    # After return: the destination loses sight; the home branch keeps the returned ledger.
    assert await ledger_ids(client, world.dest_admin) == []
    problem(
        await client.get(f"/api/v1/outflows/{o['id']}", headers=world.dest_admin.headers),
        404,
        "outflow.not_found",
    )
    assert await ledger_ids(client, world.branch_admin, "status=returned") == [o["id"]]


async def test_refuse_checkin_then_check_in_elsewhere(
    client: httpx.AsyncClient, world: World, db: AsyncSession, settings: Settings
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    requested = await checkin(client, world, o)
    refused = await client.post(
        f"/api/v1/outflows/{o['id']}/destination-checkin/refuse",
        json={"version": requested["version"], "reason": "不在本商圈工作"},
        headers=world.dest_admin.headers,
    )
    assert refused.status_code == 200
    assert refused.json()["checkin"]["status"] == "refused"
    assert refused.json()["checkin"]["refuse_reason"] == "不在本商圈工作"
    assert await ledger_ids(client, world.dest_admin) == []
    # Accepting after a refusal is not a legal move.
    problem(
        await client.post(
            f"/api/v1/outflows/{o['id']}/destination-checkin/accept",
            json={"version": refused.json()["version"]},
            headers=world.dest_admin.headers,
        ),
        404,
        "outflow.not_found",
    )
    other = await factories.org(db, "南山区流动党员党支部", region_code="440305")
    again = await client.post(
        f"/api/v1/outflows/{o['id']}/destination-checkin",
        json={"org_id": other.id, "version": refused.json()["version"]},
        headers=world.member.headers,
    )
    assert again.status_code == 200
    assert again.json()["checkin"]["status"] == "pending"


async def test_checkin_guards(client: httpx.AsyncClient, world: World, db: AsyncSession) -> None:
    o = await register(client, world.member)
    url = f"/api/v1/outflows/{o['id']}/destination-checkin"
    # Pending outflows cannot check in yet.
    pending = {"org_id": world.destination.id, "version": o["version"]}
    problem(
        await client.post(url, json=pending, headers=world.member.headers),
        409,
        "outflow.invalid_transition",
    )
    v = (await approve(client, world.branch_admin, o))["version"]
    problem(
        await client.post(
            url, json={"org_id": world.branch.id, "version": v}, headers=world.member.headers
        ),
        422,
        "outflow.checkin_org_is_home",
    )
    problem(
        await client.post(
            url, json={"org_id": world.other_county.id, "version": v}, headers=world.member.headers
        ),
        422,
        "outflow.checkin_org_not_at_destination",
    )
    problem(
        await client.post(
            url, json={"org_id": 99_999_999, "version": v}, headers=world.member.headers
        ),
        404,
        "outflow.checkin_org_not_found",
    )
    # Only the member himself checks in.
    problem(
        await client.post(
            url,
            json={"org_id": world.destination.id, "version": v},
            headers=world.branch_admin.headers,
        ),
        403,
        "outflow.owner_required",
    )


async def test_report_requires_consent_and_flags_far_reports(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    url = f"/api/v1/outflows/{o['id']}/reports"
    here = {"lat": NANSHAN[0], "lon": NANSHAN[1], "note": "在科技园上班，一切正常"}
    problem(
        await client.post(url, json=here, headers=world.member.headers),
        403,
        "consent.location_required",
    )

    await consent(client, world.member)
    near = await client.post(url, json=here, headers=world.member.headers)
    assert near.status_code == 201, near.text
    assert near.json()["region_code"] == "440305"
    assert near.json()["far_from_destination"] is False
    assert near.json()["distance_m"] < 50_000

    far = await client.post(
        url, json={"lat": GUANGZHOU[0], "lon": GUANGZHOU[1]}, headers=world.member.headers
    )
    assert far.status_code == 201
    assert far.json()["far_from_destination"] is True
    assert far.json()["region_code"].startswith("4401")

    mine = (await client.get("/api/v1/me/outflow", headers=world.member.headers)).json()
    assert mine["last_report_far"] is True
    assert mine["due"]["report_due_on"] == "2026-05-31"  # reported 2026-03-02 + 90
    count = (
        await db.execute(select(func.count()).where(OutflowReport.outflow_id == o["id"]))
    ).scalar_one()
    assert count == 2

    # Withdrawal: the next report is refused again.
    await consent(client, world.member, granted=False)
    problem(
        await client.post(url, json=here, headers=world.member.headers),
        403,
        "consent.location_required",
    )
    listed = (await client.get("/api/v1/me/consents", headers=world.member.headers)).json()
    assert [c["granted"] for c in listed["items"]] == [False, True]


async def test_risky_report_note_is_422(client: httpx.AsyncClient, world: World) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    await consent(client, world.member)
    response = await client.post(
        f"/api/v1/outflows/{o['id']}/reports",
        json={"lat": NANSHAN[0], "lon": NANSHAN[1], "note": "这里有违禁内容"},
        headers=world.member.headers,
    )
    problem(response, 422, "content.risky")


async def test_report_validation_and_other_member(
    client: httpx.AsyncClient, world: World, db: AsyncSession, settings: Settings
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    url = f"/api/v1/outflows/{o['id']}/reports"
    problem(
        await client.post(url, json={"lat": 123, "lon": 500}, headers=world.member.headers),
        422,
        "validation.failed",
    )
    stranger = await factories.member_actor(db, settings, world.other_county, "路人")
    problem(
        await client.post(url, json={"lat": 22.5, "lon": 113.9}, headers=stranger.headers),
        404,
        "outflow.not_found",
    )


async def test_relocate_keeps_history_and_ends_co_management(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    accepted = await accept(client, world, await checkin(client, world, o))
    clock.set_day(date(2026, 4, 10))
    moved = await client.post(
        f"/api/v1/outflows/{o['id']}/relocate",
        json={
            "destination_region_code": "440104",
            "destination_address": "广州市越秀区某街道",
            "employer": "广州某公司",
            "contact_phone": "13800001111",
            "version": accepted["version"],
        },
        headers=world.member.headers,
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["destination_region_code"] == "440104"
    assert body["contact_phone"] == "138****1111"
    assert body["checkin"]["status"] == "none" and body["checkin"]["org"] is None
    assert body["due"]["checkin_due_on"] == "2026-05-10"
    assert body["due"]["transfer_suggest_on"] == "2026-10-10"
    assert await ledger_ids(client, world.dest_admin) == []
    detail = (
        await client.get(f"/api/v1/outflows/{o['id']}", headers=world.branch_admin.headers)
    ).json()
    relocation = next(e for e in detail["events"] if e["action"] == "relocate")
    assert relocation["data"]["from"]["destination_region_code"] == "440305"
    assert relocation["data"]["to"]["destination_region_code"] == "440104"
    assert [e["action"] for e in detail["events"]] == [
        "register",
        "approve",
        "checkin",
        "accept_checkin",
        "relocate",
    ]


async def test_return_guards(client: httpx.AsyncClient, world: World, clock: Clock) -> None:
    o = await approve(client, world.branch_admin, await register(client, world.member))
    url = f"/api/v1/outflows/{o['id']}/return"
    v = o["version"]
    problem(
        await client.post(
            url, json={"returned_on": "2026-02-01", "version": v}, headers=world.member.headers
        ),
        422,
        "outflow.returned_before_departure",
    )
    problem(
        await client.post(
            url, json={"returned_on": "2026-03-03", "version": v}, headers=world.member.headers
        ),
        422,
        "outflow.returned_in_future",
    )
    problem(
        await client.post(
            url, json={"returned_on": "2026-03-02", "version": v}, headers=world.other_admin.headers
        ),
        404,
        "outflow.not_found",
    )
    # The version is required on every transition: without it nothing changes.
    missing = problem(
        await client.post(url, json={"returned_on": "2026-03-02"}, headers=world.member.headers),
        422,
        "validation.failed",
    )
    assert [e["field"] for e in missing["errors"]] == ["version"]
    done = await client.post(
        url, json={"returned_on": "2026-03-02", "version": v}, headers=world.county_admin.headers
    )
    assert done.status_code == 200 and done.json()["returned_on"] == "2026-03-02"
    problem(
        await client.post(
            url,
            json={"returned_on": "2026-03-02", "version": done.json()["version"]},
            headers=world.member.headers,
        ),
        409,
        "outflow.invalid_transition",
    )
    problem(
        await client.get("/api/v1/me/outflow", headers=world.member.headers), 404, "outflow.none"
    )


async def test_me_outflow_next_actions(
    client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    problem(await client.get("/api/v1/me/outflow"), 401, "auth.missing_token")
    problem(
        await client.get("/api/v1/me/outflow", headers=world.member.headers), 404, "outflow.none"
    )
    o = await register(client, world.member)
    pending = (await client.get("/api/v1/me/outflow", headers=world.member.headers)).json()
    assert [a["code"] for a in pending["next_actions"]] == ["await_approval"]
    await approve(client, world.branch_admin, o)
    clock.set_day(date(2026, 3, 27))
    active = (await client.get("/api/v1/me/outflow", headers=world.member.headers)).json()
    actions = {a["code"]: a for a in active["next_actions"]}
    assert actions["checkin"]["due_on"] == "2026-04-01"
    assert actions["checkin"]["text"] == "流入地报到还有 5 天到期（2026-04-01 前）"
    assert "consent" in actions
    assert actions["report"]["due_on"] == "2026-05-31"


async def test_consents_scope(
    client: httpx.AsyncClient, world: World, db: AsyncSession, settings: Settings
) -> None:
    problem(await client.get("/api/v1/me/consents"), 401, "auth.missing_token")
    resident = await factories.resident_actor(db, settings)
    problem(
        await client.post(
            "/api/v1/me/consents",
            json={"kind": "location", "granted": True},
            headers=resident.headers,
        ),
        403,
        "auth.member_required",
    )
    await consent(client, world.member)
    other = await client.get("/api/v1/me/consents", headers=world.branch_admin.headers)
    assert other.json()["items"] == []


async def test_demo_seed(
    db: AsyncSession, settings: Settings, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.demo
    from app.mobility import demo

    # Only the shared tree and the roster here: the other domains' demo rows are theirs
    # to test (tests/api/test_demo_states.py looks at the whole demo through the API).
    monkeypatch.setattr(app.demo, "DOMAIN_SEEDS", ("members",))
    demo_settings = settings.model_copy(update={"demo_data": True})
    await app.demo.seed_demo(db, demo_settings)
    await demo.seed(db, demo_settings)
    await demo.seed(db, demo_settings)  # idempotent
    rows = (await db.execute(select(Outflow.status, Outflow.checkin_status))).all()
    assert sorted(rows) == [
        ("active", "accepted"),  # 王建国
        ("active", "accepted"),  # 周丽娟
        ("active", "accepted"),  # 何文斌
        ("active", "none"),  # 杨国华
        ("active", "none"),  # 陈国栋
        ("active", "pending"),  # 林小梅
        ("active", "refused"),  # 郑雪梅
        ("cancelled", "none"),  # 罗永强, before his return
        ("pending", "none"),  # 刘芳
        ("rejected", "none"),  # 谢春花
        ("returned", "none"),  # 罗永强
        ("withdrawn", "none"),  # 刘芳, before her pending one
    ]
    grants = (await db.execute(select(func.count()).select_from(DualManagementGrant))).scalar_one()
    assert grants == 3


async def test_database_enforces_one_open_outflow(
    db: AsyncSession, world: World, client: httpx.AsyncClient
) -> None:
    from sqlalchemy.exc import IntegrityError

    first = await register(client, world.member)
    row = await db.get(Outflow, first["id"])
    assert row is not None
    duplicate = Outflow(
        member_id=row.member_id,
        home_org_id=row.home_org_id,
        status="active",
        reason="work",
        destination_region_code="440305",
        destination_address="x",
        contact_phone_enc=b"x",
        contact_phone_masked="139****0000",
        departed_on=date(2026, 3, 1),
        expected_return_on=date(2026, 4, 1),
    )
    savepoint = await db.begin_nested()
    db.add(duplicate)
    with pytest.raises(IntegrityError, match="uq_outflows_member_open"):
        await db.flush()
    await savepoint.rollback()


async def test_control_characters_and_absurd_dates_are_422(
    client: httpx.AsyncClient, world: World
) -> None:
    body = problem(
        await client.post(
            "/api/v1/outflows",
            json=outflow_body(
                destination_address="a\x00b", departed_on="1900-01-01", employer="x\x01"
            ),
            headers=world.member.headers,
        ),
        422,
        "validation.failed",
    )
    assert {e["field"] for e in body["errors"]} >= {"destination_address", "departed_on"}
    problem(
        await client.get("/api/v1/outflows?q=%00", headers=world.county_admin.headers),
        422,
        "validation.failed",
    )
    problem(
        await client.get(
            "/api/v1/outflows?cursor=Wzk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ",
            headers=world.county_admin.headers,
        ),
        422,
        "pagination.invalid_cursor",
    )


async def test_active_outflow_summary_for_me(
    client: httpx.AsyncClient, world: World, db: AsyncSession, clock: Clock
) -> None:
    from app.mobility.service import active_outflow_summary

    assert world.member.member is not None
    assert await active_outflow_summary(db, world.member.member.id) is None
    o = await approve(client, world.branch_admin, await register(client, world.member))
    summary = await active_outflow_summary(db, world.member.member.id, date(2026, 4, 2))
    assert summary is not None
    assert summary["id"] == o["id"] and summary["status"] == "active"
    assert summary["certificate_no"] == o["certificate_no"]
    assert summary["flags"] == ["checkin_overdue"]
    assert summary["next_actions"][0]["code"] == "checkin"
    assert summary["next_actions"][0]["due_on"] == "2026-04-01"
