"""HTTP endpoints of the web console's QR login (the pages are in ``app/console``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Request, Response
from pydantic import BaseModel, Field

from app.core.config import Settings
from app.core.db import SessionDep
from app.core.routing import DomainRouter
from app.identity import console_login
from app.identity.principal import PrincipalDep
from app.identity.schemas import AUTH_ERRORS

router = DomainRouter(prefix="/auth/console", tags=["identity"])

TicketPath = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class TicketOut(BaseModel):
    ticket: str = Field(description="登录票据（公开，写在二维码里）")
    qr_content: str = Field(description="二维码内容：branchlink://console-login?ticket=…")
    expires_in: int = Field(description="有效秒数")


class TicketStatusOut(BaseModel):
    status: Literal["pending", "confirmed", "expired"]
    expires_in: int = Field(description="pending：二维码剩余秒数；confirmed：会话有效秒数")
    redirect: str | None = Field(default=None, description="confirmed 时控制台首页地址")


@router.post(
    "/tickets",
    status_code=201,
    response_model=TicketOut,
    responses={429: {"description": "rate_limited"}},
)
async def create_console_ticket(
    request: Request, response: Response, session: SessionDep
) -> TicketOut:
    """控制台申请登录二维码（无需登录）。

    轮询凭据以 HttpOnly Cookie 下发，只有申请的浏览器能换取会话。"""
    ticket = await console_login.create_ticket(
        session,
        request.app.state.engine,
        client_ip=request.client.host if request.client else None,
    )
    response.set_cookie(
        value=ticket.poll_secret, **console_login.poll_cookie(request.app.state.settings)
    )
    return TicketOut(
        ticket=ticket.ticket, qr_content=ticket.qr_content, expires_in=ticket.expires_in
    )


@router.post(
    "/tickets/{ticket}/confirm",
    status_code=204,
    responses={
        **AUTH_ERRORS,
        403: {"description": "console.admin_required：仅组织管理员可登录控制台"},
        404: {"description": "console.ticket_not_found"},
        409: {"description": "console.ticket_used"},
        410: {"description": "console.ticket_expired"},
    },
)
async def confirm_console_ticket(
    ticket: TicketPath, principal: PrincipalDep, session: SessionDep
) -> Response:
    """小程序扫码后，以管理员身份确认登录控制台。"""
    await console_login.confirm_ticket(session, principal, ticket)
    return Response(status_code=204)


@router.get(
    "/tickets/{ticket}",
    response_model=TicketStatusOut,
    responses={404: {"description": "console.ticket_not_found（或不是申请该二维码的浏览器）"}},
)
async def console_ticket_status(
    ticket: TicketPath, request: Request, response: Response, session: SessionDep
) -> TicketStatusOut:
    """控制台轮询：pending、confirmed（同时下发会话 Cookie，仅一次）或 expired。"""
    result = await console_login.poll_ticket(
        session, ticket, request.cookies.get(console_login.POLL_COOKIE)
    )
    if result.session_token is None:
        return TicketStatusOut(status=result.status, expires_in=result.expires_in)
    settings: Settings = request.app.state.settings
    response.set_cookie(value=result.session_token, **console_login.session_cookie(settings))
    response.delete_cookie(console_login.POLL_COOKIE, path=console_login.POLL_COOKIE_PATH)
    return TicketStatusOut(status="confirmed", expires_in=result.expires_in, redirect="/console/")
