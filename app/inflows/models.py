"""The inflow ledger (流入党员台账): members from elsewhere who declared themselves at one
of our organisations (流入登记 / 亮身份), and the candidates a census survey found there
outside the roster (口袋党员 / 隐形党员).

Personal data as on the roster: ciphertext (versioned key) + keyed blind index (the
roster's index context, so a declaration finds roster members) + masked form.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import pk, updated_at

INFLOW_STATUSES = ("candidate", "pending", "verified", "rejected", "withdrawn")
SOURCES = ("declaration", "census")
# One open row per person and organisation: a second declaration, or a census finding of
# someone already declared there, meets the first.
OPEN_STATUSES = ("candidate", "pending", "verified")


class Inflow(Base):
    """One person in an organisation's inflow ledger, from declaration (or census
    finding) to verification."""

    __tablename__ = "inflows"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    __table_args__ = (
        CheckConstraint(f"status IN {INFLOW_STATUSES}", name="status"),
        CheckConstraint(f"source IN {SOURCES}", name="source"),
        Index(
            "uq_inflows_org_person_open",
            "org_id",
            "id_number_idx",
            unique=True,
            postgresql_where=text(f"status IN {OPEN_STATUSES}"),
        ),
        Index("ix_inflows_org_id_id", "org_id", "id"),
        Index("ix_inflows_account_id_id", "account_id", "id"),
        Index(
            "ix_inflows_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = pk()
    # The organisation he declared himself at (or the entity's responsible organisation).
    org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    source: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10))
    # The declarant's WeChat account (none for a census candidate until he declares).
    account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    # The census entity whose survey named him.
    entity_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("census_entities.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(50))
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_idx: Mapped[bytes] = mapped_column(LargeBinary, index=True)
    id_number_masked: Mapped[str] = mapped_column(String(18))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_masked: Mapped[str | None] = mapped_column(String(11))
    # His home organisation as he knows it (outside our tree, or not yet matched).
    home_org_name: Mapped[str | None] = mapped_column(String(100))
    home_region_code: Mapped[str | None] = mapped_column(String(6))
    employer: Mapped[str | None] = mapped_column(String(100))
    arrived_on: Mapped[date | None] = mapped_column(Date)

    # Set on verification when the ID number is on the roster.
    matched_member_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    # The outflow through which the organisation co-manages the matched member.
    outflow_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("outflows.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    decision_note: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(server_default=text("1"))
    # The app's clock (not the database's): the overdue flag counts from it.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = updated_at()
