"""Inflow registration (流入登记 / 亮身份) through the API: declare, verify (with and
without a roster match), reject, withdraw, the ledger, its statistics and export."""

from __future__ import annotations

import io
from typing import Any

import httpx
import openpyxl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.identity.models import Account
from app.inflows.models import Inflow
from app.mobility.models import Outflow
from app.notify.models import Notification
from app.organization.models import DualManagementGrant
from tests import factories as f
from tests.conftest import problem
from tests.support.inflows import (
    declaration,
    inflow_day,  # noqa: F401 - autouse: 2026-12-01
    world,
)
from tests.support.mobility import outflow_body

API = "/api/v1/inflows"


async def _inbox(db: AsyncSession, account_id: int) -> list[Notification]:
    rows = await db.execute(
        select(Notification).where(Notification.account_id == account_id).order_by(Notification.id)
    )
    return list(rows.scalars())


async def _declare(client: httpx.AsyncClient, who: f.Actor, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(API, json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_stranger_declares_is_verified_and_appears_in_the_ledger(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    stranger = await f.resident_actor(db, settings)
    body = declaration(w.district)
    created = await _declare(client, stranger, body)
    assert created["status"] == "pending"
    assert created["source"] == "declaration"
    assert created["org"] == {"id": w.district.id, "name": "天河路商圈党委"}
    assert created["id_number"] == body["id_number"][:4] + "*" * 10 + body["id_number"][-4:]
    assert created["phone"] == body["phone"][:3] + "****" + body["phone"][-4:]
    assert created["home_region_name"] is not None and "衡阳" in created["home_region_name"]
    # Stored encrypted: the row holds no plaintext.
    row = await db.get(Inflow, created["id"])
    assert row is not None and body["id_number"].encode() not in row.id_number_enc
    # The district's admin is told, with the ledger page to open.
    told = await _inbox(db, w.district_admin.account.id)
    assert [n.template for n in told] == ["inflow_declared"]
    assert told[0].page == f"pages/admin/inflows?id={created['id']}"

    verified = await client.post(
        f"{API}/{created['id']}/verify",
        json={"version": created["version"], "note": "已与原党支部电话核实"},
        headers=w.district_admin.headers,
    )
    assert verified.status_code == 200, verified.text
    out = verified.json()
    assert out["status"] == "verified"
    assert out["matched_member_id"] is None and out["outflow_id"] is None
    assert out["flags"] == ["transfer_suggested"]
    assert "转接" in out["prompt"]
    assert out["version"] == created["version"] + 1

    ledger = await client.get(
        API, params={"org_id": w.district.id}, headers=w.district_admin.headers
    )
    assert [i["id"] for i in ledger.json()["items"]] == [created["id"]]
    flagged = await client.get(
        API, params={"flag": "transfer_suggested", "q": "赵"}, headers=w.district_admin.headers
    )
    assert [i["id"] for i in flagged.json()["items"]] == [created["id"]]
    stats = (
        await client.get(
            f"{API}/stats", params={"org_id": w.district.id}, headers=w.district_admin.headers
        )
    ).json()
    assert stats["total"] == 1
    assert stats["by_status"] == {"verified": 1}
    assert stats["by_source"] == {"declaration": 1}
    assert stats["by_flag"] == {"transfer_suggested": 1, "verify_overdue": 0}
    assert stats["matched"] == 0
    assert stats["by_home_province"] == [{"code": "430000", "name": "湖南省", "count": 1}]

    mine = await client.get("/api/v1/me/inflows", headers=stranger.headers)
    assert [(i["id"], i["status"]) for i in mine.json()["items"]] == [(created["id"], "verified")]
    decided = await _inbox(db, stranger.account.id)
    assert [(n.template, n.title) for n in decided] == [("inflow_decided", "流入登记已核实")]
    actions = (
        (
            await db.execute(
                select(AuditEntry.action)
                .where(AuditEntry.subject_type == "inflow")
                .order_by(AuditEntry.id)
            )
        )
        .scalars()
        .all()
    )
    assert actions == ["inflow.declared", "inflow.verified"]


async def test_roster_member_verified_becomes_a_co_managed_outflow(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    id_number = f.unique_id_number()
    member = await f.member(db, settings, w.branch, "钱在册", id_number=id_number)
    # He never bound his WeChat account: he declares as a resident.
    declarant = await f.resident_actor(db, settings)
    created = await _declare(
        client, declarant, declaration(w.district, name="钱在册", id_number=id_number)
    )
    out = (
        await client.post(
            f"{API}/{created['id']}/verify",
            json={"version": created["version"]},
            headers=w.district_admin.headers,
        )
    ).json()
    assert out["status"] == "verified"
    assert out["matched_member_id"] == member.id
    assert out["flags"] == [] and out["prompt"] is None
    outflow_id = out["outflow_id"]
    assert outflow_id is not None

    # His account is linked to him now.
    account = (
        await db.execute(
            select(Account)
            .where(Account.id == declarant.account.id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    assert account.member_id == member.id
    me = (await client.get("/api/v1/me", headers=declarant.headers)).json()
    assert me["account"]["member_id"] == member.id
    history = (await client.get("/api/v1/me/outflows", headers=declarant.headers)).json()
    assert [d["action"] for d in history["items"][0]["decisions"]] == ["inflow"]
    # An active outflow, checked in and accepted at the district: dual management.
    outflow = await db.get(Outflow, outflow_id)
    assert outflow is not None
    assert (outflow.member_id, outflow.status, outflow.checkin_status) == (
        member.id,
        "active",
        "accepted",
    )
    assert outflow.checkin_org_id == w.district.id
    assert outflow.home_org_id == w.branch.id
    assert outflow.destination_region_code == "440106"
    grants = (
        (
            await db.execute(
                select(DualManagementGrant.org_id).where(
                    DualManagementGrant.member_id == member.id,
                    DualManagementGrant.ended_at.is_(None),
                )
            )
        )
        .scalars()
        .all()
    )
    assert grants == [w.district.id]

    # The destination sees the co-managed outflow and the member; the home side sees it too.
    dest = await client.get(
        "/api/v1/outflows", params={"org_id": w.district.id}, headers=w.district_admin.headers
    )
    assert [(o["id"], o["checkin"]["status"]) for o in dest.json()["items"]] == [
        (outflow_id, "accepted")
    ]
    seen = await client.get(f"/api/v1/members/{member.id}", headers=w.district_admin.headers)
    assert seen.status_code == 200 and seen.json()["name"] == "钱在册"
    home = await client.get(
        "/api/v1/outflows", params={"org_id": w.county.id}, headers=w.home_admin.headers
    )
    assert [o["id"] for o in home.json()["items"]] == [outflow_id]
    stats = (await client.get(f"{API}/stats", headers=w.district_admin.headers)).json()
    assert stats["matched"] == 1
    # The home subtree's audit log shows who verified him where.
    audit = await client.get(
        "/api/v1/audit", params={"org_id": w.county.id, "limit": 100}, headers=w.home_admin.headers
    )
    assert "inflow.verified" in {e["action"] for e in audit.json()["items"]}


async def test_mobile_member_with_an_active_outflow_is_checked_in_by_verification(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    mobile = await f.member_actor(db, settings, w.branch, "孙外出")
    assert mobile.member is not None
    registered = await client.post(
        "/api/v1/outflows",
        json=outflow_body(destination_region_code="440106", departed_on="2026-11-01"),
        headers=mobile.headers,
    )
    assert registered.status_code == 201, registered.text
    outflow = registered.json()
    roster_number = await _roster_id_number(client, w, mobile.member.id)
    declared = await _declare(
        client, mobile, declaration(w.other, name="孙外出", id_number=roster_number)
    )
    # Before his home branch decides on the outflow, nothing may move.
    early = await client.post(
        f"{API}/{declared['id']}/verify",
        json={"version": declared["version"]},
        headers=w.other_admin.headers,
    )
    problem(early, 409, "inflow.outflow_pending")
    row = await db.get(Inflow, declared["id"])
    assert row is not None and (row.status, row.matched_member_id) == ("pending", None)

    approved = await client.post(
        f"/api/v1/outflows/{outflow['id']}/approve",
        json={"version": outflow["version"]},
        headers=w.home_admin.headers,
    )
    assert approved.json()["status"] == "active"
    out = (
        await client.post(
            f"{API}/{declared['id']}/verify",
            json={"version": declared["version"]},
            headers=w.other_admin.headers,
        )
    ).json()
    assert out["matched_member_id"] == mobile.member.id
    assert out["outflow_id"] == outflow["id"]  # his own outflow, not a second one
    after = (await client.get("/api/v1/me/outflow", headers=mobile.headers)).json()
    assert after["checkin"]["status"] == "accepted"
    assert after["checkin"]["org"]["id"] == w.other.id
    assert after["version"] == approved.json()["version"] + 1


async def _roster_id_number(client: httpx.AsyncClient, w: Any, member_id: int) -> str:
    revealed = await client.post(
        f"/api/v1/members/{member_id}/reveal",
        json={"field": "id_number", "reason": "测试核对"},
        headers=w.home_admin.headers,
    )
    value: str = revealed.json()["value"]
    return value


async def test_member_registered_there_is_linked_without_an_outflow(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    id_number = f.unique_id_number()
    member = await f.member(db, settings, w.district, "李本地", id_number=id_number)
    declarant = await f.resident_actor(db, settings)
    created = await _declare(client, declarant, declaration(w.district, id_number=id_number))
    out = (
        await client.post(
            f"{API}/{created['id']}/verify",
            json={"version": 1},
            headers=w.district_admin.headers,
        )
    ).json()
    assert (out["matched_member_id"], out["outflow_id"]) == (member.id, None)
    assert (await db.execute(select(Outflow.id))).first() is None


async def test_reject_withdraw_and_every_illegal_move(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    stranger = await f.resident_actor(db, settings)
    body = declaration(w.district)
    created = await _declare(client, stranger, body)
    again = await client.post(API, json=body, headers=stranger.headers)
    problem(again, 409, "inflow.already_declared")

    no_reason = await client.post(
        f"{API}/{created['id']}/reject", json={"version": 1}, headers=w.district_admin.headers
    )
    assert no_reason.status_code == 422
    stale = await client.post(
        f"{API}/{created['id']}/reject",
        json={"version": 9, "note": "无法核实"},
        headers=w.district_admin.headers,
    )
    problem(stale, 409, "conflict.stale_version")
    rejected = await client.post(
        f"{API}/{created['id']}/reject",
        json={"version": 1, "note": "原党组织查无此人"},
        headers=w.district_admin.headers,
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["decision_note"] == "原党组织查无此人"
    told = await _inbox(db, stranger.account.id)
    assert [n.title for n in told] == ["流入登记未通过"]
    assert "原党组织查无此人" in told[0].body

    for action, payload, who in (
        ("verify", {"version": 2}, w.district_admin),
        ("reject", {"version": 2, "note": "再驳"}, w.district_admin),
        ("withdraw", {"version": 2}, stranger),
    ):
        moved = await client.post(
            f"{API}/{created['id']}/{action}", json=payload, headers=who.headers
        )
        error = problem(moved, 409, "inflow.invalid_transition")
        assert (error["state"], error["action"]) == ("rejected", action)
    row = await db.get(Inflow, created["id"])
    assert row is not None and (row.status, row.version) == ("rejected", 2)

    # After a rejection he may declare again; then withdraw it himself.
    second = await _declare(client, stranger, body)
    assert second["id"] != created["id"]
    someone = await f.resident_actor(db, settings)
    by_other = await client.post(
        f"{API}/{second['id']}/withdraw", json={"version": 1}, headers=someone.headers
    )
    problem(by_other, 404, "inflow.not_found")
    withdrawn = await client.post(
        f"{API}/{second['id']}/withdraw", json={"version": 1}, headers=stranger.headers
    )
    assert withdrawn.json()["status"] == "withdrawn"
    late = await client.post(
        f"{API}/{second['id']}/verify", json={"version": 2}, headers=w.district_admin.headers
    )
    problem(late, 409, "inflow.invalid_transition")


async def test_bad_declarations_change_nothing(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    stranger = await f.resident_actor(db, settings)
    unlisted = await f.org(db, "未开放登记的支部", parent=w.county)
    problem(
        await client.post(API, json=declaration(unlisted), headers=stranger.headers),
        404,
        "inflow.org_not_found",
    )
    problem(
        await client.post(
            API, json=declaration(w.district, arrived_on="2026-12-02"), headers=stranger.headers
        ),
        422,
        "inflow.arrived_in_future",
    )
    for bad in (
        {"id_number": "110101199003071234"},  # wrong check digit
        {"phone": "12345"},
        {"home_region_code": "999999"},
        {"org_id": True},
        {"name": ""},
    ):
        response = await client.post(
            API, json=declaration(w.district, **bad), headers=stranger.headers
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await db.execute(select(Inflow.id))).first() is None


async def test_anonymous_401_and_other_subtree_404(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    stranger = await f.resident_actor(db, settings)
    created = await _declare(client, stranger, declaration(w.district))
    for method, path in (
        ("GET", API),
        ("GET", f"{API}/stats"),
        ("GET", f"{API}/export"),
        ("GET", "/api/v1/me/inflows"),
        ("GET", f"{API}/{created['id']}"),
        ("POST", API),
    ):
        problem(await client.request(method, path), 401, "auth.missing_token")

    other = w.other_admin.headers
    problem(
        await client.get(API, params={"org_id": w.district.id}, headers=other),
        404,
        "inflow.org_not_found",
    )
    assert (await client.get(API, headers=other)).json()["items"] == []
    problem(await client.get(f"{API}/{created['id']}", headers=other), 404, "inflow.not_found")
    problem(
        await client.post(f"{API}/{created['id']}/verify", json={"version": 1}, headers=other),
        404,
        "inflow.not_found",
    )
    problem(
        await client.post(
            f"{API}/{created['id']}/reveal",
            json={"field": "phone", "reason": "越权查看"},
            headers=other,
        ),
        404,
        "inflow.not_found",
    )
    assert (await client.get(f"{API}/stats", headers=other)).json()["total"] == 0
    # A plain member is no admin: 403 on the ledger; he sees only his own declarations.
    member = await f.member_actor(db, settings, w.branch)
    problem(await client.get(API, headers=member.headers), 403, "auth.admin_required")
    assert (await client.get("/api/v1/me/inflows", headers=member.headers)).json()["items"] == []
    problem(
        await client.get(f"{API}/{created['id']}", headers=member.headers), 404, "inflow.not_found"
    )
    # The declarant and the district's admin read the row.
    for who in (stranger, w.district_admin):
        assert (await client.get(f"{API}/{created['id']}", headers=who.headers)).json()[
            "id"
        ] == created["id"]


async def test_reveal_and_export_are_audited(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    stranger = await f.resident_actor(db, settings)
    body = declaration(w.district, employer='=HYPERLINK("http://x")')
    created = await _declare(client, stranger, body)
    revealed = await client.post(
        f"{API}/{created['id']}/reveal",
        json={"field": "id_number", "reason": "联系原党组织核实"},
        headers=w.district_admin.headers,
    )
    assert revealed.json() == {"field": "id_number", "value": body["id_number"]}

    exported = await client.get(
        f"{API}/export", params={"org_id": w.district.id}, headers=w.district_admin.headers
    )
    assert exported.status_code == 200
    assert exported.headers["x-total-count"] == "1"
    sheet = openpyxl.load_workbook(io.BytesIO(exported.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert len(rows) == 1
    assert rows[0][1] == body["name"]
    assert rows[0][2] == created["id_number"]  # masked
    assert rows[0][6] == "'" + body["employer"]  # formula neutralised
    assert rows[0][11] == "待核实"
    assert "天河路商圈党委" in str(sheet["A1"].value)

    problem(
        await client.get(f"{API}/export", params={"full": True}, headers=w.district_admin.headers),
        422,
        "inflow.export_reason_required",
    )
    full = await client.get(
        f"{API}/export",
        params={"full": True, "export_reason": "报送上级"},
        headers=w.district_admin.headers,
    )
    full_rows = list(
        openpyxl.load_workbook(io.BytesIO(full.content)).active.iter_rows(  # type: ignore[union-attr]
            min_row=3, values_only=True
        )
    )
    assert (full_rows[0][2], full_rows[0][3]) == (body["id_number"], body["phone"])
    entries = (
        await db.execute(
            select(AuditEntry.action, AuditEntry.reason, AuditEntry.detail)
            .where(AuditEntry.actor_account_id == w.district_admin.account.id)
            .order_by(AuditEntry.id)
        )
    ).all()
    assert [(a, r) for a, r, _ in entries] == [
        ("pii.reveal", "联系原党组织核实"),
        ("inflow.export", None),
        ("inflow.export_full", "报送上级"),
    ]
    assert entries[1][2]["rows"] == 1


async def test_declarations_are_rate_limited_per_account(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    spammer = await f.resident_actor(db, settings)
    for _ in range(10):
        await _declare(client, spammer, declaration(w.district))
    refused = await client.post(API, json=declaration(w.district), headers=spammer.headers)
    problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"]
    count = (
        await db.execute(select(Inflow.id).where(Inflow.account_id == spammer.account.id))
    ).all()
    assert len(count) == 10
