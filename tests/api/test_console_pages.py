"""The console's pages over HTTP: the same numbers as the API, decisions in place with
the API's errors, the ledger's filters and export, the roster import's row errors, the
orders board, the projected QR code, and 404 outside the admin's subtree."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.mobility.models import Outflow
from tests import factories as f
from tests.api.test_activities import make_activity
from tests.clock import Clock
from tests.support.console import console_login
from tests.support.mobility import outflow_body
from tests.support.roster import csv_bytes


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
    return clock


async def _world(db: AsyncSession, settings: Settings) -> dict[str, Any]:
    county = await f.org(db, "岳池县委", region_code="511621")
    branch = await f.org(db, "花园村党支部", parent=county)
    other = await f.org(db, "邻村党支部", parent=county)
    return {
        "county": county,
        "branch": branch,
        "other": other,
        "member": await f.member_actor(db, settings, branch, "王建国"),
        "stranger": await f.member_actor(db, settings, other, "刘外人"),
        "secretary": await f.admin_actor(db, settings, branch, "branch_admin", "张书记"),
        "other_secretary": await f.admin_actor(db, settings, other, "branch_admin", "赵书记"),
        "county_admin": await f.admin_actor(db, settings, county, name="李部长"),
    }


async def _register(client: httpx.AsyncClient, actor: f.Actor, **over: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/outflows", json=outflow_body(**over), headers=actor.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _order(client: httpx.AsyncClient, w: dict[str, Any], title: str) -> httpx.Response:
    """A member's service order at his branch, through the API."""
    order = await client.post(
        "/api/v1/orders",
        json={
            "category": "life_support",
            "title": title,
            "description": f"{title}，请帮忙处理",
            "org_id": w["branch"].id,
            "contact_phone": "13912345678",
        },
        headers=w["member"].headers,
    )
    assert order.status_code == 201, order.text
    return order


def _number(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found is not None, element_id
    return found.group(1)


async def test_dashboard_shows_the_api_numbers_and_approvals_decide_in_place(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await _world(db, settings)
    pending = await _register(client, w["member"])
    csrf = await console_login(client, w["county_admin"].headers)

    stats = (await client.get("/api/v1/outflows/stats", headers=w["county_admin"].headers)).json()
    page = (await client.get("/console/")).text
    assert _number(page, "n-pending") == str(stats["by_status"]["pending"]) == "1"
    assert _number(page, "n-active") == "0"
    assert "chart-data" in page and "echarts-5.6.0.min.js" in page

    approvals = (await client.get("/console/approvals")).text
    assert f'id="outflow-{pending["id"]}"' in approvals and "王建国" in approvals

    # Without the CSRF header the decision is refused and nothing changes.
    url = f"/console/outflows/{pending['id']}/decide/approve"
    refused = await client.post(url, data={"version": "1"}, headers={"HX-Request": "true"})
    assert refused.status_code == 403 and "console.csrf_failed" in refused.text
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    approved = await client.post(url, data={"version": "1"}, headers=hx)
    assert approved.status_code == 200, approved.text
    outflow = (await db.execute(select(Outflow).where(Outflow.id == pending["id"]))).scalar_one()
    await db.refresh(outflow)
    assert outflow.status == "active" and outflow.certificate_no in approved.text

    # The same errors as the API: a stale version, then an illegal move.
    stale = await client.post(url, data={"version": "1"}, headers=hx)
    assert stale.status_code == 409 and "conflict.stale_version" in stale.text
    again = await client.post(url, data={"version": str(outflow.version)}, headers=hx)
    assert again.status_code == 409 and "outflow.invalid_transition" in again.text
    reject = f"/console/outflows/{pending['id']}/decide/reject"
    blank = await client.post(reject, data={"version": str(outflow.version)}, headers=hx)
    assert blank.status_code == 422 and "validation.failed" in blank.text

    page = (await client.get("/console/")).text
    assert _number(page, "n-active") == "1" and _number(page, "n-pending") == "0"


async def test_ledger_filters_pages_and_exports_like_the_api(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await _world(db, settings)
    await _register(client, w["member"])
    await _register(client, w["stranger"], destination_region_code="110105")
    await console_login(client, w["county_admin"].headers)

    both = (await client.get("/console/outflows")).text
    assert "王建国" in both and "刘外人" in both
    only = (await client.get("/console/outflows", params={"q": "王建", "status": ""})).text
    assert "王建国" in only and "刘外人" not in only
    bad = await client.get("/console/outflows", params={"status": "nonsense"})
    assert bad.status_code == 422 and "validation.failed" in bad.text

    export = await client.get("/console/outflows/export", params={"q": "刘外"})
    assert export.status_code == 200, export.text
    assert export.headers["x-total-count"] == "1"
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    cells = {str(c.value) for row in sheet.iter_rows() for c in row if c.value}
    assert "刘外人" in cells and "王建国" not in cells
    actions = (await db.execute(select(AuditEntry.action))).scalars().all()
    assert "outflow.export" in actions


async def test_a_secretary_gets_the_404_page_outside_his_subtree(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    w = await _world(db, settings)
    theirs = await _register(client, w["stranger"])
    await console_login(client, w["secretary"].headers)
    assert w["member"].member is not None and w["stranger"].member is not None

    own = await client.get(f"/console/members/{w['member'].member.id}")
    assert own.status_code == 200 and "王建国" in own.text
    for path in (
        f"/console/members/{w['stranger'].member.id}",
        f"/console/outflows/{theirs['id']}",
        "/console/no-such-page",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "404 · 未找到" in response.text and "刘外人" not in response.text
    listed = (await client.get("/console/outflows")).text
    assert "刘外人" not in listed
    members = (await client.get("/console/members")).text
    assert "王建国" in members and "刘外人" not in members


async def test_roster_import_lists_bad_rows_and_imports_nothing(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await _world(db, settings)
    csrf = await console_login(client, w["secretary"].headers)
    content = csv_bytes(
        [
            ["新党员甲", f.unique_id_number(), "花园村党支部"],
            ["坏行", "123", "花园村党支部"],
            ["", f.unique_id_number(), "花园村党支部"],
        ],
        headers=["姓名", "身份证号", "所在支部"],
    )
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    files = {"file": ("roster.csv", content, "text/csv")}
    refused = await client.post("/console/members/import", files=files, headers=hx)
    assert refused.status_code == 422 and "import.invalid_rows" in refused.text
    rows = re.findall(r'<td class="row">(\d+)</td>', refused.text)
    assert sorted(set(rows)) == ["3", "4"]
    assert "新党员甲" not in (await client.get("/console/members")).text

    partial = await client.post(
        "/console/members/import", files=files, data={"partial": "true"}, headers=hx
    )
    assert partial.status_code == 200, partial.text
    assert _number(partial.text, "imported-created") == "1"
    assert "新党员甲" in (await client.get("/console/members")).text


async def test_orders_board_and_the_projected_qr_code(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await _world(db, settings)
    order = await _order(client, w, "路灯坏了")
    activity = await make_activity(db, w["branch"])
    csrf = await console_login(client, w["secretary"].headers)

    board = (await client.get("/console/orders")).text
    assert 'id="column-submitted"' in board and "路灯坏了" in board
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    url = f"/console/orders/{order.json()['id']}/transitions"
    accepted = await client.post(url, data={"action": "accept", "version": "1"}, headers=hx)
    assert accepted.status_code == 200, accepted.text
    assert 'data-status="accepted"' in accepted.text
    stale = await client.post(url, data={"action": "accept", "version": "1"}, headers=hx)
    assert stale.status_code == 409 and "conflict.stale_version" in stale.text

    qr_page = await client.get(f"/console/activities/{activity.id}/qr")
    assert qr_page.status_code == 200
    token = re.search(r'data-token="([^"]+)"', qr_page.text)
    assert token is not None and "<svg" in qr_page.text
    attended = await client.post(
        f"/api/v1/activities/{activity.id}/attendance",
        json={"qr_token": token.group(1)},
        headers=w["member"].headers,
    )
    assert attended.status_code == 201, attended.text
    roll = (await client.get(f"/console/activities/{activity.id}")).text
    assert _number(roll, "n-attended") == "1"

    # The activity list filters like the API's (kind, started or not).
    title = activity.title
    assert title in (await client.get("/console/activities", params={"when": "past"})).text
    assert title not in (await client.get("/console/activities", params={"when": "upcoming"})).text
    assert title not in (await client.get("/console/activities", params={"kind": "volunteer"})).text
    bad = await client.get("/console/activities", params={"kind": "party"})
    assert bad.status_code == 422 and "validation.failed" in bad.text


async def test_census_and_audit_pages(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await _world(db, settings)
    await console_login(client, w["county_admin"].headers)
    census = await client.get("/console/census")
    assert census.status_code == 200 and "摸排轮次进度" in census.text
    audit = await client.get("/console/audit")
    assert audit.status_code == 200 and "auth.console_login" in audit.text
    filtered = await client.get("/console/audit", params={"action": "outflow.approve"})
    assert "auth.console_login" not in filtered.text


async def test_an_order_is_handed_over_from_the_board(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    from app.orders.models import ServiceOrder

    w = await _world(db, settings)
    order = await _order(client, w, "水管漏水")
    csrf = await console_login(client, w["county_admin"].headers)
    board = (await client.get("/console/orders")).text
    assert f'<option value="{w["other"].id}">邻村党支部</option>' in board

    url = f"/console/orders/{order.json()['id']}/transitions"
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    form = {"action": "transfer", "version": "1", "to_org_id": str(w["other"].id)}
    no_reason = await client.post(url, data=form, headers=hx)
    assert no_reason.status_code == 422, no_reason.text
    moved = await client.post(url, data={**form, "note": "属邻村辖区"}, headers=hx)
    assert moved.status_code == 200, moved.text
    row = (
        await db.execute(select(ServiceOrder).where(ServiceOrder.id == order.json()["id"]))
    ).scalar_one()
    await db.refresh(row)
    assert (row.org_id, row.status) == (w["other"].id, "submitted")


async def test_inflow_declarations_are_verified_or_rejected_in_place(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    from app.inflows.models import Inflow
    from tests.support.inflows import declaration
    from tests.support.inflows import world as inflow_world

    w = await inflow_world(db, settings)
    resident = await f.resident_actor(db, settings)
    ids = []
    for name in ("赵流入", "钱流入"):
        declared = await client.post(
            "/api/v1/inflows", json=declaration(w.district, name=name), headers=resident.headers
        )
        assert declared.status_code == 201, declared.text
        ids.append(declared.json()["id"])
    csrf = await console_login(client, w.district_admin.headers)
    page = (await client.get("/console/approvals")).text
    assert f'id="inflow-{ids[0]}"' in page and "钱流入" in page
    dashboard = (await client.get("/console/")).text
    assert _number(dashboard, "n-inflows") == "2"

    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    verified = await client.post(
        f"/console/inflows/{ids[0]}/decide/verify", data={"version": "1"}, headers=hx
    )
    assert verified.status_code == 200 and "已核实" in verified.text, verified.text
    blank = await client.post(
        f"/console/inflows/{ids[1]}/decide/reject", data={"version": "1"}, headers=hx
    )
    assert blank.status_code == 422 and "validation.failed" in blank.text
    rejected = await client.post(
        f"/console/inflows/{ids[1]}/decide/reject",
        data={"version": "1", "note": "查无此人"},
        headers=hx,
    )
    assert rejected.status_code == 200, rejected.text
    stale = await client.post(
        f"/console/inflows/{ids[1]}/decide/verify", data={"version": "1"}, headers=hx
    )
    assert stale.status_code == 409 and "conflict.stale_version" in stale.text
    rows = await db.execute(select(Inflow.id, Inflow.status).where(Inflow.id.in_(ids)))
    assert dict(rows.tuples().all()) == {ids[0]: "verified", ids[1]: "rejected"}

    # Another county's admin: the declarations are not his to decide.
    await console_login(client, w.other_admin.headers)
    assert "钱流入" not in (await client.get("/console/approvals")).text


async def test_relation_transfers_are_approved_and_accepted_in_place(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    from app.transfers.models import RelationTransfer

    w = await _world(db, settings)
    receiving = await f.org(db, "深圳南山商圈党委", region_code="440305")
    receiver = await f.admin_actor(db, settings, receiving, name="南山书记")
    requested = await client.post(
        "/api/v1/transfers",
        json={"to_org_id": receiving.id, "reason": "在深圳定居"},
        headers=w["member"].headers,
    )
    assert requested.status_code == 201, requested.text
    transfer_id = requested.json()["id"]

    csrf = await console_login(client, w["secretary"].headers)
    page = (await client.get("/console/approvals")).text
    assert f'id="transfer-{transfer_id}"' in page and "同意转出" in page
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    url = f"/console/transfers/{transfer_id}/decide"
    no_letter = await client.post(f"{url}/approve", data={"version": "1"}, headers=hx)
    assert no_letter.status_code == 422 and "validation.failed" in no_letter.text
    approved = await client.post(
        f"{url}/approve", data={"version": "1", "letter_no": "岳组转〔2026〕12号"}, headers=hx
    )
    assert approved.status_code == 200 and "岳组转〔2026〕12号" in approved.text, approved.text
    # The home side cannot accept for the receiving side: the API's refusal, in place.
    wrong_side = await client.post(f"{url}/accept", data={"version": "2"}, headers=hx)
    assert wrong_side.status_code == 403, wrong_side.text
    assert "transfer.receiving_admin_required" in wrong_side.text

    csrf = await console_login(client, receiver.headers)
    incoming = (await client.get("/console/approvals")).text
    assert f'id="transfer-{transfer_id}"' in incoming and "王建国" in incoming
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    accepted = await client.post(f"{url}/accept", data={"version": "2"}, headers=hx)
    assert accepted.status_code == 200, accepted.text
    row = (
        await db.execute(select(RelationTransfer).where(RelationTransfer.id == transfer_id))
    ).scalar_one()
    await db.refresh(row)
    assert row.status == "completed"
    assert w["member"].member is not None
    await db.refresh(w["member"].member)
    assert w["member"].member.home_org_id == receiving.id
