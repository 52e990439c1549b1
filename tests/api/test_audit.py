"""GET /api/v1/audit: admins read the entries of their subtree, newest first, paginated."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.config import Settings
from app.organization.models import Organization
from tests import factories
from tests.conftest import problem

AUDIT = "/api/v1/audit"


async def tree(db: AsyncSession) -> tuple[Organization, Organization, Organization]:
    county = await factories.org(db, "审计日志县委")
    town = await factories.org(db, "审计日志镇党委", parent=county, kind="committee")
    elsewhere = await factories.org(db, "外县县委")
    return county, town, elsewhere


async def entry(db: AsyncSession, org: Organization | None, action: str, actor: int | None) -> None:
    await record(
        db,
        actor_account_id=actor,
        action=action,
        org_id=org.id if org else None,
        subject_type="member",
        subject_id=1,
        reason="测试",
    )


async def test_audit_needs_a_token(client: httpx.AsyncClient) -> None:
    problem(await client.get(AUDIT), 401, "auth.missing_token")


async def test_audit_is_for_admins_only(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county, _, _ = await tree(db)
    member = await factories.member_actor(db, settings, county)
    resident = await factories.resident_actor(db, settings)
    problem(await client.get(AUDIT, headers=member.headers), 403, "auth.admin_required")
    problem(await client.get(AUDIT, headers=resident.headers), 403, "auth.admin_required")


async def test_admin_sees_his_subtree_newest_first(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county, town, elsewhere = await tree(db)
    admin = await factories.admin_actor(db, settings, town, "branch_admin", "审计员")
    await entry(db, county, "member.reveal", admin.account.id)
    await entry(db, town, "member.reveal", admin.account.id)
    await entry(db, town, "outflow.approve", None)
    await entry(db, elsewhere, "member.reveal", None)
    await entry(db, None, "auth.refresh_reused", None)

    response = await client.get(AUDIT, headers=admin.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    # Only the town's entries: not the county above him, not another county, not org-less ones.
    assert [(i["org_id"], i["action"]) for i in items] == [
        (town.id, "outflow.approve"),
        (town.id, "member.reveal"),
    ]
    assert items[0]["id"] > items[1]["id"]
    assert items[1]["actor_account_id"] == admin.account.id
    assert items[1]["actor_name"] == "审计员"
    assert items[1]["reason"] == "测试"
    assert items[1]["at"].endswith(("Z", "+00:00"))
    assert response.json()["next_cursor"] is None


async def test_filters_by_org_subtree_actor_and_action(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county, town, _ = await tree(db)
    admin = await factories.admin_actor(db, settings, county)
    other = await factories.resident_actor(db, settings)
    await entry(db, county, "member.reveal", admin.account.id)
    await entry(db, town, "member.reveal", other.account.id)
    await entry(db, town, "outflow.approve", admin.account.id)

    def actions(response: httpx.Response) -> list[tuple[int, str]]:
        assert response.status_code == 200, response.text
        return [(i["org_id"], i["action"]) for i in response.json()["items"]]

    assert actions(await client.get(AUDIT, params={"org_id": town.id}, headers=admin.headers)) == [
        (town.id, "outflow.approve"),
        (town.id, "member.reveal"),
    ]
    assert actions(
        await client.get(AUDIT, params={"org_id": county.id}, headers=admin.headers)
    ) == [(town.id, "outflow.approve"), (town.id, "member.reveal"), (county.id, "member.reveal")]
    assert actions(
        await client.get(AUDIT, params={"actor_id": other.account.id}, headers=admin.headers)
    ) == [(town.id, "member.reveal")]
    assert actions(
        await client.get(
            AUDIT,
            params={"action": "member.reveal", "actor_id": admin.account.id},
            headers=admin.headers,
        )
    ) == [(county.id, "member.reveal")]


async def test_org_outside_scope_is_404(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county, town, elsewhere = await tree(db)
    admin = await factories.admin_actor(db, settings, town)
    org_ids = (county.id, elsewhere.id, 987654321)
    await db.commit()  # keep the setup through the failed requests' rollbacks
    for org_id in org_ids:
        problem(
            await client.get(AUDIT, params={"org_id": org_id}, headers=admin.headers),
            404,
            "org.not_found",
        )


async def test_pagination_walks_every_entry_once(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, town, _ = await tree(db)
    admin = await factories.admin_actor(db, settings, town)
    for n in range(5):
        await entry(db, town, f"test.step{n}", admin.account.id)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(AUDIT, params=params, headers=admin.headers)).json()
        seen += [i["action"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"test.step{n}" for n in reversed(range(5))]
    assert pages == 3


async def test_bad_query_parameters_are_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, town, _ = await tree(db)
    admin = await factories.admin_actor(db, settings, town)
    await db.commit()
    for params in ({"limit": 0}, {"limit": 101}, {"org_id": "x"}):
        problem(
            await client.get(AUDIT, params=params, headers=admin.headers), 422, "validation.failed"
        )
    problem(
        await client.get(AUDIT, params={"cursor": "!!"}, headers=admin.headers),
        422,
        "pagination.invalid_cursor",
    )
    problem(
        await client.get(AUDIT, params={"cursor": "WyJ4Il0"}, headers=admin.headers),
        422,
        "pagination.invalid_cursor",
    )


async def test_superadmin_sees_everything(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, _, elsewhere = await tree(db)
    root = await factories.superadmin_actor(db, settings)
    await entry(db, None, "auth.refresh_reused", root.account.id)
    await entry(db, elsewhere, "member.reveal", root.account.id)
    body = (
        await client.get(AUDIT, params={"actor_id": root.account.id}, headers=root.headers)
    ).json()
    assert [(i["org_id"], i["action"]) for i in body["items"]] == [
        (elsewhere.id, "member.reveal"),
        (None, "auth.refresh_reused"),
    ]


async def test_login_and_bind_show_up_for_the_admins(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county, town, _ = await tree(db)
    admin = await factories.admin_actor(db, settings, county)
    id_number = factories.unique_id_number()
    m = await factories.member(db, settings, town, "韩梅", id_number=id_number)
    resident = await factories.resident_actor(db, settings)
    bound = await client.post(
        "/api/v1/me/bind", json={"name": "韩梅", "id_number": id_number}, headers=resident.headers
    )
    assert bound.status_code == 200
    body = (await client.get(AUDIT, params={"action": "member.bind"}, headers=admin.headers)).json()
    assert [(i["org_id"], i["subject_id"], i["actor_name"]) for i in body["items"]] == [
        (town.id, m.id, "韩梅")
    ]
