"""Monthly partitions of the history tables (app/core/partitions.py, migration 0024):
the claim stays whole across ledger months, the scheduled job creates months ahead and
moves stray rows out of the default partition, the operator command detaches old
months, done outbox jobs move to outbox_history, and the migration keeps every row."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core import partitions
from app.core.clock import SHANGHAI
from app.core.config import Settings
from app.notify import repository as notify_repository
from app.notify.scheduler import REGISTRY, Scheduler
from app.study import service
from tests import factories as f
from tests.clock import Clock
from tests.conftest import ROOT, run_alembic, truncate_all
from tests.support.study import item, member_id, session_at

CHECKINS = "/api/v1/study/checkins"
BATCH = "/api/v1/study/checkins/batch"
JOB = next(job for job in REGISTRY if job.name == "core.create_partitions")


async def _partitions_of(db: AsyncSession, table: str) -> set[str]:
    rows = await db.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:t AS regclass)"
        ),
        {"t": table},
    )
    return {r[0] for r in rows}


async def _where(db: AsyncSession, table: str, key: str, value: int) -> list[str]:
    """The partitions holding ``table``'s rows whose ``key`` is ``value``."""
    rows = await db.execute(
        text(f"SELECT tableoid::regclass::text FROM {table} WHERE {key} = :v"),
        {"v": value},
    )
    return [r[0] for r in rows]


async def _account(db: AsyncSession, openid: str) -> int:
    return int(
        (
            await db.execute(
                text("INSERT INTO accounts (openid) VALUES (:o) RETURNING id"), {"o": openid}
            )
        ).scalar_one()
    )


# -- the claim is whole across months ---------------------------------------------------


async def test_a_session_is_claimed_once_across_ledger_months(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, clock: Clock
) -> None:
    """An offline check-in on 30 November and an online one for the same session just
    after midnight on 1 December land in different ledger partitions; the second is a
    replay, and the claims table refuses a duplicate written past the replay check."""
    await service.ensure_default_rules(db)
    branch = await f.org(db, "跨月支部")
    member = await f.member_actor(db, settings, branch)
    mid = member_id(member)
    article = await item(db, branch, kind="article", min_seconds=60, points=1)
    started = datetime(2026, 11, 30, 23, 40, tzinfo=SHANGHAI)
    study = await session_at(db, member.member, article, started)
    clock.now = datetime(2026, 12, 1, 0, 20, tzinfo=SHANGHAI)

    offline = await client.post(
        BATCH,
        json={
            "events": [
                {
                    "session_id": study.id,
                    "client_event_id": "offline-1",
                    "occurred_at": datetime(2026, 11, 30, 23, 55, tzinfo=SHANGHAI).isoformat(),
                }
            ]
        },
        headers=member.headers,
    )
    assert offline.status_code == 200, offline.text
    first = offline.json()["results"][0]
    assert first["points_awarded"] == 1, first

    online = await client.post(
        CHECKINS,
        json={"session_id": study.id, "client_event_id": "online-1"},
        headers=member.headers,
    )
    assert online.status_code == 200, online.text
    assert online.json()["replayed"] is True
    assert online.json()["checkin_id"] == first["checkin_id"]

    # One entry, in November's partition (the default one when no November partition
    # exists); one claim.
    places = await _where(db, "credit_ledger", "member_id", mid)
    assert len(places) == 1 and places[0] != "credit_ledger_p202612"
    claims = await db.execute(
        text("SELECT ledger_id, day, points FROM credit_claims WHERE member_id = :m"), {"m": mid}
    )
    assert [tuple(r) for r in claims] == [(first["checkin_id"], date(2026, 11, 30), 1)]

    # A racing duplicate that did not see the first claim fails on the claim's keys,
    # whatever month it would have gone to.
    await db.execute(
        text("INSERT INTO credit_daily (member_id, day) VALUES (:m, '2026-12-01')"), {"m": mid}
    )
    for cols, values, constraint in (
        ("'study', :s, 'other-event'", {"s": study.id}, "pk_credit_claims"),
        ("'study', :s, 'offline-1'", {"s": study.id + 1000}, "uq_credit_claims_member_id"),
    ):
        with pytest.raises(IntegrityError, match=constraint):
            async with db.begin_nested():
                await db.execute(
                    text(
                        "INSERT INTO credit_claims (member_id, source, source_id, "
                        f"client_event_id, ledger_id, day, points, daily_points, cap_reached) "
                        f"VALUES (:m, {cols}, 999999, '2026-12-01', 1, 1, false)"
                    ),
                    {"m": mid, **values},
                )
    count = await db.execute(
        text("SELECT count(*) FROM credit_ledger WHERE member_id = :m"), {"m": mid}
    )
    assert count.scalar_one() == 1


# -- created ahead by the scheduler ------------------------------------------------------


async def test_partition_job_creates_months_ahead_and_moves_strays(
    app: object, db: AsyncSession, settings: Settings
) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)
    conn = await db.connection()
    scheduler = Scheduler(
        async_sessionmaker(bind=conn, join_transaction_mode="create_savepoint"),
        settings=settings,
        wechat=app.state.wechat,
        engine=conn.engine,
        registry=(JOB,),
    )
    # Far ahead: other tests may run the real scheduler with a moved clock (and commit).
    may = datetime(2041, 5, 15, 4, tzinfo=UTC)
    assert (await scheduler.tick(may))[JOB.name] == "ran"
    for spec in partitions.TABLES:
        made = await _partitions_of(db, spec.table)
        assert {f"{spec.table}_p{m}" for m in ("204105", "204106", "204107", "204108")} <= made
        assert f"{spec.table}_p204109" not in made
        assert f"{spec.table}_default" in made
    assert (await scheduler.tick(may + timedelta(days=10)))[JOB.name] == "settled"

    # A notification of September 2041 arrives before its month exists: the default
    # partition takes it, and creating September moves it there.
    account = await _account(db, "partition-stray")
    september = datetime(2041, 9, 10, 9, tzinfo=SHANGHAI)
    row = await db.execute(
        text(
            "INSERT INTO notifications (account_id, template, title, body, created_at) "
            "VALUES (:a, 't', '标题', '正文', :at) RETURNING id"
        ),
        {"a": account, "at": september},
    )
    notification_id = int(row.scalar_one())
    assert await _where(db, "notifications", "id", notification_id) == ["notifications_default"]

    june = datetime(2041, 5, 31, 16, 30, tzinfo=UTC)  # 1 June, 00:30 in Shanghai
    assert (await scheduler.tick(june))[JOB.name] == "ran"
    assert "notifications_p204109" in await _partitions_of(db, "notifications")
    assert await _where(db, "notifications", "id", notification_id) == ["notifications_p204109"]
    # The month's bounds are Shanghai's: 1 September 00:00 +08 is in September.
    edge = datetime(2041, 9, 1, 0, 0, tzinfo=SHANGHAI)
    row = await db.execute(
        text(
            "INSERT INTO notifications (account_id, template, title, body, created_at) "
            "VALUES (:a, 't', '标题', '正文', :at) RETURNING id"
        ),
        {"a": account, "at": edge},
    )
    assert await _where(db, "notifications", "id", int(row.scalar_one())) == [
        "notifications_p204109"
    ]


# -- detached by the operator ------------------------------------------------------------


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": str(settings.database_url), "APP_ENV": "test"}
    return subprocess.run(
        [sys.executable, "-m", "app", "partitions", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def test_detach_command_takes_old_months_out(engine: AsyncEngine, settings: Settings) -> None:
    async with AsyncSession(engine) as db:
        for spec in partitions.TABLES:
            for month in (date(2020, 1, 1), date(2020, 2, 1)):
                await partitions.create_month(db, spec, month)
        account = await _account(db, "partition-detach")
        january = (
            await db.execute(
                text(
                    "INSERT INTO notifications (account_id, template, title, body, created_at) "
                    "VALUES (:a, 't', '一月', '正文', '2020-01-20 10:00+08') RETURNING id"
                ),
                {"a": account},
            )
        ).scalar_one()
        february = (
            await db.execute(
                text(
                    "INSERT INTO notifications (account_id, template, title, body, created_at) "
                    "VALUES (:a, 't', '二月', '正文', '2020-02-20 10:00+08') RETURNING id"
                ),
                {"a": account},
            )
        ).scalar_one()
        await db.commit()
    try:
        refused = await asyncio.to_thread(_cli, settings, "detach", "--before", "2020-13")
        assert refused.returncode == 2 and "YYYY-MM" in refused.stderr

        done = await asyncio.to_thread(_cli, settings, "detach", "--before", "2020-02")
        assert done.returncode == 0, done.stderr
        assert "notifications_p202001" in done.stdout
        assert "credit_ledger_p202001" in done.stdout
        assert "p202002" not in done.stdout
        async with AsyncSession(engine) as db:
            attached = await _partitions_of(db, "notifications")
            assert "notifications_p202001" not in attached
            assert "notifications_p202002" in attached
            # January's row left the application's table and stays in the detached one.
            assert await _where(db, "notifications", "id", january) == []
            assert await _where(db, "notifications", "id", february) == ["notifications_p202002"]
            kept = await db.execute(
                text("SELECT title FROM notifications_p202001 WHERE id = :i"), {"i": january}
            )
            assert kept.scalar_one() == "一月"

        listed = await asyncio.to_thread(_cli, settings, "list")
        assert listed.returncode == 0 and "notifications_p202002" in listed.stdout
        assert "notifications_p202001" not in listed.stdout
    finally:
        async with engine.begin() as conn:
            for spec in partitions.TABLES:
                for month in ("202001", "202002"):
                    await conn.execute(text(f"DROP TABLE IF EXISTS {spec.table}_p{month}"))
        await truncate_all(engine)


# -- outbox history ---------------------------------------------------------------------


async def test_done_jobs_move_to_history_after_30_days(db: AsyncSession) -> None:
    rows = await db.execute(
        text(
            "INSERT INTO outbox_jobs (kind, payload, dedupe_key, status, finished_at) VALUES "
            "('k', '{\"n\": 1}', 'old-done', 'done', now() - interval '40 days'), "
            "('k', '{\"n\": 2}', 'new-done', 'done', now() - interval '5 days'), "
            "('k', '{\"n\": 3}', 'old-dead', 'dead', now() - interval '40 days'), "
            "('k', '{\"n\": 4}', 'pending', 'pending', NULL) RETURNING id, dedupe_key"
        )
    )
    ids = {key: job_id for job_id, key in rows}
    moved = await notify_repository.purge_finished(db)
    assert moved >= 1
    left = await db.execute(text("SELECT dedupe_key FROM outbox_jobs ORDER BY dedupe_key"))
    assert [r[0] for r in left] == ["new-done", "old-dead", "pending"]
    history = await db.execute(
        text("SELECT id, payload, status, tableoid::regclass::text FROM outbox_history")
    )
    ((job_id, payload, status, place),) = history.all()
    assert (job_id, payload, status) == (ids["old-done"], {"n": 1}, "done")
    assert place.startswith("outbox_history_")


# -- the migration keeps every row ------------------------------------------------------


async def _entries(db: AsyncSession, member: int) -> list[tuple[int, date, int]]:
    rows = await db.execute(
        text("SELECT id, day, points FROM credit_ledger WHERE member_id = :m ORDER BY id"),
        {"m": member},
    )
    return [(int(a), b, int(c)) for a, b, c in rows]


async def test_migration_down_and_up_keeps_rows_and_claims(
    engine: AsyncEngine, settings: Settings, migrated_url: str
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as db:
        await service.ensure_default_rules(db)
        branch = await f.org(db, "迁移支部")
        member = await f.member_actor(db, settings, branch)
        mid = member_id(member)
        await db.execute(
            text(
                "INSERT INTO credit_daily (member_id, day, points) VALUES "
                "(:m, '2026-10-05', 3), (:m, '2026-12-01', 1)"
            ),
            {"m": mid},
        )
        for day, source_id, points in (("2026-10-05", 71, 3), ("2026-12-01", 72, 1)):
            await db.execute(
                text(
                    "INSERT INTO credit_ledger (member_id, day, source, source_id, "
                    "client_event_id, kind, points, daily_points, cap_reached, occurred_at) "
                    "VALUES (:m, :d, 'study', :s, :e, 'article', :p, :p, false, now())"
                ),
                {
                    "m": mid,
                    "d": date.fromisoformat(day),
                    "s": source_id,
                    "e": f"ev-{source_id}",
                    "p": points,
                },
            )
            await db.execute(
                text(
                    "INSERT INTO credit_claims (member_id, source, source_id, client_event_id, "
                    "ledger_id, day, points, daily_points, cap_reached) "
                    "SELECT member_id, source, source_id, client_event_id, id, day, points, "
                    "daily_points, cap_reached FROM credit_ledger "
                    "WHERE member_id = :m AND source_id = :s"
                ),
                {"m": mid, "s": source_id},
            )
        await db.commit()
        before = await _entries(db, mid)
    try:
        await asyncio.to_thread(run_alembic, migrated_url, "downgrade", "0018")
        async with AsyncSession(engine) as db:
            assert await _entries(db, mid) == before
            assert await _partitions_of(db, "credit_ledger") == set()
        await asyncio.to_thread(run_alembic, migrated_url, "upgrade", "head")
        async with AsyncSession(engine) as db:
            assert await _entries(db, mid) == before
            # Months from the oldest row on.
            assert await _where(db, "credit_ledger", "source_id", 71) == ["credit_ledger_p202610"]
            claims = await db.execute(
                text("SELECT ledger_id FROM credit_claims WHERE member_id = :m ORDER BY 1"),
                {"m": mid},
            )
            assert [r[0] for r in claims] == [r[0] for r in before]
            # New ids continue after the old ones.
            next_id = await db.execute(
                text("SELECT nextval(pg_get_serial_sequence('credit_ledger', 'id'))")
            )
            assert next_id.scalar_one() > before[-1][0]
    finally:
        await truncate_all(engine)
