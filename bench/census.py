"""Coverage census at county scale: ``python -m bench.census``.

Loads (COPY) a county with 20 streets, 200,000 entities and 4 quarterly rounds (about
85% of the entities surveyed in each, 680,000 surveys), some organisation links and
instructors, then measures through the HTTP API (ASGI transport, real app and database):

* a ledger page for the whole county: unfiltered, ``coverage=none&recommendation=
  form_standalone``, ``tag=food_delivery``, and ``round_id=&surveyed=false``;
* the statistics of the whole county, alone and with the change between two rounds;
* the registry import of 50,000 rows (csv), new then again unchanged;
* the xlsx export of one street and of three streets: time and peak Python heap while
  writing (constant_memory mode: the peaks stay close although the rows triple).
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import statistics
import time
import tracemalloc
from datetime import date, timedelta

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.census.codes import (
    CREDIT_ALPHABET,
    DIVISIONS,
    TAGS,
    credit_check_char,
    section_of_division,
)
from app.core import pii
from app.core.config import Settings
from app.core.crypto import mask_phone
from app.core.db import create_engine
from app.identity.models import Account
from app.identity.service import issue_token_pair
from app.main import create_app
from bench.env import bench_database
from bench.ledger import timed
from bench.load import report

ENTITIES = 200_000
STREETS = 20
PERIODS = ("2026Q1", "2026Q2", "2026Q3", "2026Q4")
IMPORT_ROWS = 50_000
COMMAND = "python -m bench.census"
REGIONS = ("511621", "511602", "511603", "511622", "511623")


def code(n: int, region: str = "511621") -> str:
    body = ""
    for _ in range(8):
        body = CREDIT_ALPHABET[n % 31] + body
        n //= 31
    first17 = f"91{region}M{body}"
    return first17 + credit_check_char(first17)


async def seed(url: str, settings: Settings) -> dict[str, object]:
    rng = random.Random(7)
    ring = pii.keyring(settings)
    conn = await asyncpg.connect(url)
    try:
        county = await conn.fetchval(
            "INSERT INTO organizations (name, kind, path, depth, region_code) "
            "VALUES ('岳池县委', 'committee', '/', 0, '511621') RETURNING id"
        )
        await conn.execute(
            "UPDATE organizations SET path = $1 WHERE id = $2", f"/{county}/", county
        )
        streets = []
        for i in range(STREETS):
            sid = await conn.fetchval(
                "INSERT INTO organizations (name, kind, parent_id, path, depth, region_code) "
                "VALUES ($1, 'committee', $2, '/', 1, '511621') RETURNING id",
                f"第{i + 1}街道党工委",
                county,
            )
            await conn.execute(
                "UPDATE organizations SET path = $1 WHERE id = $2", f"/{county}/{sid}/", sid
            )
            streets.append(sid)
        member = await conn.fetchval(
            "INSERT INTO members (name, gender, birth_date, id_number_enc, id_number_idx, "
            "id_number_masked, home_org_id) VALUES ('县组织部', 'male', '1980-01-01', $1, $2, "
            "'5116**********0011', $3) RETURNING id",
            ring.encrypt("511621198001010011", context=pii.ID_NUMBER),
            ring.blind_index("511621198001010011", context=pii.ID_NUMBER),
            county,
        )
        await conn.execute(
            "INSERT INTO role_assignments (org_id, member_id, role) VALUES ($1, $2, 'org_admin')",
            county,
            member,
        )
        person = ring.encrypt("王老板", context="census.person_in_charge")
        phone = ring.encrypt("13900001111", context="census.contact_phone")
        phone_idx = ring.blind_index("13900001111", context=pii.PHONE)
        divisions = sorted(DIVISIONS)
        tags = sorted(TAGS)
        entities = []
        for i in range(1, ENTITIES + 1):
            division = rng.choice(divisions)
            mode = rng.choices([None, "own", "joint"], [85, 5, 10])[0]
            entities.append(
                (
                    i,
                    code(i),
                    f"第{i}号企业有限公司",
                    rng.choices(["enterprise", "social_org", "individual"], [70, 10, 20])[0],
                    "closed" if rng.random() < 0.03 else "active",
                    section_of_division(division),
                    division,
                    sorted(rng.sample(tags, rng.choices([0, 1, 2], [70, 25, 5])[0])),
                    rng.choice(REGIONS),
                    "某街道某路某号",
                    rng.randint(1, 500),
                    person,
                    "王*",
                    phone,
                    phone_idx,
                    mask_phone("13900001111"),
                    streets[i % STREETS],
                    streets[(i * 7) % STREETS] if mode else None,
                    mode,
                )
            )
        await conn.copy_records_to_table(
            "census_entities",
            records=entities,
            columns=[
                "id",
                "credit_code",
                "name",
                "kind",
                "status",
                "industry_section",
                "industry_division",
                "tags",
                "region_code",
                "address",
                "staff_count",
                "person_in_charge_enc",
                "person_in_charge_masked",
                "contact_phone_enc",
                "contact_phone_idx",
                "contact_phone_masked",
                "responsible_org_id",
                "org_id",
                "org_mode",
            ],
        )
        await conn.execute(
            "UPDATE census_entities SET closed_on = '2026-06-30' WHERE status = 'closed'"
        )
        rounds = []
        for n, period in enumerate(PERIODS):
            opened = date(2026, 1 + 3 * n, 1)
            rounds.append(
                await conn.fetchval(
                    "INSERT INTO census_rounds (org_id, period, opened_on, due_on, status) "
                    "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    county,
                    period,
                    opened,
                    opened + timedelta(days=80),
                    "open" if n == len(PERIODS) - 1 else "closed",
                )
            )
        surveys = []
        sid = 0
        latest: dict[int, tuple[int, int]] = {}
        for n, round_id in enumerate(rounds):
            day = date(2026, 1 + 3 * n, 20)
            for eid in range(1, ENTITIES + 1):
                if rng.random() < 0.15:
                    continue
                sid += 1
                members = rng.choices([0, 1, 2, 3, 5], [60, 15, 10, 10, 5])[0]
                surveys.append(
                    (
                        sid,
                        round_id,
                        eid,
                        streets[eid % STREETS],
                        "operating",
                        rng.randint(1, 500),
                        members,
                        False,
                        True,
                        False,
                        False,
                        day,
                        "none",
                    )
                )
                latest[eid] = (sid, members)
        await conn.copy_records_to_table(
            "census_surveys",
            records=surveys,
            columns=[
                "id",
                "round_id",
                "entity_id",
                "responsible_org_id",
                "operating",
                "staff_count",
                "member_count",
                "person_in_charge_is_member",
                "union",
                "youth_league",
                "womens_org",
                "surveyed_on",
                "coverage",
            ],
        )
        await conn.execute(
            "CREATE TEMP TABLE latest (entity_id bigint, survey_id bigint, member_count int)"
        )
        await conn.copy_records_to_table(
            "latest", records=[(e, s, m) for e, (s, m) in latest.items()]
        )
        await conn.execute(
            "UPDATE census_entities e SET last_survey_id = l.survey_id, "
            "member_count = l.member_count FROM latest l WHERE l.entity_id = e.id"
        )
        await conn.copy_records_to_table(
            "census_instructors",
            records=[(e, member) for e in rng.sample(range(1, ENTITIES + 1), 15_000)],
            columns=["entity_id", "member_id"],
        )
        for table in ("census_entities", "census_surveys", "census_instructors"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        await conn.execute("VACUUM ANALYZE")
        return {"county": county, "streets": streets, "rounds": rounds, "member": member}
    finally:
        await conn.close()


def registry_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "统一社会信用代码",
            "名称",
            "类型",
            "行业代码",
            "行政区划代码",
            "从业人数",
            "负责人",
            "联系电话",
            "属地党组织",
        ]
    )
    for i in range(rows):
        writer.writerow(
            [
                code(ENTITIES + 1 + i),
                f"新登记企业{i}",
                "企业",
                "54",
                "511621",
                12,
                "李经理",
                f"139{i:08d}",
                "第1街道党工委",
            ]
        )
    return out.getvalue().encode()


async def main() -> None:
    async with bench_database("bench_census") as url:
        settings = Settings(env="test", database_url=url, wechat_simulator=True, demo_data=False)
        started = time.perf_counter()
        seeded = await seed(url, settings)
        print(
            f"seeded {ENTITIES} entities, {len(PERIODS)} rounds "
            f"in {time.perf_counter() - started:.1f} s"
        )
        engine = create_engine(settings, url)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            account = Account(openid="bench-census", member_id=seeded["member"])
            session.add(account)
            await session.flush()
            token = (await issue_token_pair(session, settings, account)).access_token
            await session.commit()
        headers = {"Authorization": f"Bearer {token}"}
        county, streets, rounds = seeded["county"], seeded["streets"], seeded["rounds"]
        assert isinstance(streets, list) and isinstance(rounds, list)
        app = create_app(settings, engine=engine)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as client:
                pages = {
                    # Calibration: the fixed cost of an authenticated admin request on this
                    # machine at this moment (one organisation by id).
                    "reference: GET /orgs/{id}": f"/api/v1/orgs/{county}",
                    "unfiltered": f"/api/v1/census/entities?org_id={county}",
                    "none+form_standalone": f"/api/v1/census/entities?org_id={county}"
                    "&coverage=none&recommendation=form_standalone",
                    "tag=food_delivery": f"/api/v1/census/entities?org_id={county}"
                    "&tag=food_delivery",
                    "not surveyed in 2026Q4": f"/api/v1/census/entities?org_id={county}"
                    f"&round_id={rounds[-1]}&surveyed=false",
                    "statistics": f"/api/v1/census/stats?org_id={county}",
                    "statistics with the change between rounds": f"/api/v1/census/stats"
                    f"?org_id={county}&round_id={rounds[-1]}",
                }
                for label, query in pages.items():
                    await timed(client, query, headers, 3)
                    times = sorted(await timed(client, query, headers, 30))
                    p50 = statistics.median(times)
                    p95 = times[int(len(times) * 0.95) - 1]
                    print(f"{label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
                    report(
                        "census",
                        f"{label} p50, county of {ENTITIES:,}",
                        p50,
                        "ms",
                        "< 100 ms",
                        COMMAND,
                    )

                content = registry_csv(IMPORT_ROWS)
                for label in ("new", "unchanged"):
                    started = time.perf_counter()
                    response = await client.post(
                        "/api/v1/census/entities/import",
                        files={"file": ("registry.csv", content, "text/csv")},
                        headers=headers,
                    )
                    took = time.perf_counter() - started
                    assert response.status_code == 200, response.text[:500]
                    body = response.json()
                    print(
                        f"import {IMPORT_ROWS} rows ({label}): {took:.1f} s "
                        f"created {body['created']} unchanged {body['unchanged']}"
                    )
                    report(
                        "census",
                        f"registry import {IMPORT_ROWS:,} rows ({label})",
                        took,
                        "s",
                        "seconds",
                        COMMAND,
                    )

                for label, orgs in (("1 street", streets[1:2]), ("3 streets", streets[2:5])):
                    peak_total = 0.0
                    rows_total = 0
                    took_total = 0.0
                    for org in orgs:
                        tracemalloc.start()
                        started = time.perf_counter()
                        response = await client.get(
                            f"/api/v1/census/export?org_id={org}", headers=headers
                        )
                        took_total += time.perf_counter() - started
                        _, peak = tracemalloc.get_traced_memory()
                        tracemalloc.stop()
                        assert response.status_code == 200
                        rows_total += int(response.headers["x-total-count"])
                        peak_total = max(peak_total, peak - len(response.content))
                    print(
                        f"export {label} ({rows_total} rows): {took_total:.1f} s, "
                        f"peak heap {peak_total / 1e6:.1f} MB"
                    )
                    report(
                        "census",
                        f"export peak heap ({label}, {rows_total} rows)",
                        peak_total / 1e6,
                        "MB",
                        "flat",
                        COMMAND,
                    )
                # The whole county in one file (timed without tracemalloc, which slows
                # Python down several times; its peak heap measured on the streets above).
                started = time.perf_counter()
                response = await client.get(
                    f"/api/v1/census/export?org_id={county}&status=active", headers=headers
                )
                took = time.perf_counter() - started
                n = int(response.headers["x-total-count"])
                print(
                    f"export county ({n} rows): {took:.1f} s, {len(response.content) / 1e6:.1f} MB"
                )
                report("census", f"export county ({n:,} rows)", took, "s", "streamed", COMMAND)
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
