"""Where benchmarks run: a throwaway embedded PostgreSQL (or a scratch DB on DATABASE_URL)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.core import embedded
from tests.live import scratch_database


@asynccontextmanager
async def bench_database(prefix: str) -> AsyncIterator[str]:
    """A migrated database URL for one benchmark run; removed afterwards."""
    external = os.environ.get("DATABASE_URL")
    if external:
        async with scratch_database(external, prefix) as url:
            yield url
        return
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp))
    server_url = embedded.start(tmp, cleanup_mode="delete")
    try:
        async with scratch_database(server_url, prefix) as url:
            yield url
    finally:
        embedded.stop(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
