"""Waiting for PostgreSQL to report a lock wait, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def until_waiting_on_lock(
    engine: AsyncEngine, pid: int | None = None, *, within_s: float = 10
) -> None:
    """Return once a statement (of backend ``pid``, or any) waits on a lock; fail after
    ``within_s`` seconds."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND (CAST(:pid AS int) IS NULL OR pid = :pid)"
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        async with engine.connect() as conn:
            if (await conn.execute(query, {"pid": pid})).scalar_one():
                return
        await asyncio.sleep(0.02)
    raise AssertionError("no statement started waiting for a lock")
