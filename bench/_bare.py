"""The baselines of ``bench.checkin`` and ``bench.endpoints``: a tiny raw ASGI app on its
own asyncpg pool.

No framework, no auth, no rules, run by uvicorn in a subprocess. ``BENCH_BARE_MODE``:

* ``insert`` (the target's baseline): one ``INSERT … RETURNING`` per request, what one
  worker can do when a request is nothing but a write; in every mode ``GET /rows/<n>``
  reads ``n`` rows (one keyed range read) and answers them as JSON;
* ``checkin``: the check-in's own award path instead (the app's check-in batcher on a
  driver pool, so concurrent check-ins share statements as in the app), the session's
  owner taken from a table loaded at startup: what the app would reach if HTTP
  handling, auth and validation cost nothing. The gap between the two is the
  statement's price in PostgreSQL, the gap to the app's figure is the app's.

``BENCH_BARE_DSN`` and ``BENCH_BARE_POOL`` come from the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from app.core.clock import shanghai_day
from app.core.config import Settings
from app.core.driver_pool import DriverPool
from app.study.batching import AwardBatcher
from app.study.repository import StudyClaim
from tests.live import free_port

ROOT = Path(__file__).resolve().parent.parent
TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS bench_bare (id bigserial PRIMARY KEY, session_id bigint, "
    "client_event_id text, created_at timestamptz NOT NULL DEFAULT now())"
)
INSERT = "INSERT INTO bench_bare (session_id, client_event_id) VALUES ($1, $2) RETURNING id"
# What ``GET /rows/<n>`` reads: rows shaped like a list item (id, two texts, a time).
ROWS_DDL = (
    "CREATE TABLE IF NOT EXISTS bench_rows (id bigint PRIMARY KEY, title text NOT NULL, "
    "body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
    "INSERT INTO bench_rows (id, title, body) SELECT g, '基准标题 ' || g, "
    "repeat('基准内容', 10) || g FROM generate_series(1, 2000) AS g ON CONFLICT DO NOTHING"
)
ROWS = "SELECT id, title, body, created_at FROM bench_rows WHERE id > $1 ORDER BY id LIMIT $2"

_pool: Any = None
_owners: dict[int, int] = {}
_batcher: AwardBatcher | None = None


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                size = int(os.environ.get("BENCH_BARE_POOL", "20"))
                _pool = await asyncpg.create_pool(
                    os.environ["BENCH_BARE_DSN"], min_size=size, max_size=size
                )
                if os.environ.get("BENCH_BARE_MODE") == "checkin":
                    await _start_award_path(size)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _pool.close()
                if _batcher is not None:
                    await _batcher.source.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/healthz":
        payload, status = b'{"status":"ok"}', 200
    elif scope["path"].startswith("/rows/"):
        # ``GET /rows/<n>``: n rows of a keyed range read, as JSON (bench.endpoints).
        count = int(scope["path"][6:])
        start = int(scope.get("query_string") or b"0")
        rows = await _pool.fetch(ROWS, start % 1000, count)
        payload, status = orjson.dumps([dict(r) for r in rows]), 200
    else:
        data = orjson.loads(await _body(receive))
        if _owners:
            row_id = await _award(data["session_id"], data["client_event_id"])
        else:
            row_id = await _pool.fetchval(INSERT, data["session_id"], data["client_event_id"])
        payload, status = orjson.dumps({"id": row_id}), 201
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _start_award_path(size: int) -> None:
    global _batcher
    rows = await _pool.fetch("SELECT id, member_id FROM study_sessions")
    _owners.update((r["id"], r["member_id"]) for r in rows)
    dsn = os.environ["BENCH_BARE_DSN"]
    settings = Settings(env="test", database_url=dsn, db_driver_pool_size=size)
    _batcher = AwardBatcher(await DriverPool.open(settings, dsn))


async def _award(session_id: int, client_event_id: str) -> int | None:
    assert _batcher is not None
    at = datetime.now(UTC)
    row = await _batcher.award(
        StudyClaim(
            member_id=_owners[session_id],
            session_id=session_id,
            client_event_id=client_event_id,
            at=at,
            day=shanghai_day(at),
        )
    )
    return row.new_id or row.prev_id


@dataclass(frozen=True)
class Served:
    """A uvicorn process serving on ``base``; ``pid`` for its CPU time (/proc)."""

    base: str
    pid: int


@contextmanager
def uvicorn_process(target: str, env: dict[str, str], *extra: str) -> Iterator[Served]:
    """Run ``uvicorn <target>`` (one worker, no access log of uvicorn's own) on a free
    port until it answers ``/healthz``; stop it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, *extra, "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{target} did not start")
            time.sleep(0.1)
        yield Served(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def bare_server(dsn: str, pool_size: int, mode: str = "insert") -> Iterator[str]:
    """Run this module's app with uvicorn (one worker) on a free port; yield its base URL."""
    env = {"BENCH_BARE_DSN": dsn, "BENCH_BARE_POOL": str(pool_size), "BENCH_BARE_MODE": mode}
    with uvicorn_process("bench._bare:app", env) as served:
        yield served.base
