"""Column helpers shared by every domain's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core import clock


def pk() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(always=False), primary_key=True)


def created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def updated_at() -> Mapped[datetime]:
    # The app's clock, in Python: the new value is known after a flush (an expired
    # attribute would need a lazy load, which async sessions cannot do) and follows
    # the dev/test clock offset like every other "now" of a rule.
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=clock.now, nullable=False
    )
