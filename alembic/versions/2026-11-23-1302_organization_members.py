"""organization members tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# organizations, role_assignments, dual_management_grants and members (with the pg_trgm
# name indexes and the unique ID-number blind index this domain relies on) are created by
# 0001 (foundation). The organisation/roster endpoints, roster import and PII key
# rotation need no further schema: rotation selects rows by the key-version header inside
# the ciphertext, and tree moves serialise on an advisory lock, not on a table.


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
