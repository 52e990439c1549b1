"""Scheduled mobility jobs: lost-contact escalation, report reminders, the daily digest.

Both are safe to run on several instances at once: each claims its outflows with one
``UPDATE ... WHERE <not yet done> RETURNING`` (row locks make a concurrent run skip what
the other claimed), and notifications are written in the same transaction (outbox).
The worker schedules them daily; ``today`` is the Asia/Shanghai day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.mobility import repository
from app.mobility.notices import tell_admins, tell_member
from app.notify.service import notify
from app.organization.models import Organization


async def _escalation_admins(session: AsyncSession, home_org_id: int) -> list[int]:
    """Admin accounts of the nearest committee above the home organisation that has
    admins (the parent committee; further up if nobody administers it). The home
    organisation itself only if it is the root."""
    chain = await repository.org_chain(session, home_org_id)
    candidates: list[Organization] = [o for o in reversed(chain[:-1]) if o.kind == "committee"]
    if not candidates and chain:
        candidates = [chain[-1]]
    for org in candidates:
        accounts = await repository.admin_account_ids(session, org.id)
        if accounts:
            return accounts
    return []


async def escalate_lost_contact(
    session: AsyncSession, today: date, *, now: datetime | None = None
) -> int:
    """Escalate outflows that crossed ``lost_contact_on`` to the parent committee's admins.

    Returns how many outflows this run escalated. A new report clears the mark, so a
    member who goes silent again is escalated again (dedupe key includes the date).
    """
    now = now or clock.now()
    claimed = await repository.claim_lost_contact(session, today, now)
    names = await repository.member_names(session, [member_id for _, member_id, _, _ in claimed])
    for outflow_id, member_id, home_org_id, lost_on in claimed:
        name = names.get(member_id, "")
        for account_id in await _escalation_admins(session, home_org_id):
            await notify(
                session,
                account_id=account_id,
                template="outflow_lost_contact",
                title="流动党员失联预警",
                body=f"流动党员 {name} 自 {lost_on.isoformat()} 起已超期未联系，请协调联系。",
                data={"outflow_id": outflow_id, "member_id": member_id},
                dedupe_key=f"outflow:{outflow_id}:lost_contact:{lost_on.isoformat()}:{account_id}",
            )
    await session.flush()
    return len(claimed)


async def remind_reports_due(session: AsyncSession, today: date, days_before: int = 7) -> int:
    """Remind members whose whereabouts report falls due within ``days_before`` days.

    Once per outflow and due date (``report_reminded_for``); returns the reminders sent.
    """
    claimed = await repository.claim_report_reminders(
        session, today, today + timedelta(days=days_before)
    )
    for outflow_id, member_id, due in claimed:
        days = (due - today).days
        when = "今天" if days == 0 else f"{days} 天后（{due.isoformat()}）"
        await tell_member(
            session,
            outflow_id=outflow_id,
            member_id=member_id,
            template="report_due",
            title="定期报告提醒",
            body=f"您的流动党员定期报告将于{when}到期，请及时在小程序中提交。",
            data={"due_on": due.isoformat()},
            event=f"report_due:{due.isoformat()}",
        )
    await session.flush()
    return len(claimed)


DIGEST_LABELS = {
    "checkin_overdue": "逾期未报到",
    "report_overdue": "逾期未报告",
    "lost_contact": "失联",
}


async def digest_overdue(session: AsyncSession, today: date) -> int:
    """One message per branch and day to its admins (or its nearest administered
    ancestor's): the members whose check-in or report turned overdue, or who turned
    lost contact, today. Not one message per member. Returns the branches told."""
    by_org: dict[int, list[tuple[str, str]]] = {}
    for org_id, flag, _, name in await repository.newly_flagged(session, today):
        by_org.setdefault(org_id, []).append((flag, name))
    for org_id, entries in by_org.items():
        counts = {
            flag: sum(1 for f, _ in entries if f == flag)
            for flag in DIGEST_LABELS
            if any(f == flag for f, _ in entries)
        }
        summary = "，".join(f"{DIGEST_LABELS[f]} {n} 人" for f, n in counts.items())
        names = "、".join(dict.fromkeys(name for _, name in entries))
        await tell_admins(
            session,
            org_id,
            template="outflow_overdue_digest",
            title="流动党员逾期提醒",
            body=f"{today.isoformat()} 新增：{summary}。涉及：{names}。请在流动党员台账中跟进。",
            data={
                "org_id": org_id,
                "day": today.isoformat(),
                "count": len(entries),
                "summary": summary,
                **counts,
            },
            query=f"org_id={org_id}",
            dedupe=f"outflow_digest:{org_id}:{today.isoformat()}",
        )
    await session.flush()
    return len(by_org)
