"""The outbox worker and scheduled jobs (``python -m app worker``)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from app.core.config import Settings


async def run_worker(settings: Settings, url: str) -> None:
    raise NotImplementedError("the outbox worker is being written (issue 7)")


def start_in_process(app: FastAPI) -> asyncio.Task[None]:
    raise NotImplementedError("the outbox worker is being written (issue 7)")
