"""Messages to the member about his own outflow: one shape, one page, one dedupe scheme."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.notify.service import notify_member

MINI_PROGRAM_PAGE = "pages/outflow/index"


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
