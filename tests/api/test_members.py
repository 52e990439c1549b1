"""The roster: create, list, read, edit members; masked PII; audited reveals."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEntry
from app.core import pii
from app.core.config import Settings
from app.members.models import Member
from app.members.service import find_by_id_number
from app.mobility.models import Outflow
from app.organization.models import DualManagementGrant, Organization
from tests import factories as f
from tests.conftest import problem


async def _tree(db: AsyncSession) -> dict[str, Organization]:
    county = await f.org(db, "岳池县委")
    village = await f.org(db, "花园村党支部", parent=county)
    village2 = await f.org(db, "白庙村党支部", parent=county)
    other = await f.org(db, "邻县县委")
    other_branch = await f.org(db, "邻县某支部", parent=other)
    return {
        "county": county,
        "village": village,
        "village2": village2,
        "other": other,
        "other_branch": other_branch,
    }


def _payload(org: Organization, **extra: object) -> dict[str, object]:
    return {
        "name": "王建国",
        "id_number": f.make_id_number(date(1988, 5, 2)),
        "phone": "+86 138-0013-8000",
        "home_org_id": org.id,
        "joined_on": "2012-07-01",
        "status": "probationary",
    } | extra


async def test_create_member_derives_and_masks(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    body = _payload(t["village"])
    created = await client.post("/api/v1/members", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    out = created.json()
    number = str(body["id_number"])
    assert out["id_number"] == number[:4] + "*" * 10 + number[-4:]
    assert out["phone"] == "138****8000"
    assert out["gender"] == "male" and out["birth_date"] == "1988-05-02"
    assert out["status"] == "probationary" and out["version"] == 1
    row = await db.get(Member, out["id"])
    assert row is not None
    ring = pii.keyring(settings)
    assert ring.decrypt(row.id_number_enc, context=pii.ID_NUMBER) == number
    assert ring.decrypt(row.phone_enc or b"", context=pii.PHONE) == "13800138000"
    assert (await find_by_id_number(db, settings, number.lower())) is not None


async def test_create_member_validation(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    number = f.make_id_number(date(1990, 1, 31), female=True)
    mismatch = await client.post(
        "/api/v1/members",
        json=_payload(t["village"], id_number=number, gender="male", birth_date="1990-02-01"),
        headers=admin.headers,
    )
    body = problem(mismatch, 422, "member.id_mismatch")
    assert {e["field"] for e in body["errors"]} == {"gender", "birth_date"}
    agrees = await client.post(
        "/api/v1/members",
        json=_payload(t["village"], id_number=number, gender="female", birth_date="1990-01-31"),
        headers=admin.headers,
    )
    assert agrees.status_code == 201 and agrees.json()["gender"] == "female"

    bad = await client.post(
        "/api/v1/members",
        json=_payload(
            t["village"],
            id_number=number[:17] + "0" if number[17] != "0" else number[:17] + "1",
            phone="12345",
            status="member",
            role="admin",
        ),
        headers=admin.headers,
    )
    errors = {e["field"]: e for e in problem(bad, 422, "validation.failed")["errors"]}
    assert set(errors) == {"id_number", "phone", "status", "role"}
    assert errors["id_number"]["type"] == "id_number.checksum"

    taken = await client.post(
        "/api/v1/members", json=_payload(t["village2"], id_number=number), headers=admin.headers
    )
    problem(taken, 409, "member.id_number_taken")
    outside = await client.post(
        "/api/v1/members", json=_payload(t["other_branch"]), headers=admin.headers
    )
    problem(outside, 404, "org.not_found")
    assert (await db.execute(select(func.count()).select_from(Member))).scalar_one() == 2


async def test_create_member_is_idempotent(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    body = _payload(t["village"])
    headers = admin.headers | {"Idempotency-Key": "member-create-1"}
    first = await client.post("/api/v1/members", json=body, headers=headers)
    again = await client.post("/api/v1/members", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    problem(
        await client.post("/api/v1/members", json=body | {"name": "别人"}, headers=headers),
        422,
        "idempotency.key_reused",
    )
    n = await db.execute(select(func.count()).where(Member.home_org_id == t["village"].id))
    assert n.scalar_one() == 1


async def test_list_members_filters_scope_and_pages(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"], name="李书记")
    wang = await f.member(db, settings, t["village"], "王建国")
    wang2 = await f.member(db, settings, t["village2"], "王小明", status="probationary")
    liu = await f.member(db, settings, t["village"], "刘芳")
    stranger = await f.member(db, settings, t["other_branch"], "王外县")
    guest = await f.member(db, settings, t["other_branch"], "王流入")
    db.add(DualManagementGrant(member_id=guest.id, org_id=t["village2"].id))
    await db.flush()

    async def ids(**params: object) -> list[int]:
        r = await client.get("/api/v1/members", params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["items"]]

    everyone = await ids(limit=100)
    assert everyone == sorted([admin.member.id, wang.id, wang2.id, liu.id, guest.id])  # type: ignore[union-attr]
    assert stranger.id not in everyone
    assert await ids(q="王") == [wang.id, wang2.id, guest.id]
    assert await ids(q="王", org_id=t["village"].id) == [wang.id]
    assert await ids(org_id=t["village2"].id) == [wang2.id, guest.id]
    assert await ids(status="probationary") == [wang2.id]
    assert await ids(q="%") == []

    first = await client.get("/api/v1/members", params={"limit": 2}, headers=admin.headers)
    second = await client.get(
        "/api/v1/members",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=admin.headers,
    )
    assert [m["id"] for m in first.json()["items"] + second.json()["items"]] == everyone[:4]
    assert all("*" in m["id_number"] for m in first.json()["items"])

    problem(
        await client.get(
            "/api/v1/members", params={"org_id": t["other"].id}, headers=admin.headers
        ),
        404,
        "org.not_found",
    )
    problem(await client.get("/api/v1/members"), 401, "auth.missing_token")
    member = await f.member_actor(db, settings, t["village"])
    problem(await client.get("/api/v1/members", headers=member.headers), 403, "auth.admin_required")


async def test_mobile_filter_lists_members_with_an_active_outflow(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    if (await db.execute(text("SELECT to_regclass('outflows')"))).scalar() is None:
        pytest.skip("the mobility migration (0005) does not create outflows yet")
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    away = await f.member(db, settings, t["village"], "外出者")
    back = await f.member(db, settings, t["village"], "已返回")
    home = await f.member(db, settings, t["village"], "在家者")
    ring = pii.keyring(settings)
    for who, status in ((away, "active"), (back, "returned")):
        db.add(
            Outflow(
                member_id=who.id,
                home_org_id=t["village"].id,
                status=status,
                reason="work",
                destination_region_code="440305",
                destination_address="深圳市南山区",
                contact_phone_enc=ring.encrypt("13800000000", context="outflow.contact_phone"),
                contact_phone_masked="138****0000",
                departed_on=date(2026, 1, 1),
                expected_return_on=date(2026, 12, 31),
            )
        )
    await db.flush()
    params = {"org_id": t["village"].id}
    mobile = await client.get(
        "/api/v1/members", params=params | {"mobile": "true"}, headers=admin.headers
    )
    assert [m["id"] for m in mobile.json()["items"]] == [away.id]
    settled = await client.get(
        "/api/v1/members", params=params | {"mobile": "false"}, headers=admin.headers
    )
    assert away.id not in [m["id"] for m in settled.json()["items"]]
    assert {back.id, home.id} <= {m["id"] for m in settled.json()["items"]}


async def test_get_member_scope(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    branch = await f.admin_actor(db, settings, t["village"], role="branch_admin")
    mine = await f.member(db, settings, t["village"], "刘芳")
    sibling = await f.member(db, settings, t["village2"], "陈志强")
    got = await client.get(f"/api/v1/members/{mine.id}", headers=branch.headers)
    assert got.json()["name"] == "刘芳" and got.json()["home_org_id"] == t["village"].id
    problem(
        await client.get(f"/api/v1/members/{sibling.id}", headers=branch.headers),
        404,
        "member.not_found",
    )
    problem(await client.get(f"/api/v1/members/{mine.id}"), 401, "auth.missing_token")
    # A guest checked in at the village is visible there while the grant is open.
    db.add(DualManagementGrant(member_id=sibling.id, org_id=t["village"].id))
    await db.flush()
    assert (
        await client.get(f"/api/v1/members/{sibling.id}", headers=branch.headers)
    ).status_code == 200


async def test_patch_member_reencrypts_and_reindexes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    old_number = f.unique_id_number()
    m = await f.member(db, settings, t["village"], "张三", id_number=old_number)
    new_number = f.make_id_number(date(1979, 12, 3), female=True, region="440305")
    url = f"/api/v1/members/{m.id}"
    done = await client.patch(
        url,
        json={"version": 1, "id_number": new_number, "phone": "13912345678", "name": "张珊"},
        headers=admin.headers,
    )
    assert done.status_code == 200, done.text
    out = done.json()
    assert out["version"] == 2 and out["name"] == "张珊"
    assert out["gender"] == "female" and out["birth_date"] == "1979-12-03"
    assert out["id_number"] == new_number[:4] + "*" * 10 + new_number[-4:]
    assert out["phone"] == "139****5678"
    assert (await find_by_id_number(db, settings, old_number)) is None
    found = await find_by_id_number(db, settings, new_number)
    assert found is not None and found.id == m.id
    ring = pii.keyring(settings)
    assert ring.decrypt(found.phone_enc or b"", context=pii.PHONE) == "13912345678"

    problem(
        await client.patch(url, json={"version": 1, "name": "x"}, headers=admin.headers),
        409,
        "conflict.stale_version",
    )
    problem(
        await client.patch(url, json={"version": 2, "gender": "male"}, headers=admin.headers),
        422,
        "member.id_mismatch",
    )
    other = await f.member(db, settings, t["village"], "李四")
    problem(
        await client.patch(
            f"/api/v1/members/{other.id}",
            json={"version": 1, "id_number": new_number},
            headers=admin.headers,
        ),
        409,
        "member.id_number_taken",
    )
    problem(
        await client.patch(
            url, json={"version": 2, "home_org_id": t["other_branch"].id}, headers=admin.headers
        ),
        404,
        "org.not_found",
    )
    cleared = await client.patch(
        url,
        json={"version": 2, "phone": None, "home_org_id": t["village2"].id},
        headers=admin.headers,
    )
    assert cleared.json()["phone"] is None and cleared.json()["home_org_id"] == t["village2"].id
    problem(
        await client.patch(url, json={"version": 3, "name": None}, headers=admin.headers),
        422,
        "validation.failed",
    )
    problem(
        await client.patch(url, json={"name": "无版本"}, headers=admin.headers),
        422,
        "validation.failed",
    )
    outsider = await f.admin_actor(db, settings, t["other"])
    problem(
        await client.patch(url, json={"version": 3, "name": "越权"}, headers=outsider.headers),
        404,
        "member.not_found",
    )


async def test_reveal_is_audited_and_scoped(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    number = f.unique_id_number()
    m = await f.member(db, settings, t["village"], "刘芳", id_number=number, phone="13800001111")
    url = f"/api/v1/members/{m.id}/reveal"
    got = await client.post(
        url, json={"field": "id_number", "reason": "核对组织关系转接材料"}, headers=admin.headers
    )
    assert got.status_code == 200, got.text
    assert got.json() == {"field": "id_number", "value": number}
    phone = await client.post(
        url, json={"field": "phone", "reason": "联系本人"}, headers=admin.headers
    )
    assert phone.json() == {"field": "phone", "value": "13800001111"}
    entries = (
        (await db.execute(select(AuditEntry).where(AuditEntry.action == "pii.reveal")))
        .scalars()
        .all()
    )
    assert [(e.subject_id, e.reason, e.detail["field"]) for e in entries] == [
        (m.id, "核对组织关系转接材料", "id_number"),
        (m.id, "联系本人", "phone"),
    ]
    assert all(e.actor_account_id == admin.account.id for e in entries)
    assert all(e.org_id == t["village"].id and e.ip == "203.0.113.7" for e in entries)

    for bad in (
        {"field": "id_number"},
        {"field": "id_number", "reason": "看"},
        {"field": "name", "reason": "看一下"},
    ):
        problem(await client.post(url, json=bad, headers=admin.headers), 422, "validation.failed")
    outsider = await f.admin_actor(db, settings, t["other"])
    problem(
        await client.post(
            url, json={"field": "phone", "reason": "越权查看"}, headers=outsider.headers
        ),
        404,
        "member.not_found",
    )
    problem(
        await client.post(url, json={"field": "phone", "reason": "匿名"}), 401, "auth.missing_token"
    )
    count = await db.execute(select(func.count()).where(AuditEntry.action == "pii.reveal"))
    assert count.scalar_one() == 2


async def test_raw_rows_hold_no_plaintext(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t = await _tree(db)
    admin = await f.admin_actor(db, settings, t["county"])
    number = f.unique_id_number()
    created = await client.post(
        "/api/v1/members",
        json=_payload(t["village"], id_number=number, phone="13700007777"),
        headers=admin.headers,
    )
    assert created.status_code == 201
    rows = (await db.execute(text("SELECT * FROM members"))).mappings().all()
    assert rows
    # The full values, and the parts a mask hides, in text or as raw bytes.
    needles = [number, number[4:14], "13700007777", "1370000"]
    for row in rows:
        for column, value in row.items():
            if isinstance(value, bytes | memoryview):
                raw = bytes(value)
                assert all(n.encode() not in raw for n in needles), column
                assert all(n.encode().hex() not in raw.hex() for n in needles), column
            else:
                assert all(n not in str(value) for n in needles), column


async def test_concurrent_create_of_same_person(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        county = await f.org(s, "县委")
        admin = await f.admin_actor(s, settings, county)
        await s.commit()
    body = _payload(county, id_number=f.unique_id_number())
    results = await asyncio.gather(
        *(
            committing_client.post("/api/v1/members", json=body, headers=admin.headers)
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
    for r in results:
        if r.status_code == 409:
            problem(r, 409, "member.id_number_taken")
    async with AsyncSession(engine) as s:
        n = await s.execute(select(func.count()).where(Member.name == "王建国"))
        assert n.scalar_one() == 1


async def test_demo_roster_seed(db: AsyncSession, settings: Settings) -> None:
    from app.demo import DEMO_VILLAGE, seed_demo
    from app.members import demo

    on = settings.model_copy(update={"demo_data": True, "env": "dev"})
    await seed_demo(db, on)
    await demo.seed(db, on)
    await demo.seed(db, on)  # idempotent
    office = (
        await db.execute(select(Organization).where(Organization.name == demo.DEMO_OFFICE))
    ).scalar_one()
    village = (
        await db.execute(select(Organization).where(Organization.name == DEMO_VILLAGE))
    ).scalar_one()
    rows = (
        await db.execute(
            select(Member.home_org_id, Member.status).where(
                Member.home_org_id.in_([office.id, village.id])
            )
        )
    ).all()
    assert sum(1 for home, _ in rows if home == office.id) == 4
    assert sum(1 for _, status in rows if status == "probationary") == 2
