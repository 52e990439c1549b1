"""The outbox worker against the WeChat simulator, inside the test's transaction.

The worker's sessions are savepoints on the test's connection, so each job's
"transaction" is real (claim, handle, mark) and everything is rolled back afterwards.
Races across real connections are in ``test_worker_concurrency.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.notify import repository, service
from app.notify.models import Notification, OutboxJob, SubscriptionGrant
from app.notify.templates import template_ids
from app.notify.worker import Worker, WorkerConfig
from app.wechat.models import WeChatAccessToken
from app.wechat.simulator import WeChatSimulator
from tests import factories
from tests.factories import Actor


def savepoint_worker(
    db: AsyncSession, app: FastAPI, engine: AsyncEngine, **config: object
) -> Worker:
    maker = async_sessionmaker(
        bind=db.bind, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    wechat = app.state.wechat
    wechat.retries = 0  # job-level retries are under test here, not the client's
    return Worker(
        maker,
        settings=app.state.settings,
        wechat=wechat,
        engine=engine,
        config=WorkerConfig(**config),  # type: ignore[arg-type]
        registry=(),
    )


async def clear_token_cache(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(WeChatAccessToken))


@pytest.fixture(autouse=True)
async def _fresh_token_cache(engine: AsyncEngine) -> None:
    """Each test's simulator is new: a token cached by an earlier test would be refused."""
    await clear_token_cache(engine)


async def subscriber(
    db: AsyncSession, settings: Settings, template: str = "order_status", grants: int = 1
) -> Actor:
    home = await factories.org(db, "石垭镇花园村党支部")
    actor = await factories.member_actor(db, settings, home, "王建国")
    for _ in range(grants):
        await repository.record_decision(db, actor.account.id, template, True)
    await db.commit()
    return actor


async def order_update(db: AsyncSession, actor: Actor, title: str = "路灯不亮", **data: str) -> int:
    notification_id = await service.notify(
        db,
        account_id=actor.account.id,
        template="order_status",
        title=title,
        body="社区已派人处理",
        data={"status": "处理中", "updated_at": "2026-11-23T01:30:00Z", **data},
        page="pages/orders/detail?id=1",
    )
    await db.commit()
    return notification_id


async def state(db: AsyncSession, notification_id: int) -> tuple[str, str, int]:
    """(notification delivery, job status, job attempts)."""
    delivery = (
        await db.execute(select(Notification.delivery).where(Notification.id == notification_id))
    ).scalar_one()
    job = (
        await db.execute(
            select(OutboxJob.status, OutboxJob.attempts).where(
                OutboxJob.dedupe_key == f"notification:{notification_id}"
            )
        )
    ).one()
    return delivery, job.status, job.attempts


async def remaining(db: AsyncSession, actor: Actor, template: str = "order_status") -> int:
    return int(
        (
            await db.execute(
                select(SubscriptionGrant.remaining).where(
                    SubscriptionGrant.account_id == actor.account.id,
                    SubscriptionGrant.template == template,
                )
            )
        ).scalar_one()
    )


async def make_due(db: AsyncSession) -> None:
    await db.execute(
        update(OutboxJob)
        .where(OutboxJob.status == "pending")
        .values(run_after=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1))
    )
    await db.commit()


async def test_one_send_per_event_and_grants_used(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings, grants=3)
    simulator.subscribe(actor.account.openid, template_ids().order_status, times=3)
    ids = [await order_update(db, actor, f"诉求 {i}") for i in range(2)]
    worker = savepoint_worker(db, app, engine)

    done_before = REGISTRY.get_sample_value(
        "outbox_jobs_total", {"kind": "wechat.subscribe_send", "outcome": "done"}
    )
    assert await worker.drain() == 2
    assert len(simulator.sent) == 2
    assert [await state(db, i) for i in ids] == [("sent", "done", 1)] * 2
    done_after = REGISTRY.get_sample_value(
        "outbox_jobs_total", {"kind": "wechat.subscribe_send", "outcome": "done"}
    )
    assert (done_after or 0) - (done_before or 0) == 2
    assert await remaining(db, actor) == 1
    assert simulator.subscriptions[actor.account.openid] == [template_ids().order_status]
    sent = simulator.sent[0]
    assert sent["touser"] == actor.account.openid
    assert sent["template_id"] == template_ids().order_status
    assert sent["page"] == "pages/orders/detail?id=1"
    assert sent["data"] == {
        "thing1": {"value": "诉求 0"},
        "phrase2": {"value": "处理中"},
        "thing3": {"value": "社区已派人处理"},
        "time4": {"value": "2026-11-23 09:30"},
    }

    # Nothing left to do; a second job for an already-sent notification sends nothing.
    assert await worker.drain() == 0
    await service.enqueue(db, "wechat.subscribe_send", {"notification_id": ids[0]})
    await db.commit()
    assert await worker.drain() == 1
    assert len(simulator.sent) == 2
    assert await remaining(db, actor) == 1


async def test_no_grant_means_inbox_only(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings, template="report_due")  # not order_status
    notification_id = await order_update(db, actor)
    assert await savepoint_worker(db, app, engine).drain() == 1
    assert simulator.calls.get("subscribe_send", 0) == 0
    assert await state(db, notification_id) == ("skipped", "done", 1)
    row = await db.get(Notification, notification_id, populate_existing=True)
    assert row is not None and row.read_at is None  # still in the inbox, unread


async def test_busy_is_retried_with_backoff_then_sent_once(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings)
    notification_id = await order_update(db, actor)
    simulator.fail_next("subscribe_send", -1, -1)
    worker = savepoint_worker(db, app, engine, backoff_base_s=60.0)
    await clear_token_cache(engine)

    started = datetime.now(UTC)
    assert await worker.drain() == 1
    job = (
        await db.execute(
            select(OutboxJob)
            .where(OutboxJob.dedupe_key == f"notification:{notification_id}")
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    assert (job.status, job.attempts) == ("pending", 1)
    assert job.last_error is not None and "-1" in job.last_error
    delay = (job.run_after - started).total_seconds()
    assert 29 <= delay <= 61  # uniform in [base/2, base] for the first retry
    assert await worker.drain() == 0  # not due yet

    await make_due(db)
    assert await worker.drain() == 1
    assert await state(db, notification_id) == ("pending", "pending", 2)
    await make_due(db)
    assert await worker.drain() == 1
    assert await state(db, notification_id) == ("sent", "done", 3)
    assert simulator.calls["subscribe_send"] == 3
    assert len(simulator.sent) == 1
    assert await remaining(db, actor) == 0


async def test_network_errors_are_retried(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings)
    notification_id = await order_update(db, actor)
    simulator.fail_next("subscribe_send", "http500")
    worker = savepoint_worker(db, app, engine)
    assert await worker.drain() == 1
    assert await state(db, notification_id) == ("pending", "pending", 1)
    await make_due(db)
    assert await worker.drain() == 1
    assert await state(db, notification_id) == ("sent", "done", 2)
    assert len(simulator.sent) == 1


async def test_43101_stops_without_retry_and_zeroes_grants(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings, grants=2)
    simulator.strict_subscriptions = True  # WeChat knows of no subscription by this user
    first = await order_update(db, actor, "第一条")
    second = await order_update(db, actor, "第二条")
    worker = savepoint_worker(db, app, engine)

    assert await worker.drain() == 2
    assert simulator.calls["subscribe_send"] == 1  # the second had no grant left to try
    assert await state(db, first) == ("unsubscribed", "done", 1)
    assert await state(db, second) == ("skipped", "done", 1)
    assert await remaining(db, actor) == 0
    await make_due(db)
    assert await worker.drain() == 0
    assert simulator.calls["subscribe_send"] == 1


async def test_dead_letter_after_max_attempts(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings)
    notification_id = await order_update(db, actor)
    simulator.fail_next("subscribe_send", -1, -1, -1)
    worker = savepoint_worker(db, app, engine, max_attempts=2)
    assert await worker.drain() == 1
    await make_due(db)
    assert await worker.drain() == 1
    assert await state(db, notification_id) == ("failed", "dead", 2)
    assert await remaining(db, actor) == 1  # a send that never happened uses no grant
    await make_due(db)
    assert await worker.drain() == 0


async def test_permanent_wechat_error_is_dead_at_once(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings)
    notification_id = await order_update(db, actor)
    simulator.fail_next("subscribe_send", 40037)  # invalid template id
    assert await savepoint_worker(db, app, engine).drain() == 1
    assert await state(db, notification_id) == ("failed", "dead", 1)
    job = (
        await db.execute(
            select(OutboxJob.last_error).where(
                OutboxJob.dedupe_key == f"notification:{notification_id}"
            )
        )
    ).scalar_one()
    assert job is not None and "40037" in job


async def test_unknown_job_kind_is_dead(
    db: AsyncSession, app: FastAPI, engine: AsyncEngine
) -> None:
    await service.enqueue(db, "nobody.handles_this", {"x": 1}, dedupe_key="unknown-kind-1")
    await db.commit()
    assert await savepoint_worker(db, app, engine).drain() == 1
    job = (
        await db.execute(select(OutboxJob).where(OutboxJob.dedupe_key == "unknown-kind-1"))
    ).scalar_one()
    assert job.status == "dead" and "nobody.handles_this" in (job.last_error or "")


async def test_disabled_account_is_skipped(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings)
    notification_id = await order_update(db, actor)
    actor.account.disabled_at = datetime.now(UTC)
    await db.commit()
    assert await savepoint_worker(db, app, engine).drain() == 1
    assert await state(db, notification_id) == ("skipped", "done", 1)
    assert simulator.calls.get("subscribe_send", 0) == 0


async def test_long_values_are_truncated_to_wechat_limits(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings)
    title = "小区北门路灯连续三个晚上不亮，老人晚上出门很不方便，请尽快安排维修"
    notification_id = await order_update(
        db, actor, title, status="已转交上级党委处理", updated_at="2026-11-23T16:05:09Z"
    )
    assert await savepoint_worker(db, app, engine).drain() == 1
    assert await state(db, notification_id) == ("sent", "done", 1)  # the fake server accepted
    data = {k: v["value"] for k, v in simulator.sent[0]["data"].items()}
    assert data["thing1"] == title[:19] + "…" and len(data["thing1"]) == 20
    assert data["phrase2"] == "已转交上级"
    assert data["time4"] == "2026-11-24 00:05"  # Asia/Shanghai


async def test_certificate_number_is_a_character_string(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings, template="outflow_approved")
    await service.notify(
        db,
        account_id=actor.account.id,
        template="outflow_approved",
        title="外出登记已批准",
        body="您的外出登记已批准，流动党员活动证编号 511621-2026-0001。请及时到流入地党组织报到。",
        data={"outflow_id": "9", "certificate_no": "活动证511621-2026-0001" + "7" * 30},
    )
    await db.commit()
    assert await savepoint_worker(db, app, engine).drain() == 1
    data = {k: v["value"] for k, v in simulator.sent[0]["data"].items()}
    assert data["character_string3"] == ("511621-2026-0001" + "7" * 30)[:32]
    assert data["phrase2"] == "已通过"
    assert data["thing1"] == "外出登记已批准"
    assert data["thing5"] == "您的外出登记已批准，流动党员活动证编号…"
    assert len(data["thing5"]) == 20


async def test_token_fetched_once_for_many_sends(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    await clear_token_cache(engine)
    actor = await subscriber(db, settings, grants=12)
    for i in range(12):
        await order_update(db, actor, f"诉求 {i}")
    assert await savepoint_worker(db, app, engine).drain() == 12
    assert len(simulator.sent) == 12
    assert simulator.calls["stable_token"] == 1
    assert len({s["touser"] for s in simulator.sent}) == 1


@pytest.mark.parametrize("errcode", [40001, 42001])
async def test_rejected_token_is_refreshed_once_and_send_succeeds(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
    errcode: int,
) -> None:
    await clear_token_cache(engine)
    actor = await subscriber(db, settings)
    notification_id = await order_update(db, actor)
    simulator.fail_next("subscribe_send", errcode)
    assert await savepoint_worker(db, app, engine).drain() == 1
    assert await state(db, notification_id) == ("sent", "done", 1)
    assert simulator.calls["stable_token"] == 2
    assert len(simulator.sent) == 1


async def test_no_access_token_is_retried_not_dead(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
) -> None:
    actor = await subscriber(db, settings)
    notification_id = await order_update(db, actor)
    simulator.fail_next("stable_token", 40125)  # e.g. a wrong secret, fixed afterwards
    simulator.fail_next("subscribe_send", 45011)  # then a rate limit
    worker = savepoint_worker(db, app, engine)
    assert await worker.drain() == 1
    assert await state(db, notification_id) == ("pending", "pending", 1)
    await make_due(db)
    assert await worker.drain() == 1
    assert await state(db, notification_id) == ("pending", "pending", 2)
    await make_due(db)
    assert await worker.drain() == 1
    assert await state(db, notification_id) == ("sent", "done", 3)
    assert len(simulator.sent) == 1


def test_every_scheduled_job_resolves_to_a_coroutine_function() -> None:
    """The registry names real functions: a renamed job must fail here, not skip silently."""
    import inspect

    from app.notify.scheduler import REGISTRY, resolve

    for job in REGISTRY:
        fn = resolve(job.targets)
        assert fn is not None, f"{job.name}: none of {job.targets} exists"
        assert inspect.iscoroutinefunction(fn), job.name


async def test_the_real_registry_runs_every_job_once_per_period(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    """Every registered job runs against the real schema (no 'failed', no 'missing')."""
    from app.core.db import make_sessionmaker
    from app.notify.scheduler import Scheduler

    scheduler = Scheduler(
        make_sessionmaker(engine),
        settings=settings,
        wechat=committing_app.state.wechat,
        engine=engine,
    )
    ten_am_shanghai = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    first = await scheduler.tick(ten_am_shanghai)
    assert set(first.values()) == {"ran"}, first
    second = await scheduler.tick(ten_am_shanghai)
    assert set(second.values()) == {"settled"}, second
