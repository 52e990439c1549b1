"""Tables of the study domain: items, sessions, credit rules, the ledger, daily totals.

A check-in (or an attendance that earns credits) writes three rows in one statement: it
adds to the member's row of that day in ``credit_daily`` under that row's lock (where
the caps are enforced), then appends its ``credit_ledger`` entry with the points
actually awarded and its ``credit_claims`` row. The claim is unique by (member, source,
source_id) and by (member, client_event_id), so a replay finds it, and a racing
duplicate fails on those indexes and is rolled back whole (see the repository). The
ledger is partitioned by month; the claims are not, so their uniqueness is whole.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk

ITEM_KINDS = ("article", "video", "vr_hall", "quiz")
# Kinds that earn credits: the study item kinds plus activity attendance.
CREDIT_KINDS = (*ITEM_KINDS, "activity")
SOURCES = ("study", "activity")


class StudyItem(Base):
    """Something to study. ``org_id`` NULL: global (created by a superadmin)."""

    __tablename__ = "study_items"
    __table_args__ = (
        CheckConstraint(f"kind IN {ITEM_KINDS}", name="kind"),
        CheckConstraint("min_seconds >= 0", name="min_seconds"),
        CheckConstraint("points >= 0", name="points"),
    )

    id: Mapped[int] = pk()
    org_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(String(500))
    min_seconds: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    created_by_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at()


class StudySession(Base):
    """A member started studying an item; ``started_at`` is the server's clock."""

    __tablename__ = "study_sessions"

    id: Mapped[int] = pk()
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("study_items.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditRule(Base):
    """Points and daily caps per kind; ``org_id`` set: override for that subtree.

    For a member, the rule of a kind is the row of the nearest organisation on his home
    organisation's path, else the global row (``org_id`` NULL). The overall daily cap
    is taken from the same row.
    """

    __tablename__ = "credit_rules"
    __table_args__ = (
        CheckConstraint(f"kind IN {CREDIT_KINDS}", name="kind"),
        CheckConstraint("points >= 0 AND daily_cap >= 0 AND overall_daily_cap >= 0", name="caps"),
        UniqueConstraint("org_id", "kind", postgresql_nulls_not_distinct=True),
    )

    id: Mapped[int] = pk()
    org_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(Integer)
    daily_cap: Mapped[int] = mapped_column(Integer)
    overall_daily_cap: Mapped[int] = mapped_column(Integer)


class CreditDaily(Base):
    """Per member and Asia/Shanghai day: the total and the per-kind totals.

    Maintained by the same statement that appends to the ledger; its row lock is what
    serialises a member's awards of one day, and the caps are checked against it.
    The day leaderboard reads its day's rows best first (``ix_credit_daily_board``);
    the month and year leaderboards read :class:`CreditRollup`.
    """

    __tablename__ = "credit_daily"
    __table_args__ = (Index("ix_credit_daily_board", "day", text("points DESC"), "member_id"),)

    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    points: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    article: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    video: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    vr_hall: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    quiz: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    activity: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Points of the most recent award (what the last statement added): RETURNING reads it.
    last_awarded: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class CreditLedger(Base):
    """Append-only: one row per earning event (a study check-in, an attendance), with
    the points it earned and the member's day total after it.

    Partitioned by month of ``day`` (``credit_ledger_pYYYYMM``, created ahead by the
    ``core.create_partitions`` job, ``credit_ledger_default`` as the safety net; old
    months can be detached: :mod:`app.core.partitions`). The primary key therefore
    includes ``day``, and the claim's uniqueness lives in :class:`CreditClaim`, which is
    not partitioned. Its foreign key is the member's day row, which the awarding
    statement has just locked (no lock on ``members`` per check-in); deleting a member
    removes his days and, through them, his ledger. ``id`` is the ``checkin_id`` the
    API returns.
    """

    __tablename__ = "credit_ledger"
    __table_args__ = (
        CheckConstraint(f"source IN {SOURCES}", name="source"),
        CheckConstraint("points >= 0", name="points"),
        ForeignKeyConstraint(
            ["member_id", "day"],
            ["credit_daily.member_id", "credit_daily.day"],
            ondelete="CASCADE",
        ),
        # The cascade from credit_daily and a member's entries.
        Index("ix_credit_ledger_member_id_day", "member_id", "day"),
        {"postgresql_partition_by": "RANGE (day)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String(10))
    source_id: Mapped[int] = mapped_column(BigInteger)
    client_event_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(Integer)
    daily_points: Mapped[int] = mapped_column(Integer)
    cap_reached: Mapped[bool] = mapped_column(Boolean)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()


class CreditClaim(Base):
    """The claim of one ledger entry, kept whole across the ledger's partitions.

    A unique index on a partitioned table must contain the partition key, which would
    make (member, source, source_id) unique only per day. This narrow, unpartitioned
    table holds the claim's unique keys, (member, source, source_id) and (member,
    client_event_id), written by the same statement as the ledger entry: a racing
    duplicate fails here and the statement rolls back whole. It also carries the
    entry's result, so a replay is answered from here, even after the ledger month it
    was written in has been detached.
    """

    __tablename__ = "credit_claims"
    __table_args__ = (
        CheckConstraint(f"source IN {SOURCES}", name="source"),
        UniqueConstraint("member_id", "client_event_id"),
        ForeignKeyConstraint(
            ["member_id", "day"],
            ["credit_daily.member_id", "credit_daily.day"],
            ondelete="CASCADE",
        ),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(String(10), primary_key=True)
    source_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_event_id: Mapped[str | None] = mapped_column(String(64))
    ledger_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    points: Mapped[int] = mapped_column(Integer)
    daily_points: Mapped[int] = mapped_column(Integer)
    cap_reached: Mapped[bool] = mapped_column(Boolean)


ROLLUP_PERIODS = ("month", "year")


class CreditRollup(Base):
    """Per member, calendar month and year (Asia/Shanghai days, like the ledger's
    ``day``): the points earned, i.e. the ledger's points summed over the period.

    Kept by statement-level triggers on ``credit_ledger`` (insert, update, delete) in the
    transaction that writes the ledger, so it never lags; the month and year
    leaderboards read the top of a period from ``ix_credit_rollup_board`` instead of
    adding up a year of daily rows. ``org_id`` is the member's home organisation (a
    trigger on ``members`` follows him when he moves), so that counting a subtree's
    members above someone reads this index and the organisations only.
    """

    __tablename__ = "credit_rollup"
    __table_args__ = (
        CheckConstraint(f"period IN {ROLLUP_PERIODS}", name="period"),
        Index(
            "ix_credit_rollup_board",
            "period",
            "start",
            text("points DESC"),
            "member_id",
            postgresql_include=["org_id"],
        ),
    )

    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(5), primary_key=True)
    # First day of the month or year.
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    points: Mapped[int] = mapped_column(Integer)
    # = members.home_org_id (no foreign key: it follows the member's row).
    org_id: Mapped[int] = mapped_column(BigInteger)
