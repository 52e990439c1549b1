"""What a background job handler gets and how it reports back to the worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import clock
from app.core.config import Settings
from app.wechat.client import WeChatClient


@dataclass(frozen=True)
class JobContext:
    """One run of a job: its transaction's session and the shared clients.

    ``session`` is inside the transaction that holds the job's row lock (outbox) or the
    ``scheduled_runs`` row (scheduler): whatever the handler writes commits together
    with the job being marked done.
    """

    session: AsyncSession
    settings: Settings
    wechat: WeChatClient
    engine: AsyncEngine
    now: datetime
    attempt: int = 1
    final_attempt: bool = False

    @property
    def today(self) -> date:
        """Today in Asia/Shanghai: "days" in this service are Chinese calendar days."""
        return clock.shanghai_day(self.now)


@dataclass(frozen=True)
class Outcome:
    """How a handler's run ended: ``done`` (whatever happened is final) or ``dead``."""

    status: Literal["done", "dead"]
    note: str | None = None


class RetryLater(Exception):
    """A transient failure: the worker retries the job later with backoff."""


def describe(error: BaseException) -> str:
    """A short, log-safe description (no SQL parameters, which may carry personal data)."""
    if isinstance(error, StatementError) and error.orig is not None:
        first = str(error.orig).splitlines()[0] if str(error.orig) else ""
        return f"{type(error.orig).__name__}: {first}"[:300]
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:300]
