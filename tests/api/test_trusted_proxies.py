"""Behind a load balancer: X-Forwarded-For is believed only from APP_TRUSTED_PROXIES.

The login rate limit per address must count each client behind the balancer on his
own, and a client must not pick his own bucket by sending the header himself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.core.ratelimit import Policy
from app.identity import service
from app.main import create_app
from tests import factories as f
from tests.conftest import problem

LOGIN = "/api/v1/auth/wechat/login"
BALANCER = "10.20.0.5"


@pytest.fixture
async def proxied_app(
    app: FastAPI, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[FastAPI]:
    """The test app's wiring, configured with APP_TRUSTED_PROXIES=10.20.0.0/16."""
    configured = settings.model_copy(
        update={"trusted_proxies": Settings(trusted_proxies="10.20.0.0/16").trusted_proxies}
    )
    application = create_app(configured, engine=engine)
    application.dependency_overrides = app.dependency_overrides
    application.state.driver_pool = app.state.driver_pool
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def _from(app: FastAPI, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _code() -> str:
    return f"proxy-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def tight_login_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        service, "LOGIN_PER_IP", Policy(f"test-proxy-ip-{uuid.uuid4().hex[:8]}", 2, 60)
    )


async def test_clients_behind_the_balancer_have_their_own_buckets(
    proxied_app: FastAPI, tight_login_limit: None
) -> None:
    async with _from(proxied_app, BALANCER) as balancer:
        for client_ip in ("198.51.100.1", "198.51.100.2"):
            headers = {"X-Forwarded-For": client_ip}
            for _ in range(2):
                ok = await balancer.post(LOGIN, json={"code": _code()}, headers=headers)
                assert ok.status_code == 200, ok.text
        # The third login of the first client is his own third, not the balancer's fifth.
        limited = await balancer.post(
            LOGIN, json={"code": _code()}, headers={"X-Forwarded-For": "198.51.100.1"}
        )
        problem(limited, 429, "rate_limited")
        # A third client still gets in.
        fresh = await balancer.post(
            LOGIN, json={"code": _code()}, headers={"X-Forwarded-For": "198.51.100.3"}
        )
        assert fresh.status_code == 200


async def test_the_rightmost_untrusted_hop_is_the_client(
    proxied_app: FastAPI, tight_login_limit: None
) -> None:
    """A client who prepends addresses of his own still lands in his own bucket: the
    balancer appended the address it saw, and only that one is believed."""
    async with _from(proxied_app, BALANCER) as balancer:
        for n in range(2):
            spoofed = {"X-Forwarded-For": f"192.0.2.{n}, 10.20.0.9, 198.51.100.7"}
            ok = await balancer.post(LOGIN, json={"code": _code()}, headers=spoofed)
            assert ok.status_code == 200
        # An inner hop of our own network (10.20.0.9, a second proxy) is skipped too.
        limited = await balancer.post(
            LOGIN,
            json={"code": _code()},
            headers={"X-Forwarded-For": "192.0.2.99, 198.51.100.7, 10.20.0.9"},
        )
        problem(limited, 429, "rate_limited")


async def test_an_untrusted_peer_cannot_choose_his_address(
    proxied_app: FastAPI, tight_login_limit: None
) -> None:
    async with _from(proxied_app, "203.0.113.50") as direct:
        for n in range(2):
            ok = await direct.post(
                LOGIN, json={"code": _code()}, headers={"X-Forwarded-For": f"192.0.2.{n}"}
            )
            assert ok.status_code == 200
        limited = await direct.post(
            LOGIN, json={"code": _code()}, headers={"X-Forwarded-For": "192.0.2.77"}
        )
        problem(limited, 429, "rate_limited")


async def test_audit_records_the_client_behind_the_balancer(
    proxied_app: FastAPI, db: AsyncSession, settings: Settings
) -> None:
    county = await f.org(db, "代理测试县委")
    admin = await f.admin_actor(db, settings, county)
    async with _from(proxied_app, BALANCER) as balancer:
        created = await balancer.post(
            "/api/v1/orgs",
            json={"name": "代理支部", "kind": "branch", "parent_id": county.id},
            headers={**admin.headers, "X-Forwarded-For": "198.51.100.44"},
        )
    assert created.status_code == 201, created.text
    entry = (
        await db.execute(
            select(AuditEntry).where(
                AuditEntry.action == "org.created", AuditEntry.subject_id == created.json()["id"]
            )
        )
    ).scalar_one()
    assert entry.ip == "198.51.100.44"


def test_trusted_proxies_setting_takes_cidrs_and_addresses() -> None:
    parsed = Settings(trusted_proxies="10.0.0.0/8, 192.168.1.1,fd00::/8").trusted_proxies
    assert [str(n) for n in parsed] == ["10.0.0.0/8", "192.168.1.1/32", "fd00::/8"]
    assert [str(n) for n in Settings(trusted_proxies='["10.0.0.0/8"]').trusted_proxies] == [
        "10.0.0.0/8"
    ]
    assert Settings(trusted_proxies="").trusted_proxies == []
