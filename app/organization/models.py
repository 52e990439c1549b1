"""The organisation tree, admin roles and dual-management grants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk, updated_at

ORG_KINDS = ("committee", "general_branch", "branch")
ORG_HOSTS = ("chamber_of_commerce", "business_district", "building", "industry", "mobile")
ROLES = ("branch_admin", "org_admin")


def path_ids(path: str) -> list[int]:
    """``"/1/7/42/"`` -> ``[1, 7, 42]``: an organisation and its ancestors, root first."""
    return [int(part) for part in path.strip("/").split("/") if part]


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint(f"kind IN {ORG_KINDS}", name="kind"),
        CheckConstraint(f"host IS NULL OR host IN {ORG_HOSTS}", name="host"),
        Index("ix_organizations_path", "path", unique=True),
        Index(
            "ix_organizations_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        # The directory's nearest-first search (earthdistance; only listed, located ones).
        Index(
            "ix_organizations_listed_earth",
            text("ll_to_earth(lat, lon)"),
            postgresql_using="gist",
            postgresql_where=text("listed AND lat IS NOT NULL AND lon IS NOT NULL"),
        ),
    )

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    host: Mapped[str | None] = mapped_column(String(30))
    parent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    # Materialised path of ids, "/1/7/42/", in the C collation so that a prefix
    # LIKE uses the btree index: the whole subtree of 5,000 nodes in one index scan.
    path: Mapped[str] = mapped_column(String(400, collation="C"))
    depth: Mapped[int] = mapped_column(server_default=text("0"))
    region_code: Mapped[str | None] = mapped_column(String(6), index=True)
    address: Mapped[str | None] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # Whether the organisation appears in the directory members and residents search.
    listed: Mapped[bool] = mapped_column(server_default=text("false"))
    # Per-organisation rule overrides (report interval, check-in deadline, credit caps...).
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    @property
    def ancestor_ids(self) -> list[int]:
        """Ids of the organisation's ancestors and itself, root first."""
        return path_ids(self.path)


class RoleAssignment(Base):
    """An admin role of a member at an organisation (covers its whole subtree)."""

    __tablename__ = "role_assignments"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES}", name="role"),
        UniqueConstraint("org_id", "member_id", "role"),
    )

    id: Mapped[int] = pk()
    org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(20))
    granted_by_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at()


class DualManagementGrant(Base):
    """While open, admins of ``org_id``'s subtree co-manage ``member_id`` (双向共管).

    Written by the mobility domain when a destination organisation accepts a check-in,
    closed (``ended_at``) on return. Read only through :mod:`app.organization.scope`.
    """

    __tablename__ = "dual_management_grants"
    __table_args__ = (
        Index(
            "ix_dual_management_grants_open",
            "org_id",
            "member_id",
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = pk()
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="CASCADE")
    )
    outflow_id: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = created_at()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
