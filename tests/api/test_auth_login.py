"""WeChat login: accounts on first login, WeChat's error codes, rate limits, admin audit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.core.ratelimit import Policy, wait_text
from app.core.security import decode_access_token
from app.identity import service
from app.identity.models import Account, RefreshToken
from app.wechat.simulator import WeChatSimulator
from tests import factories
from tests.conftest import problem

LOGIN = "/api/v1/auth/wechat/login"


_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def openid() -> str:
    """A fresh openid without digit runs (the leak scanner reads logged WeChat URLs)."""
    return "o" + uuid.uuid4().hex[:20].translate(_LETTERS)


async def test_first_login_creates_a_resident_account(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    oid = openid()
    response = await client.post(LOGIN, json={"code": f"{oid}.1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_s
    assert body["refresh_token"].startswith("rt_")
    assert body["account"]["kind"] == "resident"
    assert body["account"]["member_id"] is None

    account = (await db.execute(select(Account).where(Account.openid == oid))).scalar_one()
    assert body["account"]["id"] == account.id
    assert account.unionid == f"u-{oid}"
    assert account.last_login_at is not None
    claims = decode_access_token(settings, body["access_token"])
    assert (claims.account_id, claims.kind, claims.member_id) == (account.id, "resident", None)
    tokens = (
        (await db.execute(select(RefreshToken).where(RefreshToken.account_id == account.id)))
        .scalars()
        .all()
    )
    assert len(tokens) == 1 and tokens[0].used_at is None
    # Only the hash is stored, never the token itself.
    assert body["refresh_token"].encode() != tokens[0].token_hash

    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["account"]["id"] == account.id


async def test_second_login_reuses_the_account_in_a_new_family(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    oid = openid()
    first = (await client.post(LOGIN, json={"code": f"{oid}.1"})).json()
    second = (await client.post(LOGIN, json={"code": f"{oid}.2"})).json()
    assert first["account"]["id"] == second["account"]["id"]
    families = (
        await db.execute(
            select(RefreshToken.family_id).where(RefreshToken.account_id == first["account"]["id"])
        )
    ).all()
    assert len({f for (f,) in families}) == 2
    count = (await db.execute(select(Account).where(Account.openid == oid))).scalars().all()
    assert len(count) == 1


async def test_bound_member_logs_in_as_member_without_audit(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await factories.org(db, "登录县委")
    m = await factories.member(db, settings, county, "赵六")
    oid = openid()
    acc = await factories.account(db, member=m, openid=oid)
    body = (await client.post(LOGIN, json={"code": f"{oid}.x"})).json()
    assert body["account"] == {"id": acc.id, "kind": "member", "member_id": m.id}
    audits = (
        (await db.execute(select(AuditEntry).where(AuditEntry.actor_account_id == acc.id)))
        .scalars()
        .all()
    )
    assert audits == []


async def test_admin_login_is_audited_per_organisation(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await factories.org(db, "审计县委")
    town = await factories.org(db, "审计镇党委", parent=county, kind="committee")
    m = await factories.member(db, settings, county, "钱七")
    await factories.grant(db, m, county, "org_admin")
    await factories.grant(db, m, town, "branch_admin")
    oid = openid()
    acc = await factories.account(db, member=m, openid=oid)
    body = (await client.post(LOGIN, json={"code": oid})).json()
    assert body["account"]["kind"] == "admin"
    claims = decode_access_token(settings, body["access_token"])
    assert {(r.role, r.org_id) for r in claims.roles} == {
        ("org_admin", county.id),
        ("branch_admin", town.id),
    }
    audits = (
        (
            await db.execute(
                select(AuditEntry)
                .where(AuditEntry.actor_account_id == acc.id)
                .order_by(AuditEntry.org_id)
            )
        )
        .scalars()
        .all()
    )
    assert [(a.action, a.org_id) for a in audits] == [
        ("auth.login", county.id),
        ("auth.login", town.id),
    ]
    assert audits[0].ip == "203.0.113.7"
    assert audits[0].request_id


async def test_superadmin_login_is_audited_without_org(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    oid = openid()
    acc = await factories.account(db, superadmin=True, openid=oid)
    body = (await client.post(LOGIN, json={"code": oid})).json()
    assert body["account"]["kind"] == "admin"
    entry = (
        await db.execute(select(AuditEntry).where(AuditEntry.actor_account_id == acc.id))
    ).scalar_one()
    assert (entry.action, entry.org_id, entry.detail["superadmin"]) == ("auth.login", None, True)


async def test_disabled_account_cannot_log_in(client: httpx.AsyncClient, db: AsyncSession) -> None:
    oid = openid()
    acc = await factories.account(db, openid=oid)
    acc.disabled_at = datetime.now(UTC)
    await db.commit()  # survives the failed request's rollback
    account_id = acc.id
    problem(await client.post(LOGIN, json={"code": oid}), 403, "auth.account_disabled")
    tokens = (
        await db.execute(select(RefreshToken).where(RefreshToken.account_id == account_id))
    ).all()
    assert tokens == []
    assert (await db.get(Account, account_id)) is not None


async def test_bad_and_reused_codes_are_401(
    client: httpx.AsyncClient, simulator: WeChatSimulator
) -> None:
    problem(await client.post(LOGIN, json={"code": "bad-code"}), 401, "auth.invalid_code")
    oid = openid()
    assert (await client.post(LOGIN, json={"code": oid})).status_code == 200
    reused = await client.post(LOGIN, json={"code": oid})
    problem(reused, 401, "auth.invalid_code")
    assert reused.headers["www-authenticate"] == "Bearer"


async def test_blocked_user_is_403(client: httpx.AsyncClient, db: AsyncSession) -> None:
    problem(await client.post(LOGIN, json={"code": "blocked-user"}), 403, "auth.blocked")
    assert (
        await db.execute(select(Account).where(Account.openid.like("blocked%")))
    ).first() is None


async def test_wechat_busy_is_retried(
    client: httpx.AsyncClient, simulator: WeChatSimulator
) -> None:
    simulator.fail_next("jscode2session", -1)
    before = simulator.calls.get("jscode2session", 0)
    response = await client.post(LOGIN, json={"code": openid()})
    assert response.status_code == 200, response.text
    assert simulator.calls["jscode2session"] - before == 2


async def test_wechat_rate_limit_is_429(
    client: httpx.AsyncClient, simulator: WeChatSimulator
) -> None:
    simulator.fail_next("jscode2session", 45011)
    response = await client.post(LOGIN, json={"code": openid()})
    problem(response, 429, "wechat.rate_limited")
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    "failures",
    [("http500", "http500", "http500"), (-1, -1, -1), ("garbage",), (40125,)],
    ids=["5xx", "busy", "garbage", "bad-secret"],
)
async def test_wechat_down_is_503_never_500(
    client: httpx.AsyncClient, simulator: WeChatSimulator, failures: tuple[object, ...]
) -> None:
    simulator.fail_next("jscode2session", *failures)
    response = await client.post(LOGIN, json={"code": openid()})
    problem(response, 503, "wechat.unavailable")
    assert int(response.headers["retry-after"]) > 0
    simulator.failures.clear()


async def test_wechat_unreachable_is_503(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    wechat = app.state.wechat
    original, original_backoff = wechat.http, wechat.backoff_s
    wechat.http = httpx.AsyncClient(
        transport=httpx.MockTransport(refuse), base_url="http://wechat.invalid"
    )
    wechat.backoff_s = 0.0
    try:
        response = await client.post(LOGIN, json={"code": openid()})
    finally:
        await wechat.http.aclose()
        wechat.http, wechat.backoff_s = original, original_backoff
    problem(response, 503, "wechat.unavailable")


@pytest.mark.parametrize(
    "payload", [{}, {"code": ""}, {"code": "x" * 129}, {"code": "a", "openid": "forged"}]
)
async def test_login_body_is_validated(client: httpx.AsyncClient, payload: dict[str, str]) -> None:
    body = problem(await client.post(LOGIN, json=payload), 422, "validation.failed")
    assert body["errors"][0]["field"] in ("code", "openid")


async def test_login_is_rate_limited_per_address(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        service, "LOGIN_PER_IP", Policy(f"test-login-ip-{uuid.uuid4().hex[:8]}", 2, 60)
    )
    transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for _ in range(2):
            assert (await c.post(LOGIN, json={"code": openid()})).status_code == 200
        # Bad codes count too: the limit is checked before WeChat is asked.
        limited = await c.post(LOGIN, json={"code": "bad-code"})
    body = problem(limited, 429, "rate_limited")
    seconds = int(limited.headers["retry-after"])
    assert 0 < seconds <= 60 and body["retry_after_s"] == seconds
    assert body["detail"] == f"操作过于频繁，请{wait_text(seconds)}后再试"


async def test_login_is_rate_limited_per_openid(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        service, "LOGIN_PER_OPENID", Policy(f"test-login-oid-{uuid.uuid4().hex[:8]}", 2, 60)
    )
    oid = openid()
    for n in range(2):
        assert (await client.post(LOGIN, json={"code": f"{oid}.{n}"})).status_code == 200
    problem(await client.post(LOGIN, json={"code": f"{oid}.9"}), 429, "rate_limited")
    # Another user from the same address is not affected.
    assert (await client.post(LOGIN, json={"code": openid()})).status_code == 200


async def test_wechat_answering_html_is_503(app: FastAPI, client: httpx.AsyncClient) -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>维护中</html>")

    wechat = app.state.wechat
    original, original_backoff = wechat.http, wechat.backoff_s
    wechat.http = httpx.AsyncClient(
        transport=httpx.MockTransport(html), base_url="http://wechat.invalid"
    )
    wechat.backoff_s = 0.0
    try:
        response = await client.post(LOGIN, json={"code": openid()})
    finally:
        await wechat.http.aclose()
        wechat.http, wechat.backoff_s = original, original_backoff
    problem(response, 503, "wechat.unavailable")


async def test_simultaneous_first_logins_create_one_account(
    committing_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    oid = openid()
    responses = await asyncio.gather(
        *(committing_client.post(LOGIN, json={"code": f"{oid}.{n}"}) for n in range(5))
    )
    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    assert len({r.json()["account"]["id"] for r in responses}) == 1
    async with AsyncSession(engine) as s:
        accounts = (await s.execute(select(Account).where(Account.openid == oid))).all()
        families = (
            await s.execute(
                select(RefreshToken.family_id).join(Account).where(Account.openid == oid)
            )
        ).all()
    assert len(accounts) == 1
    assert len({f for (f,) in families}) == 5
