"""What an operator meets: the worker and server processes as shipped, their metrics,
start-up refusals, migrations from several replicas at once, and the access log on stop.

Most tests here run real processes (``python -m app ...``) against the test database,
with a fake WeChat server on a socket where the worker needs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import clock
from app.core.config import Settings
from app.core.db import MIGRATION_LOCK_KEY
from app.core.metrics import METHODS, OTHER_METHOD, UNMATCHED_ROUTE
from app.main import create_app
from app.notify import delivery, worker
from app.notify.models import Notification, OutboxJob
from app.wechat.simulator import WeChatSimulator
from tests.api.test_worker import make_due, order_update, savepoint_worker, state, subscriber
from tests.api.test_worker_concurrency import committed_notifications
from tests.conftest import problem
from tests.live import ROOT, free_port, scratch_database

HTTP_METRICS = ("http_requests_total", "http_request_duration_seconds")


def _env(**extra: str) -> dict[str, str]:
    """The test process's environment without database or metrics settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "APP_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")
        and not k.startswith("APP_")
        and k != "PYTHONUNBUFFERED"  # as in the image: stdout is buffered, the app flushes
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def spawn(command: str, cwd: Path, database_url: str, **env: str) -> subprocess.Popen[str]:
    """``python -m app <command>`` in ``cwd`` on the test database, stdout piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "app", command],
        cwd=cwd,
        env=_env(DATABASE_URL=database_url, APP_ENV="test", APP_HOST="127.0.0.1", **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class Output:
    """A child process's stdout, collected line by line in the background."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in list(self.lines):
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    found.append(event)
        return found

    def wait_for(self, event: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for found in self.events():
                if found.get("event") == event:
                    return found
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} in the output:\n" + "".join(self.lines[-40:]))

    def join(self) -> str:
        self._thread.join(10)
        return "".join(self.lines)


@contextlib.contextmanager
def fake_wechat(simulator: WeChatSimulator) -> Iterator[str]:
    """The simulator on a real socket (the worker process talks HTTP to it)."""
    server = uvicorn.Server(
        uvicorn.Config(simulator.asgi(), host="127.0.0.1", port=0, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "fake WeChat server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels (parses it fully)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def check_exposition(text: str) -> None:
    """``promtool check metrics`` when promtool is there (PROMTOOL or PATH; Debian's
    ``prometheus`` package has it), else the full parse of :func:`samples` only."""
    promtool = os.environ.get("PROMTOOL") or shutil.which("promtool")
    samples(text)
    if promtool:
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stdout + result.stderr


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


# -- the worker: counting never undoes or repeats a delivery --------------------------------


async def test_a_counter_that_raises_neither_resends_nor_fails_the_job(
    db: AsyncSession,
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    simulator: WeChatSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: object) -> Any:
        raise FileNotFoundError("/tmp/prometheus/counter_1.db")

    for counter in (delivery.SENDS, worker.JOBS, worker.CLAIMED):
        monkeypatch.setattr(counter, "labels", broken)
    actor = await subscriber(db, settings)
    notification_id = await order_update(db, actor)
    jobs = savepoint_worker(db, app, engine, backoff_base_s=0.001)

    assert await jobs.drain() == 1
    await make_due(db)  # a retried job would be due again at once
    assert await jobs.drain() == 0
    assert len(simulator.sent) == 1
    assert await state(db, notification_id) == ("sent", "done", 1)


async def test_the_lag_gauge_is_the_wait_of_the_oldest_due_job(
    db: AsyncSession, settings: Settings, app: FastAPI, engine: AsyncEngine
) -> None:
    actor = await subscriber(db, settings)
    await order_update(db, actor)
    await db.execute(
        update(OutboxJob)
        .where(OutboxJob.status == "pending")
        .values(run_after=clock.now() - timedelta(minutes=5))
    )
    await db.commit()
    jobs = savepoint_worker(db, app, engine)

    lag = await jobs.measure_lag()
    assert 300 <= lag < 330
    assert REGISTRY.get_sample_value("outbox_oldest_due_job_lag_seconds") == lag
    assert await jobs.drain() == 1
    assert await jobs.measure_lag() == 0
    assert REGISTRY.get_sample_value("outbox_oldest_due_job_lag_seconds") == 0


async def test_the_worker_process_with_a_missing_metrics_directory_sends_once(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    """The worker as shipped in the image: PROMETHEUS_MULTIPROC_DIR names a directory
    that does not exist. Each message reaches WeChat exactly once, and the worker's own
    port shows what it did."""
    ids = await committed_notifications(engine, settings, accounts=2, per_account=3)
    simulator = WeChatSimulator(settings.wechat_appid, settings.wechat_secret)
    assert settings.database_url
    with fake_wechat(simulator) as wechat_base:
        process = spawn(
            "worker",
            tmp_path,
            settings.database_url,
            APP_WECHAT_API_BASE=wechat_base,
            APP_WECHAT_SIMULATOR="false",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "missing" / "prometheus"),
            APP_WORKER_METRICS_PORT="0",
            APP_WORKER_POLL_INTERVAL_S="0.05",
            APP_WORKER_BACKOFF_BASE_S="0.05",  # a rolled-back send would be retried at once
            APP_WORKER_METRICS_INTERVAL_S="0.1",
        )
        output = Output(process)
        try:
            port = output.wait_for("metrics listening")["port"]
            deadline = time.monotonic() + 60
            while len(simulator.sent) < len(ids) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # many polls and would-be retries later
            async with httpx.AsyncClient() as scraper:
                exposition = (await scraper.get(f"http://127.0.0.1:{port}/metrics")).text
            check_exposition(exposition)
            scraped = samples(exposition)
        finally:
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(30)
        log = output.join()

    assert len(simulator.sent) == len(ids), log
    assert sorted(s["data"]["thing1"]["value"] for s in simulator.sent) == sorted(
        f"诉求 {a}-{i}" for a in range(2) for i in range(3)
    )
    async with AsyncSession(engine) as db:
        deliveries = (await db.execute(select(Notification.delivery))).scalars().all()
        jobs = (await db.execute(select(OutboxJob.status, OutboxJob.attempts))).all()
    assert sorted(deliveries) == ["sent"] * len(ids)
    assert [tuple(j) for j in jobs] == [("done", 1)] * len(ids)
    kind = {"kind": "wechat.subscribe_send"}
    assert value(scraped, "outbox_jobs_claimed_total", **kind) == len(ids)
    assert value(scraped, "outbox_jobs_total", outcome="done", **kind) == len(ids)
    assert value(scraped, "outbox_jobs_total", outcome="retry", **kind) == 0
    assert value(
        scraped, "wechat_subscribe_messages_total", template="order_status", delivery="sent"
    ) == len(ids)
    assert ("outbox_oldest_due_job_lag_seconds", ()) in scraped
    assert returncode == 0, log
    assert '"worker stopped"' in log  # written out before the process ended
    assert not (tmp_path / "missing").exists()  # one process: samples in memory


# -- start-up ----------------------------------------------------------------------------


def test_prod_without_database_url_refuses_to_start(tmp_path: Path) -> None:
    secret = "x" * 43 + "="
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=tmp_path,
        env=_env(
            APP_ENV="prod",
            APP_DATA_DIR=str(tmp_path / "data"),
            APP_JWT_SECRET="prod-secret-" + "y" * 40,
            APP_PII_KEY=secret,
            APP_PII_INDEX_KEY="z" * 43 + "=",
            APP_QR_SECRET="prod-qr-" + "q" * 40,
            APP_WECHAT_APPID="wx0123456789abcdef",
            APP_WECHAT_SECRET="0123456789abcdef0123456789abcdef",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot start" in result.stderr and "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # no embedded PostgreSQL was started


async def test_replicas_migrating_together_take_turns(migrated_url: str, tmp_path: Path) -> None:
    """Two ``python -m app migrate`` on an empty database at once: both wait for the
    advisory lock, then one migrates and the other finds nothing to do."""
    async with scratch_database(migrated_url, "branchlink_lock", migrate=False) as url:
        holder = await asyncpg.connect(url)
        processes: list[subprocess.Popen[str]] = []
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            processes = [spawn("migrate", tmp_path, url) for _ in range(2)]
            waiting = 0
            deadline = time.monotonic() + 60
            while waiting < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                waiting = await holder.fetchval(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                    " WHERE l.locktype = 'advisory' AND NOT l.granted"
                    " AND d.datname = current_database()"
                )
            assert waiting == 2, [p.poll() for p in processes]
            await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
            outputs = [await asyncio.to_thread(p.communicate, None, 120) for p in processes]
            assert [p.returncode for p in processes] == [0, 0], outputs
            heads = await holder.fetch("SELECT version_num FROM alembic_version")
            tables = await holder.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
        finally:
            for p in processes:
                if p.poll() is None:
                    p.kill()
            await holder.close()
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()
    assert [r["version_num"] for r in heads] == [head]
    assert tables > 20


# -- metrics on the API ------------------------------------------------------------------


def _random_request(rng: random.Random) -> tuple[str, str]:
    method = rng.choice(
        [*METHODS, "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))]
    )
    word = "".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(1, 16)))
    path = rng.choice(
        [f"/{word}", f"/api/v1/{word}", f"/api/v1/orgs/{rng.randint(1, 10**9)}", "/healthz"]
    )
    return method, path


def _http_series(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> set[Any]:
    return {key for key in found if key[0].startswith(HTTP_METRICS)}


async def test_random_methods_and_paths_add_only_bounded_series(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    before = _http_series(samples((await client.get("/metrics")).text))
    rng = random.Random(21)
    for _ in range(400):
        method, path = _random_request(rng)
        await client.request(method, path)
    after = samples((await client.get("/metrics")).text)
    added = _http_series(after) - before

    # Route labels are the paths of the OpenAPI document (or the undocumented /metrics).
    routes = set(app.openapi()["paths"]) | {"/metrics", UNMATCHED_ROUTE}
    for _, labels in added:  # earlier tests in this process may have probe routes
        label = dict(labels)
        assert label["method"] in METHODS | {OTHER_METHOD}
        assert label["route"] in routes
    # 400 requests, about 50 of them with a method of their own and 300 with a path of
    # their own, touched at most 4 routes with at most 8 method labels: each pair is one
    # histogram (14 samples) and a counter per status.
    pairs = {(dict(labels)["method"], dict(labels)["route"]) for _, labels in added}
    assert len({route for _, route in pairs}) <= 4
    assert len(pairs) <= 8 * 4
    assert len(added) <= len(pairs) * (14 + 3)
    assert (
        value(
            after, "http_requests_total", method="GET", route="/api/v1/orgs/{org_id}", status="401"
        )
        >= 1
    )


def _prod_settings(migrated_url: str, **extra: Any) -> Settings:
    return Settings(
        env="prod",
        database_url=migrated_url,
        jwt_secret="prod-secret-" + "y" * 40,
        pii_key="x" * 43 + "=",
        pii_index_key="z" * 43 + "=",
        qr_secret="prod-qr-" + "q" * 40,
        wechat_appid="wx0123456789abcdef",
        wechat_secret="0123456789abcdef0123456789abcdef",
        **extra,
    )


async def test_metrics_in_prod_need_the_bearer_token(
    migrated_url: str, engine: AsyncEngine
) -> None:
    async def get(settings: Settings, **headers: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(settings, engine=engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/metrics", headers=headers)

    problem(await get(_prod_settings(migrated_url)), 404, "http.not_found")
    guarded = _prod_settings(migrated_url, metrics_token="scrape-token-0123456789")
    refused = problem(await get(guarded), 401, "metrics.unauthorized")
    assert "令牌" in refused["detail"]
    problem(await get(guarded, Authorization="Bearer wrong"), 401, "metrics.unauthorized")
    ok = await get(guarded, Authorization="Bearer scrape-token-0123456789")
    assert ok.status_code == 200
    assert ("db_pool_size", ()) in samples(ok.text)


# -- the server process: several workers, their gauges, dead workers, SIGTERM ---------------


def _pool_size(base: str, headers: dict[str, str]) -> float:
    return value(
        samples(httpx.get(f"{base}/metrics", headers=headers, timeout=5).text), "db_pool_size"
    )


def _workers(pid: int) -> set[int]:
    """The uvicorn worker processes under the supervising one."""
    found = set()
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.Error):  # a killed one is a zombie until reaped
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
                child.cmdline()
            ):
                found.add(child.pid)
    return found


def _until(check: Any, expected: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            seen = check()
            if seen == expected:
                return seen
        time.sleep(0.2)
    return seen


def test_served_by_several_workers(settings: Settings, tmp_path: Path) -> None:
    """``python -m app serve`` with two workers: metrics add up the live workers (a killed
    worker's gauges leave with it), stay bounded under random requests, need the token,
    are on their own port too; SIGTERM writes out every access line first."""
    assert settings.database_url
    port, metrics_port = free_port(), free_port()
    token = "scrape-token-0123456789"
    process = spawn(
        "serve",
        tmp_path,
        settings.database_url,
        APP_PORT=str(port),
        APP_WORKERS="2",
        APP_DB_POOL_SIZE="3",
        APP_DATA_DIR=str(tmp_path / "data"),
        APP_METRICS_TOKEN=token,
        APP_METRICS_PORT=str(metrics_port),
        APP_LOG_FLUSH_INTERVAL_S="3600",  # only the stop may write access lines out
    )
    output = Output(process)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    try:
        # Both workers up: their pool sizes add up (3 + 3).
        assert _until(lambda: _pool_size(base, auth), 6.0) == 6.0, output.join()
        problem(httpx.get(f"{base}/metrics", timeout=5), 401, "metrics.unauthorized")

        # A worker killed outright is replaced; its gauges leave with it.
        workers = sorted(_workers(process.pid))
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        assert _until(lambda: len(_workers(process.pid) - {workers[0]}), 2) == 2
        started = "Application startup complete."
        assert _until(lambda: sum(e["event"] == started for e in output.events()), 3) == 3
        time.sleep(0.5)  # its first pool sample follows its startup at once
        assert _until(lambda: _pool_size(base, auth), 6.0) == 6.0  # not 9

        rng = random.Random(14)
        with httpx.Client(base_url=base, timeout=5) as client:
            for _ in range(300):
                client.request(*_random_request(rng))
            ids = [f"sigterm-{i}" for i in range(40)]
            for request_id in ids:
                client.get("/readyz", headers={"X-Request-ID": request_id})
        exposition = httpx.get(f"{base}/metrics", headers=auth, timeout=5).text
        on_port = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    log = output.join()

    check_exposition(exposition)
    check_exposition(on_port)
    found = samples(exposition)
    print(f"series after 340 random and 40 known requests: {len(found)}")
    assert len(found) < 500  # every series of the app, histogram buckets included
    assert value(found, "http_requests_total", method="GET", route="/readyz", status="200") == 40
    assert (
        value(samples(on_port), "http_requests_total", method="GET", route="/readyz", status="200")
        >= 40
    )
    logged = {e.get("request_id") for e in output.events() if e.get("event") == "request"}
    assert set(ids) <= logged, log[-3000:]
