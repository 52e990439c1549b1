"""notify tables

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_runs",
        sa.Column("job", sa.String(length=80), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job", "period", name=op.f("pk_scheduled_runs")),
    )
    op.create_table(
        "subscription_grants",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("remaining", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("accepted_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rejected_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_decision", sa.String(length=10), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "remaining >= 0", name=op.f("ck_subscription_grants_remaining_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_subscription_grants_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "template", name=op.f("pk_subscription_grants")),
    )
    op.add_column(
        "notifications",
        sa.Column(
            "delivery", sa.String(length=12), server_default=sa.text("'pending'"), nullable=False
        ),
    )
    op.add_column(
        "notifications", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_notifications_delivery"),
        "notifications",
        "delivery IN ('pending', 'sent', 'skipped', 'unsubscribed', 'failed')",
    )
    op.create_index(
        "ix_notifications_account_unread",
        "notifications",
        ["account_id"],
        unique=False,
        postgresql_where=sa.text("read_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_notifications_account_unread",
        table_name="notifications",
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.drop_constraint(op.f("ck_notifications_delivery"), "notifications", type_="check")
    op.drop_column("notifications", "delivered_at")
    op.drop_column("notifications", "delivery")
    op.drop_table("subscription_grants")
    op.drop_table("scheduled_runs")
