"""HTTP endpoints of the audit domain: the log, for the admins of the organisations in it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import repository
from app.audit.schemas import AuditEntryOut
from app.core.db import SessionDep
from app.core.errors import not_found
from app.core.pagination import (
    DEFAULT_LIMIT,
    CursorParam,
    LimitParam,
    Page,
    decode_cursor,
    encode_cursor,
    invalid_cursor,
)
from app.organization.scope import AdminScopeDep, get_visible_org

router = APIRouter(tags=["audit"])


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
    org_id: Annotated[int | None, Query(ge=1, description="只看该组织及其下级")] = None,
    actor_id: Annotated[int | None, Query(ge=1, description="操作人账号 id")] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[AuditEntryOut]:
    """审计日志（管辖范围内的组织），最新的在前。"""
    position = decode_cursor(cursor, 1)
    before_id: int | None = None
    if position is not None:
        if not isinstance(position[0], int):
            raise invalid_cursor()
        before_id = position[0]
    within = None
    if org_id is not None:
        within = await get_visible_org(session, scope, org_id)
        if within is None:
            raise not_found("org.not_found", "组织不存在或无权访问")
    rows = await repository.list_entries(
        session,
        scope,
        limit=limit,
        before_id=before_id,
        within=within,
        actor_account_id=actor_id,
        action=action,
    )
    items = [
        AuditEntryOut(
            id=entry.id,
            at=entry.at,
            actor_account_id=entry.actor_account_id,
            actor_name=actor_name,
            action=entry.action,
            org_id=entry.org_id,
            subject_type=entry.subject_type,
            subject_id=entry.subject_id,
            reason=entry.reason,
            detail=entry.detail,
            request_id=entry.request_id,
        )
        for entry, actor_name in rows[:limit]
    ]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return Page[AuditEntryOut](items=items, next_cursor=next_cursor)
