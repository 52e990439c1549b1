"""Append-only audit log: reveals of personal data, role changes, approvals, imports, logins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_org_id_id", "org_id", "id"),
        Index(
            "ix_audit_log_member_home_org_id_id",
            "member_home_org_id",
            "id",
            postgresql_where=text("member_home_org_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = pk()
    at: Mapped[datetime] = created_at()
    actor_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(50))
    org_id: Mapped[int | None] = mapped_column(BigInteger)
    # The home organisation of the member the action concerns, when another organisation
    # acts (a co-managing destination): the entry shows in both subtrees' logs.
    member_home_org_id: Mapped[int | None] = mapped_column(BigInteger)
    subject_type: Mapped[str | None] = mapped_column(String(30))
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    request_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
