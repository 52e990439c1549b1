"""relation transfers (组织关系转接); outflows can close as transferred

* ``relation_transfers``: a request to move a member's home organisation, from the
  home side's approval (letter of introduction, ``letter_no``) to the receiving side's
  acceptance; at most one open (requested or approved) transfer per member.
* ``relation_transfer_events``: its timeline.
* ``outflows.status`` gains ``transferred`` (an open outflow that a completed transfer
  closed); the column widens to 12 characters for it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('pending', 'active', 'rejected', 'returned', 'withdrawn', 'cancelled')"
NEW_STATUSES = (
    "status IN ('pending', 'active', 'rejected', 'returned', 'withdrawn', 'cancelled', "
    "'transferred')"
)


def upgrade() -> None:
    op.create_table(
        "relation_transfers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("from_org_id", sa.BigInteger(), nullable=False),
        sa.Column("to_org_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("requested_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("letter_no", sa.String(length=40), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.String(length=200), nullable=True),
        sa.Column("outflow_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'completed', 'rejected', 'refused', 'withdrawn')",
            name=op.f("ck_relation_transfers_status"),
        ),
        sa.CheckConstraint("from_org_id <> to_org_id", name=op.f("ck_relation_transfers_moves")),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_relation_transfers_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["from_org_id"],
            ["organizations.id"],
            name=op.f("fk_relation_transfers_from_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["to_org_id"],
            ["organizations.id"],
            name=op.f("fk_relation_transfers_to_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_relation_transfers_requested_by_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relation_transfers")),
    )
    op.create_index(
        "uq_relation_transfers_member_open",
        "relation_transfers",
        ["member_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('requested', 'approved')"),
    )
    for column in ("member_id", "from_org_id", "to_org_id"):
        op.create_index(f"ix_relation_transfers_{column}_id", "relation_transfers", [column, "id"])
    op.create_table(
        "relation_transfer_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("transfer_id", sa.BigInteger(), nullable=False),
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
            ["transfer_id"],
            ["relation_transfers.id"],
            name=op.f("fk_relation_transfer_events_transfer_id_relation_transfers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_account_id"],
            ["accounts.id"],
            name=op.f("fk_relation_transfer_events_actor_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relation_transfer_events")),
    )
    op.create_index(
        "ix_relation_transfer_events_transfer_id_id",
        "relation_transfer_events",
        ["transfer_id", "id"],
    )

    op.alter_column(
        "outflows", "status", type_=sa.String(length=12), existing_type=sa.String(length=10)
    )
    op.drop_constraint(op.f("ck_outflows_status"), "outflows", type_="check")
    op.create_check_constraint(op.f("ck_outflows_status"), "outflows", NEW_STATUSES)


def downgrade() -> None:
    # A transferred outflow ended when the member left: the nearest older state is a return.
    op.execute("UPDATE outflows SET status = 'returned' WHERE status = 'transferred'")
    op.drop_constraint(op.f("ck_outflows_status"), "outflows", type_="check")
    op.create_check_constraint(op.f("ck_outflows_status"), "outflows", OLD_STATUSES)
    op.alter_column(
        "outflows", "status", type_=sa.String(length=10), existing_type=sa.String(length=12)
    )
    op.drop_index(
        "ix_relation_transfer_events_transfer_id_id", table_name="relation_transfer_events"
    )
    op.drop_table("relation_transfer_events")
    for column in ("member_id", "from_org_id", "to_org_id"):
        op.drop_index(f"ix_relation_transfers_{column}_id", table_name="relation_transfers")
    op.drop_index("uq_relation_transfers_member_open", table_name="relation_transfers")
    op.drop_table("relation_transfers")
