"""Messages about outflows: to the member about his own (one shape, one page, one dedupe
scheme), and to the admins responsible for an organisation (the secretaries' ledger)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.notify.service import notify_member
from app.organization import repository as org_repo

MINI_PROGRAM_PAGE = "pages/outflow/index"
ADMIN_LEDGER_PAGE = "pages/admin/outflows"  # the admin's ledger (?id= one outflow)


async def tell_member(
    session: AsyncSession,
    *,
    outflow_id: int,
    member_id: int,
    template: str,
    title: str,
    body: str,
    event: str,
    data: dict[str, str | int] | None = None,
) -> None:
    """Inbox + subscribe message about ``outflow_id``, sent once per ``event``."""
    await notify_member(
        session,
        member_id=member_id,
        template=template,
        title=title,
        body=body,
        data={"outflow_id": outflow_id, **(data or {})},
        page=MINI_PROGRAM_PAGE,
        dedupe_key=f"outflow:{outflow_id}:{event}",
    )


async def tell_admins(
    session: AsyncSession,
    org_id: int,
    *,
    template: str,
    title: str,
    body: str,
    data: dict[str, str | int],
    query: str,
    dedupe: str,
    page: str = ADMIN_LEDGER_PAGE,
) -> None:
    """Inbox + subscribe message to the admins responsible for ``org_id`` (its own, else
    its nearest administered ancestor's), opening ``page`` (the outflow ledger unless
    told) at ``?{query}``; sent once per ``dedupe`` and admin."""
    for admin_id in await org_repo.responsible_admin_member_ids(session, org_id):
        await notify_member(
            session,
            member_id=admin_id,
            template=template,
            title=title,
            body=body,
            data=data,
            page=f"{page}?{query}",
            dedupe_key=f"{dedupe}:{admin_id}",
        )
