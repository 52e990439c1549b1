"""Inflow ledger at scale: ``python -m bench.inflows``.

Builds a county with 20 listed committees and 50,000 inflow rows (COPY) in a scratch
database, then measures through the HTTP API (ASGI transport, real app and database):
the ledger page (whole county, filtered by flag, and searched by name), the statistics,
and the xlsx export of one committee's ledger.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import timedelta

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, pii
from app.core.config import Settings
from app.core.crypto import mask_id_number, mask_phone
from app.core.db import create_engine
from app.identity.models import Account
from app.identity.service import issue_token_pair
from app.main import create_app
from app.members.service import create_member
from app.organization.models import RoleAssignment
from app.organization.service import create_organization
from bench.env import bench_database
from bench.load import report
from tests.factories import unique_id_number

ROWS = 50_000
COMMITTEES = 20
COMMAND = "python -m bench.inflows"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


async def seed_inflows(url: str, settings: Settings, org_ids: list[int]) -> None:
    rng = random.Random(16)
    ring = pii.keyring(settings)
    now = clock.now()
    phone_enc = ring.encrypt("13900001111", context="inflow.phone")
    records = []
    for seq in range(1, ROWS + 1):
        number = unique_id_number()
        status = rng.choices(
            ["pending", "verified", "rejected", "withdrawn", "candidate"], [15, 60, 10, 5, 10]
        )[0]
        created = now - timedelta(days=rng.randint(0, 400))
        decided = status in ("verified", "rejected")
        records.append(
            (
                seq,
                rng.choice(org_ids),
                "census" if status == "candidate" else "declaration",
                status,
                rng.choice(SURNAMES) + rng.choice(SURNAMES) + str(seq % 97),
                ring.encrypt(number, context="inflow.id_number"),
                # Distinct per row (the unique index of open rows); not the real index.
                seq.to_bytes(8, "big"),
                mask_id_number(number),
                phone_enc if status != "candidate" else None,
                mask_phone("13900001111") if status != "candidate" else None,
                "某省某县某村党支部",
                rng.choice(["430421", "360702", "450902", "511621", "500103"]),
                "某公司",
                (created - timedelta(days=rng.randint(0, 60))).date(),
                created + timedelta(days=3) if decided else None,
                created,
            )
        )
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "inflows",
            records=records,
            columns=[
                "id",
                "org_id",
                "source",
                "status",
                "name",
                "id_number_enc",
                "id_number_idx",
                "id_number_masked",
                "phone_enc",
                "phone_masked",
                "home_org_name",
                "home_region_code",
                "employer",
                "arrived_on",
                "decided_at",
                "created_at",
            ],
        )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('inflows', 'id'), (SELECT max(id) FROM inflows))"
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def timed(client: httpx.AsyncClient, url: str, headers: dict[str, str], n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(url, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(sorted(times))


async def main() -> None:
    async with bench_database("bench_inflows") as url:
        settings = Settings(env="test", database_url=url, wechat_simulator=True, demo_data=False)
        engine = create_engine(settings, url)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            county = await create_organization(
                session, name="县委", kind="committee", parent_id=None, region_code="440106"
            )
            org_ids = [
                (
                    await create_organization(
                        session,
                        name=f"商圈党委{i}",
                        kind="committee",
                        parent_id=county.id,
                        region_code="440106",
                        listed=True,
                    )
                ).id
                for i in range(COMMITTEES)
            ]
            admin = await create_member(
                session,
                settings,
                name="县委管理员",
                id_number=unique_id_number(),
                phone=None,
                home_org_id=county.id,
            )
            session.add(RoleAssignment(org_id=county.id, member_id=admin.id, role="org_admin"))
            account = Account(openid="bench-inflows", member_id=admin.id)
            session.add(account)
            await session.flush()
            token = (await issue_token_pair(session, settings, account)).access_token
            await session.commit()
        started = time.perf_counter()
        await seed_inflows(url, settings, org_ids)
        print(f"seeded {ROWS} inflows in {time.perf_counter() - started:.1f} s")
        app = create_app(settings, engine=engine)
        headers = {"Authorization": f"Bearer {token}"}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for label, query in (
                    (
                        "page, flag=transfer_suggested",
                        f"org_id={county.id}&flag=transfer_suggested",
                    ),
                    ("page, flag=verify_overdue", f"org_id={county.id}&flag=verify_overdue"),
                    ("page, q=name", f"org_id={county.id}&q=王李"),
                    ("stats", None),
                ):
                    url_ = (
                        f"/api/v1/inflows/stats?org_id={county.id}"
                        if query is None
                        else f"/api/v1/inflows?{query}&limit=20"
                    )
                    await timed(client, url_, headers, 3)
                    p50 = await timed(client, url_, headers, 30)
                    print(f"{label}: p50 {p50:.1f} ms")
                    report("inflows", f"inflow ledger {label} p50", p50, "ms", "< 100 ms", COMMAND)
                started = time.perf_counter()
                response = await client.get(
                    f"/api/v1/inflows/export?org_id={org_ids[0]}", headers=headers
                )
                elapsed = time.perf_counter() - started
                rows = int(response.headers["x-total-count"])
                print(f"export {rows} rows: {elapsed:.2f} s")
                report("inflows", f"export {rows} rows", elapsed, "s", "streamed", COMMAND)
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
