"""Outflow ledger and export at scale: ``python -m bench.ledger``.

Builds 100,000 members (bench.seed, COPY) and 20,000 outflows (COPY) in a scratch
database, then measures through the HTTP API (ASGI transport, real app and database):

* the ledger page filtered by flag for the whole county subtree (county admin) and for
  one town subtree (town admin), median and p95 of repeated requests;
* the xlsx export of the whole county ledger (20,000 rows), its time and the peak
  Python heap while writing (constant_memory mode: independent of the row count).
"""

from __future__ import annotations

import asyncio
import io
import random
import statistics
import time
import tracemalloc
from datetime import timedelta

import asyncpg
import httpx
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, pii
from app.core.config import Settings
from app.core.crypto import mask_phone
from app.core.db import create_engine
from app.identity.models import Account
from app.identity.service import issue_token_pair
from app.main import create_app
from bench.env import bench_database
from bench.load import report
from bench.seed import DESTINATIONS, seed

MEMBERS = 100_000
OUTFLOWS = 20_000
COMMAND = "python -m bench.ledger"
ROLE_SQL = text(
    "INSERT INTO role_assignments (org_id, member_id, role) VALUES (:org, :member, 'org_admin')"
)


async def seed_outflows(url: str, settings: Settings, member_ids: list[int]) -> None:
    rng = random.Random(11)
    ring = pii.keyring(settings)
    today = clock.today()
    conn = await asyncpg.connect(url)
    try:
        homes = dict(
            await conn.fetch("SELECT id, home_org_id FROM members WHERE id = ANY($1)", member_ids)
        )
        phone_enc = ring.encrypt("13900001111", context="outflow.contact_phone")
        records = []
        for seq, member_id in enumerate(rng.sample(member_ids, OUTFLOWS), start=1):
            status = rng.choices(["active", "returned", "pending"], [70, 25, 5])[0]
            approved = today - timedelta(days=rng.randint(1, 400))
            departed = approved - timedelta(days=rng.randint(0, 10))
            active = status == "active"
            last_contact = approved + timedelta(
                days=rng.randint(0, max(0, (today - approved).days))
            )
            records.append(
                (
                    seq,
                    member_id,
                    homes[member_id],
                    status,
                    rng.choice(["work", "work", "business", "study", "other"]),
                    rng.choice(DESTINATIONS),
                    "广东省某市某区某街道",
                    "某公司",
                    phone_enc,
                    mask_phone("13900001111"),
                    departed,
                    departed + timedelta(days=365),
                    f"440883-{approved.year}-{seq:06d}" if status != "pending" else None,
                    "accepted" if active and rng.random() < 0.6 else "none",
                    last_contact if active else None,
                    approved + timedelta(days=30) if active else None,
                    last_contact + timedelta(days=90) if active else None,
                    last_contact + timedelta(days=180) if active else None,
                    departed + timedelta(days=183) if active else None,
                    today - timedelta(days=rng.randint(0, 30)) if status == "returned" else None,
                )
            )
        await conn.copy_records_to_table(
            "outflows",
            records=records,
            columns=[
                "id",
                "member_id",
                "home_org_id",
                "status",
                "reason",
                "destination_region_code",
                "destination_address",
                "employer",
                "contact_phone_enc",
                "contact_phone_masked",
                "departed_on",
                "expected_return_on",
                "certificate_no",
                "checkin_status",
                "last_contact_on",
                "checkin_due_on",
                "report_due_on",
                "lost_contact_on",
                "transfer_suggest_on",
                "returned_on",
            ],
        )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('outflows', 'id'), "
            "(SELECT max(id) FROM outflows))"
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def timed(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], n: int
) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(url, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return times


async def main() -> None:
    async with bench_database("bench_ledger") as url:
        settings = Settings(env="test", database_url=url, wechat_simulator=True, demo_data=False)
        started = time.perf_counter()
        seeded = await seed(url, MEMBERS, settings)
        await seed_outflows(url, settings, seeded.member_ids)
        took = time.perf_counter() - started
        print(f"seeded {MEMBERS} members, {OUTFLOWS} outflows in {took:.1f} s")
        engine = create_engine(settings, url)
        town_id = seeded.org_ids[1]
        async with AsyncSession(engine, expire_on_commit=False) as session:
            tokens = {}
            for label, org_id, member_id in (
                ("county", seeded.county_id, seeded.member_ids[0]),
                ("town", town_id, seeded.member_ids[1]),
            ):
                await session.execute(ROLE_SQL, {"org": org_id, "member": member_id})
                account = Account(openid=f"bench-{label}", member_id=member_id)
                session.add(account)
                await session.flush()
                tokens[label] = (await issue_token_pair(session, settings, account)).access_token
            await session.commit()
        app = create_app(settings, engine=engine)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for label, org_id in (("county", seeded.county_id), ("town", town_id)):
                    headers = {"Authorization": f"Bearer {tokens[label]}"}
                    for flag in ("lost_contact", "report_overdue"):
                        query = f"/api/v1/outflows?org_id={org_id}&flag={flag}&limit=20"
                        await timed(client, query, headers, 3)  # warm up
                        times = sorted(await timed(client, query, headers, 40))
                        p50 = statistics.median(times)
                        p95 = times[int(len(times) * 0.95) - 1]
                        print(f"ledger {label} flag={flag}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
                        report(
                            "ledger",
                            f"ledger page p50 ({label}, flag={flag})",
                            p50,
                            "ms",
                            "< 100 ms",
                            COMMAND,
                        )
                headers = {"Authorization": f"Bearer {tokens['county']}"}
                export_url = f"/api/v1/outflows/export?org_id={seeded.county_id}"
                started = time.perf_counter()
                response = await client.get(export_url, headers=headers)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.text
                rows = int(response.headers["x-total-count"])
                sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
                assert sheet is not None
                assert sheet.max_row == rows + 2
                print(
                    f"export {rows} rows: {elapsed:.2f} s ({elapsed / rows * 1e6:.0f} us/row), "
                    f"{len(response.content) / 1e6:.1f} MB"
                )
                report("ledger", f"export {rows} rows", elapsed, "s", "streamed", COMMAND)
                # Peak Python heap while exporting (tracemalloc, slower): the returned
                # ledger (~5,000 rows) versus everything (20,000). Constant memory means
                # the two are close although the row counts differ 4x; the response body
                # (held whole by the test client) is subtracted.
                peaks = {}
                for label, query in (("returned", "&status=returned"), ("all", "")):
                    tracemalloc.start()
                    resp = await client.get(export_url + query, headers=headers)
                    _, peak = tracemalloc.get_traced_memory()
                    tracemalloc.stop()
                    peaks[label] = (int(resp.headers["x-total-count"]), peak - len(resp.content))
                for label, (n, peak) in peaks.items():
                    print(f"export peak heap, {label} ({n} rows): {peak / 1e6:.1f} MB")
                    report(
                        "ledger", f"export peak heap ({n} rows)", peak / 1e6, "MB", "flat", COMMAND
                    )
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
