"""identity tables

The identity tables (``accounts``, ``refresh_tokens``) and ``audit_log`` were created in
0001 with every index the identity and audit queries use (``refresh_tokens.token_hash``
unique, ``family_id``, ``account_id``; ``audit_log (org_id, id)``, ``actor_account_id``).
Login, refresh rotation, binding and the audit endpoint need no schema change, so this
revision is intentionally empty: it keeps its place in the fixed chain.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
