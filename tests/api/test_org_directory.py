"""The organisation directory (党员找组织) and an admin's top organisations (GET /orgs)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.pagination import encode_cursor
from app.demo import seed_demo
from app.demo_names import DEMO_CHAMBER, DEMO_DISTRICT, DEMO_VILLAGE
from app.organization.models import Organization
from tests import factories as f
from tests.conftest import problem

TIANHE = "23.13,113.33"  # 天河, Guangzhou: where the member stands


async def _guangzhou(db: AsyncSession) -> dict[str, Organization]:
    city = await f.org(db, "广州市委", region_code="440100")
    cbd = await f.org(
        db, "天河路商圈党委", parent=city, kind="committee", region_code="440106",
        host="business_district", address="广州市天河区天河路", lat=23.1357, lon=113.3270,
        listed=True,
    )  # fmt: skip
    yuexiu = await f.org(
        db, "越秀流动党员党支部", parent=city, region_code="440104", host="mobile",
        address="广州市越秀区北京路", lat=23.1290, lon=113.2644, listed=True,
    )  # fmt: skip
    panyu = await f.org(
        db, "番禺万博楼宇党支部", parent=city, region_code="440113", host="building",
        address="广州市番禺区万博", lat=22.9375, lon=113.3844, listed=True,
    )  # fmt: skip
    # The nearest of all, but not listed: never in the directory.
    hidden = await f.org(
        db, "天河内部党支部", parent=city, region_code="440106", host="business_district",
        lat=23.1310, lon=113.3310,
    )  # fmt: skip
    # Listed without a location: found by name or region, never by distance.
    shenzhen = await f.org(db, "深圳南山商圈党委", region_code="440305", listed=True)
    return {
        "city": city, "cbd": cbd, "yuexiu": yuexiu, "panyu": panyu,
        "hidden": hidden, "shenzhen": shenzhen,
    }  # fmt: skip


async def _search(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    response = await client.get("/api/v1/orgs/directory", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _ids(body: dict[str, Any]) -> list[int]:
    return [item["id"] for item in body["items"]]


async def test_member_finds_the_nearest_listed_organisation(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _guangzhou(db)
    member = await f.member_actor(db, settings, t["yuexiu"])
    assert (await client.get("/api/v1/orgs/directory", params={"near": TIANHE})).status_code == 401

    body = await _search(client, member.headers, near=TIANHE)
    assert _ids(body) == [t["cbd"].id, t["yuexiu"].id, t["panyu"].id]
    first = body["items"][0]
    assert first == {
        "id": t["cbd"].id, "name": "天河路商圈党委", "kind": "committee",
        "host": "business_district", "region_code": "440106",
        "address": "广州市天河区天河路", "lat": 23.1357, "lon": 113.3270,
        "distance_m": first["distance_m"],
    }  # fmt: skip
    distances = [item["distance_m"] for item in body["items"]]
    # 天河路 is ~0.7 km away, 北京路 ~6.8 km, 番禺万博 ~22 km.
    assert 500 < distances[0] < 900
    assert 6_000 < distances[1] < 7_500
    assert 20_000 < distances[2] < 24_000
    assert body["next_cursor"] is None

    # Without a point: every listed one (with or without coordinates), by id, no distance.
    everything = await _search(client, member.headers)
    assert _ids(everything) == sorted(
        [t["cbd"].id, t["yuexiu"].id, t["panyu"].id, t["shenzhen"].id]
    )
    assert all(item["distance_m"] is None for item in everything["items"])
    assert t["hidden"].id not in _ids(everything) and t["city"].id not in _ids(everything)


async def test_residents_search_by_name_region_host_and_purpose(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _guangzhou(db)
    resident = await f.resident_actor(db, settings)
    h = resident.headers
    assert _ids(await _search(client, h, q="商圈")) == [t["cbd"].id, t["shenzhen"].id]
    assert _ids(await _search(client, h, q="商圈", near=TIANHE)) == [t["cbd"].id]
    assert _ids(await _search(client, h, q="100%")) == []
    assert _ids(await _search(client, h, region_code="4401", near=TIANHE)) == [
        t["cbd"].id, t["yuexiu"].id, t["panyu"].id,
    ]  # fmt: skip
    assert _ids(await _search(client, h, region_code="440104")) == [t["yuexiu"].id]
    assert _ids(await _search(client, h, region_code="44")) == sorted(
        [t["cbd"].id, t["yuexiu"].id, t["panyu"].id, t["shenzhen"].id]
    )
    assert _ids(await _search(client, h, host="building")) == [t["panyu"].id]

    # Orders go to an organisation with an admin of its own to accept them.
    secretary = await f.member(db, settings, t["panyu"], "王书记")
    await f.grant(db, secretary, t["panyu"], "branch_admin")
    await f.grant(db, secretary, t["hidden"], "branch_admin")  # unlisted: still absent
    assert _ids(await _search(client, h, purpose="orders", near=TIANHE)) == [t["panyu"].id]
    assert len(_ids(await _search(client, h, purpose="checkin"))) == 4


async def test_pages_follow_the_order_without_gaps(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _guangzhou(db)
    member = await f.member_actor(db, settings, t["cbd"])
    for near, expected in (
        (TIANHE, [t["cbd"].id, t["yuexiu"].id, t["panyu"].id]),
        (None, sorted([t["cbd"].id, t["yuexiu"].id, t["panyu"].id, t["shenzhen"].id])),
    ):
        seen: list[int] = []
        cursor: str | None = None
        for _ in range(10):
            params: dict[str, Any] = {"limit": 1}
            if near:
                params["near"] = near
            if cursor:
                params["cursor"] = cursor
            body = await _search(client, member.headers, **params)
            seen += _ids(body)
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == expected

    # A nearest-first cursor does not fit the id order (and a forged one fits nothing).
    first = await _search(client, member.headers, near=TIANHE, limit=1)
    for forged in (
        encode_cursor(first["items"][0]["id"]),  # an id-order cursor
        encode_cursor(1.5, True),
        encode_cursor("1.5", 1),
        encode_cursor(1.5),
        encode_cursor(None, 1),
    ):
        problem(
            await client.get(
                "/api/v1/orgs/directory",
                params={"near": TIANHE, "cursor": forged},
                headers=member.headers,
            ),
            422,
            "pagination.invalid_cursor",
        )
    problem(
        await client.get(
            "/api/v1/orgs/directory",
            params={"cursor": first["next_cursor"]},
            headers=member.headers,
        ),
        422,
        "pagination.invalid_cursor",
    )


async def test_bad_near_is_a_422_in_chinese(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _guangzhou(db)
    member = await f.member_actor(db, settings, t["cbd"])
    for near in ("abc", "23.13", "23.13;113.33", "91,113.33", "23.13,181", "nan,nan", "1e3,5"):
        body = problem(
            await client.get(
                "/api/v1/orgs/directory", params={"near": near}, headers=member.headers
            ),
            422,
            "directory.invalid_near",
        )
        assert body["errors"][0]["field"] == "near"
        assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"])
    swapped = problem(
        await client.get(
            "/api/v1/orgs/directory", params={"near": "113.33,23.13"}, headers=member.headers
        ),
        422,
        "directory.invalid_near",
    )
    assert "填反" in swapped["detail"]
    for params in ({"region_code": "4401x"}, {"host": "club"}, {"purpose": "dating"}):
        problem(
            await client.get("/api/v1/orgs/directory", params=params, headers=member.headers),
            422,
            "validation.failed",
        )


async def test_admin_lists_and_locates_his_organisation(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _guangzhou(db)
    admin = await f.admin_actor(db, settings, t["hidden"], role="branch_admin")
    other = await f.admin_actor(db, settings, t["yuexiu"], role="branch_admin", name="赵书记")
    url = f"/api/v1/orgs/{t['hidden'].id}"

    # A half location changes nothing.
    problem(
        await client.patch(url, json={"lat": None}, headers=admin.headers),
        422,
        "org.incomplete_location",
    )
    # Another subtree's admin cannot list it.
    problem(
        await client.patch(url, json={"listed": True}, headers=other.headers), 404, "org.not_found"
    )
    problem(
        await client.patch(url, json={"listed": None}, headers=admin.headers),
        422,
        "validation.failed",
    )
    row = (
        await db.execute(
            select(Organization.listed, Organization.lat).where(Organization.id == t["hidden"].id)
        )
    ).one()
    assert row == (False, 23.1310)

    done = await client.patch(
        url,
        json={"listed": True, "address": "广州市天河区体育西路", "lat": 23.1310, "lon": 113.3310},
        headers=admin.headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["listed"] is True and done.json()["version"] == 2
    member = await f.member_actor(db, settings, t["cbd"])
    found = await _search(client, member.headers, near=TIANHE)
    assert _ids(found)[:2] == [t["hidden"].id, t["cbd"].id]
    assert found["items"][0]["address"] == "广州市天河区体育西路"

    await client.patch(url, json={"listed": False}, headers=admin.headers)
    assert t["hidden"].id not in _ids(await _search(client, member.headers, near=TIANHE))


async def test_admins_see_the_top_of_their_scope(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _guangzhou(db)
    assert (await client.get("/api/v1/orgs")).status_code == 401
    member = await f.member_actor(db, settings, t["cbd"])
    problem(await client.get("/api/v1/orgs", headers=member.headers), 403, "auth.admin_required")

    admin = await f.admin_actor(db, settings, t["cbd"])
    assert admin.member is not None
    await f.grant(db, admin.member, t["panyu"], "branch_admin")
    deeper = await f.org(db, "商圈第一支部", parent=t["cbd"])
    await f.grant(db, admin.member, deeper, "branch_admin")  # inside cbd: not a top
    body = (await client.get("/api/v1/orgs", headers=admin.headers)).json()
    assert [item["id"] for item in body["items"]] == [t["cbd"].id, t["panyu"].id]
    assert body["items"][0]["path"] == t["cbd"].path and body["items"][0]["depth"] == 1
    page = (await client.get("/api/v1/orgs", params={"limit": 1}, headers=admin.headers)).json()
    assert [item["id"] for item in page["items"]] == [t["cbd"].id]
    rest = await client.get(
        "/api/v1/orgs", params={"cursor": page["next_cursor"]}, headers=admin.headers
    )
    assert [item["id"] for item in rest.json()["items"]] == [t["panyu"].id]

    root = await f.superadmin_actor(db, settings)
    tops = (await client.get("/api/v1/orgs", headers=root.headers)).json()
    assert [item["id"] for item in tops["items"]] == [t["city"].id, t["shenzhen"].id]


async def test_the_demo_data_lists_located_organisations(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    await seed_demo(db, settings.model_copy(update={"demo_data": True, "env": "dev"}))
    login = await client.post("/api/v1/auth/wechat/login", json={"code": "demo-member.1"})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    body = await _search(client, headers, near=TIANHE)
    assert [item["name"] for item in body["items"]] == [
        DEMO_DISTRICT, DEMO_CHAMBER, DEMO_VILLAGE,
    ]  # fmt: skip
    assert body["items"][0]["distance_m"] < 1_000 < body["items"][1]["distance_m"]
