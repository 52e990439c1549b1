"""orders tables: categories with SLAs, service orders and their timeline, the time bank

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Default categories (org_id NULL): every organisation uses them unless it overrides one.
DEFAULT_CATEGORIES = [
    # code, name, hours to accept, hours to resolve
    ("life_support", "生活帮扶", 24, 72),
    ("policy_consulting", "政策咨询", 8, 48),
    ("employment", "就业创业", 24, 168),
    ("legal_aid", "法律援助", 24, 120),
    ("org_relation", "组织关系", 24, 240),
]

# The time-bank ledger is append-only: corrections are new entries, never edits.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION time_bank_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'time_bank_entries is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER time_bank_entries_append_only
    BEFORE UPDATE OR DELETE ON time_bank_entries
    FOR EACH ROW EXECUTE FUNCTION time_bank_entries_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "order_categories",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=True),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("accept_hours", sa.Integer(), nullable=False),
        sa.Column("resolve_hours", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("sort_order", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "accept_hours > 0 AND resolve_hours >= accept_hours",
            name=op.f("ck_order_categories_sla"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_order_categories_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_categories")),
        sa.UniqueConstraint(
            "org_id",
            "code",
            name=op.f("uq_order_categories_org_id_code"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(
        op.f("ix_order_categories_org_id"), "order_categories", ["org_id"], unique=False
    )
    op.create_table(
        "time_bank_accounts",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "hours_earned",
            sa.Numeric(precision=10, scale=1),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "hours_redeemed",
            sa.Numeric(precision=10, scale=1),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "balance",
            sa.Numeric(precision=10, scale=1),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "balance = hours_earned - hours_redeemed",
            name=op.f("ck_time_bank_accounts_balance_sum"),
        ),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_time_bank_accounts_balance_not_negative")),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_time_bank_accounts_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_time_bank_accounts")),
    )
    op.create_table(
        "service_orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("category_id", sa.BigInteger(), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("category_name", sa.String(length=40), nullable=False),
        sa.Column("submitter_account_id", sa.BigInteger(), nullable=False),
        sa.Column("submitter_member_id", sa.BigInteger(), nullable=True),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("contact_phone_enc", sa.LargeBinary(), nullable=False),
        sa.Column("contact_phone_masked", sa.String(length=11), nullable=False),
        sa.Column(
            "status", sa.String(length=12), server_default=sa.text("'submitted'"), nullable=False
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("needs_review", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("review_reason", sa.String(length=40), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accept_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reply", sa.String(length=1000), nullable=True),
        sa.Column("reject_reason", sa.String(length=500), nullable=True),
        sa.Column("volunteer_member_id", sa.BigInteger(), nullable=True),
        sa.Column("hours", sa.Numeric(precision=10, scale=1), nullable=True),
        sa.Column("rating_score", sa.SmallInteger(), nullable=True),
        sa.Column("rating_comment", sa.String(length=500), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('submitted', 'accepted', 'in_progress', 'resolved', 'closed', 'transferred', 'rejected', 'cancelled')",
            name=op.f("ck_service_orders_status"),
        ),
        sa.CheckConstraint("hours IS NULL OR hours > 0", name=op.f("ck_service_orders_hours")),
        sa.CheckConstraint(
            "rating_score IS NULL OR rating_score BETWEEN 1 AND 5",
            name=op.f("ck_service_orders_rating"),
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["order_categories.id"],
            name=op.f("fk_service_orders_category_id_order_categories"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_service_orders_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["submitter_account_id"],
            ["accounts.id"],
            name=op.f("fk_service_orders_submitter_account_id_accounts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["submitter_member_id"],
            ["members.id"],
            name=op.f("fk_service_orders_submitter_member_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_member_id"],
            ["members.id"],
            name=op.f("fk_service_orders_volunteer_member_id_members"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_orders")),
    )
    op.create_index(
        op.f("ix_service_orders_category_id"), "service_orders", ["category_id"], unique=False
    )
    op.create_index(
        "ix_service_orders_open_due",
        "service_orders",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('submitted', 'accepted', 'in_progress')"),
    )
    op.create_index(
        "ix_service_orders_org_id_status", "service_orders", ["org_id", "status"], unique=False
    )
    op.create_index(
        "ix_service_orders_resolved_at",
        "service_orders",
        ["resolved_at"],
        unique=False,
        postgresql_where=sa.text("status = 'resolved'"),
    )
    op.create_index(
        "ix_service_orders_submitter_account_id_id",
        "service_orders",
        ["submitter_account_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_service_orders_submitter_member_id"),
        "service_orders",
        ["submitter_member_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_service_orders_volunteer_member_id"),
        "service_orders",
        ["volunteer_member_id"],
        unique=False,
    )
    op.create_table(
        "time_bank_rewards",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("hours", sa.Numeric(precision=10, scale=1), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("hours > 0", name=op.f("ck_time_bank_rewards_hours")),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name=op.f("ck_time_bank_rewards_stock")),
        sa.ForeignKeyConstraint(
            ["created_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_time_bank_rewards_created_by_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_time_bank_rewards_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_bank_rewards")),
    )
    op.create_index(
        op.f("ix_time_bank_rewards_org_id"), "time_bank_rewards", ["org_id"], unique=False
    )
    op.create_table(
        "service_order_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=12), nullable=True),
        sa.Column("to_status", sa.String(length=12), nullable=False),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_role", sa.String(length=12), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("from_org_id", sa.BigInteger(), nullable=True),
        sa.Column("to_org_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_account_id"],
            ["accounts.id"],
            name=op.f("fk_service_order_events_actor_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["from_org_id"],
            ["organizations.id"],
            name=op.f("fk_service_order_events_from_org_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["service_orders.id"],
            name=op.f("fk_service_order_events_order_id_service_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_org_id"],
            ["organizations.id"],
            name=op.f("fk_service_order_events_to_org_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_order_events")),
    )
    op.create_index(
        "ix_service_order_events_order_id_id",
        "service_order_events",
        ["order_id", "id"],
        unique=False,
    )
    op.create_table(
        "service_order_orgs",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["service_orders.id"],
            name=op.f("fk_service_order_orgs_order_id_service_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_service_order_orgs_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", "org_id", name=op.f("pk_service_order_orgs")),
    )
    op.create_index(
        op.f("ix_service_order_orgs_org_id"), "service_order_orgs", ["org_id"], unique=False
    )
    op.create_table(
        "time_bank_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("hours", sa.Numeric(precision=10, scale=1), nullable=False),
        sa.Column("balance_after", sa.Numeric(precision=10, scale=1), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("reward_id", sa.BigInteger(), nullable=True),
        sa.Column("reward_name", sa.String(length=60), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'earn' AND hours > 0) OR (kind = 'redeem' AND hours < 0)",
            name=op.f("ck_time_bank_entries_sign"),
        ),
        sa.CheckConstraint("kind IN ('earn', 'redeem')", name=op.f("ck_time_bank_entries_kind")),
        sa.CheckConstraint("balance_after >= 0", name=op.f("ck_time_bank_entries_balance_after")),
        sa.ForeignKeyConstraint(
            ["actor_account_id"],
            ["accounts.id"],
            name=op.f("fk_time_bank_entries_actor_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_time_bank_entries_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["service_orders.id"],
            name=op.f("fk_time_bank_entries_order_id_service_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"],
            ["time_bank_rewards.id"],
            name=op.f("fk_time_bank_entries_reward_id_time_bank_rewards"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_bank_entries")),
    )
    op.create_index(
        "ix_time_bank_entries_member_id_id", "time_bank_entries", ["member_id", "id"], unique=False
    )
    op.create_index(
        op.f("ix_time_bank_entries_order_id"), "time_bank_entries", ["order_id"], unique=False
    )
    categories = sa.table(
        "order_categories",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("accept_hours", sa.Integer),
        sa.column("resolve_hours", sa.Integer),
        sa.column("sort_order", sa.Integer),
    )
    op.bulk_insert(
        categories,
        [
            {
                "code": code,
                "name": name,
                "accept_hours": accept,
                "resolve_hours": resolve,
                "sort_order": position,
            }
            for position, (code, name, accept, resolve) in enumerate(DEFAULT_CATEGORIES)
        ],
    )
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(APPEND_ONLY_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS time_bank_entries_append_only ON time_bank_entries")
    op.execute("DROP FUNCTION IF EXISTS time_bank_entries_append_only()")
    op.drop_index(op.f("ix_time_bank_entries_order_id"), table_name="time_bank_entries")
    op.drop_index("ix_time_bank_entries_member_id_id", table_name="time_bank_entries")
    op.drop_table("time_bank_entries")
    op.drop_index(op.f("ix_service_order_orgs_org_id"), table_name="service_order_orgs")
    op.drop_table("service_order_orgs")
    op.drop_index("ix_service_order_events_order_id_id", table_name="service_order_events")
    op.drop_table("service_order_events")
    op.drop_index(op.f("ix_time_bank_rewards_org_id"), table_name="time_bank_rewards")
    op.drop_table("time_bank_rewards")
    op.drop_index(op.f("ix_service_orders_volunteer_member_id"), table_name="service_orders")
    op.drop_index(op.f("ix_service_orders_submitter_member_id"), table_name="service_orders")
    op.drop_index("ix_service_orders_submitter_account_id_id", table_name="service_orders")
    op.drop_index(
        "ix_service_orders_resolved_at",
        table_name="service_orders",
        postgresql_where=sa.text("status = 'resolved'"),
    )
    op.drop_index("ix_service_orders_org_id_status", table_name="service_orders")
    op.drop_index(
        "ix_service_orders_open_due",
        table_name="service_orders",
        postgresql_where=sa.text("status IN ('submitted', 'accepted', 'in_progress')"),
    )
    op.drop_index(op.f("ix_service_orders_category_id"), table_name="service_orders")
    op.drop_table("service_orders")
    op.drop_table("time_bank_accounts")
    op.drop_index(op.f("ix_order_categories_org_id"), table_name="order_categories")
    op.drop_table("order_categories")
