"""Fixed-window rate limits kept in PostgreSQL, so every API replica shares them.

One UPSERT per check; a separate short transaction so a rejected request's rollback
does not undo the count (otherwise failed attempts would be free).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, func, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.errors import AppError


class RateLimitBucket(Base):
    __tablename__ = "rate_limit_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


@dataclass(frozen=True)
class Policy:
    name: str
    limit: int
    window_s: int


_UPSERT = text(
    """
    INSERT INTO rate_limit_buckets (key, window_start, hits) VALUES (:key, :window, :cost)
    ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limit_buckets.hits + :cost
    RETURNING hits
    """
)


def wait_text(seconds: int) -> str:
    """How long to wait, as a person says it: "30 秒", "12 分钟", "2 小时"."""
    if seconds < 60:
        return f" {max(seconds, 1)} 秒"
    if seconds < 3600:
        return f" {math.ceil(seconds / 60)} 分钟"
    return f" {math.ceil(seconds / 3600)} 小时"


async def hit(
    engine: AsyncEngine, policy: Policy, subject: str, *, cost: int = 1
) -> dict[str, str]:
    """Count ``cost`` attempts; raise 429 past the limit. Returns the RateLimit headers."""
    now = int(time.time())
    window = now - now % policy.window_s
    async with engine.begin() as conn:
        hits = (
            await conn.execute(
                _UPSERT, {"key": f"{policy.name}:{subject}", "window": window, "cost": cost}
            )
        ).scalar_one()
    reset = window + policy.window_s - now
    remaining = max(policy.limit - hits, 0)
    headers = {
        "RateLimit-Policy": f'"{policy.name}";q={policy.limit};w={policy.window_s}',
        "RateLimit": f'"{policy.name}";r={remaining};t={reset}',
    }
    if hits > policy.limit:
        raise AppError(
            "rate_limited",
            429,
            f"操作过于频繁，请{wait_text(reset)}后再试",
            headers={**headers, "Retry-After": str(reset)},
            extra={"retry_after_s": reset},
        )
    return headers


async def purge(engine: AsyncEngine, older_than_s: int = 86_400) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM rate_limit_buckets WHERE window_start < :cut"),
            {"cut": int(time.time()) - older_than_s},
        )
