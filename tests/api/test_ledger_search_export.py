"""The secretary's ledger (issue 15, "Secretaries"): ``q`` finds certificate numbers
as well as names, and the xlsx export has a frozen header, an autofilter and a title
that says what was filtered."""

from __future__ import annotations

import io
from typing import Any

import httpx
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests import factories
from tests.api.test_mobility import Clock, World, approve, clock, ledger_ids, register, world

__all__ = ["clock", "world"]  # fixtures used by name


async def test_ledger_q_matches_names_and_certificate_numbers(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession, settings: Settings
) -> None:
    first = await approve(client, world.branch_admin, await register(client, world.member))
    other = await factories.member_actor(db, settings, world.branch, "刘芳")
    second = await approve(client, world.branch_admin, await register(client, other))
    pending = await register(
        client, await factories.member_actor(db, settings, world.branch, "周　洁")
    )
    assert (first["certificate_no"], second["certificate_no"]) == (
        "511621-2026-00001",
        "511621-2026-00002",
    )
    admin = world.county_admin
    assert await ledger_ids(client, admin, "q=511621-2026-00002") == [second["id"]]
    assert await ledger_ids(client, admin, "q=2026-0000") == [second["id"], first["id"]]
    assert await ledger_ids(client, admin, "q=00001") == [first["id"]]
    assert await ledger_ids(client, admin, "q=王建国") == [first["id"]]
    # Names are searched in the roster's normal form: a padded spelling finds 周洁.
    assert await ledger_ids(client, admin, "q=周 洁") == [pending["id"]]
    assert await ledger_ids(client, admin, "q=周洁") == [pending["id"]]
    # Another county's admin finds nothing by number either.
    assert await ledger_ids(client, world.other_admin, "q=511621-2026-00001") == []


async def _sheet(client: httpx.AsyncClient, admin: Any, query: str = "") -> Any:
    response = await client.get(f"/api/v1/outflows/export?{query}", headers=admin.headers)
    assert response.status_code == 200, response.text
    return load_workbook(io.BytesIO(response.content)).active


async def test_export_has_frozen_header_autofilter_and_a_title_naming_the_filters(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession, settings: Settings
) -> None:
    await approve(client, world.branch_admin, await register(client, world.member))
    await register(client, await factories.member_actor(db, settings, world.branch, "刘芳"))

    everything = await _sheet(client, world.county_admin)
    assert everything.freeze_panes == "C3"  # title + header rows, 序号 and 姓名
    assert everything.auto_filter.ref == "A2:R4"  # the header row over both data rows
    assert everything["A1"].value == "流动党员外出登记台账（管辖范围内全部；截至 2026-03-02）"

    query = (
        f"org_id={world.branch.id}&status=active&destination_region_code=440300"
        "&reason=work&departed_from=2026-01-01&q=王"
    )
    filtered = await _sheet(client, world.county_admin, query)
    assert filtered["A1"].value == (
        "流动党员外出登记台账（花园村党支部及下级组织；状态：外出中；流入地：广东省深圳市；"
        "外出原因：务工；外出日期：2026-01-01至；关键字：王；截至 2026-03-02）"
    )
    assert filtered.auto_filter.ref == "A2:R3"
    assert filtered["B3"].value == "王建国"

    flagged = await _sheet(client, world.county_admin, "flag=lost_contact&consent=false")
    assert flagged["A1"].value == (
        "流动党员外出登记台账（管辖范围内全部；标记：失联；未授权位置信息；截至 2026-03-02）"
    )
    assert flagged.auto_filter.ref == "A2:R2"  # header only: no rows match
