"""All queries of the notify domain: inbox, grants, outbox claims, scheduled runs.

The inbox is per account: every read filters on the caller's ``account_id``, so another
account's notification is simply not found (404), never revealed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import ConnectionSource, DriverStatement, Row
from app.identity.models import Account
from app.notify.models import Notification, OutboxJob, ScheduledRun, SubscriptionGrant

# One account cannot bank more one-time grants than this per template.
MAX_GRANTS = 100


# -- inbox -----------------------------------------------------------------------------


# A page of the inbox (newest first) and the unread count, in one statement: the count
# is the outer row, so an empty page still brings it (with NULL notification columns).
# The columns before ``unread_count`` are ``NotificationOut``'s fields in their order,
# named as its JSON names them (``data`` as JSON text), for app/notify/service.py.
_INBOX_PAGE = DriverStatement.of(
    text(
        """
SELECT n.id, n.template, n.title, n.body, n.data::text AS data, n.page,
       n.read_at IS NOT NULL AS read, n.read_at, n.created_at, c.unread_count
FROM (SELECT count(*) AS unread_count FROM notifications u
      WHERE u.account_id = :account_id AND u.read_at IS NULL) AS c
LEFT JOIN LATERAL (
    SELECT * FROM notifications x
    WHERE x.account_id = :account_id
      AND x.id < coalesce(:before_id, 9223372036854775807)
      AND (NOT :unread_only OR x.read_at IS NULL)
    ORDER BY x.id DESC
    LIMIT :rows
) AS n ON true
ORDER BY n.id DESC
"""
    ).bindparams(
        bindparam("before_id", type_=BigInteger),
        bindparam("unread_only", type_=Boolean),
        bindparam("rows", type_=Integer),
    )
)


async def inbox_page(
    source: ConnectionSource,
    account_id: int,
    *,
    unread_only: bool,
    limit: int,
    before_id: int | None,
) -> tuple[int, list[Row]]:
    """The unread count and up to ``limit + 1`` notifications (newest first), so the
    caller knows whether a next page exists."""
    rows = await _INBOX_PAGE.read_rows(
        source, account_id=account_id, before_id=before_id, unread_only=unread_only, rows=limit + 1
    )
    return int(rows[0]["unread_count"]), [r for r in rows if r["id"] is not None]


async def unread_count(session: AsyncSession, account_id: int) -> int:
    stmt = select(func.count()).where(
        Notification.account_id == account_id, Notification.read_at.is_(None)
    )
    return int((await session.execute(stmt)).scalar_one())


async def mark_read(
    session: AsyncSession, account_id: int, notification_id: int
) -> Notification | None:
    """Set ``read_at`` once (a second call keeps the first time); None if not his."""
    stmt = (
        update(Notification)
        .where(Notification.id == notification_id, Notification.account_id == account_id)
        .values(read_at=func.coalesce(Notification.read_at, func.now()))
        .returning(Notification)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def mark_all_read(session: AsyncSession, account_id: int) -> int:
    result = await session.execute(
        update(Notification)
        .where(Notification.account_id == account_id, Notification.read_at.is_(None))
        .values(read_at=func.now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- subscribe-message grants ----------------------------------------------------------


async def record_decision(
    session: AsyncSession, account_id: int, template: str, accepted: bool
) -> SubscriptionGrant:
    """One ``accept`` adds a one-time grant (capped); a ``reject`` adds none."""
    grant = SubscriptionGrant.__table__.c
    values = {
        "account_id": account_id,
        "template": template,
        "remaining": 1 if accepted else 0,
        "accepted_count": 1 if accepted else 0,
        "rejected_count": 0 if accepted else 1,
        "last_decision": "accept" if accepted else "reject",
    }
    stmt = (
        insert(SubscriptionGrant)
        .values(**values)
        .on_conflict_do_update(
            index_elements=[grant.account_id, grant.template],
            set_={
                "remaining": func.least(grant.remaining + (1 if accepted else 0), MAX_GRANTS),
                "accepted_count": grant.accepted_count + (1 if accepted else 0),
                "rejected_count": grant.rejected_count + (0 if accepted else 1),
                "last_decision": values["last_decision"],
                "updated_at": func.now(),
            },
        )
        .returning(SubscriptionGrant)
        .execution_options(populate_existing=True)
    )
    result: SubscriptionGrant = (await session.execute(stmt)).scalar_one()
    return result


async def grants_of(session: AsyncSession, account_id: int) -> list[SubscriptionGrant]:
    stmt = (
        select(SubscriptionGrant)
        .where(SubscriptionGrant.account_id == account_id)
        .order_by(SubscriptionGrant.template)
    )
    return list((await session.execute(stmt)).scalars())


async def lock_grant(
    session: AsyncSession, account_id: int, template: str
) -> SubscriptionGrant | None:
    stmt = (
        select(SubscriptionGrant)
        .where(SubscriptionGrant.account_id == account_id, SubscriptionGrant.template == template)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


# -- outbox ----------------------------------------------------------------------------


async def claim_due_job(session: AsyncSession, now: datetime) -> OutboxJob | None:
    """The oldest pending job due at ``now`` (the app's clock), locked; jobs other
    workers hold are skipped."""
    stmt = (
        select(OutboxJob)
        .where(OutboxJob.status == "pending", OutboxJob.run_after <= now)
        .order_by(OutboxJob.run_after, OutboxJob.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def oldest_due_job_lag_s(session: AsyncSession, now: datetime) -> float:
    """Seconds the oldest job due at ``now`` (the app's clock) has waited (0: none)."""
    stmt = select(func.min(OutboxJob.run_after)).where(
        OutboxJob.status == "pending", OutboxJob.run_after <= now
    )
    oldest = (await session.execute(stmt)).scalar_one_or_none()
    return max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0


async def lock_notification(session: AsyncSession, notification_id: int) -> Notification | None:
    stmt = (
        select(Notification)
        .where(Notification.id == notification_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def account_for_delivery(session: AsyncSession, account_id: int) -> Account | None:
    """The account to push to, or None when it is gone or disabled."""
    stmt = select(Account).where(Account.id == account_id, Account.disabled_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


_MOVE_FINISHED = text(
    """
    WITH moved AS (
        DELETE FROM outbox_jobs
        WHERE status = 'done' AND finished_at < now() - make_interval(days => :keep_days)
        RETURNING id, kind, payload, dedupe_key, status, attempts, run_after, last_error,
                  created_at, finished_at
    )
    INSERT INTO outbox_history (id, kind, payload, dedupe_key, status, attempts, run_after,
                                last_error, created_at, finished_at)
    SELECT * FROM moved
    """
)


async def purge_finished(session: AsyncSession, *, keep_days: int = 30) -> int:
    """Move done jobs older than ``keep_days`` to ``outbox_history`` (partitioned by
    month, detachable) and delete scheduled-run rows as old (dead jobs stay)."""
    cutoff = func.now() - func.make_interval(0, 0, 0, keep_days)
    jobs = await session.execute(_MOVE_FINISHED, {"keep_days": keep_days})
    runs = await session.execute(delete(ScheduledRun).where(ScheduledRun.started_at < cutoff))
    return int(getattr(jobs, "rowcount", 0) or 0) + int(getattr(runs, "rowcount", 0) or 0)


# -- scheduled runs --------------------------------------------------------------------


async def try_lock_schedule(session: AsyncSession, job: str) -> bool:
    """Transaction-scoped advisory lock, so a slow run is not waited on by others."""
    stmt = select(func.pg_try_advisory_xact_lock(func.hashtext(f"schedule:{job}")))
    return bool((await session.execute(stmt)).scalar_one())


async def claim_period(session: AsyncSession, job: str, period: str) -> bool:
    """True for the one caller that records this (job, period); everyone else gets False."""
    stmt = (
        insert(ScheduledRun)
        .values(job=job, period=period)
        .on_conflict_do_nothing(index_elements=[ScheduledRun.job, ScheduledRun.period])
        .returning(ScheduledRun.job)
    )
    return (await session.execute(stmt)).first() is not None


async def finish_period(
    session: AsyncSession, job: str, period: str, result: str, at: datetime
) -> None:
    await session.execute(
        update(ScheduledRun)
        .where(ScheduledRun.job == job, ScheduledRun.period == period)
        .values(finished_at=at, result=result[:500])
    )
