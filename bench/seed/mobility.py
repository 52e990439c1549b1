"""Outflows in every state with their reports, by COPY."""

from __future__ import annotations

import random
from datetime import date, timedelta
from types import SimpleNamespace

import asyncpg

from app.core import pii
from app.core.clock import shanghai_day
from app.core.config import Settings
from app.core.crypto import mask_phone
from app.mobility.rules import merge_rules, recompute_due_dates
from bench.seed.base import (
    DESTINATIONS,
    REGION,
    Seeded,
    now_utc,
    random_moment,
    reserve_ids,
)

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
    outflow_ids = await reserve_ids(conn, "outflows", count)
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
            decided_at = min(now, random_moment(min(decided_on, today), rng, 8, 18))
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
            last_report_at = random_moment(report_days[-1], rng)
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
                random_moment(requested, rng),
            )
        )
    await conn.copy_records_to_table("outflows", records=outflows, columns=OUTFLOW_COLUMNS)
    total_reports = sum(len(p[5]) for p in planned)
    report_ids = iter(await reserve_ids(conn, "outflow_reports", total_reports))
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
                    random_moment(day, rng),
                )
            )
    await conn.copy_records_to_table("outflow_reports", records=reports, columns=REPORT_COLUMNS)
    return len(outflows), len(reports)
