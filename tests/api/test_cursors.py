"""Every cursor-paginated list answers a forged or garbled cursor with 422
``pagination.invalid_cursor`` (one decoder, ``app/core/pagination.py``), never a 500.

The lists are found in the OpenAPI document, so a new list with a ``cursor``
parameter cannot be left out."""

from __future__ import annotations

import base64

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests import factories
from tests.conftest import problem
from tests.support.mobility import outflow_body

API = "/api/v1"


def _cursor(value: object) -> str:
    raw = value.encode() if isinstance(value, str) else orjson.dumps(value)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Wrong for every cursor shape the lists use (one id, one path, (points, id), (time, id)).
FORGED = [
    "W3RydWVd",  # [true]: once a 500 on /audit (a bool is an int to Python, not to SQL)
    "!!",
    "%%%%",
    "////",
    base64.urlsafe_b64encode(b"\xff\xfe[").decode(),
    _cursor({"id": 1}),
    _cursor([]),
    _cursor([None]),
    _cursor([1.5]),
    _cursor([{}]),
    _cursor([[1]]),
    _cursor(f"[{2**63}]"),  # beyond bigint
    _cursor(f"[{-(2**63) - 1}]"),
    _cursor("[1e999]"),
    _cursor([True, True]),
    _cursor([None, None]),
    _cursor([1, 2, 3]),
    _cursor(["2026-01-01T00:00:00", 1]),  # a time without its zone
    _cursor(["not a time", 1]),
]


def cursor_lists(app: FastAPI) -> set[str]:
    """The GET operations of the OpenAPI document that take a ``cursor``."""
    return {
        path.removeprefix(API)
        for path, operations in app.openapi()["paths"].items()
        if any(p["name"] == "cursor" for p in operations.get("get", {}).get("parameters", []))
    }


async def test_every_list_refuses_a_forged_cursor(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await factories.org(db, "岳池县委", region_code="511621")
    branch = await factories.org(db, "花园村党支部", parent=county)
    admin = await factories.admin_actor(db, settings, county)
    registered = await client.post(
        f"{API}/outflows",
        json=outflow_body(),
        headers=admin.headers,
    )
    assert registered.status_code == 201, registered.text
    outflow_id = registered.json()["id"]
    paths = {
        path: API + path.format(org_id=branch.id, outflow_id=outflow_id)
        for path in cursor_lists(app)
    }
    assert set(paths) == {
        "/activities",
        "/audit",
        "/care/campaigns",
        "/care/cases",
        "/care/me/cases",
        "/census/entities",
        "/census/found-members",
        "/census/me/entities",
        "/census/rounds",
        "/inflows",
        "/me/consents",
        "/me/inflows",
        "/me/notifications",
        "/me/outflows",
        "/me/time-bank",
        "/me/transfers",
        "/members",
        "/orders",
        "/orgs",
        "/orgs/directory",
        "/orgs/{org_id}/children",
        "/orgs/{org_id}/roles",
        "/orgs/{org_id}/subtree",
        "/outflows",
        "/outflows/{outflow_id}/reports",
        "/study/items",
        "/study/leaderboard",
        "/time-bank/rewards",
        "/transfers",
    }, "a new cursor list: add it here once it answers a forged cursor with 422"

    answered: dict[tuple[str, str], tuple[int, str]] = {}
    for template, url in sorted(paths.items()):
        first = await client.get(url, params={"limit": 1}, headers=admin.headers)
        assert first.status_code == 200, (template, first.text)
        for forged in FORGED:
            response = await client.get(url, params={"cursor": forged}, headers=admin.headers)
            code = response.json().get("code", "") if response.status_code >= 400 else ""
            if (response.status_code, code) != (422, "pagination.invalid_cursor"):
                answered[template, forged] = (response.status_code, code)
            else:
                problem(response, 422, "pagination.invalid_cursor")
    assert answered == {}, "forged cursors that were not refused"
    # The outflow and the rest of the data are as they were: reading changed nothing.
    detail = await client.get(f"{API}/outflows/{outflow_id}", headers=admin.headers)
    assert detail.json()["status"] == registered.json()["status"]
