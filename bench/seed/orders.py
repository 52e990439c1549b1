"""Service orders in every state with their trail and timeline, by COPY."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from app.core import pii
from app.core.config import Settings
from app.core.crypto import mask_phone
from bench.seed.base import (
    Seeded,
    now_utc,
    reserve_ids,
)

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
    "received_at",
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
    ids = await reserve_ids(conn, "accounts", len(members))
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
    order_ids = await reserve_ids(conn, "service_orders", count)
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
        submitted_at = received_at = created
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
            received_at = at
        accepted_at = resolved_at = closed_at = None
        accept_due = received_at + timedelta(hours=cat["accept_hours"])
        due = received_at + timedelta(hours=cat["resolve_hours"])
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
                received_at,
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
    event_ids = iter(await reserve_ids(conn, "service_order_events", len(events)))
    await conn.copy_records_to_table(
        "service_order_events",
        records=[(next(event_ids), *e) for e in events],
        columns=ORDER_EVENT_COLUMNS,
    )
    return len(trail), len(events)
