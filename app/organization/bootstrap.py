"""``python -m app create-admin``: the root organisation and the first superadmin."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.config import Settings
from app.identity.models import Account
from app.organization.models import Organization
from app.organization.service import create_organization


async def create_admin(
    session: AsyncSession,
    settings: Settings,
    *,
    openid: str,
    name: str,
    org_name: str = "县委组织部",
    region_code: str | None = None,
) -> str:
    root = (
        await session.execute(
            select(Organization).where(Organization.parent_id.is_(None)).order_by(Organization.id)
        )
    ).scalar()
    lines = []
    if root is None:
        root = await create_organization(
            session, name=org_name, kind="committee", parent_id=None, region_code=region_code
        )
        lines.append(f"created root organisation #{root.id} {root.name}")
    account = (
        await session.execute(select(Account).where(Account.openid == openid))
    ).scalar_one_or_none()
    if account is None:
        account = Account(openid=openid, display_name=name, is_superadmin=True)
        session.add(account)
    else:
        account.is_superadmin = True
        account.display_name = name
        account.disabled_at = None
    await session.flush()
    await record(
        session,
        actor_account_id=None,
        action="role.superadmin_granted",
        org_id=root.id,
        subject_type="account",
        subject_id=account.id,
        detail={"via": "cli", "name": name},
    )
    lines.append(f"superadmin account #{account.id} ({name}) bound to openid {openid}")
    return "\n".join(lines)
