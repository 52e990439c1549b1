"""``GET /outflows`` (the admin ledger page) in one statement on the driver pool.

The session-bound ledger reads (statistics, export, one outflow's view) are in
:mod:`app.mobility.repository`; this page runs for every scroll of the console, so it
is one round trip with no SQLAlchemy session, its scope read inside the statement.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, Integer, String, bindparam, text

from app.core.db import ConnectionSource, DriverStatement, Row
from app.core.pagination import MAX_LIMIT
from app.identity.validators import normalize_person_name
from app.mobility.repository import LedgerFilter, region_prefix
from app.mobility.rules import FLAG_COLUMNS
from app.organization.scope import (
    administered_roots_sql,
    co_managed_outflows_sql,
    in_subtree_sql,
    read_roots_sql,
)

# ``GET /outflows`` in one statement on the driver pool: the caller's admin scope (read
# here, so a removed role stops at once), the ``org_id`` narrowing, every filter of
# :class:`LedgerFilter`, the cursor, and the page's rows with what the view shows.
#
# Plans: the driver pool plans generically, so the statement must be good for any
# subtree without seeing its size. Two gated ways to the page, of which only one runs
# (a one-time filter on the capped number of organisations in scope):
#
# * a large scope (a county): the outflows newest first by primary key, each checked
#   against the scope's root paths, until the page is full;
# * a small scope (a branch, up to SMALL_SCOPE organisations): each organisation's own
#   newest outflows through ``(home_org_id, id)``, so a branch secretary's page never
#   walks the county's outflows.
#
# An outflow is visible as ``repository.admin_visible`` says (his home organisation in
# scope, the one outflow an open grant there was opened for, a check-in pending at one
# of its organisations) or, without ``org_id``, as the caller's own
# (``repository.outflow_visible``). With ``org_id`` the scope is that organisation's
# subtree, which lies inside the caller's: ``visible AND narrowed`` is ``narrowed``.
# The first column says whether the caller administers anything (else 403), the second
# whether ``org_id`` is in scope (else 404); a page without rows is one row of NULLs.
SMALL_SCOPE = 32
_NO_CURSOR = 2**63 - 1
# Limits the planner can read: a generic plan takes ``LIMIT :rows`` for a tenth of the
# rows (and would sort a whole status to take 20 of it). The page stops at ``:rows``
# anyway: its ``LIMIT :rows`` stops pulling rows from the scans below it.
_MOST = MAX_LIMIT + 1
_FLAG_DUE = (
    "CASE :flag "
    + " ".join(f"WHEN '{flag}' THEN o.{column}" for flag, column in FLAG_COLUMNS.items())
    + " END"
)
_CONSENT = (
    "coalesce((SELECT mc.granted FROM member_consents mc WHERE mc.member_id = o.member_id "
    "AND mc.kind = 'location' ORDER BY mc.id DESC LIMIT 1), false)"
)
# The filters of ``repository.ledger_conditions`` on the outflow ``o`` alone (subqueries
# where they need more, so the scans join nothing for the filters not given).
_FILTERS = f"""o.id < coalesce(:before_id, {_NO_CURSOR})
  AND (:status IS NULL OR o.status = :status)
  AND (:flag IS NULL OR {_FLAG_DUE} < :today)
  AND (:region_prefix IS NULL OR starts_with(o.destination_region_code, :region_prefix))
  AND (:reason IS NULL OR o.reason = :reason)
  AND (:checkin_status IS NULL OR o.checkin_status = :checkin_status)
  AND (:departed_from IS NULL OR o.departed_on >= :departed_from)
  AND (:departed_to IS NULL OR o.departed_on <= :departed_to)
  AND (:returned_from IS NULL OR o.returned_on >= :returned_from)
  AND (:returned_to IS NULL OR o.returned_on <= :returned_to)
  AND (:q_name IS NULL
       OR EXISTS (SELECT 1 FROM members qm
                  WHERE qm.id = o.member_id AND strpos(qm.name, :q_name) > 0)
       OR strpos(o.certificate_no, :q_certificate) > 0)
  AND (:consent IS NULL OR {_CONSENT} = :consent)"""  # noqa: S608 - constants, no input
_IN_ROOTS = "EXISTS (SELECT 1 FROM roots r WHERE {})"
# ``repository.admin_visible`` for the scope at ``roots``, and ``outflow_visible``'s own.
_VISIBLE = f"""(EXISTS (SELECT 1 FROM organizations h
              WHERE h.id = o.home_org_id AND {_IN_ROOTS.format("starts_with(h.path, r.path)")})
      OR o.id IN (SELECT outflow_id FROM co_managed)
      OR (o.checkin_status = 'pending'
          AND EXISTS (SELECT 1 FROM organizations c
                      WHERE c.id = o.checkin_org_id
                        AND {_IN_ROOTS.format("starts_with(c.path, r.path)")}))
      OR (:org_id IS NULL AND o.member_id = :member_id))"""  # noqa: S608 - constants, no input
_LEDGER_PAGE = DriverStatement.of(
    text(
        f"""
WITH roots AS MATERIALIZED (
    {read_roots_sql(":member_id", ":superadmin", ":org_id")}
), scope_size AS MATERIALIZED (
    SELECT count(*) AS n FROM (
        SELECT 1 FROM roots r JOIN organizations s ON {in_subtree_sql("s.path", "r.path")}
        LIMIT :small_scope + 1
    ) AS capped
), orgs AS MATERIALIZED (
    SELECT DISTINCT s.id
    FROM roots r JOIN organizations s ON {in_subtree_sql("s.path", "r.path")}
), co_managed AS MATERIALIZED (
    {co_managed_outflows_sql("roots")}
), large AS (
    -- Newest first by primary key, but the pending registrations: an approval queue,
    -- bounded by the members registering now, read through (status, id) whatever
    -- the county's history holds (a generic plan cannot tell a rare status from a
    -- common one, so the queue is named here).
    SELECT id FROM (
        SELECT o.id FROM outflows o
        WHERE :status IS DISTINCT FROM 'pending' AND {_FILTERS} AND {_VISIBLE}
        ORDER BY o.id DESC
        LIMIT {_MOST}
    ) AS by_id
    UNION ALL
    SELECT id FROM (
        SELECT o.id FROM outflows o
        WHERE o.status = 'pending' AND :status = 'pending' AND {_FILTERS} AND {_VISIBLE}
        ORDER BY o.id DESC
        LIMIT {_MOST}
    ) AS queue
), small AS (
    SELECT own.id FROM orgs
    CROSS JOIN LATERAL (
        SELECT o.id FROM outflows o
        WHERE o.home_org_id = orgs.id AND {_FILTERS}
        ORDER BY o.id DESC
        LIMIT :rows
    ) AS own
    UNION
    SELECT checking_in.id FROM orgs
    CROSS JOIN LATERAL (
        SELECT o.id FROM outflows o
        WHERE o.checkin_org_id = orgs.id AND o.checkin_status = 'pending' AND {_FILTERS}
        ORDER BY o.id DESC
        LIMIT :rows
    ) AS checking_in
    UNION
    SELECT o.id FROM outflows o
    WHERE o.id IN (SELECT outflow_id FROM co_managed) AND {_FILTERS}
    UNION
    SELECT o.id FROM outflows o
    WHERE :org_id IS NULL AND o.member_id = :member_id AND {_FILTERS}
), page AS MATERIALIZED (
    SELECT id FROM (
        SELECT id FROM (
            SELECT id FROM large WHERE (SELECT n FROM scope_size) > :small_scope
            UNION ALL
            SELECT id FROM (SELECT id FROM small ORDER BY id DESC LIMIT :rows) AS few
            WHERE (SELECT n FROM scope_size) <= :small_scope
        ) AS chosen
        LIMIT :rows
    ) AS short
    LIMIT {_MOST}
)
SELECT (:superadmin OR EXISTS ({administered_roots_sql(":member_id")})) AS administers,
       (:org_id IS NULL OR EXISTS (SELECT 1 FROM roots)) AS org_visible,
       o.id, o.member_id, m.name AS member_name, m.gender AS member_gender,
       o.home_org_id, h.name AS home_org_name, o.status, o.reason,
       o.destination_region_code, o.destination_address, o.employer,
       o.contact_phone_masked, o.departed_on, o.expected_return_on, o.certificate_no,
       o.decided_at, o.reject_reason, o.cancel_reason, o.checkin_status, o.checkin_org_id,
       c.name AS checkin_org_name, o.checkin_requested_at, o.checkin_decided_at,
       o.checkin_refuse_reason, o.last_report_at, o.last_report_region_code,
       o.last_report_far, o.checkin_due_on, o.report_due_on, o.lost_contact_on,
       o.transfer_suggest_on, {_CONSENT} AS location_consent,
       o.lost_contact_escalated_at, o.returned_on, o.version, o.created_at, o.updated_at
FROM (SELECT 1) AS always
LEFT JOIN (
    page
    JOIN outflows o ON o.id = page.id
    JOIN members m ON m.id = o.member_id
    JOIN organizations h ON h.id = o.home_org_id
    LEFT JOIN organizations c ON c.id = o.checkin_org_id
) ON true
ORDER BY o.id DESC
"""  # noqa: S608 - the scope module's SQL and constants, no input
    ).bindparams(
        bindparam("member_id", type_=BigInteger),
        bindparam("superadmin", type_=Boolean),
        bindparam("org_id", type_=BigInteger),
        bindparam("before_id", type_=BigInteger),
        bindparam("rows", type_=Integer),
        bindparam("small_scope", type_=Integer),
        bindparam("today", type_=Date),
        bindparam("status", type_=String),
        bindparam("flag", type_=String),
        bindparam("region_prefix", type_=String),
        bindparam("reason", type_=String),
        bindparam("checkin_status", type_=String),
        bindparam("departed_from", type_=Date),
        bindparam("departed_to", type_=Date),
        bindparam("returned_from", type_=Date),
        bindparam("returned_to", type_=Date),
        bindparam("q_name", type_=String),
        bindparam("q_certificate", type_=String),
        bindparam("consent", type_=Boolean),
    )
)


async def admin_ledger_page(
    source: ConnectionSource,
    *,
    member_id: int | None,
    superadmin: bool,
    org_id: int | None,
    f: LedgerFilter,
    today: date,
    limit: int,
    before_id: int | None,
) -> list[Row]:
    """Up to ``limit`` ledger rows an admin sees (see ``_LEDGER_PAGE``), newest first,
    after one leading row of the scope answers when the page is empty: the first row's
    ``administers`` and ``org_visible`` hold for every row."""
    return await _LEDGER_PAGE.read_rows(
        source,
        member_id=member_id,
        superadmin=superadmin,
        org_id=org_id,
        before_id=before_id,
        rows=limit,
        small_scope=SMALL_SCOPE,
        today=today,
        status=f.status,
        flag=f.flag,
        region_prefix=(
            region_prefix(f.destination_region_code) if f.destination_region_code else None
        ),
        reason=f.reason,
        checkin_status=f.checkin_status,
        departed_from=f.departed_from,
        departed_to=f.departed_to,
        returned_from=f.returned_from,
        returned_to=f.returned_to,
        q_name=normalize_person_name(f.q) if f.q else None,
        q_certificate=f.q.strip().upper() if f.q else None,
        consent=f.consent,
    )
