"""care: greeting campaigns with their recipients, hardship cases with their help log

* ``care_campaigns``: a greeting scheduled for a day (or a lunar festival's day) to one
  subtree's mobile members, all members or members in hardship; ``ix_care_campaigns_due``
  finds the scheduled ones whose day has come.
* ``care_campaign_recipients``: one row per member a campaign went to; its primary key
  ``(campaign_id, member_id)`` makes a greeting reach a member once. Its
  ``notification_id`` has no foreign key: notifications are partitioned by month.
* ``care_cases`` / ``care_help``: hardship cases and the visits, calls and funds given;
  the description and the notes are ciphertext only.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "care_campaigns",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("festival", sa.String(length=16), nullable=True),
        sa.Column("send_on", sa.Date(), nullable=False),
        sa.Column(
            "status", sa.String(length=10), server_default=sa.text("'scheduled'"), nullable=False
        ),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
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
            "audience IN ('mobile_members', 'all_members', 'hardship')",
            name=op.f("ck_care_campaigns_audience"),
        ),
        sa.CheckConstraint(
            "festival IS NULL OR festival IN ('spring_festival', 'lantern', 'dragon_boat', 'mid_autumn', 'double_ninth')",
            name=op.f("ck_care_campaigns_festival"),
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'sent', 'cancelled')", name=op.f("ck_care_campaigns_status")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["accounts.id"],
            name=op.f("fk_care_campaigns_created_by_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_care_campaigns_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_campaigns")),
    )
    op.create_index(
        "ix_care_campaigns_due",
        "care_campaigns",
        ["send_on"],
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_index("ix_care_campaigns_org_id_id", "care_campaigns", ["org_id", "id"])
    op.create_table(
        "care_campaign_recipients",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["care_campaigns.id"],
            name=op.f("fk_care_campaign_recipients_campaign_id_care_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_care_campaign_recipients_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "member_id", name=op.f("pk_care_campaign_recipients")
        ),
    )
    op.create_table(
        "care_cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("description_enc", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=6), server_default=sa.text("'open'"), nullable=False),
        sa.Column("requested_by", sa.String(length=6), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_note", sa.String(length=200), nullable=True),
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
            "kind IN ('illness', 'accident', 'family', 'financial', 'other')",
            name=op.f("ck_care_cases_kind"),
        ),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_care_cases_status")),
        sa.CheckConstraint(
            "requested_by IN ('member', 'admin')", name=op.f("ck_care_cases_requested_by")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["accounts.id"],
            name=op.f("fk_care_cases_created_by_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_care_cases_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_cases")),
    )
    op.create_index("ix_care_cases_member_id", "care_cases", ["member_id"])
    op.create_index("ix_care_cases_status_id", "care_cases", ["status", "id"])
    op.create_table(
        "care_help",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("form", sa.String(length=12), nullable=False),
        sa.Column("amount_yuan", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("note_enc", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "form IN ('visit', 'call', 'funds', 'crowdfunding', 'mutual_aid')",
            name=op.f("ck_care_help_form"),
        ),
        sa.CheckConstraint(
            "amount_yuan IS NULL OR amount_yuan > 0", name=op.f("ck_care_help_amount_positive")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["care_cases.id"],
            name=op.f("fk_care_help_case_id_care_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["accounts.id"],
            name=op.f("fk_care_help_recorded_by_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_help")),
    )
    op.create_index("ix_care_help_case_id_id", "care_help", ["case_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_care_help_case_id_id", table_name="care_help")
    op.drop_table("care_help")
    op.drop_index("ix_care_cases_status_id", table_name="care_cases")
    op.drop_index("ix_care_cases_member_id", table_name="care_cases")
    op.drop_table("care_cases")
    op.drop_table("care_campaign_recipients")
    op.drop_index("ix_care_campaigns_org_id_id", table_name="care_campaigns")
    op.drop_index("ix_care_campaigns_due", table_name="care_campaigns")
    op.drop_table("care_campaigns")
