"""All SQL of care. The statements are built once here; a request adds the caller's
scope (:mod:`app.organization.scope`) and its filters as ``WHERE`` conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    RowMapping,
    Table,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.care.models import CareCampaign, CareCampaignRecipient, CareCase, CareHelp
from app.members.models import Member
from app.mobility.models import Outflow
from app.notify.models import Notification
from app.organization.models import Organization
from app.organization.scope import Scope, co_managed_member_ids

C = cast(Table, CareCampaign.__table__)
R = cast(Table, CareCampaignRecipient.__table__)
K = cast(Table, CareCase.__table__)
H = cast(Table, CareHelp.__table__)
M = cast(Table, Member.__table__)
N = cast(Table, Notification.__table__)
G = cast(Table, Organization.__table__)
F = cast(Table, Outflow.__table__)
EXPORT_TIMEOUT_MS = 300_000

# ------------------------------------------------------------------ campaigns
_COUNTS = (
    select(
        func.count().label("recipients"),
        func.count().filter(N.c.delivery == "sent").label("sent"),
        func.count().filter(N.c.read_at.is_not(None)).label("read"),
        func.count().filter(N.c.delivery.in_(("skipped", "unsubscribed"))).label("unsubscribed"),
        func.count().filter(N.c.delivery == "pending").label("pending"),
        func.count().filter(N.c.delivery == "failed").label("failed"),
        func.count().filter(R.c.notification_id.is_(None)).label("no_account"),
    )
    .select_from(R.outerjoin(N, N.c.id == R.c.notification_id))
    .where(R.c.campaign_id == C.c.id)
    .lateral("counts")
)
CAMPAIGNS = select(
    C.c.id,
    C.c.org_id,
    G.c.name.label("org_name"),
    C.c.title,
    C.c.message,
    C.c.audience,
    C.c.festival,
    C.c.send_on,
    C.c.status,
    C.c.version,
    C.c.created_at,
    C.c.sent_at,
    C.c.cancelled_at,
    *_COUNTS.c,
).select_from(C.join(G, G.c.id == C.c.org_id).join(_COUNTS, true()))
CAMPAIGN_STATE = select(C.c.id, C.c.status, C.c.version, C.c.org_id).select_from(
    C.join(G, G.c.id == C.c.org_id)
)
DUE_CAMPAIGNS = (
    select(
        C.c.id,
        C.c.org_id,
        G.c.path,
        G.c.name.label("org_name"),
        C.c.audience,
        C.c.title,
        C.c.message,
        C.c.festival,
    )
    .select_from(C.join(G, G.c.id == C.c.org_id))
    .where(C.c.status == "scheduled", C.c.send_on <= bindparam("today"))
    .order_by(C.c.send_on, C.c.id)
    .limit(bindparam("limit"))
    .with_for_update(of=C, skip_locked=True)
)


def _audience_insert(condition: ColumnElement[bool]) -> Any:
    """Members of the subtree (``path_prefix``) in the audience who have not had this
    campaign yet: the primary key makes a second insert of a member a no-op."""
    members = (
        select(bindparam("campaign_id", type_=BigInteger), M.c.id)
        .select_from(M.join(G, G.c.id == M.c.home_org_id))
        # A materialised path from the database ("/1/7/"): digits and slashes, no LIKE
        # wildcards to escape.
        .where(G.c.path.startswith(bindparam("path_prefix")), condition)
    )
    return (
        pg_insert(R)
        .from_select(["campaign_id", "member_id"], members)
        .on_conflict_do_nothing()
        .returning(R.c.member_id)
    )


AUDIENCE_INSERTS = {
    "all_members": _audience_insert(true()),
    "mobile_members": _audience_insert(
        exists().where(F.c.member_id == M.c.id, F.c.status == "active")
    ),
    "hardship": _audience_insert(exists().where(K.c.member_id == M.c.id, K.c.status == "open")),
}
LINK_NOTIFICATIONS = text(
    "UPDATE care_campaign_recipients r SET notification_id = v.notification_id "
    "FROM unnest(CAST(:member_ids AS bigint[]), CAST(:notification_ids AS bigint[])) "
    "AS v(member_id, notification_id) "
    "WHERE r.campaign_id = :campaign_id AND r.member_id = v.member_id"
)


def org_filter(path: str) -> ColumnElement[bool]:
    return G.c.path.startswith(path, autoescape=True)


async def campaigns_page(
    session: AsyncSession,
    scope: Scope,
    *,
    org_path: str | None,
    status: str | None,
    limit: int,
    before_id: int | None,
) -> Sequence[RowMapping]:
    stmt = CAMPAIGNS.where(scope.org_path_visible(G.c.path))
    if org_path is not None:
        stmt = stmt.where(org_filter(org_path))
    if status is not None:
        stmt = stmt.where(C.c.status == status)
    if before_id is not None:
        stmt = stmt.where(C.c.id < before_id)
    rows = await session.execute(stmt.order_by(C.c.id.desc()).limit(limit))
    return rows.mappings().all()


async def campaign(session: AsyncSession, scope: Scope, campaign_id: int) -> RowMapping | None:
    stmt = CAMPAIGNS.where(C.c.id == campaign_id, scope.org_path_visible(G.c.path))
    return (await session.execute(stmt)).mappings().first()


async def lock_campaign(session: AsyncSession, scope: Scope, campaign_id: int) -> RowMapping | None:
    stmt = CAMPAIGN_STATE.where(
        C.c.id == campaign_id, scope.org_path_visible(G.c.path)
    ).with_for_update(of=C)
    return (await session.execute(stmt)).mappings().first()


async def insert_campaign(session: AsyncSession, values: dict[str, Any]) -> RowMapping:
    stmt = pg_insert(C).values(**values).returning(C.c.id, C.c.send_on, C.c.status, C.c.version)
    return (await session.execute(stmt)).mappings().one()


async def move_campaign(
    session: AsyncSession, campaign_id: int, version: int | None, values: dict[str, Any]
) -> bool:
    stmt = update(C).where(C.c.id == campaign_id)
    if version is not None:
        stmt = stmt.where(C.c.version == version)
    result = await session.execute(stmt.values(version=C.c.version + 1, **values).returning(C.c.id))
    return result.first() is not None


async def due_campaigns(session: AsyncSession, today: date, limit: int) -> Sequence[RowMapping]:
    rows = await session.execute(DUE_CAMPAIGNS, {"today": today, "limit": limit})
    return rows.mappings().all()


async def add_recipients(
    session: AsyncSession, campaign_id: int, audience: str, org_path: str
) -> list[int]:
    rows = await session.execute(
        AUDIENCE_INSERTS[audience], {"campaign_id": campaign_id, "path_prefix": org_path}
    )
    return sorted(member_id for (member_id,) in rows)


async def link_notifications(session: AsyncSession, campaign_id: int, sent: dict[int, int]) -> None:
    if not sent:
        return
    await session.execute(
        LINK_NOTIFICATIONS,
        {
            "campaign_id": campaign_id,
            "member_ids": list(sent),
            "notification_ids": list(sent.values()),
        },
    )


# ---------------------------------------------------------------------- cases
_HELP_TOTALS = (
    select(
        func.count().label("help_count"),
        func.coalesce(func.sum(H.c.amount_yuan), 0).label("funds_yuan"),
    )
    .where(H.c.case_id == K.c.id)
    .lateral("help_totals")
)
# The member of a case, looked up by primary key for each case (LIMIT 1 keeps it a
# lateral lookup): the scope filters then run on the cases' few members, not on a scan
# of the whole roster (a county has 50,000 members and a few thousand cases).
CASE_MEMBER = (
    select(M.c.id, M.c.name, M.c.home_org_id)
    .where(M.c.id == K.c.member_id)
    .limit(1)
    .lateral("case_member")
)
CM = CASE_MEMBER.c
_CASE_FROM = K.join(CASE_MEMBER, true()).join(G, G.c.id == CM.home_org_id)
CASES = select(
    K.c.id,
    K.c.member_id,
    CM.name.label("member_name"),
    CM.home_org_id,
    G.c.name.label("home_org_name"),
    K.c.kind,
    K.c.status,
    K.c.requested_by,
    K.c.opened_on,
    K.c.closed_at,
    K.c.close_note,
    K.c.version,
    _HELP_TOTALS.c.help_count,
    _HELP_TOTALS.c.funds_yuan,
).select_from(_CASE_FROM.join(_HELP_TOTALS, true()))
CASE_STATE = select(K.c.id, K.c.status, K.c.version, K.c.member_id, CM.home_org_id).select_from(
    K.join(CASE_MEMBER, true())
)
# The help log rides along with the case (one round trip): a JSON array in log order,
# ciphertexts in base64.
_HELP_LOG = (
    select(
        func.coalesce(
            func.jsonb_agg(
                aggregate_order_by(
                    func.jsonb_build_object(
                        "id",
                        H.c.id,
                        "given_on",
                        H.c.given_on,
                        "form",
                        H.c.form,
                        "amount_yuan",
                        H.c.amount_yuan,
                        "note_enc",
                        func.encode(H.c.note_enc, "base64"),
                        "recorded_at",
                        H.c.created_at,
                    ),
                    H.c.given_on,
                    H.c.id,
                )
            ),
            literal_column("'[]'::jsonb"),
            type_=JSONB,
        ).label("help_log")
    )
    .where(H.c.case_id == K.c.id)
    .lateral("help_entries")
)
CASE_DETAIL = CASES.add_columns(K.c.description_enc, _HELP_LOG.c.help_log).join(_HELP_LOG, true())
MEMBER_HOME = select(M.c.id, M.c.name, M.c.home_org_id).select_from(
    M.join(G, G.c.id == M.c.home_org_id)
)
CASE_IDS = select(K.c.id, K.c.kind, K.c.status).select_from(_CASE_FROM)
EXPORT = CASES.add_columns(K.c.description_enc)


def case_visible(scope: Scope) -> ColumnElement[bool]:
    """The read verb on a case's member, and a member's own cases."""
    visible = scope.member_visible(CM.id, CM.home_org_id)
    own = scope.principal.member_id
    return or_(visible, CM.id == own) if own is not None and scope.roots else visible


def case_changeable(scope: Scope) -> ColumnElement[bool]:
    """The change verb: the member's home subtree."""
    return scope.member_changeable(CM.home_org_id)


def in_org(path: str) -> ColumnElement[bool]:
    """Cases of members homed in the subtree at ``path`` or co-managed there."""
    return or_(
        org_filter(path),
        CM.id.in_(co_managed_member_ids(select(G.c.id).where(org_filter(path)))),
    )


async def member_home(
    session: AsyncSession, member_id: int, where: ColumnElement[bool]
) -> RowMapping | None:
    stmt = MEMBER_HOME.where(M.c.id == member_id, where)
    return (await session.execute(stmt)).mappings().first()


async def insert_case(session: AsyncSession, values: dict[str, Any]) -> int:
    stmt = pg_insert(K).values(**values).returning(K.c.id)
    return int((await session.execute(stmt)).scalar_one())


async def cases_page(
    session: AsyncSession,
    where: Sequence[ColumnElement[bool]],
    *,
    limit: int,
    before_id: int | None,
) -> Sequence[RowMapping]:
    stmt = CASES.where(*where)
    if before_id is not None:
        stmt = stmt.where(K.c.id < before_id)
    rows = await session.execute(stmt.order_by(K.c.id.desc()).limit(limit))
    return rows.mappings().all()


async def case_detail(session: AsyncSession, scope: Scope, case_id: int) -> RowMapping | None:
    """The case with its ciphertext and whether the caller may change (and so read) it."""
    stmt = CASE_DETAIL.add_columns(case_changeable(scope).label("changeable")).where(
        K.c.id == case_id, case_visible(scope)
    )
    return (await session.execute(stmt)).mappings().first()


async def lock_case(session: AsyncSession, scope: Scope, case_id: int) -> RowMapping | None:
    stmt = (
        CASE_STATE.add_columns(case_changeable(scope).label("changeable"))
        .where(K.c.id == case_id, case_visible(scope))
        .with_for_update(of=K)
    )
    return (await session.execute(stmt)).mappings().first()


async def move_case(
    session: AsyncSession, case_id: int, version: int | None, values: dict[str, Any]
) -> bool:
    stmt = update(K).where(K.c.id == case_id)
    if version is not None:
        stmt = stmt.where(K.c.version == version)
    result = await session.execute(stmt.values(version=K.c.version + 1, **values).returning(K.c.id))
    return result.first() is not None


async def insert_help(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(pg_insert(H).values(**values))


async def stats(
    session: AsyncSession, where: Sequence[ColumnElement[bool]]
) -> Sequence[RowMapping]:
    """Cases by kind and status, and help by form, in one statement (the visible cases
    are found once): rows ``(dim, key, status, n, amount)`` with ``dim`` ``kind`` or
    ``form``."""
    cases = CASE_IDS.where(*where).cte("visible_cases")
    kinds = select(
        literal("kind").label("dim"),
        cases.c.kind.label("key"),
        cases.c.status,
        func.count().label("n"),
        literal(0).label("amount"),
    ).group_by(cases.c.kind, cases.c.status)
    forms = (
        select(
            literal("form").label("dim"),
            H.c.form.label("key"),
            literal("").label("status"),
            func.count().label("n"),
            func.coalesce(func.sum(H.c.amount_yuan), 0).label("amount"),
        )
        .select_from(H.join(cases, cases.c.id == H.c.case_id))
        .group_by(H.c.form)
    )
    return (await session.execute(union_all(kinds, forms))).mappings().all()


async def stream_export(
    session: AsyncSession, where: Sequence[ColumnElement[bool]], *, batch: int = 2000
) -> AsyncIterator[RowMapping]:
    stmt = EXPORT.where(*where).order_by(G.c.path, K.c.id).execution_options(yield_per=batch)
    await session.execute(text(f"SET LOCAL statement_timeout = {EXPORT_TIMEOUT_MS}"))
    result = await session.stream(stmt)
    async for partition in result.mappings().partitions(batch):
        for row in partition:
            yield row


def as_yuan(value: Decimal | int | None) -> float:
    return float(value or 0)
