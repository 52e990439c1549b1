"""Workers and schedulers racing over real, committed rows on parallel connections."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.db import make_sessionmaker
from app.notify import repository, service
from app.notify.models import Notification, OutboxJob, ScheduledRun, SubscriptionGrant
from app.notify.scheduler import DAILY, ScheduledJob, Scheduler
from app.notify.worker import Worker, WorkerConfig, run_worker, start_in_process
from app.wechat.models import WeChatAccessToken
from app.wechat.simulator import WeChatSimulator
from tests import factories
from tests.support.locks import until_waiting_on_lock


def committing_worker(app: FastAPI, engine: AsyncEngine, name: str) -> Worker:
    return Worker(
        make_sessionmaker(engine),
        settings=app.state.settings,
        wechat=app.state.wechat,
        engine=engine,
        config=WorkerConfig(),
        registry=(),
        name=name,
    )


async def committed_notifications(
    engine: AsyncEngine, settings: Settings, *, accounts: int, per_account: int
) -> list[int]:
    """Members with grants and ``order_status`` notifications, committed for real."""
    ids: list[int] = []
    async with make_sessionmaker(engine)() as db:
        home = await factories.org(db, "石垭镇花园村党支部")
        for a in range(accounts):
            actor = await factories.member_actor(db, settings, home, f"党员{a}")
            for _ in range(per_account):
                await repository.record_decision(db, actor.account.id, "order_status", True)
            for i in range(per_account):
                ids.append(
                    await service.notify(
                        db,
                        account_id=actor.account.id,
                        template="order_status",
                        title=f"诉求 {a}-{i}",
                        body="已受理",
                    )
                )
        await db.execute(delete(WeChatAccessToken))
        await db.commit()
    return ids


async def job_states(engine: AsyncEngine) -> list[tuple[str, int]]:
    async with AsyncSession(engine) as db:
        rows = await db.execute(select(OutboxJob.status, OutboxJob.attempts).order_by(OutboxJob.id))
        return [(r.status, r.attempts) for r in rows]


def titles(simulator: WeChatSimulator) -> list[str]:
    return [s["data"]["thing1"]["value"] for s in simulator.sent]


async def test_two_workers_racing_never_double_send(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    simulator: WeChatSimulator = committing_app.state.wechat_simulator
    ids = await committed_notifications(engine, settings, accounts=4, per_account=10)

    async def slow_wechat(_: dict[str, Any]) -> None:
        await asyncio.sleep(0.005)  # widen the window in which workers overlap

    simulator.before_send = slow_wechat
    first = committing_worker(committing_app, engine, "w1")
    second = committing_worker(committing_app, engine, "w2")
    handled = await asyncio.gather(first.drain(), first.drain(), second.drain(), second.drain())

    assert sum(handled) == len(ids) == 40
    assert len(simulator.sent) == 40
    assert sorted(titles(simulator)) == sorted(f"诉求 {a}-{i}" for a in range(4) for i in range(10))
    assert await job_states(engine) == [("done", 1)] * 40
    async with AsyncSession(engine) as db:
        deliveries = (await db.execute(select(Notification.delivery))).scalars().all()
        assert set(deliveries) == {"sent"}
        left = (await db.execute(select(func.sum(SubscriptionGrant.remaining)))).scalar_one()
        assert left == 0


async def test_killed_worker_loses_and_doubles_nothing(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    simulator: WeChatSimulator = committing_app.state.wechat_simulator
    await committed_notifications(engine, settings, accounts=1, per_account=6)
    holding = asyncio.Event()
    calls = 0

    async def hang_on_third(_: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            holding.set()
            await asyncio.Event().wait()  # the worker dies here, mid-send

    simulator.before_send = hang_on_third
    victim = asyncio.create_task(committing_worker(committing_app, engine, "victim").drain())
    await asyncio.wait_for(holding.wait(), timeout=10)
    victim.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await victim

    assert len(simulator.sent) == 2
    states = await job_states(engine)
    assert states.count(("done", 1)) == 2
    assert states.count(("pending", 0)) == 4  # the interrupted job is back, attempts untouched

    simulator.before_send = None
    assert await committing_worker(committing_app, engine, "successor").drain() == 4
    assert len(simulator.sent) == 6
    assert sorted(titles(simulator)) == sorted(f"诉求 0-{i}" for i in range(6))
    assert await job_states(engine) == [("done", 1)] * 6


async def test_concurrent_token_refresh_is_single_flight(
    committing_app: FastAPI, engine: AsyncEngine
) -> None:
    simulator: WeChatSimulator = committing_app.state.wechat_simulator
    async with engine.begin() as conn:
        await conn.execute(delete(WeChatAccessToken))
    wechat = committing_app.state.wechat
    tokens = await asyncio.gather(*(wechat.access_token() for _ in range(20)))
    assert len(set(tokens)) == 1
    assert simulator.calls["stable_token"] == 1
    # Cached now: later callers never go to WeChat.
    assert await wechat.access_token() == tokens[0]
    assert simulator.calls["stable_token"] == 1


# -- the scheduler ---------------------------------------------------------------------

PROBE_CALLS: list[str] = []
PROBE_FAILS: list[bool] = []


async def scheduled_probe(session: AsyncSession, today: object) -> int:
    """A test job: writes a row in the run's transaction, slowly, and may fail."""
    PROBE_CALLS.append(str(today))
    await service.enqueue(session, "test.scheduled_probe", {"day": str(today)})
    await asyncio.sleep(0.2)
    if PROBE_FAILS and PROBE_FAILS.pop(0):
        raise RuntimeError("probe failure")
    return 1


PROBE = ScheduledJob(
    "test.probe",
    DAILY,
    ("tests.api.test_nowhere:scheduled_probe", "tests.api.test_worker_concurrency:scheduled_probe"),
    lambda fn, c: fn(c.session, c.today),
)
MISSING = ScheduledJob(
    "test.missing", DAILY, ("app.not_written_yet.service:run",), lambda fn, c: fn(c.session)
)


def scheduler(app: FastAPI, engine: AsyncEngine) -> Scheduler:
    return Scheduler(
        make_sessionmaker(engine),
        settings=app.state.settings,
        wechat=app.state.wechat,
        engine=engine,
        registry=(PROBE, MISSING),
    )


async def probe_rows(engine: AsyncEngine) -> tuple[list[tuple[str, bool]], int]:
    async with AsyncSession(engine) as db:
        runs = await db.execute(
            select(ScheduledRun.period, ScheduledRun.finished_at.is_not(None)).where(
                ScheduledRun.job == "test.probe"
            )
        )
        jobs = await db.execute(
            select(func.count()).where(OutboxJob.kind == "test.scheduled_probe")
        )
        return [(r[0], bool(r[1])) for r in runs], int(jobs.scalar_one())


@pytest.fixture
def probe() -> None:
    PROBE_CALLS.clear()
    PROBE_FAILS.clear()


async def test_scheduled_job_runs_once_per_period_across_instances(
    committing_app: FastAPI, engine: AsyncEngine, probe: None
) -> None:
    now = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # already the 24th in Shanghai
    one, two, three = (scheduler(committing_app, engine) for _ in range(3))
    reports = await asyncio.gather(one.tick(now), two.tick(now), three.tick(now))

    outcomes = sorted(r["test.probe"] for r in reports)
    assert outcomes.count("ran") == 1
    assert set(outcomes) <= {"ran", "busy elsewhere", "already run"}
    assert {r["test.missing"] for r in reports} == {"missing"}
    assert PROBE_CALLS == ["2026-11-24"]
    assert await probe_rows(engine) == ([("2026-11-24", True)], 1)

    # Later in the same Shanghai day: nobody runs it again.
    later = now + timedelta(hours=5)
    again = await asyncio.gather(one.tick(later), two.tick(later), three.tick(later))
    assert {r["test.probe"] for r in again} <= {"settled", "already run", "busy elsewhere"}
    assert PROBE_CALLS == ["2026-11-24"]

    # The next day runs once more.
    next_day = now + timedelta(days=1)
    await asyncio.gather(one.tick(next_day), two.tick(next_day))
    assert PROBE_CALLS == ["2026-11-24", "2026-11-25"]
    runs, enqueued = await probe_rows(engine)
    assert sorted(runs) == [("2026-11-24", True), ("2026-11-25", True)]
    assert enqueued == 2


async def test_failed_scheduled_run_rolls_back_and_is_retried(
    committing_app: FastAPI, engine: AsyncEngine, probe: None
) -> None:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    instance = scheduler(committing_app, engine)
    PROBE_FAILS.append(True)
    assert (await instance.tick(now))["test.probe"] == "failed"
    assert await probe_rows(engine) == ([], 0)  # its writes and its run row rolled back
    assert (await instance.tick(now))["test.probe"] == "cooling down"

    other = scheduler(committing_app, engine)  # another instance is not cooling down
    assert (await other.tick(now))["test.probe"] == "ran"
    assert await probe_rows(engine) == ([("2026-11-23", True)], 1)
    assert PROBE_CALLS == ["2026-11-23", "2026-11-23"]


async def test_registry_reports_missing_targets(
    committing_app: FastAPI, engine: AsyncEngine
) -> None:
    available = scheduler(committing_app, engine).available()
    assert available == {"test.probe": True, "test.missing": False}


# -- entry points ----------------------------------------------------------------------


async def wait_until_sent(engine: AsyncEngine, notification_id: int, within_s: float = 15) -> str:
    deadline = asyncio.get_running_loop().time() + within_s
    delivery = "pending"
    while asyncio.get_running_loop().time() < deadline:
        async with AsyncSession(engine) as db:
            delivery = (
                await db.execute(
                    select(Notification.delivery).where(Notification.id == notification_id)
                )
            ).scalar_one()
        if delivery != "pending":
            return delivery
        await asyncio.sleep(0.05)
    return delivery


async def test_in_process_worker_delivers(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    simulator: WeChatSimulator = committing_app.state.wechat_simulator
    [notification_id] = await committed_notifications(engine, settings, accounts=1, per_account=1)
    task = start_in_process(committing_app)
    try:
        assert await wait_until_sent(engine, notification_id) == "sent"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert titles(simulator) == ["诉求 0-0"]
    # The same loop ran the real scheduler (jobs whose domain code exists at least).
    async with AsyncSession(engine) as db:
        ran = set((await db.execute(select(ScheduledRun.job))).scalars())
    assert {"core.purge_idempotency_keys", "notify.purge_finished"} <= ran


async def test_standalone_worker_process_entry_point(
    committing_app: FastAPI,
    engine: AsyncEngine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings.database_url
    monkeypatch.setenv("APP_WORKER_METRICS_PORT", "0")  # its metrics on any free port
    [notification_id] = await committed_notifications(engine, settings, accounts=1, per_account=1)
    task = asyncio.create_task(run_worker(settings, settings.database_url))
    try:
        assert await wait_until_sent(engine, notification_id) == "sent"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()


async def test_concurrent_notify_with_same_dedupe_key_makes_one_notification(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    maker = make_sessionmaker(engine)
    async with maker() as db:
        actor = await factories.member_actor(db, settings, await factories.org(db), "王建国")
        await db.commit()
    key = "activity_starting:7:1"

    async def remind(db: AsyncSession) -> int:
        return await service.notify(
            db,
            account_id=actor.account.id,
            template="activity_starting",
            title="活动即将开始",
            body="主题党日",
            dedupe_key=key,
        )

    async with maker() as first, maker() as second:
        second_pid = (await second.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        first_id = await remind(first)  # uncommitted: the second waits on the unique index
        racing = asyncio.create_task(remind(second))
        await until_waiting_on_lock(engine, second_pid)
        assert not racing.done()
        await first.commit()
        assert await asyncio.wait_for(racing, timeout=5) == first_id
        await second.commit()
    async with AsyncSession(engine) as db:
        count = (await db.execute(select(func.count()).select_from(Notification))).scalar_one()
        jobs = (await db.execute(select(OutboxJob.payload))).scalars().all()
    assert count == 1
    assert jobs == [{"notification_id": first_id}]


async def test_run_forever_delivers_and_stops_cleanly(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    ids = await committed_notifications(engine, settings, accounts=3, per_account=1)
    worker = committing_worker(committing_app, engine, "looping")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    try:
        assert [await wait_until_sent(engine, i) for i in ids] == ["sent"] * 3
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)  # returns by itself, no cancellation needed
    assert task.done() and not task.cancelled()
    assert await job_states(engine) == [("done", 1)] * 3
