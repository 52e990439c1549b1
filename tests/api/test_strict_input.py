"""Loose types: identifiers are strict integers, dates are plausible.

``{"org_id": true}`` filed an order at organisation 1 and ``joined_on: "9999-12-31"``
was accepted. Identifiers in bodies are JSON integers, in paths and queries plain
decimal digits; 入党日期 lies between 1921-07-01 and today, birth dates between 1900 and
today. Every refusal is a 422 problem with a Chinese message and changes nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.members.models import Member
from app.orders.models import ServiceOrder
from app.study.models import CreditLedger
from tests import factories as f
from tests.api.test_order_helpers import count, order_body, world
from tests.api.test_study_lean import _member_with_a_session
from tests.conftest import problem
from tests.support.roster import HEADERS, xlsx_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _field_error(body: dict[str, Any], field: str) -> dict[str, Any]:
    matches = [e for e in body["errors"] if e["field"] == field]
    assert matches, body
    return matches[0]


@pytest.mark.parametrize("loose", [True, 1.0, "1", "true"])
async def test_an_order_at_organisation_true_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, loose: object
) -> None:
    w = await world(db, settings)
    before = await count(db, ServiceOrder)
    answer = await client.post(
        "/api/v1/orders", json=order_body(w.village, org_id=loose), headers=w.submitter.headers
    )
    body = problem(answer, 422, "validation.failed")
    assert _field_error(body, "org_id")["message"] == "应为整数"
    assert await count(db, ServiceOrder) == before


async def test_a_check_in_with_session_true_is_refused_on_both_paths(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    member, _ = await _member_with_a_session(db, settings)
    assert member.member is not None
    body = {"session_id": True, "client_event_id": "loose"}
    for extra in ({}, {"Idempotency-Key": "strict-1"}):
        answer = await client.post(
            "/api/v1/study/checkins", json=body, headers={**member.headers, **extra}
        )
        assert _field_error(problem(answer, 422, "validation.failed"), "session_id")["message"] == (
            "应为整数"
        )
    entries = await db.execute(
        select(func.count()).where(CreditLedger.member_id == member.member.id)
    )
    assert entries.scalar_one() == 0


@pytest.mark.parametrize("raw", ["+1", " 1", "1_0", "1.0", "0x1", "true"])
async def test_identifiers_in_paths_and_queries_are_plain_digits(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, raw: str
) -> None:
    county = await f.org(db, "岳池县委")
    admin = await f.admin_actor(db, settings, county)
    listed = await client.get("/api/v1/members", params={"org_id": raw}, headers=admin.headers)
    assert (
        _field_error(problem(listed, 422, "validation.failed"), "org_id")["message"] == "应为整数"
    )
    read = await client.get(f"/api/v1/orgs/{raw}", headers=admin.headers)
    problem(read, 422, "validation.failed")
    # The plain form of the same identifier works.
    assert (await client.get(f"/api/v1/orgs/{county.id}", headers=admin.headers)).json()[
        "id"
    ] == county.id


def _member(org_id: int, **extra: object) -> dict[str, object]:
    return {
        "name": "王建国",
        "id_number": f.make_id_number(date(1988, 5, 2)),
        "home_org_id": org_id,
        "joined_on": "2012-07-01",
    } | extra


async def _members(db: AsyncSession) -> int:
    return (await db.execute(select(func.count()).select_from(Member))).scalar_one()


@pytest.mark.parametrize(
    ("joined_on", "message"),
    [
        ("9999-12-31", "入党日期不能晚于今天"),
        ((date.today() + timedelta(days=2)).isoformat(), "入党日期不能晚于今天"),
        ("1921-06-30", "入党日期不能早于1921年7月1日"),
        ("0001-01-01", "入党日期不能早于1921年7月1日"),
    ],
)
async def test_implausible_joined_on_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, joined_on: str, message: str
) -> None:
    county = await f.org(db, "岳池县委")
    admin = await f.admin_actor(db, settings, county)
    before = await _members(db)
    answer = await client.post(
        "/api/v1/members", json=_member(county.id, joined_on=joined_on), headers=admin.headers
    )
    error = _field_error(problem(answer, 422, "validation.failed"), "joined_on")
    assert error["message"] == message
    assert error["type"] == "date.implausible"
    assert await _members(db) == before


async def test_plausible_dates_are_kept_and_patches_are_checked_too(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await f.org(db, "岳池县委")
    admin = await f.admin_actor(db, settings, county)
    created = await client.post(
        "/api/v1/members", json=_member(county.id, joined_on="1921-07-01"), headers=admin.headers
    )
    assert created.status_code == 201, created.text
    member = created.json()
    assert member["joined_on"] == "1921-07-01"
    for field, value in (("joined_on", "9999-12-31"), ("birth_date", "1899-12-31")):
        patched = await client.patch(
            f"/api/v1/members/{member['id']}",
            json={"version": member["version"], field: value},
            headers=admin.headers,
        )
        assert _field_error(problem(patched, 422, "validation.failed"), field)["type"] == (
            "date.implausible"
        )
    loose_version = await client.patch(
        f"/api/v1/members/{member['id']}",
        json={"version": True, "joined_on": "2000-07-01"},
        headers=admin.headers,
    )
    problem(loose_version, 422, "validation.failed")
    stored = await db.get(Member, member["id"])
    assert stored is not None
    await db.refresh(stored)
    assert stored.joined_on == date(1921, 7, 1) and stored.version == member["version"]


async def test_import_reports_an_implausible_joined_on(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await f.org(db, "岳池县委")
    admin = await f.admin_actor(db, settings, county)
    rows = [["王建国", "", "", f.unique_id_number(), "", county.name, "9999-12-31", ""]]
    answer = await client.post(
        "/api/v1/members/import",
        files={"file": ("名册.xlsx", xlsx_bytes(rows, HEADERS), XLSX)},
        headers=admin.headers,
    )
    body = problem(answer, 422, "import.invalid_rows")
    assert body["errors"] == [{"row": 2, "field": "入党日期", "message": "入党日期不能晚于今天"}]
    assert await _members(db) == 1  # the admin himself
