"""In-app inbox, the transactional outbox, subscribe-message grants and scheduled runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk

JOB_STATUSES = ("pending", "done", "dead")
# What happened to a notification's WeChat subscribe message (the inbox row always exists).
DELIVERY_STATES = ("pending", "sent", "skipped", "unsubscribed", "failed")


class Notification(Base):
    """One message in a user's in-app inbox (``GET /api/v1/me/notifications``).

    ``delivery`` records the WeChat push: the worker sends only while it is ``pending``
    and sets it in the same transaction as the job, so a notification is pushed once.
    Partitioned by month of ``created_at`` (:mod:`app.core.partitions`), so the
    primary key is (id, created_at); ``id`` alone is still unique (one sequence).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_account_id_id", "account_id", "id"),
        Index(
            "ix_notifications_account_unread",
            "account_id",
            postgresql_where=text("read_at IS NULL"),
        ),
        CheckConstraint(f"delivery IN {DELIVERY_STATES}", name="delivery"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE")
    )
    template: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    page: Mapped[str | None] = mapped_column(String(200))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), primary_key=True
    )
    delivery: Mapped[str] = mapped_column(String(12), server_default=text("'pending'"))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Identified by ``id`` alone in the ORM (``session.get(Notification, id)``): the
    # table's key includes created_at only because partitioning requires it.
    __mapper_args__ = {"primary_key": ["id"]}  # noqa: RUF012


class OutboxJob(Base):
    """Work that must survive a crash, written in the same transaction as its cause.

    ``dedupe_key`` makes enqueueing idempotent (a scheduled job that runs twice, or a
    retried request, enqueues once). Workers claim with ``FOR UPDATE SKIP LOCKED``.
    """

    __tablename__ = "outbox_jobs"
    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUSES}", name="status"),
        Index("ix_outbox_jobs_due", "run_after", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = pk()
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(10), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    run_after: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxHistory(Base):
    """Outbox jobs that were done for 30 days, moved out of the live queue by
    ``notify.purge_finished`` (it used to delete them): the queue stays small, the
    record stays. Partitioned by month of ``finished_at``; old months are detached
    (:mod:`app.core.partitions`). A job's dedupe key leaves the queue with it, exactly
    as when done jobs were deleted."""

    __tablename__ = "outbox_history"
    __table_args__ = ({"postgresql_partition_by": "RANGE (finished_at)"},)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)


class SubscriptionGrant(Base):
    """One-time subscribe-message grants an account gave us, per template.

    Every ``accept`` reported by ``wx.requestSubscribeMessage`` allows one send; a send
    uses one up; WeChat's 43101 ("not subscribed") zeroes the count.
    """

    __tablename__ = "subscription_grants"
    __table_args__ = (CheckConstraint("remaining >= 0", name="remaining_not_negative"),)

    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    template: Mapped[str] = mapped_column(String(40), primary_key=True)
    remaining: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    accepted_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rejected_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_decision: Mapped[str | None] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ScheduledRun(Base):
    """A scheduled job's run for one period: the primary key makes it once per period."""

    __tablename__ = "scheduled_runs"

    job: Mapped[str] = mapped_column(String(80), primary_key=True)
    period: Mapped[str] = mapped_column(String(40), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[str | None] = mapped_column(Text)
