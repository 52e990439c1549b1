"""activity tables

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checkin_opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checkin_closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("online", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("radius_m", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("signup_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("credit_points", sa.Integer(), nullable=True),
        sa.Column("created_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
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
            "kind IN ('theme_day', 'branch_meeting', 'party_class', 'committee_meeting', 'general_meeting', 'online_class', 'volunteer')",
            name=op.f("ck_activities_kind"),
        ),
        sa.CheckConstraint(
            "capacity IS NULL OR capacity > 0", name=op.f("ck_activities_capacity_positive")
        ),
        sa.CheckConstraint(
            "checkin_closes_at > checkin_opens_at", name=op.f("ck_activities_checkin_window")
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_activities_ends_after_start")),
        sa.CheckConstraint(
            "online OR (lat IS NOT NULL AND lon IS NOT NULL AND radius_m IS NOT NULL)",
            name=op.f("ck_activities_onsite_location"),
        ),
        sa.CheckConstraint(
            "signup_count >= 0 AND (capacity IS NULL OR signup_count <= capacity)",
            name=op.f("ck_activities_signup_count_within_capacity"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_activities_created_by_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_activities_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    op.create_index(
        "ix_activities_org_id_starts_at", "activities", ["org_id", "starts_at"], unique=False
    )
    op.create_index("ix_activities_starts_at_id", "activities", ["starts_at", "id"], unique=False)
    op.create_table(
        "activity_attendances",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("activity_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("attended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("credits_awarded", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "method IN ('location', 'qr', 'online')", name=op.f("ck_activity_attendances_method")
        ),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_activity_attendances_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_activity_attendances_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_attendances")),
        sa.UniqueConstraint(
            "activity_id", "member_id", name=op.f("uq_activity_attendances_activity_id_member_id")
        ),
    )
    op.create_index(
        "ix_activity_attendances_member_id", "activity_attendances", ["member_id"], unique=False
    )
    op.create_table(
        "activity_signups",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("activity_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "status", sa.String(length=12), server_default=sa.text("'signed_up'"), nullable=False
        ),
        sa.Column(
            "signed_up_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('signed_up', 'cancelled')", name=op.f("ck_activity_signups_status")
        ),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_activity_signups_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_activity_signups_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_signups")),
        sa.UniqueConstraint(
            "activity_id", "member_id", name=op.f("uq_activity_signups_activity_id_member_id")
        ),
    )
    op.create_index(
        "ix_activity_signups_member_id", "activity_signups", ["member_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_activity_signups_member_id", table_name="activity_signups")
    op.drop_table("activity_signups")
    op.drop_index("ix_activity_attendances_member_id", table_name="activity_attendances")
    op.drop_table("activity_attendances")
    op.drop_index("ix_activities_starts_at_id", table_name="activities")
    op.drop_index("ix_activities_org_id_starts_at", table_name="activities")
    op.drop_table("activities")
