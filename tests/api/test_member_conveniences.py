"""Small things a member's mini-program needs (issue 15, "Members"): his name on ``/me``
after binding by ID number, and the subscribe-message templates to ask for."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.notify.templates import TEMPLATE_NAMES, template_ids
from tests import factories


async def test_me_shows_the_roster_name_after_binding_by_id_number(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await factories.org(db, "绑定显示县委")
    id_number = factories.unique_id_number()
    m = await factories.member(db, settings, county, "孙丽娟", id_number=id_number)
    resident = await factories.resident_actor(db, settings)
    before = (await client.get("/api/v1/me", headers=resident.headers)).json()
    assert before["display_name"] is None
    bound = await client.post(
        "/api/v1/me/bind", json={"name": "孙丽娟", "id_number": id_number}, headers=resident.headers
    )
    assert bound.status_code == 200, bound.text
    token = bound.json()["access_token"]
    me = (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["member"]["id"] == m.id
    assert me["display_name"] == "孙丽娟"


async def test_notify_templates_list_every_template_with_its_wechat_id(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (await client.get("/api/v1/notify/templates")).status_code == 401
    monkeypatch.setenv("APP_WECHAT_TEMPLATE_ORDER_STATUS", "Xy7-real-order-template")
    template_ids.cache_clear()
    try:
        resident = await factories.resident_actor(db, settings)
        response = await client.get("/api/v1/notify/templates", headers=resident.headers)
    finally:
        template_ids.cache_clear()
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["name"] for i in items] == list(TEMPLATE_NAMES)
    by_name = {i["name"]: i for i in items}
    assert by_name["order_status"]["template_id"] == "Xy7-real-order-template"
    assert by_name["outflow_approved"]["template_id"] == "dev-tmpl-outflow-approved"
    assert by_name["outflow_registered"]["audience"] == "admin"
    assert by_name["report_due"]["audience"] == "member"
    for item in items:
        assert item["purpose"] and item["page"].startswith("pages/")
