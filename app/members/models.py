"""The roster: party members of the organisation tree."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk, updated_at

MEMBER_STATUSES = ("full", "probationary")
GENDERS = ("male", "female")


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint(f"status IN {MEMBER_STATUSES}", name="status"),
        CheckConstraint(f"gender IN {GENDERS}", name="gender"),
        Index(
            "ix_members_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(50))
    gender: Mapped[str] = mapped_column(String(6))
    birth_date: Mapped[date] = mapped_column(Date)
    # Personal data: ciphertext (versioned key, see app.core.crypto) + keyed blind index.
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_idx: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    id_number_masked: Mapped[str] = mapped_column(String(18))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_idx: Mapped[bytes | None] = mapped_column(LargeBinary, index=True)
    phone_masked: Mapped[str | None] = mapped_column(String(11))
    home_org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    joined_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), server_default=text("'full'"))
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
