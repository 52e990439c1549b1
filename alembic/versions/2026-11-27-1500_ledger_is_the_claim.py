"""credit ledger is the claim: credit_events folded into credit_ledger

The check-in statement wrote three rows (event claim, daily total, ledger entry) with
eight index entries and four foreign-key checks, two of them locking the member's row.
The ledger entry now carries the claim's columns and unique indexes itself, and
references the member's day row (which the statement has just locked) instead of
``members``. Existing ledger rows take their event's id, so ``checkin_id`` values
already handed out stay what they were.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Never hand out an id again that either table's sequence already gave.
_RESTART_LEDGER_IDS = """
SELECT setval(
    pg_get_serial_sequence('credit_ledger', 'id'),
    GREATEST(
        (SELECT coalesce(max(id), 0) FROM credit_ledger),
        (SELECT last_value FROM {events_sequence}),
        1
    )
)
"""


def upgrade() -> None:
    op.add_column("credit_ledger", sa.Column("source", sa.String(length=10), nullable=True))
    op.add_column("credit_ledger", sa.Column("source_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "credit_ledger", sa.Column("client_event_id", sa.String(length=64), nullable=True)
    )
    op.add_column(
        "credit_ledger", sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True)
    )
    # The primary key goes while ids are rewritten: old and new ids may overlap mid-update.
    op.drop_constraint("pk_credit_ledger", "credit_ledger", type_="primary")
    op.execute(
        """
        UPDATE credit_ledger AS l
        SET id = e.id, source = e.source, source_id = e.source_id,
            client_event_id = e.client_event_id, occurred_at = e.occurred_at
        FROM credit_events AS e
        WHERE e.id = l.event_id
        """
    )
    op.create_primary_key("pk_credit_ledger", "credit_ledger", ["id"])
    events_sequence = op.get_bind().scalar(
        sa.text("SELECT pg_get_serial_sequence('credit_events', 'id')")
    )
    op.execute(_RESTART_LEDGER_IDS.format(events_sequence=events_sequence))
    for column in ("source", "source_id", "occurred_at"):
        op.alter_column("credit_ledger", column, nullable=False)

    op.drop_constraint("fk_credit_ledger_event_id_credit_events", "credit_ledger")
    op.drop_constraint("uq_credit_ledger_event_id", "credit_ledger")
    op.drop_column("credit_ledger", "event_id")
    op.drop_constraint("fk_credit_ledger_member_id_members", "credit_ledger")
    # The unique indexes below start with member_id: they serve member lookups and the
    # cascade from credit_daily.
    op.drop_index("ix_credit_ledger_member_id_day", table_name="credit_ledger")
    op.create_check_constraint(
        op.f("ck_credit_ledger_source"), "credit_ledger", "source IN ('study', 'activity')"
    )
    op.create_unique_constraint(
        op.f("uq_credit_ledger_member_id_source_source_id"),
        "credit_ledger",
        ["member_id", "source", "source_id"],
    )
    op.create_unique_constraint(
        op.f("uq_credit_ledger_member_id_client_event_id"),
        "credit_ledger",
        ["member_id", "client_event_id"],
    )
    op.create_foreign_key(
        op.f("fk_credit_ledger_member_id_credit_daily"),
        "credit_ledger",
        "credit_daily",
        ["member_id", "day"],
        ["member_id", "day"],
        ondelete="CASCADE",
    )
    op.drop_table("credit_events")


def downgrade() -> None:
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
    op.execute(
        """
        INSERT INTO credit_events
            (id, member_id, source, source_id, client_event_id, kind, day, occurred_at, created_at)
        SELECT id, member_id, source, source_id, client_event_id, kind, day, occurred_at,
               created_at
        FROM credit_ledger
        """
    )
    op.execute(
        "SELECT setval(pg_get_serial_sequence('credit_events', 'id'), "
        "GREATEST((SELECT coalesce(max(id), 0) FROM credit_events), 1))"
    )
    op.drop_constraint(op.f("fk_credit_ledger_member_id_credit_daily"), "credit_ledger")
    op.drop_constraint(op.f("uq_credit_ledger_member_id_client_event_id"), "credit_ledger")
    op.drop_constraint(op.f("uq_credit_ledger_member_id_source_source_id"), "credit_ledger")
    op.drop_constraint(op.f("ck_credit_ledger_source"), "credit_ledger")
    op.add_column("credit_ledger", sa.Column("event_id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE credit_ledger SET event_id = id")
    op.alter_column("credit_ledger", "event_id", nullable=False)
    op.create_unique_constraint(op.f("uq_credit_ledger_event_id"), "credit_ledger", ["event_id"])
    op.create_foreign_key(
        op.f("fk_credit_ledger_event_id_credit_events"),
        "credit_ledger",
        "credit_events",
        ["event_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_foreign_key(
        op.f("fk_credit_ledger_member_id_members"),
        "credit_ledger",
        "members",
        ["member_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        "ix_credit_ledger_member_id_day", "credit_ledger", ["member_id", "day"], unique=False
    )
    for column in ("occurred_at", "client_event_id", "source_id", "source"):
        op.drop_column("credit_ledger", column)
