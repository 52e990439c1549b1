"""Tables of the mobility domain: outflows, their history and reports, consents.

Flag dates (``checkin_due_on``, ``report_due_on``, ``lost_contact_on``,
``transfer_suggest_on``) are the *last day still in time*, in Asia/Shanghai. A flag is
raised from the following day on: ``flag <=> due_on < today``. They are recomputed by
the service on every transition and report, and are NULL when the rule does not apply
(not active, or check-in already accepted), so a ledger flag filter is one indexed
comparison in SQL.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk, updated_at

OUTFLOW_STATUSES = (
    "pending",
    "active",
    "rejected",
    "returned",
    "withdrawn",
    "cancelled",
    # Closed by a completed relation transfer (组织关系转接): he belongs there now.
    "transferred",
)
CHECKIN_STATUSES = ("none", "pending", "accepted", "refused")
REASONS = ("work", "business", "study", "other")


class Outflow(Base):
    """One outflow registration (外出登记) of a member, from request to return."""

    __tablename__ = "outflows"
    # Server defaults and onupdate values come back with INSERT/UPDATE ... RETURNING.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    __table_args__ = (
        CheckConstraint(f"status IN {OUTFLOW_STATUSES}", name="status"),
        CheckConstraint(f"checkin_status IN {CHECKIN_STATUSES}", name="checkin_status"),
        CheckConstraint(f"reason IN {REASONS}", name="reason"),
        CheckConstraint("expected_return_on >= departed_on", name="return_after_departure"),
        # At most one open outflow per member, whatever the application code does.
        Index(
            "uq_outflows_member_open",
            "member_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'active')"),
        ),
        Index("ix_outflows_home_org_id_id", "home_org_id", "id"),
        Index("ix_outflows_status_id", "status", "id"),
        Index(
            "ix_outflows_checkin_due_on",
            "checkin_due_on",
            postgresql_where=text("checkin_due_on IS NOT NULL"),
        ),
        Index(
            "ix_outflows_report_due_on",
            "report_due_on",
            postgresql_where=text("report_due_on IS NOT NULL"),
        ),
        Index(
            "ix_outflows_lost_contact_on",
            "lost_contact_on",
            postgresql_where=text("lost_contact_on IS NOT NULL"),
        ),
        Index(
            "ix_outflows_transfer_suggest_on",
            "transfer_suggest_on",
            postgresql_where=text("transfer_suggest_on IS NOT NULL"),
        ),
    )

    id: Mapped[int] = pk()
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="RESTRICT"), index=True
    )
    # The member's home organisation when he registered: the ledger's owner.
    home_org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(12), server_default=text("'pending'"))
    reason: Mapped[str] = mapped_column(String(10))
    # C collation: a province/city prefix LIKE uses the btree index.
    destination_region_code: Mapped[str] = mapped_column(String(6, collation="C"), index=True)
    destination_address: Mapped[str] = mapped_column(String(200))
    employer: Mapped[str | None] = mapped_column(String(100))
    contact_phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    contact_phone_masked: Mapped[str] = mapped_column(String(11))
    departed_on: Mapped[date] = mapped_column(Date)
    expected_return_on: Mapped[date] = mapped_column(Date)

    certificate_no: Mapped[str | None] = mapped_column(String(30), unique=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    reject_reason: Mapped[str | None] = mapped_column(String(200))
    # Why the home branch cancelled an approved outflow before departure.
    cancel_reason: Mapped[str | None] = mapped_column(String(200))

    checkin_status: Mapped[str] = mapped_column(String(10), server_default=text("'none'"))
    checkin_org_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="SET NULL"), index=True
    )
    checkin_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checkin_decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checkin_refuse_reason: Mapped[str | None] = mapped_column(String(200))

    # Day of the last relocation (a new destination restarts check-in and "settled" time).
    relocated_on: Mapped[date | None] = mapped_column(Date)
    last_contact_on: Mapped[date | None] = mapped_column(Date)
    last_report_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_report_region_code: Mapped[str | None] = mapped_column(String(6))
    last_report_far: Mapped[bool | None] = mapped_column(Boolean)

    checkin_due_on: Mapped[date | None] = mapped_column(Date)
    report_due_on: Mapped[date | None] = mapped_column(Date)
    lost_contact_on: Mapped[date | None] = mapped_column(Date)
    transfer_suggest_on: Mapped[date | None] = mapped_column(Date)
    lost_contact_escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    report_reminded_for: Mapped[date | None] = mapped_column(Date)

    returned_on: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class OutflowEvent(Base):
    """The timeline of an outflow: every transition and relocation, with its actor."""

    __tablename__ = "outflow_events"
    __table_args__ = (Index("ix_outflow_events_outflow_id_id", "outflow_id", "id"),)

    id: Mapped[int] = pk()
    outflow_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("outflows.id", ondelete="CASCADE")
    )
    action: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    note: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutflowReport(Base):
    """A whereabouts report (定期报告): where the member was, resolved offline."""

    __tablename__ = "outflow_reports"
    __table_args__ = (Index("ix_outflow_reports_outflow_id_id", "outflow_id", "id"),)

    id: Mapped[int] = pk()
    outflow_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("outflows.id", ondelete="CASCADE")
    )
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    region_code: Mapped[str | None] = mapped_column(String(6))
    distance_m: Mapped[float | None] = mapped_column(Float)
    far_from_destination: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(String(500))
    note_suggest: Mapped[str | None] = mapped_column(String(10))
    reported_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MemberConsent(Base):
    """Append-only record of a member's separate consent (PIPL arts. 28-29).

    The latest row per (member, kind) is the current state; older rows are the history.
    """

    __tablename__ = "member_consents"
    __table_args__ = (
        CheckConstraint("kind IN ('location')", name="kind"),
        Index("ix_member_consents_member_id_kind_id", "member_id", "kind", "id"),
    )

    id: Mapped[int] = pk()
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(20))
    granted: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CertificateCounter(Base):
    """Per-(region, year) sequence of activity certificate numbers, taken with UPSERT."""

    __tablename__ = "outflow_certificate_counters"
    __table_args__ = (PrimaryKeyConstraint("region_code", "year"),)

    region_code: Mapped[str] = mapped_column(String(6))
    year: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
