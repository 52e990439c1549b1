"""history by month: credit_ledger and notifications partitioned, outbox_history

* ``credit_ledger`` becomes ``PARTITION BY RANGE (day)``, one partition per month
  (``credit_ledger_pYYYYMM``) from the oldest row's month to three months ahead, plus
  ``credit_ledger_default``. Its primary key becomes (id, day). A unique index on a
  partitioned table must contain the partition key, so the claim's uniqueness moves
  to the new unpartitioned ``credit_claims`` (unique by (member, source, source_id) and
  (member, client_event_id), with the entry's result for replays), filled from the
  ledger; the ledger keeps an index on (member_id, day) for the cascade from
  ``credit_daily``.
* ``notifications`` becomes ``PARTITION BY RANGE (created_at)`` by Asia/Shanghai
  month; primary key (id, created_at); the same indexes, foreign key and check.
* ``outbox_history`` (new, partitioned by ``finished_at``): outbox jobs done for 30 days
  are moved there by ``notify.purge_finished`` instead of being deleted.

Rows are copied with one ``INSERT … SELECT`` per table, indexes and constraints built
afterwards; identity sequences continue where they were. Downgrade puts the plain
tables back (the claims' keys are already in the ledger rows) and moves the history's
jobs back into ``outbox_jobs``.

Revision ID: 0024
Revises: 0018
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AHEAD_MONTHS = 3


def _month_partitions(table: str, column: str, *, is_date: bool) -> None:
    """One partition per Asia/Shanghai month from the oldest row of ``<table>_flat`` (or
    this month) to AHEAD_MONTHS ahead, and the default partition."""
    local = column if is_date else f"({column} AT TIME ZONE 'Asia/Shanghai')"
    bound = "%L" if is_date else "%s"
    as_bound = "m::date" if is_date else "quote_literal(m::date || ' 00:00:00+08')"
    next_bound = (
        "(m + interval '1 month')::date"
        if is_date
        else "quote_literal((m + interval '1 month')::date || ' 00:00:00+08')"
    )
    op.execute(
        f"""
        DO $$
        DECLARE
            today date := (now() AT TIME ZONE 'Asia/Shanghai')::date;
            first date;
            m timestamp;
        BEGIN
            SELECT least(coalesce(min({local})::date, today), today) INTO first
            FROM {table}_flat;
            FOR m IN SELECT generate_series(
                date_trunc('month', first),
                date_trunc('month', today) + interval '{AHEAD_MONTHS} months',
                interval '1 month'
            ) LOOP
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF {table} FOR VALUES FROM ({bound}) TO ({bound})',
                    '{table}_p' || to_char(m, 'YYYYMM'), {as_bound}, {next_bound}
                );
            END LOOP;
            EXECUTE 'CREATE TABLE {table}_default PARTITION OF {table} DEFAULT';
        END $$
        """  # noqa: S608 - table and column names are this module's constants
    )


def _restart_identity(table: str, last_value: int) -> None:
    op.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - constants
        f"GREATEST((SELECT coalesce(max(id), 0) FROM {table}), {int(last_value)}, 1))"
    )


def _take_aside(table: str, constraints: Sequence[str], indexes: Sequence[str]) -> int:
    """Rename ``table`` to ``<table>_flat``, free its constraint, index and sequence
    names; returns the identity sequence's last value."""
    bind = op.get_bind()
    last = bind.scalar(sa.text(f"SELECT last_value FROM {table}_id_seq"))  # noqa: S608
    op.rename_table(table, f"{table}_flat")
    for index in indexes:
        op.drop_index(index, table_name=f"{table}_flat")
    for name in constraints:
        op.drop_constraint(name, f"{table}_flat")
    op.execute(f"ALTER TABLE {table}_flat ALTER COLUMN id DROP IDENTITY")
    return int(last or 0)


def _ledger_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("client_event_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("daily_points", sa.Integer(), nullable=False),
        sa.Column("cap_reached", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    ]


def _notification_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.String(length=500), nullable=False),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("page", sa.String(length=200), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "delivery", sa.String(length=12), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    ]


LEDGER_COLUMNS = (
    "id, member_id, day, source, source_id, client_event_id, kind, points, daily_points, "
    "cap_reached, occurred_at, created_at"
)
NOTIFICATION_COLUMNS = (
    "id, account_id, template, title, body, data, page, read_at, created_at, delivery, delivered_at"
)
JOB_COLUMNS = (
    "id, kind, payload, dedupe_key, status, attempts, run_after, last_error, created_at, "
    "finished_at"
)
LEDGER_CONSTRAINTS = (
    "uq_credit_ledger_member_id_client_event_id",
    "uq_credit_ledger_member_id_source_source_id",
    "fk_credit_ledger_member_id_credit_daily",
    "ck_credit_ledger_points",
    "ck_credit_ledger_source",
    "pk_credit_ledger",
)
NOTIFICATION_CONSTRAINTS = (
    "fk_notifications_account_id_accounts",
    "ck_notifications_delivery",
    "pk_notifications",
)
NOTIFICATION_INDEXES = ("ix_notifications_account_id_id", "ix_notifications_account_unread")


def _ledger_constraints(*, partitioned: bool) -> None:
    key = ["id", "day"] if partitioned else ["id"]
    op.create_primary_key(op.f("pk_credit_ledger"), "credit_ledger", key)
    op.create_check_constraint(
        op.f("ck_credit_ledger_source"), "credit_ledger", "source IN ('study', 'activity')"
    )
    op.create_check_constraint(op.f("ck_credit_ledger_points"), "credit_ledger", "points >= 0")
    op.create_foreign_key(
        op.f("fk_credit_ledger_member_id_credit_daily"),
        "credit_ledger",
        "credit_daily",
        ["member_id", "day"],
        ["member_id", "day"],
        ondelete="CASCADE",
    )


def _notification_constraints(*, partitioned: bool) -> None:
    key = ["id", "created_at"] if partitioned else ["id"]
    op.create_primary_key(op.f("pk_notifications"), "notifications", key)
    op.create_check_constraint(
        op.f("ck_notifications_delivery"),
        "notifications",
        "delivery IN ('pending', 'sent', 'skipped', 'unsubscribed', 'failed')",
    )
    op.create_foreign_key(
        op.f("fk_notifications_account_id_accounts"),
        "notifications",
        "accounts",
        ["account_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index("ix_notifications_account_id_id", "notifications", ["account_id", "id"])
    op.create_index(
        "ix_notifications_account_unread",
        "notifications",
        ["account_id"],
        postgresql_where=sa.text("read_at IS NULL"),
    )


def upgrade() -> None:
    # -- credit_ledger, partitioned by month of day; the claims on their own
    last = _take_aside("credit_ledger", LEDGER_CONSTRAINTS, ())
    op.create_table("credit_ledger", *_ledger_columns(), postgresql_partition_by="RANGE (day)")
    _month_partitions("credit_ledger", "day", is_date=True)
    op.execute(
        f"INSERT INTO credit_ledger ({LEDGER_COLUMNS}) "  # noqa: S608
        f"SELECT {LEDGER_COLUMNS} FROM credit_ledger_flat"
    )
    _ledger_constraints(partitioned=True)
    op.create_index("ix_credit_ledger_member_id_day", "credit_ledger", ["member_id", "day"])
    _restart_identity("credit_ledger", last)

    op.create_table(
        "credit_claims",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("client_event_id", sa.String(length=64), nullable=True),
        sa.Column("ledger_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("daily_points", sa.Integer(), nullable=False),
        sa.Column("cap_reached", sa.Boolean(), nullable=False),
    )
    op.execute(
        "INSERT INTO credit_claims (member_id, source, source_id, client_event_id, ledger_id, "
        "day, points, daily_points, cap_reached) "
        "SELECT member_id, source, source_id, client_event_id, id, day, points, daily_points, "
        "cap_reached FROM credit_ledger_flat"
    )
    op.create_primary_key(
        op.f("pk_credit_claims"), "credit_claims", ["member_id", "source", "source_id"]
    )
    op.create_unique_constraint(
        op.f("uq_credit_claims_member_id_client_event_id"),
        "credit_claims",
        ["member_id", "client_event_id"],
    )
    op.create_check_constraint(
        op.f("ck_credit_claims_source"), "credit_claims", "source IN ('study', 'activity')"
    )
    op.create_foreign_key(
        op.f("fk_credit_claims_member_id_credit_daily"),
        "credit_claims",
        "credit_daily",
        ["member_id", "day"],
        ["member_id", "day"],
        ondelete="CASCADE",
    )
    op.drop_table("credit_ledger_flat")

    # -- notifications, partitioned by month of created_at
    last = _take_aside("notifications", NOTIFICATION_CONSTRAINTS, NOTIFICATION_INDEXES)
    op.create_table(
        "notifications", *_notification_columns(), postgresql_partition_by="RANGE (created_at)"
    )
    _month_partitions("notifications", "created_at", is_date=False)
    op.execute(
        f"INSERT INTO notifications ({NOTIFICATION_COLUMNS}) "  # noqa: S608
        f"SELECT {NOTIFICATION_COLUMNS} FROM notifications_flat"
    )
    _notification_constraints(partitioned=True)
    _restart_identity("notifications", last)
    op.drop_table("notifications_flat")

    # -- outbox_history: finished jobs, by month of finished_at
    op.create_table(
        "outbox_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", "finished_at", name="pk_outbox_history"),
        postgresql_partition_by="RANGE (finished_at)",
    )
    # No rows yet: the months start with this one (an empty stand-in for the scan).
    op.execute("CREATE TABLE outbox_history_flat (finished_at timestamptz)")
    _month_partitions("outbox_history", "finished_at", is_date=False)
    op.drop_table("outbox_history_flat")


def downgrade() -> None:
    # -- outbox_history: its jobs go back to the queue (their dedupe keys with them)
    op.execute(
        f"INSERT INTO outbox_jobs ({JOB_COLUMNS}) "  # noqa: S608
        f"SELECT {JOB_COLUMNS} FROM outbox_history ON CONFLICT DO NOTHING"
    )
    op.drop_table("outbox_history")

    # -- notifications back to one table
    last = _take_aside("notifications", NOTIFICATION_CONSTRAINTS, NOTIFICATION_INDEXES)
    op.create_table("notifications", *_notification_columns())
    op.execute(
        f"INSERT INTO notifications ({NOTIFICATION_COLUMNS}) "  # noqa: S608
        f"SELECT {NOTIFICATION_COLUMNS} FROM notifications_flat"
    )
    _notification_constraints(partitioned=False)
    _restart_identity("notifications", last)
    op.drop_table("notifications_flat")  # its partitions go with it

    # -- credit_ledger back to one table that is also the claim
    op.drop_index("ix_credit_ledger_member_id_day", table_name="credit_ledger")
    last = _take_aside("credit_ledger", LEDGER_CONSTRAINTS[2:], ())
    op.create_table("credit_ledger", *_ledger_columns())
    op.execute(
        f"INSERT INTO credit_ledger ({LEDGER_COLUMNS}) "  # noqa: S608
        f"SELECT {LEDGER_COLUMNS} FROM credit_ledger_flat"
    )
    _ledger_constraints(partitioned=False)
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
    _restart_identity("credit_ledger", last)
    op.drop_table("credit_ledger_flat")
    op.drop_table("credit_claims")
