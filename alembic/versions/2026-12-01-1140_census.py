"""census: entities, rounds, surveys, survey members, instructors (两个覆盖)

Coverage and recommendation are not columns: the census queries derive them from the
organisation link, open instructor assignments and the latest survey's member count.
Two triggers keep derived inputs in the writing transaction: ``instructor_count`` (open
assignments per entity) and ``census_tally`` (active entities per combination of what
the rules read), so that a county's statistics do not read every entity.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


INSTRUCTOR_COUNT_FUNCTION = """
CREATE FUNCTION census_instructor_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.ended_at IS NULL THEN
        UPDATE census_entities SET instructor_count = instructor_count - 1
        WHERE id = OLD.entity_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.ended_at IS NULL THEN
        UPDATE census_entities SET instructor_count = instructor_count + 1
        WHERE id = NEW.entity_id;
    END IF;
    RETURN NULL;
END;
$$
"""
INSTRUCTOR_COUNT_TRIGGER = """
CREATE TRIGGER census_instructor_count
    AFTER INSERT OR UPDATE OF ended_at, entity_id OR DELETE ON census_instructors
    FOR EACH ROW EXECUTE FUNCTION census_instructor_count()
"""
_TALLY_UPSERT = """
        INSERT INTO census_tally AS t (
            dim, key, responsible_org_id, trade_org_id, org_mode, member_count, instructed, n)
        SELECT d.dim, d.key, r.responsible_org_id, coalesce(r.trade_org_id, 0),
               coalesce(r.org_mode, ''),
               CASE WHEN r.member_count IS NULL THEN -1 ELSE least(r.member_count, 3) END,
               r.instructor_count > 0, {sign} count(*)
        FROM {rows} AS r
        CROSS JOIN LATERAL (
            VALUES ('kind', r.kind), ('industry', r.industry_section), ('region', r.region_code)
            UNION ALL SELECT 'tag', tag FROM unnest(r.tags) AS tag
        ) AS d (dim, key)
        WHERE r.status = 'active'
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (dim, key, responsible_org_id, trade_org_id, org_mode, member_count,
                     instructed)
        DO UPDATE SET n = t.n + excluded.n;
"""
TALLY_FUNCTION = (
    """
CREATE FUNCTION census_tally_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN"""
    + _TALLY_UPSERT.format(sign="-", rows="old_rows")
    + """    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN"""
    + _TALLY_UPSERT.format(sign="", rows="new_rows")
    + """    END IF;
    RETURN NULL;
END;
$$
"""
)
TALLY_TRIGGERS = (
    "CREATE TRIGGER census_tally_insert AFTER INSERT ON census_entities "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION census_tally_apply()",
    "CREATE TRIGGER census_tally_update AFTER UPDATE ON census_entities "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION census_tally_apply()",
    "CREATE TRIGGER census_tally_delete AFTER DELETE ON census_entities "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION census_tally_apply()",
)


def upgrade() -> None:
    op.create_table(
        "census_tally",
        sa.Column("dim", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=30), nullable=False),
        sa.Column("responsible_org_id", sa.BigInteger(), nullable=False),
        sa.Column("trade_org_id", sa.BigInteger(), nullable=False),
        sa.Column("org_mode", sa.String(length=5), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("instructed", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "dim IN ('kind', 'industry', 'region', 'tag')", name=op.f("ck_census_tally_dim")
        ),
        sa.PrimaryKeyConstraint(
            "dim",
            "key",
            "responsible_org_id",
            "trade_org_id",
            "org_mode",
            "member_count",
            "instructed",
            name=op.f("pk_census_tally"),
        ),
    )
    op.create_table(
        "census_entities",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column(
            "status", sa.String(length=8), server_default=sa.text("'active'"), nullable=False
        ),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("industry_section", sa.String(length=1), nullable=False),
        sa.Column("industry_division", sa.String(length=2), nullable=True),
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.String(length=30)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("staff_count", sa.Integer(), nullable=True),
        sa.Column("person_in_charge_enc", sa.LargeBinary(), nullable=True),
        sa.Column("person_in_charge_masked", sa.String(length=50), nullable=True),
        sa.Column("contact_phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("contact_phone_idx", sa.LargeBinary(), nullable=True),
        sa.Column("contact_phone_masked", sa.String(length=11), nullable=True),
        sa.Column("responsible_org_id", sa.BigInteger(), nullable=False),
        sa.Column("trade_org_id", sa.BigInteger(), nullable=True),
        sa.Column("org_id", sa.BigInteger(), nullable=True),
        sa.Column("org_mode", sa.String(length=5), nullable=True),
        sa.Column("org_linked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("instructor_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_survey_id", sa.BigInteger(), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=True),
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
            "kind IN ('enterprise', 'social_org', 'individual')",
            name=op.f("ck_census_entities_kind"),
        ),
        sa.CheckConstraint(
            "org_mode IN ('own', 'joint')", name=op.f("ck_census_entities_org_mode")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'closed')", name=op.f("ck_census_entities_status")
        ),
        sa.CheckConstraint(
            "(org_id IS NULL) = (org_mode IS NULL)", name=op.f("ck_census_entities_org_link")
        ),
        sa.CheckConstraint(
            "instructor_count >= 0", name=op.f("ck_census_entities_instructor_count")
        ),
        sa.CheckConstraint(
            "member_count IS NULL OR member_count >= 0",
            name=op.f("ck_census_entities_member_count"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_census_entities_org_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["responsible_org_id"],
            ["organizations.id"],
            name=op.f("fk_census_entities_responsible_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["trade_org_id"],
            ["organizations.id"],
            name=op.f("fk_census_entities_trade_org_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_census_entities")),
    )
    op.create_index(
        op.f("ix_census_entities_contact_phone_idx"),
        "census_entities",
        ["contact_phone_idx"],
        unique=False,
    )
    op.create_index(
        "ix_census_entities_credit_code", "census_entities", ["credit_code"], unique=True
    )
    op.create_index(
        "ix_census_entities_name_trgm",
        "census_entities",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(op.f("ix_census_entities_org_id"), "census_entities", ["org_id"], unique=False)
    op.create_index(
        op.f("ix_census_entities_region_code"), "census_entities", ["region_code"], unique=False
    )
    op.create_index(
        "ix_census_entities_responsible_org_id",
        "census_entities",
        ["responsible_org_id"],
        unique=False,
    )
    op.create_index(
        "ix_census_entities_tags", "census_entities", ["tags"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        op.f("ix_census_entities_trade_org_id"), "census_entities", ["trade_org_id"], unique=False
    )
    op.create_table(
        "census_instructors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("group_name", sa.String(length=50), nullable=True),
        sa.Column("assigned_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "assigned_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assigned_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_census_instructors_assigned_by_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["census_entities.id"],
            name=op.f("fk_census_instructors_entity_id_census_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_census_instructors_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_census_instructors")),
    )
    op.create_index(
        op.f("ix_census_instructors_member_id"), "census_instructors", ["member_id"], unique=False
    )
    op.create_index(
        "ix_census_instructors_open",
        "census_instructors",
        ["entity_id", "member_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_table(
        "census_rounds",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=6), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=6), server_default=sa.text("'open'"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("period ~ '^[0-9]{4}Q[1-4]$'", name=op.f("ck_census_rounds_period")),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_census_rounds_status")),
        sa.ForeignKeyConstraint(
            ["opened_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_census_rounds_opened_by_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_census_rounds_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_census_rounds")),
        sa.UniqueConstraint("org_id", "period", name=op.f("uq_census_rounds_org_id_period")),
    )
    op.create_index(op.f("ix_census_rounds_org_id"), "census_rounds", ["org_id"], unique=False)
    op.create_table(
        "census_surveys",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("round_id", sa.BigInteger(), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=False),
        sa.Column("responsible_org_id", sa.BigInteger(), nullable=False),
        sa.Column("trade_org_id", sa.BigInteger(), nullable=True),
        sa.Column("operating", sa.String(length=10), nullable=False),
        sa.Column("staff_count", sa.Integer(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("person_in_charge_is_member", sa.Boolean(), nullable=False),
        sa.Column("no_org_reason", sa.String(length=200), nullable=True),
        sa.Column("union", sa.Boolean(), nullable=False),
        sa.Column("youth_league", sa.Boolean(), nullable=False),
        sa.Column("womens_org", sa.Boolean(), nullable=False),
        sa.Column("surveyed_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("coverage", sa.String(length=12), nullable=False),
        sa.Column("surveyed_by_account_id", sa.BigInteger(), nullable=True),
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
            "operating IN ('operating', 'suspended', 'closed')",
            name=op.f("ck_census_surveys_operating"),
        ),
        sa.CheckConstraint(
            "member_count >= 0 AND staff_count >= 0", name=op.f("ck_census_surveys_counts")
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["census_entities.id"],
            name=op.f("fk_census_surveys_entity_id_census_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["responsible_org_id"],
            ["organizations.id"],
            name=op.f("fk_census_surveys_responsible_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["census_rounds.id"],
            name=op.f("fk_census_surveys_round_id_census_rounds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["surveyed_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_census_surveys_surveyed_by_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["trade_org_id"],
            ["organizations.id"],
            name=op.f("fk_census_surveys_trade_org_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_census_surveys")),
        sa.UniqueConstraint(
            "round_id", "entity_id", name=op.f("uq_census_surveys_round_id_entity_id")
        ),
    )
    op.create_index(
        op.f("ix_census_surveys_entity_id"), "census_surveys", ["entity_id"], unique=False
    )
    op.create_index(
        "ix_census_surveys_round_rates",
        "census_surveys",
        ["round_id", "responsible_org_id", "coverage"],
        unique=False,
        postgresql_include=["trade_org_id"],
    )
    op.create_table(
        "census_survey_members",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("survey_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("id_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("id_number_idx", sa.LargeBinary(), nullable=False),
        sa.Column("id_number_masked", sa.String(length=18), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["census_surveys.id"],
            name=op.f("fk_census_survey_members_survey_id_census_surveys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_census_survey_members")),
    )
    op.create_index(
        op.f("ix_census_survey_members_id_number_idx"),
        "census_survey_members",
        ["id_number_idx"],
        unique=False,
    )
    op.create_index(
        op.f("ix_census_survey_members_survey_id"),
        "census_survey_members",
        ["survey_id"],
        unique=False,
    )

    op.execute(INSTRUCTOR_COUNT_FUNCTION)
    op.execute(INSTRUCTOR_COUNT_TRIGGER)
    op.execute(TALLY_FUNCTION)
    for trigger in TALLY_TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    op.execute("DROP TRIGGER census_instructor_count ON census_instructors")
    op.execute("DROP FUNCTION census_instructor_count()")
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER census_tally_{name} ON census_entities")
    op.execute("DROP FUNCTION census_tally_apply()")
    op.drop_index(op.f("ix_census_survey_members_survey_id"), table_name="census_survey_members")
    op.drop_index(
        op.f("ix_census_survey_members_id_number_idx"), table_name="census_survey_members"
    )
    op.drop_table("census_survey_members")
    op.drop_index(
        "ix_census_surveys_round_rates",
        table_name="census_surveys",
        postgresql_include=["trade_org_id"],
    )
    op.drop_index(op.f("ix_census_surveys_entity_id"), table_name="census_surveys")
    op.drop_table("census_surveys")
    op.drop_index(op.f("ix_census_rounds_org_id"), table_name="census_rounds")
    op.drop_table("census_rounds")
    op.drop_index(
        "ix_census_instructors_open",
        table_name="census_instructors",
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.drop_index(op.f("ix_census_instructors_member_id"), table_name="census_instructors")
    op.drop_table("census_instructors")
    op.drop_index(op.f("ix_census_entities_trade_org_id"), table_name="census_entities")
    op.drop_index("ix_census_entities_tags", table_name="census_entities", postgresql_using="gin")
    op.drop_index("ix_census_entities_responsible_org_id", table_name="census_entities")
    op.drop_index(op.f("ix_census_entities_region_code"), table_name="census_entities")
    op.drop_index(op.f("ix_census_entities_org_id"), table_name="census_entities")
    op.drop_index(
        "ix_census_entities_name_trgm",
        table_name="census_entities",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_index("ix_census_entities_credit_code", table_name="census_entities")
    op.drop_index(op.f("ix_census_entities_contact_phone_idx"), table_name="census_entities")
    op.drop_table("census_entities")
    op.drop_table("census_tally")
