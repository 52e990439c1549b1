"""Tables of the orders domain: categories with SLAs, orders, their timeline, the time bank."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk, updated_at

ORDER_STATUSES = (
    "submitted",
    "accepted",
    "in_progress",
    "resolved",
    "closed",
    "transferred",
    "rejected",
    "cancelled",
)
ENTRY_KINDS = ("earn", "redeem")
HOURS = Numeric(10, 1)


DEFAULT_MAX_HOURS_PER_RESOLVE = 8


class OrderCategory(Base):
    """A kind of request with its SLA. ``org_id`` NULL: the default for every organisation;
    otherwise an override for that organisation's subtree (the deepest override wins)."""

    __tablename__ = "order_categories"
    __table_args__ = (
        UniqueConstraint("org_id", "code", postgresql_nulls_not_distinct=True),
        CheckConstraint("accept_hours > 0 AND resolve_hours >= accept_hours", name="sla"),
        CheckConstraint("max_hours_per_resolve > 0", name="max_hours_per_resolve"),
    )

    id: Mapped[int] = pk()
    org_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(40))
    accept_hours: Mapped[int] = mapped_column(Integer)
    resolve_hours: Mapped[int] = mapped_column(Integer)
    # The most volunteer hours one resolve may credit (time bank): no 1,000-hour orders.
    max_hours_per_resolve: Mapped[int] = mapped_column(
        Integer, server_default=text(str(DEFAULT_MAX_HOURS_PER_RESOLVE))
    )
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    sort_order: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class ServiceOrder(Base):
    """A request (红色心愿 / 诉求) from a member or resident to an organisation."""

    __tablename__ = "service_orders"
    __table_args__ = (
        CheckConstraint(f"status IN {ORDER_STATUSES}", name="status"),
        CheckConstraint("rating_score IS NULL OR rating_score BETWEEN 1 AND 5", name="rating"),
        CheckConstraint("hours IS NULL OR hours > 0", name="hours"),
        Index("ix_service_orders_org_id_status", "org_id", "status"),
        Index("ix_service_orders_submitter_account_id_id", "submitter_account_id", "id"),
        Index(
            "ix_service_orders_open_due",
            "due_at",
            postgresql_where=text("status IN ('submitted', 'accepted', 'in_progress')"),
        ),
        Index(
            "ix_service_orders_resolved_at",
            "resolved_at",
            postgresql_where=text("status = 'resolved'"),
        ),
    )

    id: Mapped[int] = pk()
    org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    category_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("order_categories.id", ondelete="RESTRICT"), index=True
    )
    category_code: Mapped[str] = mapped_column(String(40))
    category_name: Mapped[str] = mapped_column(String(40))
    submitter_account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="RESTRICT")
    )
    submitter_member_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    contact_phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    contact_phone_masked: Mapped[str] = mapped_column(String(11))
    status: Mapped[str] = mapped_column(String(12), server_default=text("'submitted'"))
    version: Mapped[int] = mapped_column(server_default=text("1"))
    # Content check: "review" verdicts and an unreachable WeChat both land here.
    needs_review: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    review_reason: Mapped[str | None] = mapped_column(String(40))
    # The resident's first submission: kept through transfers (response times count from it).
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Arrival at the current organisation: its SLA clock (restarted by a transfer).
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accept_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reply: Mapped[str | None] = mapped_column(String(1000))
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    volunteer_member_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    hours: Mapped[Decimal | None] = mapped_column(HOURS)
    rating_score: Mapped[int | None] = mapped_column(SmallInteger)
    rating_comment: Mapped[str | None] = mapped_column(String(500))
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class ServiceOrderOrg(Base):
    """The organisations an order has been at (its trail): their admins keep read access."""

    __tablename__ = "service_order_orgs"

    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("service_orders.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = created_at()


class ServiceOrderEvent(Base):
    """One line of an order's timeline: who moved it, how, why, from where to where."""

    __tablename__ = "service_order_events"
    __table_args__ = (Index("ix_service_order_events_order_id_id", "order_id", "id"),)

    id: Mapped[int] = pk()
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("service_orders.id", ondelete="CASCADE")
    )
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    actor_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    actor_role: Mapped[str] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(String(1000))
    from_org_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="SET NULL")
    )
    to_org_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TimeBankAccount(Base):
    """A member's running totals; the ledger below is the truth, this row is the lock."""

    __tablename__ = "time_bank_accounts"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("balance = hours_earned - hours_redeemed", name="balance_sum"),
    )

    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="RESTRICT"), primary_key=True
    )
    hours_earned: Mapped[Decimal] = mapped_column(HOURS, server_default=text("0"))
    hours_redeemed: Mapped[Decimal] = mapped_column(HOURS, server_default=text("0"))
    balance: Mapped[Decimal] = mapped_column(HOURS, server_default=text("0"))
    updated_at: Mapped[datetime] = updated_at()


class TimeBankReward(Base):
    """Something an organisation offers in exchange for volunteer hours."""

    __tablename__ = "time_bank_rewards"
    __table_args__ = (
        CheckConstraint("hours > 0", name="hours"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock"),
    )

    id: Mapped[int] = pk()
    org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str | None] = mapped_column(String(500))
    hours: Mapped[Decimal] = mapped_column(HOURS)
    stock: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at()


class TimeBankEntry(Base):
    """Append-only ledger (a trigger refuses UPDATE and DELETE): earnings are positive,
    redemptions negative; ``balance_after`` is the account balance right after it."""

    __tablename__ = "time_bank_entries"
    __table_args__ = (
        CheckConstraint(f"kind IN {ENTRY_KINDS}", name="kind"),
        CheckConstraint(
            "(kind = 'earn' AND hours > 0) OR (kind = 'redeem' AND hours < 0)", name="sign"
        ),
        CheckConstraint("balance_after >= 0", name="balance_after"),
        Index("ix_time_bank_entries_member_id_id", "member_id", "id"),
    )

    id: Mapped[int] = pk()
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="RESTRICT")
    )
    kind: Mapped[str] = mapped_column(String(10))
    hours: Mapped[Decimal] = mapped_column(HOURS)
    balance_after: Mapped[Decimal] = mapped_column(HOURS)
    order_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("service_orders.id", ondelete="RESTRICT"), index=True
    )
    reward_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("time_bank_rewards.id", ondelete="RESTRICT")
    )
    reward_name: Mapped[str | None] = mapped_column(String(60))
    note: Mapped[str | None] = mapped_column(String(200))
    actor_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at()


# The categories the 0008 migration seeds (org_id NULL): code, name, hours to accept,
# hours to resolve. Kept here too so tests and tools can restore them after a TRUNCATE.
DEFAULT_CATEGORIES = (
    ("life_support", "生活帮扶", 24, 72),
    ("policy_consulting", "政策咨询", 8, 48),
    ("employment", "就业创业", 24, 168),
    ("legal_aid", "法律援助", 24, 120),
    ("org_relation", "组织关系", 24, 240),
)
