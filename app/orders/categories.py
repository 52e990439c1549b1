"""Order categories and their time limits: the defaults (seeded by the migration) and
the overrides an organisation sets for its subtree."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record as audit
from app.orders import errors
from app.orders import repository as repo
from app.orders.models import OrderCategory
from app.orders.schemas import CategoryConfigIn
from app.organization.scope import Scope, get_visible_org


async def effective_categories(session: AsyncSession, org_id: int | None) -> list[OrderCategory]:
    path = None
    if org_id is not None:
        org = await repo.get_org(session, org_id)
        if org is None:
            raise errors.scope_org_not_found()
        path = org.path
    return await repo.categories_for_path(session, path)


async def configure_category(
    session: AsyncSession, scope: Scope, code: str, data: CategoryConfigIn
) -> OrderCategory:
    if await get_visible_org(session, scope, data.org_id) is None:
        raise errors.scope_org_not_found()
    category = await repo.upsert_category(
        session,
        org_id=data.org_id,
        code=code,
        name=data.name,
        accept_hours=data.accept_hours,
        resolve_hours=data.resolve_hours,
        max_hours_per_resolve=data.max_hours_per_resolve,
        active=data.active,
    )
    await audit(
        session,
        actor_account_id=scope.principal.account_id,
        action="order.category_configured",
        org_id=data.org_id,
        subject_type="order_category",
        subject_id=category.id,
        detail={
            "code": code,
            "accept_hours": data.accept_hours,
            "resolve_hours": data.resolve_hours,
            "max_hours_per_resolve": data.max_hours_per_resolve,
        },
    )
    return category
