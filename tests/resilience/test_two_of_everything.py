"""Two API processes and two outbox workers (real processes) on one database.

One fake WeChat server (the simulator on a socket) answers all four and counts: every
outbox job is delivered exactly once, every scheduled job runs once per period, a
rate limit counts the requests of both API processes together, and an Idempotency-Key
used on one API process is honoured on the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import create_engine
from app.notify import repository, service
from app.notify.models import OutboxJob
from app.study.models import StudySession
from app.wechat.simulator import WeChatSimulator
from tests import factories as f
from tests.live import ROOT, end_process, free_port, live_server, scratch_database
from tests.support.study import item

pytestmark = pytest.mark.slow

JOBS = 30


@contextmanager
def wechat_server(simulator: WeChatSimulator) -> Iterator[str]:
    """The simulator on a real port, shared by every process of the test."""
    port = free_port()
    config = uvicorn.Config(
        simulator.asgi(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake WeChat server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def worker_process(url: str, env: dict[str, str], log_path: Path) -> Iterator[Path]:
    """``python -m app worker`` on ``url``; yields its log file (JSON lines)."""
    full_env = {**os.environ, "DATABASE_URL": url, **env}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "worker"],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log_path
    finally:
        end_process(process, 15)


def _scheduled_runs(log_paths: list[Path]) -> Counter[tuple[str, str]]:
    runs: Counter[tuple[str, str]] = Counter()
    for path in log_paths:
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "scheduled job ran":
                runs[(entry["job"], entry["period"])] += 1
    return runs


async def _setup(url: str) -> tuple[str, int, int]:
    """A member (token, account) with JOBS notifications queued, and a study item."""
    settings = Settings(env="test", database_url=url, access_token_ttl_s=3600)
    engine = create_engine(settings, url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as db:
            home = await f.org(db, "双实例支部")
            actor = await f.member_actor(db, settings, home, "双实例党员")
            article = await item(db, home, kind="article", min_seconds=0)
            for _ in range(JOBS):
                await repository.record_decision(db, actor.account.id, "order_status", True)
            for n in range(JOBS):
                await service.notify(
                    db,
                    account_id=actor.account.id,
                    template="order_status",
                    title=f"工单{n}",
                    body="社区已派人处理",
                    data={"status": "处理中", "updated_at": "2026-11-23T01:30:00Z"},
                    page=f"pages/orders/detail?id={n}",
                )
            await db.commit()
            return actor.token, actor.account.id, article.id
    finally:
        await engine.dispose()


async def _count(url: str, statement: object) -> int:
    settings = Settings(env="test", database_url=url)
    engine = create_engine(settings, url)
    try:
        async with AsyncSession(engine) as db:
            return int((await db.execute(statement)).scalar_one())  # type: ignore[call-overload]
    finally:
        await engine.dispose()


async def test_two_api_processes_and_two_workers_share_one_database(
    migrated_url: str, tmp_path: Path
) -> None:
    simulator = WeChatSimulator("wx-dev-simulator", "dev-simulator-secret")
    async with scratch_database(migrated_url, "branchlink_two") as url:
        token, _, item_id = await _setup(url)
        headers = {"Authorization": f"Bearer {token}"}
        with ExitStack() as stack:
            fake = stack.enter_context(wechat_server(simulator))
            env = {
                "APP_ENV": "test",
                "APP_WECHAT_SIMULATOR": "false",
                "APP_WECHAT_API_BASE": fake,
                "APP_DEMO_DATA": "false",
            }
            apis = [stack.enter_context(live_server(url, env)) for _ in range(2)]
            logs = [
                stack.enter_context(worker_process(url, env, tmp_path / f"worker-{n}.log"))
                for n in range(2)
            ]
            async with httpx.AsyncClient(timeout=20) as http:
                # Idempotency: the same key on the other process replays the first answer.
                key = {"Idempotency-Key": "two-processes-session-1", **headers}
                body = {"item_id": item_id}
                first = await http.post(f"{apis[0]}/api/v1/study/sessions", json=body, headers=key)
                again = await http.post(f"{apis[1]}/api/v1/study/sessions", json=body, headers=key)
                assert first.status_code == 201, first.text
                assert again.status_code == 201 and again.json() == first.json()

                # Rate limit: ten logins a minute per openid, counted across both.
                if int(time.time()) % 60 > 40:  # all twelve inside one window
                    await asyncio.sleep(61 - int(time.time()) % 60)
                codes = []
                for n in range(12):
                    response = await http.post(
                        f"{apis[n % 2]}/api/v1/auth/wechat/login",
                        json={"code": f"o-two-processes.{n}"},
                    )
                    codes.append(response.status_code)
                assert Counter(codes) == {200: 10, 429: 2}, codes

            # The outbox: every job done, each message sent once.
            deadline = time.monotonic() + 60
            done_jobs = select(func.count()).where(OutboxJob.status == "done")
            while await _count(url, done_jobs) < JOBS:
                assert time.monotonic() < deadline, "the workers did not deliver in time"
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # a second delivery would arrive now
            pages = Counter(m.get("page") for m in simulator.sent)
            sessions = await _count(url, select(func.count()).select_from(StudySession))
        runs = _scheduled_runs(logs)

    assert len(simulator.sent) == JOBS
    assert pages == {f"pages/orders/detail?id={n}": 1 for n in range(JOBS)}
    assert sessions == 1
    assert runs, "no scheduled job ran"
    assert set(runs.values()) == {1}, runs
