"""Tables of care (关怀慰问): greeting campaigns with their recipients, hardship cases
with their help log.

A campaign's recipients are written when the worker sends it, one row per member: the
primary key ``(campaign_id, member_id)`` is what makes a greeting reach a member once,
however many workers run. Counts (sent, read, unsubscribed) are never stored: they are
read from the recipients' inbox notifications.

A case's description and the notes of its help log are sensitive personal information
(health, family, money): stored only as ciphertext (:mod:`app.core.crypto`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk, updated_at

AUDIENCES = ("mobile_members", "all_members", "hardship")
FESTIVALS = ("spring_festival", "lantern", "dragon_boat", "mid_autumn", "double_ninth")
CAMPAIGN_STATUSES = ("scheduled", "sent", "cancelled")
CASE_KINDS = ("illness", "accident", "family", "financial", "other")
CASE_STATUSES = ("open", "closed")
HELP_FORMS = ("visit", "call", "funds", "crowdfunding", "mutual_aid")


class CareCampaign(Base):
    """A greeting scheduled for a day (or a festival's day) to one subtree's members."""

    __tablename__ = "care_campaigns"
    __table_args__ = (
        CheckConstraint(f"audience IN {AUDIENCES}", name="audience"),
        CheckConstraint(f"festival IS NULL OR festival IN {FESTIVALS}", name="festival"),
        CheckConstraint(f"status IN {CAMPAIGN_STATUSES}", name="status"),
        Index("ix_care_campaigns_org_id_id", "org_id", "id"),
        Index(
            "ix_care_campaigns_due",
            "send_on",
            postgresql_where=text("status = 'scheduled'"),
        ),
    )

    id: Mapped[int] = pk()
    org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    title: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(String(500))
    audience: Mapped[str] = mapped_column(String(16))
    festival: Mapped[str | None] = mapped_column(String(16))
    send_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), server_default=text("'scheduled'"))
    created_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class CareCampaignRecipient(Base):
    """One member a campaign went to, and his inbox notification (None: no WeChat
    account bound, nothing could reach him)."""

    __tablename__ = "care_campaign_recipients"

    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("care_campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    # No foreign key: notifications are partitioned by month (a key would have to carry
    # the partition column, and would pin old months against detaching). A notification
    # whose month was detached simply no longer counts as read.
    notification_id: Mapped[int | None] = mapped_column(BigInteger)


class CareCase(Base):
    """A member in hardship (困难党员): asked for by himself or recorded by an admin."""

    __tablename__ = "care_cases"
    __table_args__ = (
        CheckConstraint(f"kind IN {CASE_KINDS}", name="kind"),
        CheckConstraint(f"status IN {CASE_STATUSES}", name="status"),
        CheckConstraint("requested_by IN ('member', 'admin')", name="requested_by"),
        Index("ix_care_cases_member_id", "member_id"),
        Index("ix_care_cases_status_id", "status", "id"),
    )

    id: Mapped[int] = pk()
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    description_enc: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(6), server_default=text("'open'"))
    requested_by: Mapped[str] = mapped_column(String(6))
    created_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    opened_on: Mapped[date] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_note: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class CareHelp(Base):
    """One visit, call or sum of help given on a case (走访慰问、党员众筹、互帮互助)."""

    __tablename__ = "care_help"
    __table_args__ = (
        CheckConstraint(f"form IN {HELP_FORMS}", name="form"),
        CheckConstraint("amount_yuan IS NULL OR amount_yuan > 0", name="amount_positive"),
        Index("ix_care_help_case_id_id", "case_id", "id"),
    )

    id: Mapped[int] = pk()
    case_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("care_cases.id", ondelete="CASCADE")
    )
    given_on: Mapped[date] = mapped_column(Date)
    form: Mapped[str] = mapped_column(String(12))
    amount_yuan: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at()
