"""What a background job handler gets and how it reports back to the worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import clock, metrics
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
    # Metric updates that describe what the transaction did: run once it committed
    # (never before: a counter must not be able to undo or repeat the work it counts).
    _after_commit: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def count_after_commit(self, name: str, update: Callable[[], object]) -> None:
        self._after_commit.append((name, update))

    def forget_counts(self) -> None:
        """The work was rolled back: what it would have counted did not happen."""
        self._after_commit.clear()

    def committed(self) -> None:
        """Run the deferred metric updates; none of them can raise."""
        updates, self._after_commit[:] = list(self._after_commit), []
        for name, update in updates:
            metrics.record(name, update)

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
