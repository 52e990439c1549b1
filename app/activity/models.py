"""Tables of the activity domain: the activity menu, sign-ups and attendance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk, updated_at

# 主题党日, 支部党员大会/支委会/党小组会/党课 (三会一课), 在线课堂, 志愿服务.
ACTIVITY_KINDS = (
    "theme_day",
    "branch_meeting",
    "party_class",
    "committee_meeting",
    "general_meeting",
    "online_class",
    "volunteer",
)
SIGNUP_STATUSES = ("signed_up", "cancelled")
ATTENDANCE_METHODS = ("location", "qr", "online")


class Activity(Base):
    """One item of an organisation's activity menu (组织生活菜单)."""

    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint(f"kind IN {ACTIVITY_KINDS}", name="kind"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("checkin_closes_at > checkin_opens_at", name="checkin_window"),
        CheckConstraint(
            "online OR (lat IS NOT NULL AND lon IS NOT NULL AND radius_m IS NOT NULL)",
            name="onsite_location",
        ),
        CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"),
        CheckConstraint(
            "signup_count >= 0 AND (capacity IS NULL OR signup_count <= capacity)",
            name="signup_count_within_capacity",
        ),
        Index("ix_activities_org_id_starts_at", "org_id", "starts_at"),
        Index("ix_activities_starts_at_id", "starts_at", "id"),
    )

    id: Mapped[int] = pk()
    org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    title: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    description: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    checkin_opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    checkin_closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    online: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # GCJ-02, as the admin's map picker and wx.getLocation(type gcj02) give them.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[int | None] = mapped_column(Integer)
    capacity: Mapped[int | None] = mapped_column(Integer)
    # Active sign-ups, kept under the row lock so that capacity holds under concurrency.
    signup_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    credit_points: Mapped[int | None] = mapped_column(Integer)
    created_by_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class ActivitySignup(Base):
    """A member's sign-up; cancelling keeps the row (``status = cancelled``)."""

    __tablename__ = "activity_signups"
    __table_args__ = (
        CheckConstraint(f"status IN {SIGNUP_STATUSES}", name="status"),
        UniqueConstraint("activity_id", "member_id"),
        Index("ix_activity_signups_member_id", "member_id"),
    )

    id: Mapped[int] = pk()
    activity_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("activities.id", ondelete="CASCADE")
    )
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12), server_default=text("'signed_up'"))
    signed_up_at: Mapped[datetime] = created_at()
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once the "activity_starting" reminder was queued: one reminder per sign-up.
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ActivityAttendance(Base):
    """A member's sign-in at an activity: at most one per member and activity."""

    __tablename__ = "activity_attendances"
    __table_args__ = (
        CheckConstraint(f"method IN {ATTENDANCE_METHODS}", name="method"),
        UniqueConstraint("activity_id", "member_id"),
        Index("ix_activity_attendances_member_id", "member_id"),
    )

    id: Mapped[int] = pk()
    activity_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("activities.id", ondelete="CASCADE")
    )
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(10))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[float | None] = mapped_column(Float)
    attended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Study credits actually awarded (the activity's credit_points, less any daily cap).
    credits_awarded: Mapped[int] = mapped_column(Integer, server_default=text("0"))
