"""study tables: items, sessions, credit rules, events, ledger, daily totals

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Default credit rules, modelled on 学习强国: points per completed unit, a daily cap
# per kind and an overall daily cap (Asia/Shanghai days). Organisations override them
# for their subtree with rows of their own.
DEFAULT_RULES = [
    {"kind": "article", "points": 1, "daily_cap": 6, "overall_daily_cap": 30},
    {"kind": "video", "points": 1, "daily_cap": 6, "overall_daily_cap": 30},
    {"kind": "vr_hall", "points": 2, "daily_cap": 4, "overall_daily_cap": 30},
    {"kind": "quiz", "points": 2, "daily_cap": 10, "overall_daily_cap": 30},
    {"kind": "activity", "points": 5, "daily_cap": 10, "overall_daily_cap": 30},
]


def upgrade() -> None:
    op.create_table(
        "credit_rules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=False),
        sa.Column("overall_daily_cap", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('article', 'video', 'vr_hall', 'quiz', 'activity')",
            name=op.f("ck_credit_rules_kind"),
        ),
        sa.CheckConstraint(
            "points >= 0 AND daily_cap >= 0 AND overall_daily_cap >= 0",
            name=op.f("ck_credit_rules_caps"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_credit_rules_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_rules")),
        sa.UniqueConstraint(
            "org_id",
            "kind",
            name=op.f("uq_credit_rules_org_id_kind"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_table(
        "credit_daily",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("points", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("article", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("video", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("vr_hall", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("quiz", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("activity", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_awarded", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_credit_daily_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", "day", name=op.f("pk_credit_daily")),
    )
    op.create_index(
        "ix_credit_daily_day_member",
        "credit_daily",
        ["day", "member_id"],
        unique=False,
        postgresql_include=["points"],
    )
    op.create_table(
        "credit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("client_event_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("source IN ('study', 'activity')", name=op.f("ck_credit_events_source")),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_credit_events_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_events")),
        sa.UniqueConstraint(
            "member_id", "client_event_id", name=op.f("uq_credit_events_member_id_client_event_id")
        ),
        sa.UniqueConstraint(
            "member_id",
            "source",
            "source_id",
            name=op.f("uq_credit_events_member_id_source_source_id"),
        ),
    )
    op.create_table(
        "credit_ledger",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("daily_points", sa.Integer(), nullable=False),
        sa.Column("cap_reached", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("points >= 0", name=op.f("ck_credit_ledger_points")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["credit_events.id"],
            name=op.f("fk_credit_ledger_event_id_credit_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_credit_ledger_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_ledger")),
        sa.UniqueConstraint("event_id", name=op.f("uq_credit_ledger_event_id")),
    )
    op.create_index(
        "ix_credit_ledger_member_id_day", "credit_ledger", ["member_id", "day"], unique=False
    )
    op.create_table(
        "study_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("min_seconds", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("created_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('article', 'video', 'vr_hall', 'quiz')", name=op.f("ck_study_items_kind")
        ),
        sa.CheckConstraint("min_seconds >= 0", name=op.f("ck_study_items_min_seconds")),
        sa.CheckConstraint("points >= 0", name=op.f("ck_study_items_points")),
        sa.ForeignKeyConstraint(
            ["created_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_study_items_created_by_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_study_items_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_items")),
    )
    op.create_index(op.f("ix_study_items_org_id"), "study_items", ["org_id"], unique=False)
    op.create_table(
        "study_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["study_items.id"],
            name=op.f("fk_study_sessions_item_id_study_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_study_sessions_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_sessions")),
    )
    op.create_index(op.f("ix_study_sessions_item_id"), "study_sessions", ["item_id"], unique=False)
    op.create_index(
        op.f("ix_study_sessions_member_id"), "study_sessions", ["member_id"], unique=False
    )

    rules = sa.table(
        "credit_rules",
        sa.column("org_id", sa.BigInteger()),
        sa.column("kind", sa.String()),
        sa.column("points", sa.Integer()),
        sa.column("daily_cap", sa.Integer()),
        sa.column("overall_daily_cap", sa.Integer()),
    )
    op.bulk_insert(rules, [{"org_id": None, **rule} for rule in DEFAULT_RULES])


def downgrade() -> None:
    op.drop_index(op.f("ix_study_sessions_member_id"), table_name="study_sessions")
    op.drop_index(op.f("ix_study_sessions_item_id"), table_name="study_sessions")
    op.drop_table("study_sessions")
    op.drop_index(op.f("ix_study_items_org_id"), table_name="study_items")
    op.drop_table("study_items")
    op.drop_index("ix_credit_ledger_member_id_day", table_name="credit_ledger")
    op.drop_table("credit_ledger")
    op.drop_table("credit_events")
    op.drop_index(
        "ix_credit_daily_day_member", table_name="credit_daily", postgresql_include=["points"]
    )
    op.drop_table("credit_daily")
    op.drop_table("credit_rules")
