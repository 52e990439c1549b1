"""Tables of relation transfers (组织关系转接): the transfer and its timeline.

A transfer moves a member's home organisation (``members.home_org_id``) from
``from_org_id`` (his home when he asked) to ``to_org_id`` (anywhere in the tree). Its
states and moves are the one table in :mod:`app.transfers.rules`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk, updated_at

TRANSFER_STATUSES = ("requested", "approved", "completed", "rejected", "refused", "withdrawn")
OPEN_STATUSES = ("requested", "approved")


class RelationTransfer(Base):
    """One request to transfer a member's organisational relation, from request to end."""

    __tablename__ = "relation_transfers"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    __table_args__ = (
        CheckConstraint(f"status IN {TRANSFER_STATUSES}", name="status"),
        CheckConstraint("from_org_id <> to_org_id", name="moves"),
        # At most one open transfer per member, whatever the application code does.
        Index(
            "uq_relation_transfers_member_open",
            "member_id",
            unique=True,
            postgresql_where=text("status IN ('requested', 'approved')"),
        ),
        Index("ix_relation_transfers_member_id_id", "member_id", "id"),
        Index("ix_relation_transfers_from_org_id_id", "from_org_id", "id"),
        Index("ix_relation_transfers_to_org_id_id", "to_org_id", "id"),
    )

    id: Mapped[int] = pk()
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="RESTRICT")
    )
    # The member's home organisation when he asked (the side that approves).
    from_org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    # The receiving organisation (the side that accepts or refuses).
    to_org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(500))
    requested_by_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    # 介绍信编号, issued by the home side when it approves.
    letter_no: Mapped[str | None] = mapped_column(String(40))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When it ended (completed, rejected, refused, withdrawn), and the reason given.
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_reason: Mapped[str | None] = mapped_column(String(200))
    # The open outflow that completion closed as "transferred", if there was one.
    outflow_id: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class RelationTransferEvent(Base):
    """The timeline of a transfer: every move, with its actor (kept on both sides)."""

    __tablename__ = "relation_transfer_events"
    __table_args__ = (Index("ix_relation_transfer_events_transfer_id_id", "transfer_id", "id"),)

    id: Mapped[int] = pk()
    transfer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("relation_transfers.id", ondelete="CASCADE")
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
