"""Realistic data for benchmarks: ``python -m bench.seed --members 100000 [--url URL]``.

A county-like tree (county committee → 20 town committees → 100 general branches →
2,000 branches, plus mobile and business-district organisations), members with encrypted
personal data, and, for the domains whose tables exist, outflows with reports, credit
ledger rows and service orders. Loaded with COPY.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import asyncpg

from app.core import pii
from app.core.clock import SHANGHAI, shanghai_day
from app.core.config import Settings
from app.core.crypto import mask_id_number, mask_phone
from app.identity.validators import id_check_digit
from app.mobility.rules import merge_rules, recompute_due_dates

REGION = "440883"
DESTINATIONS = ["440106", "440305", "440304", "440604", "441302", "460106", "450103", "310115"]


@dataclass
class Seeded:
    county_id: int
    org_ids: list[int] = field(default_factory=list)
    branch_ids: list[int] = field(default_factory=list)
    member_ids: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


async def _next_ids(conn: asyncpg.Connection, table: str, n: int) -> list[int]:
    rows = await conn.fetch(
        f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id "
        "FROM generate_series(1, $1)",
        n,
    )
    return [r["id"] for r in rows]


async def seed_orgs(
    conn: asyncpg.Connection, towns: int = 20, generals: int = 5, branches: int = 20
) -> Seeded:
    total = 1 + towns + towns * generals + towns * generals * branches + 15
    ids = iter(await _next_ids(conn, "organizations", total))
    records: list[tuple[object, ...]] = []
    county = next(ids)
    seeded = Seeded(county_id=county)
    records.append((county, "基准测试市委", "committee", None, None, f"/{county}/", 0, REGION))
    for t in range(towns):
        town = next(ids)
        town_path = f"/{county}/{town}/"
        records.append((town, f"第{t + 1}镇党委", "committee", None, county, town_path, 1, REGION))
        for g in range(generals):
            general = next(ids)
            general_path = f"{town_path}{general}/"
            records.append(
                (
                    general,
                    f"第{t + 1}镇第{g + 1}党总支",
                    "general_branch",
                    None,
                    town,
                    general_path,
                    2,
                    REGION,
                )
            )
            for b in range(branches):
                branch = next(ids)
                records.append(
                    (
                        branch,
                        f"第{t + 1}镇{g + 1}-{b + 1}村党支部",
                        "branch",
                        None,
                        general,
                        f"{general_path}{branch}/",
                        3,
                        REGION,
                    )
                )
                seeded.branch_ids.append(branch)
    for i in range(10):
        mobile = next(ids)
        records.append(
            (
                mobile,
                f"驻外流动党员第{i + 1}支部",
                "branch",
                "mobile",
                county,
                f"/{county}/{mobile}/",
                1,
                DESTINATIONS[i % len(DESTINATIONS)],
            )
        )
        seeded.branch_ids.append(mobile)
    for i in range(5):
        district = next(ids)
        records.append(
            (
                district,
                f"商圈党委{i + 1}",
                "committee",
                "business_district",
                None,
                f"/{district}/",
                0,
                DESTINATIONS[i],
            )
        )
    await conn.copy_records_to_table(
        "organizations",
        records=records,
        columns=["id", "name", "kind", "host", "parent_id", "path", "depth", "region_code"],
    )
    seeded.org_ids = [r[0] for r in records]  # type: ignore[misc]
    return seeded


def _id_numbers(n: int) -> list[str]:
    out = []
    day = date(1950, 1, 1)
    order = 0
    for _ in range(n):
        first17 = f"{REGION}{day:%Y%m%d}{order:03d}"
        out.append(first17 + id_check_digit(first17))
        order += 1
        if order == 1000:
            order = 0
            day += timedelta(days=1)
    return out


SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英建华国庆志红海燕玉梅"


async def seed_members(
    conn: asyncpg.Connection, settings: Settings, seeded: Seeded, count: int
) -> None:
    ring = pii.keyring(settings)
    rng = random.Random(7)
    ids = await _next_ids(conn, "members", count)
    numbers = _id_numbers(count)
    records = []
    for member_id, number in zip(ids, numbers, strict=True):
        phone = f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}"
        gender = "male" if int(number[16]) % 2 else "female"
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        name = (
            rng.choice(SURNAMES)
            + rng.choice(GIVEN)
            + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
        )
        records.append(
            (
                member_id,
                name,
                gender,
                birth,
                ring.encrypt(number, context=pii.ID_NUMBER),
                ring.blind_index(number, context=pii.ID_NUMBER),
                mask_id_number(number),
                ring.encrypt(phone, context=pii.PHONE),
                ring.blind_index(phone, context=pii.PHONE),
                mask_phone(phone),
                rng.choice(seeded.branch_ids),
                "full" if rng.random() < 0.95 else "probationary",
            )
        )
    await conn.copy_records_to_table(
        "members",
        records=records,
        columns=[
            "id",
            "name",
            "gender",
            "birth_date",
            "id_number_enc",
            "id_number_idx",
            "id_number_masked",
            "phone_enc",
            "phone_idx",
            "phone_masked",
            "home_org_id",
            "status",
        ],
    )
    seeded.member_ids = ids


async def _reserve_ids(conn: asyncpg.Connection, table: str, n: int) -> range:
    """``n`` consecutive ids taken from the table's identity sequence in one round trip."""
    first = await conn.fetchval(
        f"SELECT setval(seq, nextval(seq) + $1 - 1) - $1 + 1 "
        f"FROM CAST(pg_get_serial_sequence('{table}', 'id') AS regclass) AS seq",
        n,
    )
    return range(first, first + n)


def _at(day: date, rng: random.Random, start_hour: int = 7, end_hour: int = 22) -> datetime:
    """A moment of an Asia/Shanghai day, as an aware timestamp."""
    moment = datetime.combine(day, clock(0), tzinfo=SHANGHAI)
    return moment + timedelta(seconds=rng.randint(start_hour * 3600, end_hour * 3600 - 1))


# ------------------------------------------------------------------ mobility

OUTFLOW_COLUMNS = [
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
    "decided_at",
    "reject_reason",
    "checkin_status",
    "checkin_org_id",
    "checkin_requested_at",
    "checkin_decided_at",
    "last_contact_on",
    "last_report_at",
    "last_report_region_code",
    "last_report_far",
    "checkin_due_on",
    "report_due_on",
    "lost_contact_on",
    "transfer_suggest_on",
    "returned_on",
    "created_at",
]
REPORT_COLUMNS = [
    "id",
    "outflow_id",
    "member_id",
    "lat",
    "lon",
    "region_code",
    "distance_m",
    "far_from_destination",
    "note",
    "reported_on",
    "created_at",
]
# Rough centroids of DESTINATIONS (lat, lon).
CENTROIDS = {
    "440106": (23.12, 113.36),
    "440305": (22.53, 113.93),
    "440304": (22.54, 114.05),
    "440604": (23.02, 113.12),
    "441302": (23.08, 114.41),
    "460106": (20.02, 110.20),
    "450103": (22.82, 108.32),
    "310115": (31.22, 121.54),
}


async def seed_outflows(
    conn: asyncpg.Connection, settings: Settings, seeded: Seeded, count: int
) -> tuple[int, int]:
    """``count`` outflows of distinct members (75% active, 20% returned, 3% pending, 2%
    rejected) with 1-3 whereabouts reports each for the approved ones. Flag dates come
    from :func:`app.mobility.rules.recompute_due_dates` with the default rules, so the
    ledger's flag filters see what the service would have stored. Returns (outflows,
    reports)."""
    rng = random.Random(11)
    ring = pii.keyring(settings)
    rules = merge_rules([])
    now = now_utc()
    today = shanghai_day(now)
    count = min(count, len(seeded.member_ids))
    members = rng.sample(seeded.member_ids, count)
    homes = dict(
        await conn.fetch("SELECT id, home_org_id FROM members WHERE id = ANY($1)", members)
    )
    mobile_ids = seeded.branch_ids[-10:]
    mobile_region = {m: DESTINATIONS[i % len(DESTINATIONS)] for i, m in enumerate(mobile_ids)}
    phone = "13900001111"
    phone_enc = ring.encrypt(phone, context="outflow.contact_phone")
    outflow_ids = await _reserve_ids(conn, "outflows", count)
    planned: list[tuple[int, int, date, date, str, list[date]]] = []
    outflows = []
    for outflow_id, member_id in zip(outflow_ids, members, strict=True):
        status = rng.choices(["active", "returned", "pending", "rejected"], [75, 20, 3, 2])[0]
        requested = today - timedelta(days=rng.randint(1, 420))
        departed = requested + timedelta(days=rng.randint(0, 10))
        expected = departed + timedelta(days=rng.choice([90, 180, 365, 730]))
        destination = rng.choice(DESTINATIONS)
        decided_on = requested + timedelta(days=rng.randint(0, 3))
        decided_at = None
        if status != "pending":
            decided_at = min(now, _at(min(decided_on, today), rng, 8, 18))
        o = SimpleNamespace(
            status=status,
            decided_at=decided_at,
            checkin_status="none",
            relocated_on=None,
            last_report_at=None,
            last_contact_on=None,
            departed_on=departed,
            checkin_due_on=None,
            report_due_on=None,
            lost_contact_on=None,
            transfer_suggest_on=None,
        )
        approved = status in ("active", "returned")
        returned_on = None
        if status == "returned":
            returned_on = min(today, decided_on + timedelta(days=rng.randint(1, 300)))
        end = returned_on or today
        report_days: list[date] = []
        if approved and decided_at is not None:
            approved_on = shanghai_day(decided_at)
            span = (end - approved_on).days
            if span > 0:
                n = rng.randint(1, 3)
                report_days = sorted(
                    approved_on + timedelta(days=d)
                    for d in rng.sample(range(1, span + 1), min(n, span))
                )
        checkin_org = checkin_requested = checkin_decided = None
        if approved and rng.random() < 0.6:
            o.checkin_status = "accepted" if rng.random() < 0.85 else "pending"
            checkin_org = next(
                (m for m, r in mobile_region.items() if r == destination), mobile_ids[0]
            )
            assert decided_at is not None
            checkin_requested = min(now, decided_at + timedelta(days=rng.randint(1, 20)))
            if o.checkin_status == "accepted":
                checkin_decided = min(now, checkin_requested + timedelta(hours=rng.randint(1, 72)))
        last_report_at = None
        last_region = None
        last_far = None
        if report_days:
            last_report_at = _at(report_days[-1], rng)
            last_region = destination
            last_far = rng.random() < 0.05
            o.last_report_at = last_report_at
            o.last_contact_on = report_days[-1]
        recompute_due_dates(o, rules)  # type: ignore[arg-type]
        planned.append((outflow_id, member_id, departed, end, destination, report_days))
        outflows.append(
            (
                outflow_id,
                member_id,
                homes[member_id],
                status,
                rng.choice(["work", "work", "work", "business", "study", "other"]),
                destination,
                "广东省某市某区某街道某号",
                "某公司" if rng.random() < 0.8 else None,
                phone_enc,
                mask_phone(phone),
                departed,
                expected,
                f"{REGION}-{requested.year}-{outflow_id:06d}" if approved else None,
                decided_at,
                "外出事由不充分" if status == "rejected" else None,
                o.checkin_status,
                checkin_org,
                checkin_requested,
                checkin_decided,
                o.last_contact_on,
                last_report_at,
                last_region,
                last_far,
                o.checkin_due_on,
                o.report_due_on,
                o.lost_contact_on,
                o.transfer_suggest_on,
                returned_on,
                _at(requested, rng),
            )
        )
    await conn.copy_records_to_table("outflows", records=outflows, columns=OUTFLOW_COLUMNS)
    total_reports = sum(len(p[5]) for p in planned)
    report_ids = iter(await _reserve_ids(conn, "outflow_reports", total_reports))
    reports = []
    for outflow_id, member_id, _, _, destination, report_days in planned:
        lat0, lon0 = CENTROIDS[destination]
        for i, day in enumerate(report_days):
            far = i == len(report_days) - 1 and rng.random() < 0.05
            spread = 1.0 if far else 0.1
            lat = lat0 + rng.uniform(-spread, spread)
            lon = lon0 + rng.uniform(-spread, spread)
            distance = ((lat - lat0) ** 2 + (lon - lon0) ** 2) ** 0.5 * 100_000
            reports.append(
                (
                    next(report_ids),
                    outflow_id,
                    member_id,
                    lat,
                    lon,
                    destination,
                    distance,
                    far or distance > 50_000,
                    None if rng.random() < 0.7 else "一切正常",
                    day,
                    _at(day, rng),
                )
            )
    await conn.copy_records_to_table("outflow_reports", records=reports, columns=REPORT_COLUMNS)
    return len(outflows), len(reports)


# ------------------------------------------------------------------ study credits

# Per kind: (points per event, daily cap), as the 0007 migration's default rules.
CREDIT_RULES = {
    "article": (1, 6),
    "video": (1, 6),
    "vr_hall": (2, 4),
    "quiz": (2, 10),
    "activity": (5, 10),
}
OVERALL_DAILY_CAP = 30
CREDIT_KIND_WEIGHTS = [40, 30, 8, 20, 2]


async def seed_credits(conn: asyncpg.Connection, seeded: Seeded, count: int) -> int:
    """``count`` ledger rows over the last 365 days and the credit_daily rows they add
    up to (those first: each ledger row references its day row). The awards replay the
    check-in statement's rule (points capped per kind and overall per day,
    ``cap_reached`` and ``daily_points`` as it returns them), so credit_daily equals the
    ledger summed per member and day.
    About a third of the members study, some nearly every day. Returns daily rows."""
    rng = random.Random(13)
    today = shanghai_day(now_utc())
    kinds = list(CREDIT_RULES)
    active = rng.sample(seeded.member_ids, max(1, len(seeded.member_ids) // 3))
    used: dict[int, set[int]] = {}
    ledger_ids = iter(await _reserve_ids(conn, "credit_ledger", count))
    ledger: list[tuple[object, ...]] = []
    daily: list[tuple[object, ...]] = []
    full = 0
    while len(ledger) < count and full < len(active):
        for member_id in active:
            if len(ledger) >= count:
                break
            taken = used.setdefault(member_id, set())
            free = 365 - len(taken)
            if free == 0:
                continue
            # Heavy-tailed engagement: most study a few days, some almost every day.
            want = min(free, int(rng.paretovariate(1.5) * 2))
            offsets = [d for d in rng.sample(range(365), min(365, want * 2)) if d not in taken]
            for offset in offsets[:want]:
                if len(ledger) >= count:
                    break
                taken.add(offset)
                if len(taken) == 365:
                    full += 1
                day = today - timedelta(days=offset)
                per_kind = dict.fromkeys(kinds, 0)
                total = 0
                awarded = 0
                for _ in range(rng.randint(1, 12)):
                    if len(ledger) >= count:
                        break
                    kind = rng.choices(kinds, CREDIT_KIND_WEIGHTS)[0]
                    points, cap = CREDIT_RULES[kind]
                    awarded = max(0, min(points, cap - per_kind[kind], OVERALL_DAILY_CAP - total))
                    per_kind[kind] += awarded
                    total += awarded
                    at = _at(day, rng)
                    ledger_id = next(ledger_ids)
                    ledger.append(
                        (
                            ledger_id,
                            member_id,
                            day,
                            "study",
                            ledger_id,  # its study session's id, as good as any unique one
                            kind,
                            awarded,
                            total,
                            per_kind[kind] >= cap or total >= OVERALL_DAILY_CAP,
                            at,
                            at,
                        )
                    )
                daily.append((member_id, day, total, *per_kind.values(), awarded))
    await conn.copy_records_to_table(
        "credit_daily",
        records=daily,
        columns=["member_id", "day", "points", *kinds, "last_awarded"],
    )
    await conn.copy_records_to_table(
        "credit_ledger",
        records=ledger,
        columns=[
            "id",
            "member_id",
            "day",
            "source",
            "source_id",
            "kind",
            "points",
            "daily_points",
            "cap_reached",
            "occurred_at",
            "created_at",
        ],
    )
    return len(daily)


# ------------------------------------------------------------------ service orders

ORDER_COLUMNS = [
    "id",
    "org_id",
    "category_id",
    "category_code",
    "category_name",
    "submitter_account_id",
    "submitter_member_id",
    "title",
    "description",
    "address",
    "lat",
    "lon",
    "contact_phone_enc",
    "contact_phone_masked",
    "status",
    "version",
    "needs_review",
    "review_reason",
    "submitted_at",
    "accept_due_at",
    "due_at",
    "escalated_at",
    "accepted_at",
    "resolved_at",
    "closed_at",
    "reply",
    "reject_reason",
    "volunteer_member_id",
    "hours",
    "rating_score",
    "rating_comment",
    "rated_at",
    "created_at",
    "updated_at",
]
ORDER_EVENT_COLUMNS = [
    "id",
    "order_id",
    "action",
    "from_status",
    "to_status",
    "actor_account_id",
    "actor_role",
    "note",
    "from_org_id",
    "to_org_id",
    "created_at",
]
ORDER_FINAL = {
    # final status: weight
    "submitted": 8,
    "accepted": 6,
    "in_progress": 10,
    "resolved": 12,
    "closed": 50,
    "transferred": 1,
    "rejected": 6,
    "cancelled": 7,
}
# The path of actions that leads from "submitted" to each final status.
ORDER_PATHS: dict[str, list[tuple[str, str, str]]] = {
    "submitted": [],
    "accepted": [("accept", "accepted", "admin")],
    "in_progress": [("accept", "accepted", "admin"), ("start", "in_progress", "admin")],
    "resolved": [
        ("accept", "accepted", "admin"),
        ("start", "in_progress", "admin"),
        ("resolve", "resolved", "admin"),
    ],
    "closed": [
        ("accept", "accepted", "admin"),
        ("start", "in_progress", "admin"),
        ("resolve", "resolved", "admin"),
        ("close", "closed", "system"),
    ],
    "transferred": [("transfer", "transferred", "admin")],
    "rejected": [("reject", "rejected", "admin")],
    "cancelled": [("cancel", "cancelled", "submitter")],
}


async def seed_accounts(conn: asyncpg.Connection, seeded: Seeded, count: int) -> list[int]:
    """WeChat accounts bound to the first ``count`` members (order submitters)."""
    members = seeded.member_ids[-count:]
    ids = await _reserve_ids(conn, "accounts", len(members))
    await conn.copy_records_to_table(
        "accounts",
        records=[(a, f"bench-openid-{a}", m) for a, m in zip(ids, members, strict=True)],
        columns=["id", "openid", "member_id"],
    )
    return list(ids)


async def seed_orders(
    conn: asyncpg.Connection, settings: Settings, seeded: Seeded, count: int
) -> tuple[int, int]:
    """``count`` service orders over the last 365 days at the county's branches (some at
    town committees), over the default categories, with SLA clocks, their trail rows
    (two for the ~5% that were transferred once) and a timeline event per transition.
    Returns (trail rows, events)."""
    rng = random.Random(17)
    ring = pii.keyring(settings)
    now = now_utc()
    categories = await conn.fetch(
        "SELECT id, code, name, accept_hours, resolve_hours FROM order_categories "
        "WHERE org_id IS NULL AND active ORDER BY sort_order, id"
    )
    if not categories:
        raise RuntimeError("no default order categories: is the database migrated?")
    towns = list(
        await conn.fetch(
            "SELECT id FROM organizations WHERE parent_id = $1 AND kind = 'committee'",
            seeded.county_id,
        )
    )
    town_ids = [r["id"] for r in towns] or [seeded.county_id]
    branches = seeded.branch_ids[:-10] or seeded.branch_ids
    accounts = await seed_accounts(conn, seeded, min(len(seeded.member_ids), 5000))
    account_member = dict(
        await conn.fetch("SELECT id, member_id FROM accounts WHERE id = ANY($1)", accounts)
    )
    admin_account = accounts[0]
    phone = "13800002222"
    phone_enc = ring.encrypt(phone, context="order.contact_phone")
    finals = list(ORDER_FINAL)
    weights = list(ORDER_FINAL.values())
    order_ids = await _reserve_ids(conn, "service_orders", count)
    orders = []
    trail = []
    events: list[list[Any]] = []
    for order_id in order_ids:
        cat = rng.choices(categories, [30, 25, 20, 15, 10][: len(categories)])[0]
        final = rng.choices(finals, weights)[0]
        # Open orders are recent; finished ones span the year.
        if final in ("submitted", "accepted", "in_progress"):
            age_h = rng.uniform(1, 24 * 6)
        else:
            age_h = rng.uniform(24 * 8, 24 * 365)
        created = now - timedelta(hours=age_h)
        org = rng.choice(branches) if rng.random() < 0.85 else rng.choice(town_ids)
        submitter = rng.choice(accounts)
        transferred = final != "transferred" and final != "cancelled" and rng.random() < 0.05
        orgs = [org]
        timeline: list[list[Any]] = [
            ["submit", None, "submitted", submitter, "submitter", None, None, org, created]
        ]
        at = created
        submitted_at = created
        if transferred:
            new_org = rng.choice(branches)
            if new_org == org:
                new_org = branches[0] if org != branches[0] else branches[1]
            at += timedelta(hours=rng.uniform(0.5, cat["accept_hours"]))
            timeline.append(
                [
                    "transfer",
                    "submitted",
                    "transferred",
                    admin_account,
                    "admin",
                    "非本辖区",
                    org,
                    new_org,
                    at,
                ]
            )
            timeline.append(
                [
                    "arrive",
                    "transferred",
                    "submitted",
                    admin_account,
                    "system",
                    "已转至",
                    org,
                    new_org,
                    at,
                ]
            )
            orgs.append(new_org)
            org = new_org
            submitted_at = at
        accepted_at = resolved_at = closed_at = None
        accept_due = submitted_at + timedelta(hours=cat["accept_hours"])
        due = submitted_at + timedelta(hours=cat["resolve_hours"])
        status = "submitted"
        for action, to, role in ORDER_PATHS[final]:
            if action == "accept":
                at += timedelta(hours=rng.uniform(0.2, cat["accept_hours"] * 1.3))
            elif action == "resolve":
                at += timedelta(hours=rng.uniform(1, cat["resolve_hours"] * 1.2))
            elif action == "close":
                at += timedelta(days=7)
            else:
                at += timedelta(hours=rng.uniform(0.1, 24))
            at = min(at, now - timedelta(minutes=1))
            at = max(at, timeline[-1][-1])
            actor = (
                submitter if role == "submitter" else (None if role == "system" else admin_account)
            )
            new_org = None
            if action == "transfer":
                new_org = rng.choice(town_ids)
            timeline.append(
                [action, status, to, actor, role, None, org if new_org else None, new_org, at]
            )
            status = to
            if action == "accept":
                accepted_at = at
            elif action == "resolve":
                resolved_at = at
            elif action == "close":
                closed_at = at
        open_ = status in ("submitted", "accepted", "in_progress")
        overdue = open_ and (due < now or (status == "submitted" and accept_due < now))
        escalated = accept_due + timedelta(minutes=5) if overdue and rng.random() < 0.8 else None
        if escalated is not None and escalated > now:
            escalated = None
        rated = status == "closed" and rng.random() < 0.6
        volunteer = rng.choice(seeded.member_ids) if resolved_at and rng.random() < 0.5 else None
        orders.append(
            (
                order_id,
                org,
                cat["id"],
                cat["code"],
                cat["name"],
                submitter,
                account_member.get(submitter),
                f"{cat['name']}诉求{order_id}",
                "家中老人行动不便，希望社区帮忙协调解决，谢谢。",
                "某镇某村某组" if rng.random() < 0.7 else None,
                23.0 + rng.uniform(-0.3, 0.3),
                112.5 + rng.uniform(-0.3, 0.3),
                phone_enc,
                mask_phone(phone),
                status,
                len(timeline),
                rng.random() < 0.02,
                None,
                submitted_at,
                accept_due,
                due,
                escalated,
                accepted_at,
                resolved_at,
                closed_at,
                "已协调处理完毕" if resolved_at else None,
                "不属于受理范围" if status == "rejected" else None,
                volunteer,
                Decimal(rng.choice(["0.5", "1.0", "2.0", "3.5"])) if volunteer else None,
                rng.randint(3, 5) if rated else None,
                "很满意" if rated else None,
                closed_at if rated else None,
                created,
                timeline[-1][-1],
            )
        )
        trail.extend((order_id, o, created) for o in dict.fromkeys(orgs))
        events.extend([order_id, *e] for e in timeline)
    await conn.copy_records_to_table("service_orders", records=orders, columns=ORDER_COLUMNS)
    await conn.copy_records_to_table(
        "service_order_orgs", records=trail, columns=["order_id", "org_id", "created_at"]
    )
    event_ids = iter(await _reserve_ids(conn, "service_order_events", len(events)))
    await conn.copy_records_to_table(
        "service_order_events",
        records=[(next(event_ids), *e) for e in events],
        columns=ORDER_EVENT_COLUMNS,
    )
    return len(trail), len(events)


async def seed(
    url: str,
    members: int,
    settings: Settings | None = None,
    *,
    outflows: int = 0,
    credits: int = 0,
    orders: int = 0,
) -> Seeded:
    settings = settings or Settings(env="test", database_url=url)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        started = time.perf_counter()
        seeded = await seed_orgs(conn)
        seeded.timings["organizations"] = time.perf_counter() - started
        started = time.perf_counter()
        await seed_members(conn, settings, seeded, members)
        seeded.timings["members"] = time.perf_counter() - started
        if outflows:
            started = time.perf_counter()
            n, reports = await seed_outflows(conn, settings, seeded, outflows)
            seeded.timings[f"outflows ({n:,} + {reports:,} reports)"] = (
                time.perf_counter() - started
            )
        if credits:
            started = time.perf_counter()
            days = await seed_credits(conn, seeded, credits)
            seeded.timings[f"credits ({credits:,} + {days:,} daily)"] = (
                time.perf_counter() - started
            )
        if orders:
            started = time.perf_counter()
            trail, events = await seed_orders(conn, settings, seeded, orders)
            seeded.timings[f"orders ({orders:,}, {trail:,} trail, {events:,} events)"] = (
                time.perf_counter() - started
            )
        started = time.perf_counter()
        await conn.execute("ANALYZE")
        seeded.timings["analyze"] = time.perf_counter() - started
        return seeded
    finally:
        await conn.close()


def now_utc() -> datetime:
    return datetime.now(UTC)


async def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--outflows", type=int, default=20_000)
    parser.add_argument("--credits", type=int, default=1_000_000, help="credit ledger rows")
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--url", default=None, help="migrated database (default: a scratch one)")
    args = parser.parse_args()
    volumes = {"outflows": args.outflows, "credits": args.credits, "orders": args.orders}
    if args.url:
        seeded = await seed(args.url, args.members, **volumes)
    else:
        from bench.env import bench_database

        async with bench_database("bench_seed") as url:
            seeded = await seed(url, args.members, **volumes)
    for what, seconds in seeded.timings.items():
        print(f"{what:<48} {seconds:6.1f} s")


if __name__ == "__main__":
    asyncio.run(_main())
