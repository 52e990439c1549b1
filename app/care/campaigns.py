"""Greeting campaigns (节日问候): schedule, list, cancel, and send on their day.

The send is the worker's (:func:`send_due_campaigns`, a scheduled job): from 09:00
Asia/Shanghai on the campaign's day it writes one recipient row per member of the
audience (primary key ``(campaign_id, member_id)``), and for the rows it actually
inserted one inbox notification + subscribe-message job (:mod:`app.notify`). The
campaign row is claimed ``FOR UPDATE SKIP LOCKED`` and turns ``sent`` in the same
transaction, so two workers never expand it twice, and even if they did, the primary
key would let a member in once. The outbox then pushes each message once.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.care import errors
from app.care import repository as repo
from app.care.festivals import (
    festival_date,
    festival_name,
    next_festival_date,
)
from app.care.rules import campaign_next
from app.care.schemas import CampaignCreated, CampaignIn, CampaignOut
from app.core import clock
from app.core.errors import stale_version
from app.core.pagination import Page, decode_cursor, page_of
from app.notify.service import notify_members
from app.organization.scope import Scope, get_visible_org

# Greetings are not sent at midnight: from this hour (Asia/Shanghai) of their day.
SEND_HOUR = 9
# Campaigns a single run expands, and members per notification statement.
CAMPAIGNS_PER_RUN = 20
CHUNK = 1000
GREETING_PAGE = "pages/care/greeting"


def resolve_send_on(data: CampaignIn, today: date) -> date:
    """The day a campaign goes out: its festival's (in ``year``, else the next one on or
    after today) or the ``send_on`` given; never in the past."""
    if data.year is not None and data.festival is None:
        raise errors.year_without_festival()
    if data.festival is not None:
        if data.send_on is not None:
            raise errors.send_on_conflict()
        if data.year is None:
            day = next_festival_date(data.festival, today)
        else:
            day = festival_date(data.festival, data.year)
    elif data.send_on is not None:
        day = data.send_on
    else:
        raise errors.send_on_required()
    if day < today:
        raise errors.send_on_past()
    return day


def campaign_out(row: RowMapping) -> CampaignOut:
    festival = row["festival"]
    return CampaignOut(**row, festival_name=festival_name(festival) if festival else None)


async def create_campaign(
    session: AsyncSession, scope: Scope, data: CampaignIn, today: date
) -> CampaignCreated:
    org = await get_visible_org(session, scope, data.org_id)
    if org is None:
        raise errors.org_not_found()
    send_on = resolve_send_on(data, today)
    row = await repo.insert_campaign(
        session,
        {
            "org_id": org.id,
            "title": data.title,
            "message": data.message,
            "audience": data.audience,
            "festival": data.festival,
            "send_on": send_on,
            "created_by": scope.principal.account_id,
        },
    )
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="care.campaign_scheduled",
        org_id=org.id,
        subject_type="care_campaign",
        subject_id=row["id"],
        detail={"audience": data.audience, "send_on": send_on.isoformat()},
    )
    return CampaignCreated.model_validate(dict(row))


async def campaigns_page(
    session: AsyncSession,
    scope: Scope,
    *,
    org_id: int | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[CampaignOut]:
    org_path = None
    if org_id is not None:
        org = await get_visible_org(session, scope, org_id)
        if org is None:
            raise errors.org_not_found()
        org_path = org.path
    rows = await repo.campaigns_page(
        session,
        scope,
        org_path=org_path,
        status=status,
        limit=limit + 1,
        before_id=decode_cursor(cursor, int),
    )
    items, next_cursor = page_of(list(rows), limit, lambda r: (r["id"],))
    return Page[CampaignOut](items=[campaign_out(r) for r in items], next_cursor=next_cursor)


async def get_campaign(session: AsyncSession, scope: Scope, campaign_id: int) -> CampaignOut:
    row = await repo.campaign(session, scope, campaign_id)
    if row is None:
        raise errors.campaign_not_found()
    return campaign_out(row)


async def cancel_campaign(
    session: AsyncSession, scope: Scope, campaign_id: int, version: int
) -> CampaignOut:
    row = await repo.lock_campaign(session, scope, campaign_id)
    if row is None:
        raise errors.campaign_not_found()
    state = campaign_next(row["status"], "cancel")
    if row["version"] != version:
        raise stale_version()
    await repo.move_campaign(
        session, campaign_id, version, {"status": state, "cancelled_at": clock.now()}
    )
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="care.campaign_cancelled",
        org_id=row["org_id"],
        subject_type="care_campaign",
        subject_id=campaign_id,
    )
    return await get_campaign(session, scope, campaign_id)


async def send_due_campaigns(session: AsyncSession, now: datetime) -> int:
    """Send every scheduled campaign whose day has come (from 09:00 Asia/Shanghai);
    returns how many members were added as recipients."""
    local = now.astimezone(clock.SHANGHAI)
    if local.hour < SEND_HOUR:
        return 0
    reached = 0
    for campaign in await repo.due_campaigns(session, local.date(), CAMPAIGNS_PER_RUN):
        members = await repo.add_recipients(
            session, campaign["id"], campaign["audience"], campaign["path"]
        )
        for start in range(0, len(members), CHUNK):
            sent = await notify_members(
                session,
                members[start : start + CHUNK],
                template="care_greeting",
                title=campaign["title"],
                body=campaign["message"],
                data={
                    "campaign_id": campaign["id"],
                    "org_name": campaign["org_name"],
                    "send_on": local.date().isoformat(),
                },
                page=f"{GREETING_PAGE}?id={campaign['id']}",
            )
            await repo.link_notifications(session, campaign["id"], sent)
        await repo.move_campaign(
            session,
            campaign["id"],
            None,
            {"status": campaign_next("scheduled", "send"), "sent_at": now},
        )
        reached += len(members)
    return reached
