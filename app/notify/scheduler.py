"""Scheduled jobs: a registry of (name, period, target) run once per period across instances.

Each run is one transaction: ``pg_try_advisory_xact_lock`` (so instances never queue
behind a slow run), then ``INSERT INTO scheduled_runs (job, period) ... ON CONFLICT DO
NOTHING``; only the instance whose insert went in runs the job, in the same transaction.
If the job fails, everything rolls back, including the ``scheduled_runs`` row, and the
next tick (on any instance) tries again; if it succeeds, its work and the row commit
together, so a period runs exactly once.

Targets are imported lazily by dotted path. A target that does not exist yet (its
domain is still being written) is skipped with one log line per process.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core import clock
from app.core.config import Settings
from app.notify import repository
from app.notify.jobs import JobContext, describe
from app.wechat.client import WeChatClient

log = structlog.stdlib.get_logger("app.notify.scheduler")

# After a failure, this process leaves the job alone for a while (others may try).
FAILURE_COOLDOWN_S = 300.0


@dataclass(frozen=True)
class Period:
    """Names the period a moment falls in (None: not due now); one run per (job, period)."""

    label: str
    key: Callable[[datetime], str | None]


def every(minutes: int) -> Period:
    seconds = minutes * 60

    def key(now: datetime) -> str:
        start = int(now.timestamp()) // seconds * seconds
        return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%MZ")

    return Period(f"every {minutes} min", key)


def daily_at(hour: int) -> Period:
    """Once per Asia/Shanghai day, from ``hour`` o'clock on (messages people see are not
    sent at midnight). A day on which no instance ran between ``hour`` and midnight is
    skipped, not caught up at night: these jobs look at the state of the day they run."""

    def key(now: datetime) -> str | None:
        local = now.astimezone(clock.SHANGHAI)
        return local.date().isoformat() if local.hour >= hour else None

    return Period(f"daily from {hour:02d}:00 Asia/Shanghai", key)


def monthly() -> Period:
    """Once per Asia/Shanghai calendar month (from its first day on)."""

    def key(now: datetime) -> str:
        return now.astimezone(clock.SHANGHAI).strftime("%Y-%m")

    return Period("monthly (Asia/Shanghai)", key)


HOURLY = every(60)
# Calendar days in Asia/Shanghai, not UTC: a daily job runs once per Chinese day.
DAILY = daily_at(0)
MORNING = daily_at(9)

Call = Callable[[Callable[..., Awaitable[Any]], JobContext], Awaitable[Any]]


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    period: Period
    targets: tuple[str, ...]  # "package.module:function" candidates, first found wins
    call: Call  # how to call the target with this run's context


REGISTRY: tuple[ScheduledJob, ...] = (
    ScheduledJob(
        "mobility.escalate_lost_contact",
        MORNING,
        ("app.mobility.jobs:escalate_lost_contact",),
        lambda fn, c: fn(c.session, c.today),
    ),
    ScheduledJob(
        "mobility.remind_reports_due",
        MORNING,
        ("app.mobility.jobs:remind_reports_due",),
        lambda fn, c: fn(c.session, c.today, days_before=7),
    ),
    ScheduledJob(
        "mobility.digest_overdue",
        MORNING,
        ("app.mobility.jobs:digest_overdue",),
        lambda fn, c: fn(c.session, c.today),
    ),
    ScheduledJob(
        "orders.escalate_overdue",
        every(15),
        ("app.orders.jobs:escalate_overdue_orders",),
        lambda fn, c: fn(c.session, c.now),
    ),
    ScheduledJob(
        "orders.auto_close_resolved",
        HOURLY,
        ("app.orders.jobs:auto_close_resolved",),
        lambda fn, c: fn(c.session, c.now),
    ),
    ScheduledJob(
        "activity.remind_starting",
        every(5),
        ("app.activity.service:remind_activity_starting",),
        lambda fn, c: fn(c.session, c.now, within_minutes=60),
    ),
    ScheduledJob(
        "care.send_due_campaigns",
        every(15),
        ("app.care.campaigns:send_due_campaigns",),
        lambda fn, c: fn(c.session, c.now),
    ),
    ScheduledJob(
        "members.rotate_pii",
        every(10),
        ("app.members.rotation:rotate_pii",),
        lambda fn, c: fn(c.session, c.settings, batch_size=500),
    ),
    ScheduledJob(
        "core.purge_idempotency_keys",
        HOURLY,
        ("app.core.idempotency:purge_expired",),
        lambda fn, c: fn(c.session),
    ),
    ScheduledJob(
        "core.purge_rate_limits",
        HOURLY,
        ("app.core.ratelimit:purge",),
        lambda fn, c: fn(c.engine),
    ),
    ScheduledJob(
        "identity.purge_console_logins",
        HOURLY,
        ("app.identity.console_login:purge",),
        lambda fn, c: fn(c.session, c.now),
    ),
    ScheduledJob(
        "core.create_partitions",
        monthly(),
        ("app.core.partitions:create_ahead",),
        lambda fn, c: fn(c.session, c.today),
    ),
    ScheduledJob(
        "notify.purge_finished",
        DAILY,
        ("app.notify.repository:purge_finished",),
        lambda fn, c: fn(c.session),
    ),
)


def resolve(targets: tuple[str, ...]) -> Callable[..., Awaitable[Any]] | None:
    """The first coroutine function found at ``module:function``; None if none exists yet."""
    for target in targets:
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:  # not written yet
            continue
        except Exception as error:  # half-written: skip it, never crash the worker
            log.warning("scheduled job target broken", target=target, error=describe(error))
            continue
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


class Scheduler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        settings: Settings,
        wechat: WeChatClient,
        engine: AsyncEngine,
        registry: Sequence[ScheduledJob] = REGISTRY,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.wechat = wechat
        self.engine = engine
        self.registry = tuple(registry)
        self._missing_logged: set[str] = set()
        self._settled: dict[str, str] = {}  # job -> period already run (here or elsewhere)
        self._cooldown_until: dict[str, float] = {}

    def available(self) -> dict[str, bool]:
        """Which registered jobs have their target (for the coordinator's final check)."""
        return {job.name: resolve(job.targets) is not None for job in self.registry}

    async def tick(self, now: datetime | None = None) -> dict[str, str]:
        """Run every job whose current period has not run yet; returns job -> what happened."""
        now = now or clock.now()
        report: dict[str, str] = {}
        for job in self.registry:
            report[job.name] = await self._maybe_run(job, now)
        return report

    async def _maybe_run(self, job: ScheduledJob, now: datetime) -> str:
        fn = resolve(job.targets)
        if fn is None:
            if job.name not in self._missing_logged:
                self._missing_logged.add(job.name)
                log.warning(
                    "scheduled job skipped: target missing", job=job.name, targets=job.targets
                )
            return "missing"
        period = job.period.key(now)
        if period is None:
            return "not due"
        if self._settled.get(job.name) == period:
            return "settled"
        if self._cooldown_until.get(job.name, 0.0) > time.monotonic():
            return "cooling down"
        ctx: JobContext | None = None
        try:
            async with self.sessionmaker() as session, session.begin():
                if not await repository.try_lock_schedule(session, job.name):
                    return "busy elsewhere"
                if not await repository.claim_period(session, job.name, period):
                    self._settled[job.name] = period
                    return "already run"
                ctx = JobContext(
                    session=session,
                    settings=self.settings,
                    wechat=self.wechat,
                    engine=self.engine,
                    now=now,
                )
                result = await job.call(fn, ctx)
                await session.flush()
                await repository.finish_period(session, job.name, period, repr(result), clock.now())
        except Exception as error:
            self._cooldown_until[job.name] = time.monotonic() + FAILURE_COOLDOWN_S
            log.warning("scheduled job failed", job=job.name, period=period, error=describe(error))
            return "failed"
        if ctx is not None:
            ctx.committed()
        self._settled[job.name] = period
        log.info("scheduled job ran", job=job.name, period=period, result=repr(result)[:200])
        return "ran"
