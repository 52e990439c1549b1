"""The outbox worker and scheduled jobs (``python -m app worker``, or in-process).

Outbox: one job per short transaction::

    SELECT ... FROM outbox_jobs WHERE status = 'pending' AND run_after <= :now
    ORDER BY run_after LIMIT 1 FOR UPDATE SKIP LOCKED

(``:now`` is the app's clock, ``app.core.clock``, so a dev/test offset applies to
retries and the scheduler alike)

then the handler runs inside a savepoint of that transaction and the job is marked
``done`` / retried / ``dead`` before the same COMMIT. So:

* several workers (lanes of one process, or processes on several machines) never run
  the same job at the same time (the row lock), and a job whose transaction committed
  is never run again;
* a worker that dies mid-job (crash, kill, lost connection) leaves its transaction to
  roll back: the job is pending again with its attempt count unchanged, nothing lost;
* failures are retried with exponential backoff and full jitter; after ``max_attempts``
  the job goes to ``dead`` (kept for inspection, ``last_error`` says why).

The one at-least-once window (WeChat accepted a send, the process died before COMMIT)
is described in :mod:`app.notify.delivery`.

Metrics (``APP_WORKER_METRICS_PORT``, its own port): jobs claimed, job outcomes
(``done``/``retry``/``dead``), subscribe-message outcomes (``sent``...) and the lag of
the oldest due job. They are counted after the job's transaction committed and can
never fail it (:func:`app.core.metrics.record`); the worker is one process and keeps
them in memory, so it needs no ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import random
import signal
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core import clock, metrics
from app.core.config import Settings
from app.core.db import create_engine, make_sessionmaker
from app.notify import repository
from app.notify.jobs import JobContext, Outcome, RetryLater, describe
from app.notify.models import OutboxJob
from app.notify.scheduler import REGISTRY, ScheduledJob, Scheduler
from app.notify.service import SUBSCRIBE_SEND
from app.wechat.client import WeChatClient

log = structlog.stdlib.get_logger("app.notify.worker")

Handler = Callable[[JobContext, dict[str, Any]], Awaitable[Outcome]]

# Job kind -> "module:function" of its handler (imported lazily).
HANDLERS: dict[str, str] = {
    SUBSCRIBE_SEND: "app.notify.delivery:deliver_subscribe_message",
}

SIMULATOR_BASE = "http://wechat-simulator.local"

JOBS = Counter("outbox_jobs_total", "Outbox job runs by kind and outcome", ["kind", "outcome"])
CLAIMED = Counter("outbox_jobs_claimed_total", "Outbox jobs claimed by kind", ["kind"])
LAG = Gauge(
    "outbox_oldest_due_job_lag_seconds",
    "How long the oldest due pending job has waited (0: none waiting)",
    multiprocess_mode="max",
)


class WorkerConfig(BaseSettings):
    """Tuning, from the environment (``APP_WORKER_CONCURRENCY=8``) or arguments."""

    model_config = SettingsConfigDict(
        env_prefix="APP_WORKER_", env_file=".env", extra="ignore", frozen=True
    )

    concurrency: int = 4  # lanes, each with its own connection
    batch_size: int = 100  # jobs per lane before the loop looks at the scheduler again
    poll_interval_s: float = 1.0
    scheduler_interval_s: float = 30.0
    max_attempts: int = 8
    backoff_base_s: float = 30.0
    backoff_cap_s: float = 3600.0
    error_pause_s: float = 5.0
    metrics_interval_s: float = 5.0  # how often the lag gauge is measured
    # Port of the worker's /metrics (host: APP_HOST); 0 picks a free one (logged).
    metrics_port: int = 9101


def backoff_delay(attempts: int, config: WorkerConfig, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [d/2, d], d = base * 2^(n-1)."""
    ceiling = min(config.backoff_cap_s, config.backoff_base_s * 2 ** max(attempts - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling)


def _resolve_handler(kind: str) -> Handler | None:
    target = HANDLERS.get(kind)
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    handler: Handler = getattr(importlib.import_module(module_name), attr)
    return handler


class Worker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        settings: Settings,
        wechat: WeChatClient,
        engine: AsyncEngine,
        config: WorkerConfig | None = None,
        registry: tuple[ScheduledJob, ...] = REGISTRY,
        name: str | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.wechat = wechat
        self.engine = engine
        self.config = config or WorkerConfig()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._stop = asyncio.Event()  # set by run_forever's caller to stop between jobs
        self.scheduler = Scheduler(
            sessionmaker, settings=settings, wechat=wechat, engine=engine, registry=registry
        )

    # -- one job -----------------------------------------------------------------------

    async def run_one(self) -> str | None:
        """Claim and handle one due job in one transaction; None when nothing is due."""
        async with self.sessionmaker() as session, session.begin():
            job = await repository.claim_due_job(session, clock.now())
            if job is None:
                return None
            kind = job.kind
            metrics.record("outbox_jobs_claimed", lambda: CLAIMED.labels(kind).inc())
            status, ctx = await self._handle(session, job)
        # Counted once committed, never able to fail the job.
        ctx.committed()
        metrics.record("outbox_jobs", lambda: JOBS.labels(kind, status).inc())
        return status

    async def _handle(self, session: AsyncSession, job: OutboxJob) -> tuple[str, JobContext]:
        # Read before the handler runs: a rolled-back savepoint may expire the object.
        job_id, kind, payload = job.id, job.kind, dict(job.payload)
        attempt = job.attempts + 1
        ctx = JobContext(
            session=session,
            settings=self.settings,
            wechat=self.wechat,
            engine=self.engine,
            now=clock.now(),
            attempt=attempt,
            final_attempt=attempt >= self.config.max_attempts,
        )
        handler = _resolve_handler(kind)
        if handler is None:
            self._finish(job, attempt, "dead", f"no handler for job kind {kind!r}")
            log.warning("job dead", job_id=job_id, kind=kind, error="no handler")
            return "dead", ctx
        try:
            async with session.begin_nested():
                outcome = await handler(ctx, payload)
        except Exception as error:
            ctx.forget_counts()
            reason = describe(error.__cause__ or error) if isinstance(error, RetryLater) else ""
            reason = reason or describe(error)
            if attempt >= self.config.max_attempts:
                self._finish(job, attempt, "dead", reason)
                log.warning("job dead", job_id=job_id, kind=kind, error=reason)
                return "dead", ctx
            delay = backoff_delay(attempt, self.config)
            job.attempts = attempt
            job.last_error = reason
            job.run_after = clock.now() + timedelta(seconds=delay)
            log.info("job retried", job_id=job_id, kind=kind, attempt=attempt, delay_s=delay)
            return "retry", ctx
        self._finish(job, attempt, outcome.status, outcome.note)
        return outcome.status, ctx

    @staticmethod
    def _finish(job: OutboxJob, attempt: int, status: str, note: str | None) -> None:
        job.status = status
        job.attempts = attempt
        job.finished_at = func.now()
        if status == "dead":
            job.last_error = note

    # -- loops -------------------------------------------------------------------------

    async def drain(self, max_jobs: int | None = None) -> int:
        """Handle due jobs until none is left (or ``max_jobs``); returns how many ran."""
        handled = 0
        while max_jobs is None or handled < max_jobs:
            if self._stop.is_set() or await self.run_one() is None:
                break
            handled += 1
        return handled

    async def _lane(self) -> int:
        return await self.drain(self.config.batch_size)

    async def measure_lag(self) -> float:
        """Set the lag gauge from the database: how long the oldest due job has waited."""
        async with self.sessionmaker() as session:
            lag = await repository.oldest_due_job_lag_s(session, clock.now())
        metrics.record("outbox_lag", lambda: LAG.set(lag))
        return lag

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        stop = self._stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        next_tick = next_measure = 0.0
        log.info("worker started", worker=self.name, lanes=self.config.concurrency)
        while not stop.is_set():
            pause = self.config.poll_interval_s
            try:
                if loop.time() >= next_measure:
                    next_measure = loop.time() + self.config.metrics_interval_s
                    await self.measure_lag()
                if loop.time() >= next_tick:
                    next_tick = loop.time() + self.config.scheduler_interval_s
                    await self.scheduler.tick()
                lanes = [self._lane() for _ in range(max(self.config.concurrency, 1))]
                results = await asyncio.gather(*lanes, return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
                if sum(r for r in results if isinstance(r, int)) > 0:
                    pause = 0.0
            except Exception as error:
                log.warning("worker loop error", worker=self.name, error=describe(error))
                pause = self.config.error_pause_s
            if pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)
        log.info("worker stopped", worker=self.name)


# -- entry points ------------------------------------------------------------------------


def _in_process_config() -> WorkerConfig:
    """Two lanes by default: the worker shares the API's connection pool."""
    config = WorkerConfig()
    if "concurrency" in config.model_fields_set:
        return config
    return config.model_copy(update={"concurrency": 2})


def start_in_process(app: FastAPI) -> asyncio.Task[None]:
    """Single-machine mode (``make run``): the worker shares the API's pool and clients."""
    worker = Worker(
        app.state.sessionmaker,
        settings=app.state.settings,
        wechat=app.state.wechat,
        engine=app.state.engine,
        config=_in_process_config(),
        name=f"in-process:{os.getpid()}",
    )
    app.state.worker = worker
    return asyncio.create_task(worker.run_forever(), name="outbox-worker")


async def run_worker(settings: Settings, url: str) -> None:
    """``python -m app worker``: own engine, HTTP client and WeChat client; stops on SIGTERM."""
    from app.core.logging import configure_logging, flush_logs

    configure_logging(flush_interval_s=settings.log_flush_interval_s)
    clock.set_offset(settings.clock_offset)
    config = WorkerConfig()
    try:
        exporter = metrics.serve_on_port(settings.host, config.metrics_port)
    except OSError as error:  # deliveries matter more than their metrics
        exporter = None
        log.error("worker metrics port unavailable", port=config.metrics_port, error=str(error))
    # Each lane holds one connection while it handles a job, plus the token cache's.
    engine = create_engine(
        settings, url, pool_size=max(settings.db_pool_size, config.concurrency + 2)
    )
    transport: httpx.AsyncBaseTransport | None = None
    base_url = settings.wechat_api_base
    if settings.simulator_enabled:
        from app.wechat.simulator import WeChatSimulator

        simulator = WeChatSimulator(settings.wechat_appid, settings.wechat_secret)
        transport = httpx.ASGITransport(app=simulator.asgi())
        base_url = SIMULATOR_BASE
    http = httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        timeout=httpx.Timeout(settings.wechat_timeout_s, connect=3.0),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
    wechat = WeChatClient(
        http, appid=settings.wechat_appid, secret=settings.wechat_secret, engine=engine
    )
    worker = Worker(
        make_sessionmaker(engine), settings=settings, wechat=wechat, engine=engine, config=config
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    missing = [name for name, ok in worker.scheduler.available().items() if not ok]
    if missing:
        log.warning("scheduled jobs without a target (skipped)", jobs=missing)
    try:
        await worker.run_forever(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, ValueError):
                loop.remove_signal_handler(sig)
        if exporter is not None:
            await asyncio.to_thread(exporter.shutdown)
            exporter.server_close()
        await http.aclose()
        await engine.dispose()
        flush_logs()
