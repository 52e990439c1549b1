"""A real uvicorn process of the app, for tests that need a socket (fuzzing, restarts)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def end_process(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, and SIGKILL if it is still there after ``grace_s``."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def live_server(database_url: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run ``uvicorn app.main:create_app`` on a free port; yield its base URL."""
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"branchlink-live-{port}.log"
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "APP_WECHAT_SIMULATOR": "true",
        "APP_DEMO_DATA": "false",
        **(env or {}),
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("live server did not start:\n" + log_path.read_text())
                time.sleep(0.1)
            yield base
        finally:
            end_process(process, 10)
    live_server.last_log = log_path.read_text()  # type: ignore[attr-defined]
    log_path.unlink(missing_ok=True)


async def admin_token(url: str, org_name: str) -> str:
    """A committed organisation on ``url`` and the access token (1 h) of an admin there."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.core.config import Settings
    from app.core.db import create_engine
    from tests import factories

    settings = Settings(env="test", database_url=url, access_token_ttl_s=3600)
    engine = create_engine(settings, url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as db:
            org = await factories.org(db, org_name)
            admin = await factories.admin_actor(db, settings, org)
            await db.commit()
            return admin.token
    finally:
        await engine.dispose()


def with_database(url: str, database: str) -> str:
    return urlunparse(urlparse(url)._replace(path="/" + database))


@asynccontextmanager
async def scratch_database(
    server_url: str, prefix: str, *, migrate: bool = True
) -> AsyncIterator[str]:
    """A fresh database (migrated unless told not to) on the test server, dropped afterwards."""
    from tests.conftest import run_alembic

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = with_database(server_url, "postgres")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(server_url, name)
    if migrate:
        await asyncio.to_thread(run_alembic, url, "upgrade", "head")
    try:
        yield url
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
