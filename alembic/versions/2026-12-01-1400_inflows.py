"""the inflow ledger (流入登记 / 亮身份, and the census's 口袋党员 candidates)

* ``inflows``: one person in an organisation's inflow ledger, declared by himself or
  found by a census survey, with his personal data encrypted, blind-indexed and masked
  like the roster's; one open row per person and organisation
  (``uq_inflows_org_person_open``).

Revision ID: 0020
Revises: 0026
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inflows",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("id_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("id_number_idx", sa.LargeBinary(), nullable=False),
        sa.Column("id_number_masked", sa.String(length=18), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_masked", sa.String(length=11), nullable=True),
        sa.Column("home_org_name", sa.String(length=100), nullable=True),
        sa.Column("home_region_code", sa.String(length=6), nullable=True),
        sa.Column("employer", sa.String(length=100), nullable=True),
        sa.Column("arrived_on", sa.Date(), nullable=True),
        sa.Column("matched_member_id", sa.BigInteger(), nullable=True),
        sa.Column("outflow_id", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("decision_note", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('candidate', 'pending', 'verified', 'rejected', 'withdrawn')",
            name=op.f("ck_inflows_status"),
        ),
        sa.CheckConstraint("source IN ('declaration', 'census')", name=op.f("ck_inflows_source")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_inflows_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_inflows_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["census_entities.id"],
            name=op.f("fk_inflows_entity_id_census_entities"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["matched_member_id"],
            ["members.id"],
            name=op.f("fk_inflows_matched_member_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outflow_id"],
            ["outflows.id"],
            name=op.f("fk_inflows_outflow_id_outflows"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_inflows_decided_by_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inflows")),
    )
    op.create_index(
        "uq_inflows_org_person_open",
        "inflows",
        ["org_id", "id_number_idx"],
        unique=True,
        postgresql_where=sa.text("status IN ('candidate', 'pending', 'verified')"),
    )
    op.create_index("ix_inflows_org_id_id", "inflows", ["org_id", "id"])
    op.create_index("ix_inflows_account_id_id", "inflows", ["account_id", "id"])
    op.create_index(
        "ix_inflows_name_trgm",
        "inflows",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(op.f("ix_inflows_entity_id"), "inflows", ["entity_id"])
    op.create_index(op.f("ix_inflows_id_number_idx"), "inflows", ["id_number_idx"])
    op.create_index(op.f("ix_inflows_matched_member_id"), "inflows", ["matched_member_id"])


def downgrade() -> None:
    op.drop_table("inflows")
