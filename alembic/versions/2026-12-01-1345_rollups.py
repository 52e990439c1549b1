"""rollups: census coverage per round, credit points per member and month / year

* ``census_round_tally``: surveys of a round per (responsible organisation, trade
  committee, coverage found), kept by statement-level triggers on ``census_surveys``;
  the statistics' change between rounds adds up these rows instead of counting a
  round's surveys.
* ``credit_rollup``: points per (member, month | year) with the member's home
  organisation, kept by statement-level triggers on ``credit_ledger`` (and a row
  trigger on ``members`` when a member moves); the month and year leaderboards read
  the top of a period from ``ix_credit_rollup_board``. The day leaderboard reads ``credit_daily``
  best first: ``ix_credit_daily_board`` replaces ``ix_credit_daily_day_member``.

Both tables are filled from the existing rows.

Revision ID: 0026
Revises: 0024
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ------------------------------------------------------------------ census rounds
_ROUND_TALLY_UPSERT = """
        INSERT INTO census_round_tally AS t (round_id, responsible_org_id, trade_org_id,
                                             coverage, n)
        SELECT s.round_id, s.responsible_org_id, coalesce(s.trade_org_id, 0), s.coverage,
               {sign} count(*)
        FROM {rows} AS s
        GROUP BY 1, 2, 3, 4
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (round_id, responsible_org_id, trade_org_id, coverage)
        DO UPDATE SET n = t.n + excluded.n;
"""
ROUND_TALLY_FUNCTION = (
    """
CREATE FUNCTION census_round_tally_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN"""
    + _ROUND_TALLY_UPSERT.format(sign="-", rows="old_rows")
    + """    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN"""
    + _ROUND_TALLY_UPSERT.format(sign="", rows="new_rows")
    + """    END IF;
    RETURN NULL;
END;
$$
"""
)

# ------------------------------------------------------------------ credit rollup
# A ledger row's month and year: its ``day`` is already the Asia/Shanghai day.
_PERIODS_OF_DAY = """CROSS JOIN LATERAL (VALUES
            ('month', date_trunc('month', l.day::timestamp)::date),
            ('year', date_trunc('year', l.day::timestamp)::date)
        ) AS p (period, start)"""
CREDIT_ROLLUP_FUNCTION = f"""
CREATE FUNCTION credit_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        -- Removed rows: their member's rows exist (they were added with them), unless
        -- the member is being deleted (then his rollup rows are gone by the cascade).
        UPDATE credit_rollup AS r SET points = r.points - o.points
        FROM (
            SELECT l.member_id, p.period, p.start, sum(l.points) AS points
            FROM old_rows AS l {_PERIODS_OF_DAY}
            GROUP BY 1, 2, 3
            ORDER BY 1, 2, 3
        ) AS o
        WHERE r.member_id = o.member_id AND r.period = o.period AND r.start = o.start;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO credit_rollup AS r (member_id, period, start, points, org_id)
        SELECT l.member_id, p.period, p.start, sum(l.points), min(m.home_org_id)
        FROM new_rows AS l JOIN members AS m ON m.id = l.member_id {_PERIODS_OF_DAY}
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        ON CONFLICT (member_id, period, start) DO UPDATE SET points = r.points + excluded.points;
    END IF;
    RETURN NULL;
END;
$$
"""  # noqa: S608 - built from the constant above only

BACKFILL_ROLLUP = f"""
INSERT INTO credit_rollup (member_id, period, start, points, org_id)
SELECT l.member_id, p.period, p.start, sum(l.points), min(m.home_org_id)
FROM credit_ledger AS l JOIN members AS m ON m.id = l.member_id {_PERIODS_OF_DAY}
GROUP BY 1, 2, 3
"""  # noqa: S608 - built from the constant above only
# A member who moves takes his rollup rows with him.
ROLLUP_ORG_FUNCTION = """
CREATE FUNCTION credit_rollup_follow_member() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE credit_rollup SET org_id = NEW.home_org_id WHERE member_id = NEW.id;
    RETURN NULL;
END;
$$
"""
ROLLUP_ORG_TRIGGER = """
CREATE TRIGGER credit_rollup_follow_member AFTER UPDATE OF home_org_id ON members
    FOR EACH ROW WHEN (OLD.home_org_id IS DISTINCT FROM NEW.home_org_id)
    EXECUTE FUNCTION credit_rollup_follow_member()
"""


def _triggers(table: str, function: str, prefix: str) -> tuple[str, ...]:
    return (
        f"CREATE TRIGGER {prefix}_insert AFTER INSERT ON {table} "
        f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {prefix}_update AFTER UPDATE ON {table} "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {prefix}_delete AFTER DELETE ON {table} "
        f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    )


def upgrade() -> None:
    op.create_table(
        "census_round_tally",
        sa.Column("round_id", sa.BigInteger(), nullable=False),
        sa.Column("responsible_org_id", sa.BigInteger(), nullable=False),
        sa.Column("trade_org_id", sa.BigInteger(), nullable=False),
        sa.Column("coverage", sa.String(length=12), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "round_id",
            "responsible_org_id",
            "trade_org_id",
            "coverage",
            name=op.f("pk_census_round_tally"),
        ),
    )
    op.execute(
        "INSERT INTO census_round_tally (round_id, responsible_org_id, trade_org_id, "
        "coverage, n) SELECT round_id, responsible_org_id, coalesce(trade_org_id, 0), "
        "coverage, count(*) FROM census_surveys GROUP BY 1, 2, 3, 4"
    )
    op.execute(ROUND_TALLY_FUNCTION)
    for trigger in _triggers("census_surveys", "census_round_tally_apply", "census_round_tally"):
        op.execute(trigger)
    # Counted per responsible organisation by the round tally now.
    op.drop_index(
        "ix_census_surveys_round_rates",
        table_name="census_surveys",
        postgresql_include=["trade_org_id"],
    )

    op.create_table(
        "credit_rollup",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=5), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("period IN ('month', 'year')", name=op.f("ck_credit_rollup_period")),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_credit_rollup_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", "period", "start", name=op.f("pk_credit_rollup")),
    )
    op.execute(BACKFILL_ROLLUP)
    op.create_index(
        "ix_credit_rollup_board",
        "credit_rollup",
        ["period", "start", sa.text("points DESC"), "member_id"],
        unique=False,
        postgresql_include=["org_id"],
    )
    op.execute(CREDIT_ROLLUP_FUNCTION)
    for trigger in _triggers("credit_ledger", "credit_rollup_apply", "credit_rollup"):
        op.execute(trigger)
    op.execute(ROLLUP_ORG_FUNCTION)
    op.execute(ROLLUP_ORG_TRIGGER)
    op.drop_index(
        "ix_credit_daily_day_member", table_name="credit_daily", postgresql_include=["points"]
    )
    op.create_index(
        "ix_credit_daily_board",
        "credit_daily",
        ["day", sa.text("points DESC"), "member_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_credit_daily_board", table_name="credit_daily")
    op.create_index(
        "ix_credit_daily_day_member",
        "credit_daily",
        ["day", "member_id"],
        unique=False,
        postgresql_include=["points"],
    )
    op.execute("DROP TRIGGER credit_rollup_follow_member ON members")
    op.execute("DROP FUNCTION credit_rollup_follow_member()")
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER credit_rollup_{name} ON credit_ledger")
    op.execute("DROP FUNCTION credit_rollup_apply()")
    op.drop_index("ix_credit_rollup_board", table_name="credit_rollup")
    op.drop_table("credit_rollup")

    op.create_index(
        "ix_census_surveys_round_rates",
        "census_surveys",
        ["round_id", "responsible_org_id", "coverage"],
        unique=False,
        postgresql_include=["trade_org_id"],
    )
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER census_round_tally_{name} ON census_surveys")
    op.execute("DROP FUNCTION census_round_tally_apply()")
    op.drop_table("census_round_tally")
