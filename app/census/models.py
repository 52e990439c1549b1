"""Tables of the coverage census.

Coverage and recommendation are never stored: the ledger query derives them from the
organisation link (``org_id``/``org_mode``), open instructor assignments and the member
count of the entity's latest survey (``member_count``, written in the same transaction
as that survey). See :mod:`app.census.queries`.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import created_at, pk, updated_at

ENTITY_KINDS = ("enterprise", "social_org", "individual")
ENTITY_STATUSES = ("active", "closed")
ORG_MODES = ("own", "joint")
ROUND_STATUSES = ("open", "closed")
OPERATING = ("operating", "suspended", "closed")


class CensusEntity(Base):
    """An enterprise, social organisation or individual business (一企一档 / 一社一册)."""

    __tablename__ = "census_entities"
    __table_args__ = (
        CheckConstraint(f"kind IN {ENTITY_KINDS}", name="kind"),
        CheckConstraint(f"status IN {ENTITY_STATUSES}", name="status"),
        CheckConstraint(f"org_mode IN {ORG_MODES}", name="org_mode"),
        CheckConstraint("(org_id IS NULL) = (org_mode IS NULL)", name="org_link"),
        CheckConstraint("member_count IS NULL OR member_count >= 0", name="member_count"),
        CheckConstraint("instructor_count >= 0", name="instructor_count"),
        Index("ix_census_entities_credit_code", "credit_code", unique=True),
        Index("ix_census_entities_tags", "tags", postgresql_using="gin"),
        Index("ix_census_entities_responsible_org_id", "responsible_org_id"),
        Index(
            "ix_census_entities_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = pk()
    credit_code: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(8), server_default=text("'active'"))
    closed_on: Mapped[date | None] = mapped_column(Date)
    industry_section: Mapped[str] = mapped_column(String(1))
    industry_division: Mapped[str | None] = mapped_column(String(2))
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(String(30)), server_default=text("'{}'::varchar[]")
    )
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    address: Mapped[str | None] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    staff_count: Mapped[int | None] = mapped_column(Integer)
    # Personal data of the investor / person in charge: ciphertext + masked form.
    person_in_charge_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    person_in_charge_masked: Mapped[str | None] = mapped_column(String(50))
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_phone_idx: Mapped[bytes | None] = mapped_column(LargeBinary, index=True)
    contact_phone_masked: Mapped[str | None] = mapped_column(String(11))
    # 属地: the street / township committee responsible for the entity.
    responsible_org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    # 行业党委, if any.
    trade_org_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="SET NULL"), index=True
    )
    # The party organisation covering it: its own (own) or a joint one (joint).
    org_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="SET NULL"), index=True
    )
    org_mode: Mapped[str | None] = mapped_column(String(5))
    org_linked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Open instructor assignments (kept by a trigger on census_instructors).
    instructor_count: Mapped[int] = mapped_column(server_default=text("0"))
    # Answers of the latest survey that the coverage rules read.
    last_survey_id: Mapped[int | None] = mapped_column(BigInteger)
    member_count: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class CensusRound(Base):
    """A quarterly survey (摸排) of one organisation's subtree."""

    __tablename__ = "census_rounds"
    __table_args__ = (
        CheckConstraint(f"status IN {ROUND_STATUSES}", name="status"),
        CheckConstraint("period ~ '^[0-9]{4}Q[1-4]$'", name="period"),
        UniqueConstraint("org_id", "period"),
    )

    id: Mapped[int] = pk()
    org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    period: Mapped[str] = mapped_column(String(6))
    opened_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(6), server_default=text("'open'"))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_by_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = created_at()


class CensusSurvey(Base):
    """One entity's answers in one round: the five (six) clears."""

    __tablename__ = "census_surveys"
    __table_args__ = (
        CheckConstraint(f"operating IN {OPERATING}", name="operating"),
        CheckConstraint("member_count >= 0 AND staff_count >= 0", name="counts"),
        # The rates of a round are counted in ``census_round_tally`` (CensusRoundTally).
        UniqueConstraint("round_id", "entity_id"),
    )

    id: Mapped[int] = pk()
    round_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("census_rounds.id", ondelete="CASCADE")
    )
    entity_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("census_entities.id", ondelete="CASCADE"), index=True
    )
    # The entity's organisations when surveyed: who sees this round's figures.
    responsible_org_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    trade_org_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="SET NULL")
    )
    operating: Mapped[str] = mapped_column(String(10))
    staff_count: Mapped[int] = mapped_column(Integer)
    member_count: Mapped[int] = mapped_column(Integer)
    person_in_charge_is_member: Mapped[bool] = mapped_column(Boolean)
    no_org_reason: Mapped[str | None] = mapped_column(String(200))
    union: Mapped[bool] = mapped_column(Boolean)
    youth_league: Mapped[bool] = mapped_column(Boolean)
    womens_org: Mapped[bool] = mapped_column(Boolean)
    surveyed_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    # The coverage found when the survey was saved: the history of rates between rounds.
    coverage: Mapped[str] = mapped_column(String(12))
    surveyed_by_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class CensusSurveyMember(Base):
    """A party member the survey found working at the entity (matched to the roster
    through the ID number's blind index: 口袋党员 / 隐形党员)."""

    __tablename__ = "census_survey_members"

    id: Mapped[int] = pk()
    survey_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("census_surveys.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(50))
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_idx: Mapped[bytes] = mapped_column(LargeBinary, index=True)
    id_number_masked: Mapped[str] = mapped_column(String(18))


class CensusInstructor(Base):
    """A 党建工作指导员 assigned to an entity (work coverage), alone or in a group."""

    __tablename__ = "census_instructors"
    __table_args__ = (
        Index(
            "ix_census_instructors_open",
            "entity_id",
            "member_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = pk()
    entity_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("census_entities.id", ondelete="CASCADE")
    )
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    group_name: Mapped[str | None] = mapped_column(String(50))
    assigned_by_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    assigned_at: Mapped[datetime] = created_at()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CensusTally(Base):
    """How many active entities share each value of one statistics dimension (kind,
    industry section, region, tag) together with what the coverage rules read.

    Kept by statement-level triggers on ``census_entities`` in the writing transaction
    (never stale): a county's statistics add up a few thousand tally rows instead of
    reading 200,000 entities. It holds the rules' inputs only; coverage and
    recommendation are computed by the statistics query (:class:`app.census.queries.
    Rules`). Absent values are stored as ``0`` (no trade committee), ``''`` (no
    organisation) and ``-1`` (not surveyed) so that the key can be a primary key.
    """

    __tablename__ = "census_tally"
    __table_args__ = (CheckConstraint("dim IN ('kind', 'industry', 'region', 'tag')", name="dim"),)

    dim: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(30), primary_key=True)
    responsible_org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trade_org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    org_mode: Mapped[str] = mapped_column(String(5), primary_key=True)
    member_count: Mapped[int] = mapped_column(Integer, primary_key=True)
    instructed: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class CensusRoundTally(Base):
    """How many surveys of a round found each coverage, per responsible organisation and
    trade committee (``0``: none): the change between rounds adds up these few rows
    instead of counting a round's surveys.

    Kept by statement-level triggers on ``census_surveys`` in the writing transaction
    (never stale), like :class:`CensusTally`.
    """

    __tablename__ = "census_round_tally"

    round_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    responsible_org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trade_org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    coverage: Mapped[str] = mapped_column(String(12), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
