"""organisations can be listed in the directory (党员找组织)

* ``organizations.listed``: the organisation's admin chooses whether members and
  residents can find it (default: not listed).
* ``ix_organizations_listed_earth``: a GiST index on ``ll_to_earth(lat, lon)`` of the
  listed organisations that have coordinates, for the nearest-first directory search
  (``<->`` ordering walks it).

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "organizations",
        sa.Column("listed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_index(
        "ix_organizations_listed_earth",
        "organizations",
        [sa.text("ll_to_earth(lat, lon)")],
        postgresql_using="gist",
        postgresql_where=sa.text("listed AND lat IS NOT NULL AND lon IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_organizations_listed_earth", table_name="organizations")
    op.drop_column("organizations", "listed")
