"""audit entries name the member's home organisation; time-bank hours capped per category

``audit_log.member_home_org_id``: when a co-managing organisation acts on a member, the
entry is listed in the member's home subtree too. ``order_categories.
max_hours_per_resolve``: the most volunteer hours one resolve may credit (default 8).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("member_home_org_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_audit_log_member_home_org_id_id",
        "audit_log",
        ["member_home_org_id", "id"],
        postgresql_where=sa.text("member_home_org_id IS NOT NULL"),
    )
    op.add_column(
        "order_categories",
        sa.Column(
            "max_hours_per_resolve", sa.Integer(), server_default=sa.text("8"), nullable=False
        ),
    )
    op.create_check_constraint(
        op.f("ck_order_categories_max_hours_per_resolve"),
        "order_categories",
        "max_hours_per_resolve > 0",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_order_categories_max_hours_per_resolve"), "order_categories", type_="check"
    )
    op.drop_column("order_categories", "max_hours_per_resolve")
    op.drop_index("ix_audit_log_member_home_org_id_id", table_name="audit_log")
    op.drop_column("audit_log", "member_home_org_id")
