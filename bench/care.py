"""Care at county scale: ``python -m bench.care``.

Seeds 50,000 members (bench.seed, COPY) with 20,000 outflows, a WeChat account for
every mobile member, 3,000 hardship cases with 9,000 help entries, then measures:

* the send of a greeting to the county's mobile members: the worker's one transaction
  that writes a recipient row, an inbox message and an outbox job per member;
* through the HTTP API (ASGI transport, real app and database): the campaign with its
  counts, the case ledger page and the case statistics of the whole county (p50).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.care.campaigns import send_due_campaigns
from app.core import clock, pii
from app.core.config import Settings
from app.core.db import create_engine
from app.identity.models import Account
from app.identity.service import issue_token_pair
from app.main import create_app
from bench.env import bench_database
from bench.ledger import ROLE_SQL, timed
from bench.load import report
from bench.seed import seed

MEMBERS = 50_000
OUTFLOWS = 20_000
CASES = 3_000
HELP_PER_CASE = 3
COMMAND = "python -m bench.care"


async def seed_care(url: str, settings: Settings, member_ids: list[int]) -> tuple[int, int]:
    """Accounts for the mobile members, cases and help; returns how many members are
    mobile and a member without an account (the county admin)."""
    rng = random.Random(16)
    ring = pii.keyring(settings)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO accounts (openid, member_id) SELECT 'bench-m' || member_id, member_id "
            "FROM outflows WHERE status = 'active'"
        )
        mobile = int(await conn.fetchval("SELECT count(*) FROM outflows WHERE status = 'active'"))
        description = ring.encrypt("住院治疗，家庭收入中断", context="care.case_description")
        today = clock.today()
        cases = [
            (
                n,
                member_id,
                rng.choice(["illness", "accident", "family", "financial", "other"]),
                description,
                "closed" if rng.random() < 0.3 else "open",
                rng.choice(["member", "admin"]),
                today - timedelta(days=rng.randint(0, 700)),
            )
            for n, member_id in enumerate(rng.sample(member_ids, CASES), start=1)
        ]
        await conn.copy_records_to_table(
            "care_cases",
            records=cases,
            columns=[
                "id",
                "member_id",
                "kind",
                "description_enc",
                "status",
                "requested_by",
                "opened_on",
            ],
        )
        forms = ["visit", "call", "funds", "crowdfunding", "mutual_aid"]
        help_rows = []
        for case_id in range(1, CASES + 1):
            for _ in range(HELP_PER_CASE):
                form = rng.choice(forms)
                amount = rng.randint(100, 5000) if form in ("funds", "crowdfunding") else None
                help_rows.append(
                    (case_id, today - timedelta(days=rng.randint(0, 300)), form, amount)
                )
        await conn.copy_records_to_table(
            "care_help", records=help_rows, columns=["case_id", "given_on", "form", "amount_yuan"]
        )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('care_cases', 'id'), "
            "(SELECT max(id) FROM care_cases))"
        )
        await conn.execute("ANALYZE")
        admin = await conn.fetchval(
            "SELECT min(id) FROM members WHERE id NOT IN (SELECT member_id FROM accounts "
            "WHERE member_id IS NOT NULL)"
        )
        return mobile, int(admin)
    finally:
        await conn.close()


async def main() -> None:
    async with bench_database("bench_care") as url:
        settings = Settings(env="test", database_url=url, wechat_simulator=True, demo_data=False)
        started = time.perf_counter()
        seeded = await seed(url, MEMBERS, settings, outflows=OUTFLOWS)
        mobile, admin = await seed_care(url, settings, seeded.member_ids)
        print(
            f"seeded {MEMBERS:,} members, {mobile:,} mobile, {CASES:,} cases "
            f"in {time.perf_counter() - started:.1f} s"
        )
        engine = create_engine(settings, url)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            await session.execute(ROLE_SQL, {"org": seeded.county_id, "member": admin})
            account = Account(openid="bench-county", member_id=admin)
            session.add(account)
            await session.flush()
            token = (await issue_token_pair(session, settings, account)).access_token
            await session.commit()
        headers = {"Authorization": f"Bearer {token}"}
        app = create_app(settings, engine=engine)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                send_on = clock.today() + timedelta(days=1)
                created = await client.post(
                    "/api/v1/care/campaigns",
                    json={
                        "org_id": seeded.county_id,
                        "title": "中秋节问候",
                        "message": "月圆人团圆",
                        "audience": "mobile_members",
                        "send_on": send_on.isoformat(),
                    },
                    headers=headers,
                )
                assert created.status_code == 201, created.text
                campaign_id = created.json()["id"]
                at = datetime(send_on.year, send_on.month, send_on.day, 2, tzinfo=UTC)  # 10:00
                async with AsyncSession(engine) as session:
                    started = time.perf_counter()
                    reached = await send_due_campaigns(session, at)
                    await session.commit()
                    took = time.perf_counter() - started
                print(f"greeting sent to {reached:,} members in {took:.2f} s")
                report(
                    "care",
                    f"greeting send, {reached:,} members (one transaction)",
                    took,
                    "s",
                    "seconds",
                    COMMAND,
                )
                for label, query in (
                    ("campaign with counts", f"/api/v1/care/campaigns/{campaign_id}"),
                    ("case ledger page, county", f"/api/v1/care/cases?org_id={seeded.county_id}"),
                    (
                        "case ledger page, open illness",
                        "/api/v1/care/cases?status=open&kind=illness",
                    ),
                    (
                        "case statistics, county",
                        f"/api/v1/care/cases/stats?org_id={seeded.county_id}",
                    ),
                ):
                    await timed(client, query, headers, 3)
                    times = sorted(await timed(client, query, headers, 30))
                    p50 = statistics.median(times)
                    print(
                        f"{label}: p50 {p50:.1f} ms, p95 {times[int(len(times) * 0.95) - 1]:.1f} ms"
                    )
                    report("care", f"{label} p50", p50, "ms", "< 100 ms", COMMAND)
                shown = (
                    await client.get(f"/api/v1/care/campaigns/{campaign_id}", headers=headers)
                ).json()
                assert shown["recipients"] == reached == mobile, shown
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
