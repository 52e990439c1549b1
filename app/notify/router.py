"""HTTP endpoints of the notify domain: the in-app inbox and subscribe-message grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from app.core.db import ReaderDep, SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, IdPath, LimitParam
from app.core.responses import json_response
from app.core.routing import DomainRouter, PlainRoute
from app.identity.principal import PrincipalDep
from app.notify import service
from app.notify.schemas import (
    NotificationOut,
    NotificationPage,
    ReadAllOut,
    SubscriptionIn,
    SubscriptionList,
    SubscriptionOut,
    TemplateList,
)

router = DomainRouter(tags=["notify"])

NotificationId = IdPath


@router.post(
    "/me/subscriptions",
    response_model=SubscriptionOut,
    summary="记录用户对订阅消息模板的选择（wx.requestSubscribeMessage 的结果）",
)
async def record_subscription(
    body: SubscriptionIn, principal: PrincipalDep, session: SessionDep, idem: IdempotencyDep
) -> Response:
    return await idem.run(
        lambda: service.record_subscription(
            session, principal.account_id, body.template, body.accepted
        )
    )


@router.get(
    "/notify/templates",
    response_model=TemplateList,
    summary="订阅消息模板：传给 wx.requestSubscribeMessage 的 template_id 及用途",
)
async def list_templates(_: PrincipalDep) -> TemplateList:
    return service.templates()


@router.get("/me/subscriptions", summary="各模板剩余的一次性订阅条数")
async def list_subscriptions(principal: PrincipalDep, session: SessionDep) -> SubscriptionList:
    return await service.subscriptions(session, principal.account_id)


async def list_notifications(
    principal: PrincipalDep,
    reader: ReaderDep,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    unread: Annotated[bool, Query(description="只看未读")] = False,
) -> Response:
    return json_response(
        await service.inbox(
            reader, principal.account_id, unread_only=unread, limit=limit, cursor=cursor
        )
    )


# Plain requests (no Origin) take the plain route (app/core/routing.py); same endpoint.
router.add_api_route(
    "/me/notifications", list_notifications, methods=["GET"], route_class_override=PlainRoute
)
router.add_api_route(
    "/me/notifications",
    list_notifications,
    methods=["GET"],
    response_model=NotificationPage,
    summary="站内消息（最新在前）",
)


@router.post("/me/notifications/read-all", summary="全部标为已读")
async def read_all_notifications(principal: PrincipalDep, session: SessionDep) -> ReadAllOut:
    return await service.read_all(session, principal.account_id)


@router.post("/me/notifications/{notification_id}/read", summary="标为已读")
async def read_notification(
    notification_id: NotificationId, principal: PrincipalDep, session: SessionDep
) -> NotificationOut:
    return await service.read(session, principal.account_id, notification_id)
