"""HTTP endpoints of the audit domain: the log, for the admins of the organisations in it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.audit import service
from app.audit.schemas import AuditEntryOut
from app.core.db import SessionDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page
from app.core.routing import DomainRouter
from app.core.types import ParamId
from app.organization.scope import AdminScopeDep

router = DomainRouter(tags=["audit"])


@router.get(
    "/audit",
    response_model=Page[AuditEntryOut],
    responses={
        401: {"description": "未登录"},
        403: {"description": "auth.admin_required"},
        404: {"description": "org.not_found：组织不存在或不在管辖范围内"},
    },
)
async def list_audit(
    scope: AdminScopeDep,
    session: SessionDep,
    org_id: Annotated[ParamId | None, Query(description="只看该组织及其下级")] = None,
    actor_id: Annotated[ParamId | None, Query(description="操作人账号 id")] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[AuditEntryOut]:
    """审计日志（管辖范围内的组织），最新的在前。"""
    return await service.entries_page(
        session,
        scope,
        org_id=org_id,
        actor_account_id=actor_id,
        action=action,
        limit=limit,
        cursor=cursor,
    )
