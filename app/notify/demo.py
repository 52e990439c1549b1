"""Demo inbox for ``make run``: the demo member sees a few messages and has grants."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.identity.models import Account
from app.notify import repository, service
from app.notify.models import Notification

DEMO_MEMBER_OPENID = "demo-member"


async def seed(session: AsyncSession, settings: Settings) -> None:
    """Add the demo member's inbox once (nothing if he is missing or already has mail)."""
    if not settings.demo_data or settings.env == "prod":
        return
    account_id = (
        await session.execute(select(Account.id).where(Account.openid == DEMO_MEMBER_OPENID))
    ).scalar_one_or_none()
    if account_id is None:
        return
    existing = (
        await session.execute(select(func.count()).where(Notification.account_id == account_id))
    ).scalar_one()
    if existing:
        return
    for template in ("outflow_approved", "report_due", "activity_starting"):
        await repository.record_decision(session, account_id, template, True)
    await service.notify(
        session,
        account_id=account_id,
        template="outflow_approved",
        title="外出登记已通过",
        body="请在 30 天内到流入地党组织报到，并按时提交定期报告。",
        data={"destination": "广东省深圳市南山区", "certificate_no": "511621-2026-0001"},
        page="pages/outflow/index",
        dedupe_key="demo:outflow_approved",
    )
    await service.notify(
        session,
        account_id=account_id,
        template="report_due",
        title="定期报告即将到期",
        body="距上次报告已近 90 天，请在一周内报告近况。",
        data={"due_on": "2026-12-01"},
        page="pages/outflow/report",
        dedupe_key="demo:report_due",
    )
    await service.notify(
        session,
        account_id=account_id,
        template="activity_starting",
        title="主题党日：学习新修订的党章",
        body="岳池县驻深圳流动党员党支部活动室",
        data={"starts_at": "2026-11-28T19:30:00+08:00"},
        page="pages/activity/detail",
        dedupe_key="demo:activity_starting",
    )
