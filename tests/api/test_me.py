"""The caller's profile, binding to the roster, binding a phone number.

``await db.commit()`` after the setup: the test app rolls the session back to its last
commit when a request fails, so committed setup (still inside the test's outer
transaction) survives the error responses these tests provoke on purpose.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEntry
from app.core import pii
from app.core.config import Settings
from app.core.ratelimit import Policy
from app.core.security import decode_access_token
from app.identity import service
from app.identity.models import Account
from app.members.models import Member
from app.organization.models import RoleAssignment
from app.wechat.simulator import WeChatSimulator
from tests import factories
from tests.conftest import problem

ME = "/api/v1/me"
BIND = "/api/v1/me/bind"
PHONE = "/api/v1/me/phone"


async def test_me_needs_a_token(client: httpx.AsyncClient) -> None:
    problem(await client.get(ME), 401, "auth.missing_token")
    problem(
        await client.get(ME, headers={"Authorization": "Bearer not-a-jwt"}),
        401,
        "auth.invalid_token",
    )


async def test_me_of_a_resident(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    resident = await factories.resident_actor(db, settings)
    body = (await client.get(ME, headers=resident.headers)).json()
    assert body == {
        "account": {"id": resident.account.id, "kind": "resident", "member_id": None},
        "display_name": None,
        "is_superadmin": False,
        "member": None,
        "home_org": None,
        "roles": [],
        "active_outflow": None,
    }


async def test_me_of_an_admin_is_masked_with_roles(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await factories.org(db, "资料县委")
    town = await factories.org(db, "资料镇党委", parent=county, kind="committee")
    id_number = factories.unique_id_number()
    m = await factories.member(db, settings, town, "周九", id_number=id_number, phone="13912345678")
    await factories.grant(db, m, town, "branch_admin")
    acc = await factories.account(db, member=m)
    actor = await factories.login(db, settings, acc, m)

    response = await client.get(ME, headers=actor.headers)
    assert response.status_code == 200
    body = response.json()
    assert id_number not in response.text and "13912345678" not in response.text
    assert body["account"] == {"id": acc.id, "kind": "admin", "member_id": m.id}
    assert body["member"]["name"] == "周九"
    assert body["member"]["id_number_masked"] == id_number[:4] + "*" * 10 + id_number[-4:]
    assert body["member"]["phone_masked"] == "139****5678"
    assert body["member"]["gender"] in ("male", "female")
    assert body["home_org"] == {"id": town.id, "name": "资料镇党委", "kind": "committee"}
    assert [(r["role"], r["org"]) for r in body["roles"]] == [
        ("branch_admin", {"id": town.id, "name": "资料镇党委", "kind": "committee"})
    ]
    assert body["active_outflow"] is None


async def test_me_reads_roles_from_the_database_not_the_token(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await factories.org(db, "撤销县委")
    admin = await factories.admin_actor(db, settings, county)
    assert decode_access_token(settings, admin.token).roles  # the token still says admin
    await db.execute(delete(RoleAssignment).where(RoleAssignment.org_id == county.id))
    body = (await client.get(ME, headers=admin.headers)).json()
    assert body["roles"] == []
    assert body["account"]["kind"] == "member"


async def test_me_of_a_disabled_account_is_403(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    resident = await factories.resident_actor(db, settings)
    await db.execute(
        update(Account)
        .where(Account.id == resident.account.id)
        .values(disabled_at=datetime.now(UTC))
    )
    problem(await client.get(ME, headers=resident.headers), 403, "auth.account_disabled")


# -- binding ------------------------------------------------------------------------------


async def roster_member(
    db: AsyncSession, settings: Settings, name: str = "吴建华"
) -> tuple[Member, str]:
    county = await factories.org(db, f"绑定县委{uuid.uuid4().hex[:4]}")
    id_number = factories.unique_id_number()
    m = await factories.member(db, settings, county, name, id_number=id_number)
    return m, id_number


async def test_bind_links_the_account_and_returns_member_tokens(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    m, id_number = await roster_member(db, settings)
    resident = await factories.resident_actor(db, settings)
    response = await client.post(
        BIND,
        json={"name": "吴建华", "id_number": id_number.lower()},
        headers=resident.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account"] == {"id": resident.account.id, "kind": "member", "member_id": m.id}
    assert id_number not in response.text
    claims = decode_access_token(settings, body["access_token"])
    assert (claims.kind, claims.member_id) == ("member", m.id)

    stored = (
        await db.execute(select(Account.member_id).where(Account.id == resident.account.id))
    ).scalar_one()
    assert stored == m.id
    entry = (
        await db.execute(
            select(AuditEntry).where(
                AuditEntry.action == "member.bind", AuditEntry.subject_id == m.id
            )
        )
    ).scalar_one()
    assert (entry.actor_account_id, entry.org_id) == (resident.account.id, m.home_org_id)

    me = (await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    assert me["member"]["id"] == m.id and me["account"]["kind"] == "member"


async def test_bind_accepts_full_width_spaces_in_the_name(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    m, id_number = await roster_member(db, settings, "阿依古丽·买买提")
    resident = await factories.resident_actor(db, settings)
    response = await client.post(
        BIND,
        json={"name": " 阿依古丽•买买提\u3000", "id_number": id_number},
        headers=resident.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["account"]["member_id"] == m.id


async def test_wrong_name_and_unknown_number_look_the_same(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, id_number = await roster_member(db, settings)
    resident = await factories.resident_actor(db, settings)
    await db.commit()
    resident_id = resident.account.id
    wrong_name = await client.post(
        BIND, json={"name": "吴建国", "id_number": id_number}, headers=resident.headers
    )
    unknown = await client.post(
        BIND,
        json={"name": "吴建华", "id_number": factories.unique_id_number()},
        headers=resident.headers,
    )
    a = problem(wrong_name, 404, "member.not_found_in_roster")
    b = problem(unknown, 404, "member.not_found_in_roster")
    assert a == b
    bound = (
        await db.execute(select(Account.member_id).where(Account.id == resident_id))
    ).scalar_one()
    assert bound is None


async def test_bind_rejects_an_invalid_id_number(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    resident = await factories.resident_actor(db, settings)
    await db.commit()
    body = problem(
        await client.post(
            BIND, json={"name": "张三", "id_number": "511621198506151230"}, headers=resident.headers
        ),
        422,
        "validation.failed",
    )
    assert body["errors"][0]["field"] == "id_number"
    assert "511621198506151230" not in str(body)
    problem(
        await client.post(
            BIND,
            json={"name": "张三", "id_number": factories.unique_id_number(), "member_id": 1},
            headers=resident.headers,
        ),
        422,
        "validation.failed",
    )


async def test_bind_needs_a_token(client: httpx.AsyncClient) -> None:
    problem(
        await client.post(BIND, json={"name": "张三", "id_number": factories.unique_id_number()}),
        401,
        "auth.missing_token",
    )


async def test_member_bound_elsewhere_is_409(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    m, id_number = await roster_member(db, settings)
    owner = await factories.account(db, member=m)
    resident = await factories.resident_actor(db, settings)
    await db.commit()
    member_id, owner_id = m.id, owner.id
    problem(
        await client.post(
            BIND, json={"name": "吴建华", "id_number": id_number}, headers=resident.headers
        ),
        409,
        "member.already_bound",
    )
    holders = (await db.execute(select(Account.id).where(Account.member_id == member_id))).all()
    assert holders == [(owner_id,)]


async def test_already_bound_account_is_409(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await factories.org(db, "已绑定县委")
    actor = await factories.member_actor(db, settings, county)
    _, other_number = await roster_member(db, settings, "郑十")
    await db.commit()
    problem(
        await client.post(
            BIND, json={"name": "郑十", "id_number": other_number}, headers=actor.headers
        ),
        409,
        "member.already_bound",
    )


async def test_bind_attempts_are_limited_per_account(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        service, "BIND_PER_ACCOUNT", Policy(f"test-bind-acc-{uuid.uuid4().hex[:8]}", 3, 900)
    )
    _, id_number = await roster_member(db, settings)
    resident = await factories.resident_actor(db, settings)
    await db.commit()
    resident_id = resident.account.id
    for guess in ("吴一", "吴二", "吴三"):
        problem(
            await client.post(
                BIND, json={"name": guess, "id_number": id_number}, headers=resident.headers
            ),
            404,
            "member.not_found_in_roster",
        )
    # The failed requests rolled back, yet they counted: even the right answer is refused now.
    limited = await client.post(
        BIND, json={"name": "吴建华", "id_number": id_number}, headers=resident.headers
    )
    problem(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) > 0
    bound = (
        await db.execute(select(Account.member_id).where(Account.id == resident_id))
    ).scalar_one()
    assert bound is None


async def test_bind_attempts_are_limited_per_target_number(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        service, "BIND_PER_TARGET", Policy(f"test-bind-tgt-{uuid.uuid4().hex[:8]}", 2, 900)
    )
    _, id_number = await roster_member(db, settings)
    for guess in ("吴一", "吴二"):
        attacker = await factories.resident_actor(db, settings)
        await db.commit()
        problem(
            await client.post(
                BIND, json={"name": guess, "id_number": id_number}, headers=attacker.headers
            ),
            404,
            "member.not_found_in_roster",
        )
    fresh = await factories.resident_actor(db, settings)
    await db.commit()
    problem(
        await client.post(
            BIND, json={"name": "吴建华", "id_number": id_number}, headers=fresh.headers
        ),
        429,
        "rate_limited",
    )
    # Another number is unaffected.
    m2, other = await roster_member(db, settings, "冯十一")
    await db.commit()
    ok = await client.post(BIND, json={"name": "冯十一", "id_number": other}, headers=fresh.headers)
    assert ok.status_code == 200 and ok.json()["account"]["member_id"] == m2.id


# -- phone ------------------------------------------------------------------------------


async def test_bind_phone_stores_it_encrypted_and_answers_masked(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, simulator: WeChatSimulator
) -> None:
    county = await factories.org(db, "手机县委")
    actor = await factories.member_actor(db, settings, county)
    assert actor.member is not None
    version = actor.member.version
    simulator.phone_codes["pc-1"] = "13700001111"
    response = await client.post(PHONE, json={"code": "pc-1"}, headers=actor.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"phone_masked": "137****1111"}

    row = (
        await db.execute(
            select(Member)
            .where(Member.id == actor.member.id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    ring = pii.keyring(settings)
    assert row.phone_enc is not None and b"13700001111" not in row.phone_enc
    assert ring.decrypt(row.phone_enc, context=pii.PHONE) == "13700001111"
    assert row.phone_idx == ring.blind_index("13700001111", context=pii.PHONE)
    assert row.phone_masked == "137****1111"
    assert row.version == version + 1
    entry = (
        await db.execute(
            select(AuditEntry).where(
                AuditEntry.action == "member.phone_bound", AuditEntry.subject_id == row.id
            )
        )
    ).scalar_one()
    assert entry.org_id == county.id
    assert "13700001111" not in str(entry.detail)


async def test_bind_phone_errors(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, simulator: WeChatSimulator
) -> None:
    county = await factories.org(db, "手机错误县委")
    actor = await factories.member_actor(db, settings, county)
    resident = await factories.resident_actor(db, settings)
    await db.commit()
    problem(
        await client.post(PHONE, json={"code": "nonsense"}, headers=actor.headers),
        422,
        "phone.invalid_code",
    )
    simulator.phone_codes["pc-hk"] = "85291234567"
    problem(
        await client.post(PHONE, json={"code": "pc-hk"}, headers=actor.headers),
        422,
        "phone.not_mainland",
    )
    simulator.fail_next("getuserphonenumber", "http500", "http500", "http500")
    problem(
        await client.post(PHONE, json={"code": "phone-13700002222"}, headers=actor.headers),
        503,
        "wechat.unavailable",
    )
    problem(
        await client.post(PHONE, json={"code": "phone-13700002222"}, headers=resident.headers),
        403,
        "auth.member_required",
    )
    problem(await client.post(PHONE, json={"code": "x"}), 401, "auth.missing_token")


async def test_two_accounts_binding_one_member_at_once(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        county = await factories.org(s, "并发绑定县委")
        id_number = factories.unique_id_number()
        m = await factories.member(s, settings, county, "褚十二", id_number=id_number)
        actors = [await factories.resident_actor(s, settings) for _ in range(3)]
        await s.commit()

    responses = await asyncio.gather(
        *(
            committing_client.post(
                BIND, json={"name": "褚十二", "id_number": id_number}, headers=a.headers
            )
            for a in actors
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409], [r.text for r in responses]
    async with AsyncSession(engine) as s:
        holders = (await s.execute(select(Account.id).where(Account.member_id == m.id))).all()
    winner = next(r for r in responses if r.status_code == 200).json()["account"]["id"]
    assert holders == [(winner,)]


async def test_me_shows_the_active_outflow(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    from app.identity.principal import Principal
    from app.mobility import service as mobility
    from app.mobility.schemas import OutflowCreate

    county = await factories.org(db, "外出县委")
    actor = await factories.member_actor(db, settings, county)
    assert actor.member is not None
    before = (await client.get(ME, headers=actor.headers)).json()
    assert before["active_outflow"] is None

    today = datetime.now(UTC).date()
    outflow = await mobility.register(
        db,
        settings,
        Principal(actor.account.id, "member", actor.member.id, False, ()),
        OutflowCreate.model_validate(
            {
                "destination_region_code": "440305",
                "destination_address": "广东省深圳市南山区科技园",
                "reason": "work",
                "departed_on": today.isoformat(),
                "expected_return_on": today.replace(year=today.year + 1).isoformat(),
                "contact_phone": "13600001111",
            }
        ),
        datetime.now(UTC),
    )
    response = await client.get(ME, headers=actor.headers)
    assert "13600001111" not in response.text
    _is_the_models_json(response)
    summary = response.json()["active_outflow"]
    assert summary["id"] == outflow.id
    assert summary["status"] == "pending"
    assert summary["destination_region_code"] == "440305"


async def test_bind_phone_retry_with_the_same_key_is_replayed(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, simulator: WeChatSimulator
) -> None:
    county = await factories.org(db, "手机重试县委")
    actor = await factories.member_actor(db, settings, county)
    simulator.phone_codes["pc-retry"] = "13700003333"
    headers = {**actor.headers, "Idempotency-Key": "phone-retry-1"}
    before = simulator.calls.get("getuserphonenumber", 0)
    first = await client.post(PHONE, json={"code": "pc-retry"}, headers=headers)
    again = await client.post(PHONE, json={"code": "pc-retry"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"phone_masked": "137****3333"}
    assert again.headers["idempotent-replayed"] == "true"
    assert simulator.calls["getuserphonenumber"] - before == 1
    problem(
        await client.post(PHONE, json={"code": "pc-other"}, headers=headers),
        422,
        "idempotency.key_reused",
    )


def _is_the_models_json(response: httpx.Response) -> None:
    """The body (plain dicts written by orjson, app/me/service.py) has exactly the bytes
    ``MeOut`` would write for the same values."""
    from app.me.schemas import MeOut

    assert response.status_code == 200, response.text
    model = MeOut.model_validate_json(response.content)
    assert response.content == model.model_dump_json().encode()


async def test_me_body_is_the_models_json_for_every_kind_of_caller(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await factories.org(db, "县委")
    branch = await factories.org(db, "支部", parent=county)
    for actor in (
        await factories.member_actor(db, settings, branch),
        await factories.admin_actor(db, settings, county),
        await factories.resident_actor(db, settings),
        await factories.superadmin_actor(db, settings),
    ):
        _is_the_models_json(await client.get(ME, headers=actor.headers))
