"""Messages about inflows, through the outbox (inbox row + subscribe message): to the
organisation's admins when someone declares himself, to the declarant when they decide,
to a member a census found working somewhere his relation is not (show yourself)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.inflows.models import Inflow
from app.inflows.rules import TRANSFER_PROMPT
from app.notify.service import notify, notify_member
from app.organization import repository as org_repo

DECLARANT_PAGE = "pages/inflow/index"  # the declarant's own declarations
DECLARE_PAGE = "pages/inflow/declare"  # the declaration form (?org_id= preselected)
ADMIN_LEDGER_PAGE = "pages/admin/inflows"  # the inflow ledger (?id= one row)


async def tell_admins(
    session: AsyncSession, org_id: int, *, title: str, body: str, query: str, dedupe: str
) -> None:
    """The admins responsible for ``org_id`` (its own, else its nearest administered
    ancestor's), once per ``dedupe`` and admin."""
    for admin_id in await org_repo.responsible_admin_member_ids(session, org_id):
        await notify_member(
            session,
            member_id=admin_id,
            template="inflow_declared",
            title=title,
            body=body,
            data={"org_id": org_id},
            page=f"{ADMIN_LEDGER_PAGE}?{query}",
            dedupe_key=f"{dedupe}:{admin_id}",
        )


async def tell_admins_declared(session: AsyncSession, inflow: Inflow, org_name: str) -> None:
    await tell_admins(
        session,
        inflow.org_id,
        title="流入党员登记待核实",
        body=f"{inflow.name} 在{org_name}进行了流入登记（原所在党组织：{inflow.home_org_name}），"
        "请与其原所在党组织联系核实。",
        query=f"id={inflow.id}",
        dedupe=f"inflow:{inflow.id}:declared:{inflow.version}",
    )


async def tell_declarant(session: AsyncSession, inflow: Inflow, org_name: str, action: str) -> None:
    if inflow.account_id is None:  # a census candidate confirmed before he declared
        return
    if action == "verify":
        result, body = "已核实", f"{org_name}已核实您的流入登记。"
        if inflow.matched_member_id is None:
            body += TRANSFER_PROMPT
    else:
        result, body = "未通过", f"{org_name}未通过您的流入登记：{inflow.decision_note}"
    await notify(
        session,
        account_id=inflow.account_id,
        template="inflow_decided",
        title=f"流入登记{result}",
        body=body,
        data={"inflow_id": inflow.id, "org_name": org_name, "result": result},
        page=f"{DECLARANT_PAGE}?id={inflow.id}",
        dedupe_key=f"inflow:{inflow.id}:{action}",
    )


async def prompt_member(
    session: AsyncSession, *, member_id: int, entity_id: int, entity_name: str, org_id: int
) -> bool:
    """A census found the member working at an entity outside his home subtree: show
    yourself (流入登记 at the entity's organisation), check in there if you are a mobile
    member, or transfer your relation. Once per member and entity."""
    sent = await notify_member(
        session,
        member_id=member_id,
        template="inflow_prompt",
        title="请亮明党员身份",
        body=f"摸排中了解到您在{entity_name}工作。请到当地党组织进行流入登记（亮身份）；"
        "外出党员请办理流入地报到；长期在此工作的，可申请转接组织关系。",
        data={"entity_id": entity_id, "entity_name": entity_name, "org_id": org_id},
        page=f"{DECLARE_PAGE}?org_id={org_id}",
        dedupe_key=f"census:{entity_id}:member:{member_id}",
    )
    return sent is not None
