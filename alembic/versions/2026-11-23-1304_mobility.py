"""mobility tables

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outflow_certificate_counters",
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "region_code", "year", name=op.f("pk_outflow_certificate_counters")
        ),
    )
    op.create_table(
        "member_consents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('location')", name=op.f("ck_member_consents_kind")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_member_consents_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_consents_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_consents")),
    )
    op.create_index(
        "ix_member_consents_member_id_kind_id",
        "member_consents",
        ["member_id", "kind", "id"],
        unique=False,
    )
    op.create_table(
        "outflows",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("home_org_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "status", sa.String(length=10), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column("reason", sa.String(length=10), nullable=False),
        sa.Column("destination_region_code", sa.String(length=6, collation="C"), nullable=False),
        sa.Column("destination_address", sa.String(length=200), nullable=False),
        sa.Column("employer", sa.String(length=100), nullable=True),
        sa.Column("contact_phone_enc", sa.LargeBinary(), nullable=False),
        sa.Column("contact_phone_masked", sa.String(length=11), nullable=False),
        sa.Column("departed_on", sa.Date(), nullable=False),
        sa.Column("expected_return_on", sa.Date(), nullable=False),
        sa.Column("certificate_no", sa.String(length=30), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("reject_reason", sa.String(length=200), nullable=True),
        sa.Column(
            "checkin_status", sa.String(length=10), server_default=sa.text("'none'"), nullable=False
        ),
        sa.Column("checkin_org_id", sa.BigInteger(), nullable=True),
        sa.Column("checkin_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checkin_decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checkin_refuse_reason", sa.String(length=200), nullable=True),
        sa.Column("relocated_on", sa.Date(), nullable=True),
        sa.Column("last_contact_on", sa.Date(), nullable=True),
        sa.Column("last_report_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_report_region_code", sa.String(length=6), nullable=True),
        sa.Column("last_report_far", sa.Boolean(), nullable=True),
        sa.Column("checkin_due_on", sa.Date(), nullable=True),
        sa.Column("report_due_on", sa.Date(), nullable=True),
        sa.Column("lost_contact_on", sa.Date(), nullable=True),
        sa.Column("transfer_suggest_on", sa.Date(), nullable=True),
        sa.Column("lost_contact_escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report_reminded_for", sa.Date(), nullable=True),
        sa.Column("returned_on", sa.Date(), nullable=True),
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
            "checkin_status IN ('none', 'pending', 'accepted', 'refused')",
            name=op.f("ck_outflows_checkin_status"),
        ),
        sa.CheckConstraint(
            "reason IN ('work', 'business', 'study', 'other')", name=op.f("ck_outflows_reason")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'rejected', 'returned')",
            name=op.f("ck_outflows_status"),
        ),
        sa.CheckConstraint(
            "expected_return_on >= departed_on", name=op.f("ck_outflows_return_after_departure")
        ),
        sa.ForeignKeyConstraint(
            ["checkin_org_id"],
            ["organizations.id"],
            name=op.f("fk_outflows_checkin_org_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_outflows_decided_by_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["home_org_id"],
            ["organizations.id"],
            name=op.f("fk_outflows_home_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_outflows_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outflows")),
        sa.UniqueConstraint("certificate_no", name=op.f("uq_outflows_certificate_no")),
    )
    op.create_index(
        "ix_outflows_checkin_due_on",
        "outflows",
        ["checkin_due_on"],
        unique=False,
        postgresql_where=sa.text("checkin_due_on IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_outflows_checkin_org_id"), "outflows", ["checkin_org_id"], unique=False
    )
    op.create_index(
        op.f("ix_outflows_destination_region_code"),
        "outflows",
        ["destination_region_code"],
        unique=False,
    )
    op.create_index("ix_outflows_home_org_id_id", "outflows", ["home_org_id", "id"], unique=False)
    op.create_index(
        "ix_outflows_lost_contact_on",
        "outflows",
        ["lost_contact_on"],
        unique=False,
        postgresql_where=sa.text("lost_contact_on IS NOT NULL"),
    )
    op.create_index(op.f("ix_outflows_member_id"), "outflows", ["member_id"], unique=False)
    op.create_index(
        "ix_outflows_report_due_on",
        "outflows",
        ["report_due_on"],
        unique=False,
        postgresql_where=sa.text("report_due_on IS NOT NULL"),
    )
    op.create_index("ix_outflows_status_id", "outflows", ["status", "id"], unique=False)
    op.create_index(
        "ix_outflows_transfer_suggest_on",
        "outflows",
        ["transfer_suggest_on"],
        unique=False,
        postgresql_where=sa.text("transfer_suggest_on IS NOT NULL"),
    )
    op.create_index(
        "uq_outflows_member_open",
        "outflows",
        ["member_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending', 'active')"),
    )
    op.create_table(
        "outflow_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("outflow_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=False),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_account_id"],
            ["accounts.id"],
            name=op.f("fk_outflow_events_actor_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outflow_id"],
            ["outflows.id"],
            name=op.f("fk_outflow_events_outflow_id_outflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outflow_events")),
    )
    op.create_index(
        "ix_outflow_events_outflow_id_id", "outflow_events", ["outflow_id", "id"], unique=False
    )
    op.create_table(
        "outflow_reports",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("outflow_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("far_from_destination", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("note_suggest", sa.String(length=10), nullable=True),
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_outflow_reports_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["outflow_id"],
            ["outflows.id"],
            name=op.f("fk_outflow_reports_outflow_id_outflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outflow_reports")),
    )
    op.create_index(
        op.f("ix_outflow_reports_member_id"), "outflow_reports", ["member_id"], unique=False
    )
    op.create_index(
        "ix_outflow_reports_outflow_id_id", "outflow_reports", ["outflow_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_outflow_reports_outflow_id_id", table_name="outflow_reports")
    op.drop_index(op.f("ix_outflow_reports_member_id"), table_name="outflow_reports")
    op.drop_table("outflow_reports")
    op.drop_index("ix_outflow_events_outflow_id_id", table_name="outflow_events")
    op.drop_table("outflow_events")
    op.drop_index(
        "uq_outflows_member_open",
        table_name="outflows",
        postgresql_where=sa.text("status IN ('pending', 'active')"),
    )
    op.drop_index(
        "ix_outflows_transfer_suggest_on",
        table_name="outflows",
        postgresql_where=sa.text("transfer_suggest_on IS NOT NULL"),
    )
    op.drop_index("ix_outflows_status_id", table_name="outflows")
    op.drop_index(
        "ix_outflows_report_due_on",
        table_name="outflows",
        postgresql_where=sa.text("report_due_on IS NOT NULL"),
    )
    op.drop_index(op.f("ix_outflows_member_id"), table_name="outflows")
    op.drop_index(
        "ix_outflows_lost_contact_on",
        table_name="outflows",
        postgresql_where=sa.text("lost_contact_on IS NOT NULL"),
    )
    op.drop_index("ix_outflows_home_org_id_id", table_name="outflows")
    op.drop_index(op.f("ix_outflows_destination_region_code"), table_name="outflows")
    op.drop_index(op.f("ix_outflows_checkin_org_id"), table_name="outflows")
    op.drop_index(
        "ix_outflows_checkin_due_on",
        table_name="outflows",
        postgresql_where=sa.text("checkin_due_on IS NOT NULL"),
    )
    op.drop_table("outflows")
    op.drop_index("ix_member_consents_member_id_kind_id", table_name="member_consents")
    op.drop_table("member_consents")
    op.drop_table("outflow_certificate_counters")
