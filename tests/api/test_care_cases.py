"""Hardship cases (困难党员帮扶): a member's request, the help log, closing, masking and
audited reveals, what a co-managing organisation may do, stats and the export."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import httpx
import openpyxl
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.care.models import CareCase, CareHelp
from app.core.config import Settings
from app.notify.models import Notification
from app.organization.models import DualManagementGrant
from tests import factories as f
from tests.clock import Clock
from tests.conftest import problem
from tests.support.care import API

SECRET = "=患尿毒症每周透析三次，妻子无业"


@dataclass
class World:
    member: f.Actor
    home_admin: f.Actor
    branch_admin: f.Actor
    co_manager: f.Actor
    stranger: f.Actor
    county_id: int
    village_id: int


async def _world(db: AsyncSession, settings: Settings) -> World:
    county = await f.org(db, "岳池县委")
    village = await f.org(db, "花园村党支部", parent=county)
    member = await f.member_actor(db, settings, village, "王建国")
    destination = await f.org(db, "深圳南山商圈党委", region_code="440305")
    assert member.member is not None
    db.add(DualManagementGrant(member_id=member.member.id, org_id=destination.id))
    return World(
        member=member,
        home_admin=await f.admin_actor(db, settings, county),
        branch_admin=await f.admin_actor(db, settings, village, role="branch_admin", name="张书记"),
        co_manager=await f.admin_actor(db, settings, destination, name="商圈书记"),
        stranger=await f.admin_actor(db, settings, await f.org(db, "邻县县委"), name="邻县书记"),
        county_id=county.id,
        village_id=village.id,
    )


async def _audits(db: AsyncSession, action: str) -> int:
    return (await db.execute(select(func.count()).where(AuditEntry.action == action))).scalar_one()


async def _inbox(db: AsyncSession, actor: f.Actor, template: str) -> list[Notification]:
    rows = await db.execute(
        select(Notification).where(
            Notification.account_id == actor.account.id, Notification.template == template
        )
    )
    return list(rows.scalars())


async def test_a_members_request_is_encrypted_masked_and_revealed_with_an_audit_entry(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    clock.set_day(date(2026, 12, 1))
    w = await _world(db, settings)
    created = await client.post(
        f"{API}/cases", json={"kind": "illness", "description": SECRET}, headers=w.member.headers
    )
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["requested_by"] == "member" and case["status"] == "open"
    assert case["description"] == SECRET and case["opened_on"] == "2026-12-01"

    row = await db.get(CareCase, case["id"])
    assert row is not None and SECRET.encode() not in row.description_enc
    assert "透析".encode() not in row.description_enc
    # The home admins are told (the branch's own admin: the nearest responsible one).
    told = await _inbox(db, w.branch_admin, "care_case_requested")
    assert len(told) == 1 and "透析" not in told[0].body and told[0].data["case_id"] == case["id"]

    ledger = await client.get(
        f"{API}/cases", params={"org_id": w.county_id}, headers=w.home_admin.headers
    )
    (item,) = ledger.json()["items"]
    assert item["id"] == case["id"] and "description" not in item
    assert item["member_name"] == "王建国" and item["help_count"] == 0

    assert await _audits(db, "care.case_revealed") == 0
    shown = await client.get(f"{API}/cases/{case['id']}", headers=w.home_admin.headers)
    assert shown.json()["description"] == SECRET
    assert await _audits(db, "care.case_revealed") == 1
    own = await client.get(f"{API}/cases/{case['id']}", headers=w.member.headers)
    assert own.json()["description"] == SECRET
    assert await _audits(db, "care.case_revealed") == 1  # his own case: no reveal

    # The co-managing organisation serves: it sees the case, never the description.
    served = await client.get(f"{API}/cases/{case['id']}", headers=w.co_manager.headers)
    assert served.status_code == 200 and served.json()["description"] is None
    assert await _audits(db, "care.case_revealed") == 1
    co_ledger = await client.get(f"{API}/cases", headers=w.co_manager.headers)
    assert [c["id"] for c in co_ledger.json()["items"]] == [case["id"]]

    # Another county: nothing.
    problem(
        await client.get(f"{API}/cases/{case['id']}", headers=w.stranger.headers),
        404,
        "care.case_not_found",
    )
    problem(
        await client.get(
            f"{API}/cases", params={"org_id": w.county_id}, headers=w.stranger.headers
        ),
        404,
        "care.org_not_found",
    )
    assert (await client.get(f"{API}/cases", headers=w.stranger.headers)).json()["items"] == []
    problem(await client.get(f"{API}/cases"), 401, "auth.missing_token")
    problem(await client.get(f"{API}/me/cases"), 401, "auth.missing_token")
    problem(await client.get(f"{API}/cases", headers=w.member.headers), 403, "auth.admin_required")
    mine = await client.get(f"{API}/me/cases", headers=w.member.headers)
    assert [c["id"] for c in mine.json()["items"]] == [case["id"]]


async def test_help_is_logged_the_member_told_and_the_case_closed_by_the_home_side(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    clock.set_day(date(2026, 12, 10))
    w = await _world(db, settings)
    assert w.member.member is not None
    case = (
        await client.post(
            f"{API}/cases",
            json={"member_id": w.member.member.id, "kind": "financial", "description": "家中失火"},
            headers=w.home_admin.headers,
        )
    ).json()
    assert case["requested_by"] == "admin" and case["description"] == "家中失火"
    help_url = f"{API}/cases/{case['id']}/help"
    given = [
        ({"given_on": "2026-12-02", "form": "visit", "note": "入户走访，送米面油"}, w.home_admin),
        ({"given_on": "2026-12-05", "form": "funds", "amount_yuan": 500}, w.home_admin),
        (
            {"given_on": "2026-12-08", "form": "crowdfunding", "amount_yuan": "1200.50"},
            w.branch_admin,
        ),
        ({"given_on": "2026-12-09", "form": "call", "note": "流入地电话慰问"}, w.co_manager),
    ]
    for body, actor in given:
        response = await client.post(help_url, json=body, headers=actor.headers)
        assert response.status_code == 201, response.text
    assert response.json()["help_count"] == 4 and response.json()["funds_yuan"] == 1700.5

    refused = {
        "amount_yuan": {"given_on": "2026-12-09", "form": "funds"},
        "amount_yuan ": {"given_on": "2026-12-09", "form": "visit", "amount_yuan": 10},
    }
    for body in refused.values():
        bad = await client.post(help_url, json=body, headers=w.home_admin.headers)
        assert problem(bad, 422, "validation.failed")["errors"][0]["field"] == "amount_yuan"
    future = await client.post(
        help_url, json={"given_on": "2026-12-11", "form": "visit"}, headers=w.home_admin.headers
    )
    problem(future, 422, "care.help_in_future")
    problem(
        await client.post(
            help_url, json={"given_on": "2026-12-09", "form": "visit"}, headers=w.member.headers
        ),
        403,
        "care.admin_required",
    )
    problem(
        await client.post(
            help_url, json={"given_on": "2026-12-09", "form": "visit"}, headers=w.stranger.headers
        ),
        404,
        "care.case_not_found",
    )
    rows = (
        (await db.execute(select(CareHelp).where(CareHelp.case_id == case["id"]))).scalars().all()
    )
    assert len(rows) == 4 and all(
        b"\xe8\xb5\xb0\xe8\xae\xbf" not in (r.note_enc or b"") for r in rows
    )

    told = await _inbox(db, w.member, "care_help_given")
    assert len(told) == 4 and all("送米面油" not in n.body for n in told)

    detail = (await client.get(f"{API}/cases/{case['id']}", headers=w.home_admin.headers)).json()
    assert [(h["form"], h["amount_yuan"], h["note"]) for h in detail["help"]] == [
        ("visit", None, "入户走访，送米面油"),
        ("funds", 500.0, None),
        ("crowdfunding", 1200.5, None),
        ("call", None, "流入地电话慰问"),
    ]
    served = (await client.get(f"{API}/cases/{case['id']}", headers=w.co_manager.headers)).json()
    assert [h["note"] for h in served["help"]] == [None] * 4 and served["description"] is None

    stats = (await client.get(f"{API}/cases/stats", headers=w.home_admin.headers)).json()
    assert stats["open"] == 1 and stats["closed"] == 0
    assert stats["by_kind"] == [{"kind": "financial", "open": 1, "closed": 0}]
    assert {h["form"]: (h["count"], h["amount_yuan"]) for h in stats["help"]} == {
        "visit": (1, 0.0),
        "funds": (1, 500.0),
        "crowdfunding": (1, 1200.5),
        "call": (1, 0.0),
    }
    assert stats["help_count"] == 4 and stats["funds_yuan"] == 1700.5
    other = (await client.get(f"{API}/cases/stats", headers=w.stranger.headers)).json()
    assert other["open"] == 0 and other["help"] == []

    close_url = f"{API}/cases/{case['id']}/close"
    version = detail["version"]
    problem(
        await client.post(close_url, json={"version": version}, headers=w.co_manager.headers),
        403,
        "care.home_only",
    )
    problem(
        await client.post(close_url, json={"version": version - 1}, headers=w.home_admin.headers),
        409,
        "conflict.stale_version",
    )
    closed = await client.post(
        close_url, json={"version": version, "note": "已渡过难关"}, headers=w.home_admin.headers
    )
    assert closed.json()["status"] == "closed" and closed.json()["close_note"] == "已渡过难关"
    late = await client.post(
        help_url, json={"given_on": "2026-12-10", "form": "visit"}, headers=w.home_admin.headers
    )
    assert problem(late, 409, "care.case_invalid_transition")["state"] == "closed"
    again = await client.post(
        close_url, json={"version": closed.json()["version"]}, headers=w.home_admin.headers
    )
    problem(again, 409, "care.case_invalid_transition")
    reopened = await client.post(
        f"{API}/cases/{case['id']}/reopen",
        json={"version": closed.json()["version"]},
        headers=w.home_admin.headers,
    )
    assert reopened.json()["status"] == "open" and reopened.json()["closed_at"] is None
    row = await db.get(CareCase, case["id"])
    assert row is not None
    await db.refresh(row)
    assert row.status == "open"


async def test_admins_record_cases_only_for_members_they_may_see(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await _world(db, settings)
    assert w.member.member is not None and w.stranger.member is not None
    body = {"member_id": w.member.member.id, "kind": "accident", "description": "工地摔伤"}
    problem(
        await client.post(f"{API}/cases", json=body, headers=w.stranger.headers),
        404,
        "care.member_not_found",
    )
    other = {"member_id": w.stranger.member.id, "kind": "other", "description": "x"}
    problem(
        await client.post(f"{API}/cases", json=other, headers=w.member.headers),
        403,
        "care.admin_required",
    )
    resident = await f.resident_actor(db, settings)
    problem(
        await client.post(
            f"{API}/cases", json={"kind": "other", "description": "x"}, headers=resident.headers
        ),
        403,
        "auth.member_required",
    )
    assert (await db.execute(select(func.count()).select_from(CareCase))).scalar_one() == 0
    # The co-manager may record one (a visit where the member now lives found it).
    served = await client.post(f"{API}/cases", json=body, headers=w.co_manager.headers)
    assert served.status_code == 201 and served.json()["description"] is None


async def test_the_export_is_the_home_ledger_audited_and_formula_safe(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    clock.set_day(date(2026, 12, 1))
    w = await _world(db, settings)
    case = (
        await client.post(
            f"{API}/cases",
            json={"kind": "illness", "description": SECRET},
            headers=w.member.headers,
        )
    ).json()
    await client.post(
        f"{API}/cases/{case['id']}/help",
        json={"given_on": "2026-12-01", "form": "funds", "amount_yuan": 800},
        headers=w.home_admin.headers,
    )
    plain = await client.get(f"{API}/cases/export", headers=w.home_admin.headers)
    assert plain.status_code == 200 and plain.headers["x-total-count"] == "1"
    sheet = openpyxl.load_workbook(io.BytesIO(plain.content)).active
    assert sheet is not None
    values = [c.value for c in sheet[3]]
    assert values[1] == "王建国" and values[3] == "患病" and values[8] == 800
    assert values[10] is None  # no description without full=true

    problem(
        await client.get(
            f"{API}/cases/export", params={"full": "true"}, headers=w.home_admin.headers
        ),
        422,
        "care.export_reason_required",
    )
    full = await client.get(
        f"{API}/cases/export",
        params={"full": "true", "export_reason": "年终慰问名单"},
        headers=w.home_admin.headers,
    )
    sheet = openpyxl.load_workbook(io.BytesIO(full.content)).active
    assert sheet is not None
    assert sheet.cell(3, 11).value == "'" + SECRET  # a leading "=" never becomes a formula
    assert await _audits(db, "care.export") == 1 and await _audits(db, "care.export_full") == 1

    # A co-managing organisation does not own the ledger: its export is empty.
    served = await client.get(f"{API}/cases/export", headers=w.co_manager.headers)
    assert served.headers["x-total-count"] == "0"
    problem(await client.get(f"{API}/cases/export"), 401, "auth.missing_token")
