"""Browser tests of the web console: Playwright (from PyPI) driving the system Chromium
(Debian's ``chromium`` package: never a downloaded browser) against a live uvicorn on a
fresh embedded database with the demo data. Without Chromium they are skipped, and the
summary says so."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import run_alembic
from tests.live import ROOT, live_server, with_database

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
SKIPPED: list[str] = []


def chromium_path() -> str | None:
    explicit = os.environ.get("BRANCHLINK_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser = [item for item in items if item.get_closest_marker("browser")]
    if not browser:
        return
    reason = None
    if chromium_path() is None:
        reason = "Chromium not found (apt-get install -y chromium): browser tests skipped"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            reason = "playwright not installed (pip install -e '.[dev]'): browser tests skipped"
    if reason:
        SKIPPED.append(f"{reason} ({len(browser)} tests)")
        for item in browser:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in SKIPPED:
        terminalreporter.write_line(f"NOTE: {line}", yellow=True)


async def _create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def demo_server(database_url: str) -> AsyncIterator[str]:
    """A live app on a fresh database, migrated and seeded with the demo data."""
    name = f"console_{uuid.uuid4().hex[:8]}"
    await _create_database(database_url, name)
    url = with_database(database_url, name)
    try:
        await asyncio.to_thread(run_alembic, url, "upgrade", "head")
        env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "APP_DEMO_DATA": "true"}
        seeded = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app", "seed-demo"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        with live_server(url) as base:
            yield base
    finally:
        await _drop_database(database_url, name)
