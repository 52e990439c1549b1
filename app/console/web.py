"""What every console page shares: templates, static files, the logged-in admin (cookie
session, CSRF), and errors rendered as pages instead of problem+json."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Scope as AsgiScope

from app.core import clock
from app.core.db import SessionDep
from app.core.errors import AppError
from app.identity import console_login
from app.organization.scope import Scope, build_scope

HERE = Path(__file__).resolve().parent
PREFIX: Final = "/console"
STATIC_PREFIX: Final = "/console/static"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PAGE_SIZE: Final = 20
# Query parameters of the pages: a filter's text and a page's cursor.
Text = Annotated[str | None, Query(max_length=50)]
Cursor = Annotated[str | None, Query(max_length=200)]


def choice(value: str | None, allowed: Collection[str], name: str) -> str | None:
    """A filter from a form's select: blank is "any"; anything else must be allowed."""
    if not value:
        return None
    if value not in allowed:
        raise AppError("validation.failed", 422, f"筛选条件 {name} 的取值无效")
    return value


class CachedStatic(StaticFiles):
    """Static files with long cache headers: every URL carries a version (the vendored
    files' names, the own files' ``?v=<content hash>``), so a change is a new URL."""

    async def get_response(self, path: str, scope: AsgiScope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def _asset_versions() -> dict[str, str]:
    static = HERE / "static"
    return {
        p.relative_to(static).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:10]
        for p in static.rglob("*")
        if p.is_file()
    }


ASSETS = _asset_versions()


def asset(name: str) -> str:
    return f"{STATIC_PREFIX}/{name}?v={ASSETS[name]}"


def local_time(value: datetime | None) -> str:
    return value.astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M") if value else ""


def with_query(request: Request, **changes: Any) -> str:
    """The current page's URL with some query parameters changed (None drops one)."""
    params = {k: v for k, v in request.query_params.items() if k not in changes}
    params.update({k: str(v) for k, v in changes.items() if v is not None})
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(asset=asset, with_query=with_query)
templates.env.filters["local_time"] = local_time


class LoginRequired(AppError):
    """No (longer a) console session: the login page. A session that just ended (the
    account was disabled or lost its admin roles) is revoked even though the request
    rolls back."""

    def __init__(self, ended_session_id: int | None = None) -> None:
        super().__init__("console.login_required", 401, "请扫码登录管理控制台")
        if ended_session_id is not None:
            self.after_rollback = _revoker(ended_session_id)


def _revoker(session_id: int) -> Callable[[Any], Awaitable[None]]:
    async def revoke(session: Any) -> None:
        await console_login.end_session(session, session_id)

    return revoke


def csrf_failed() -> AppError:
    return AppError("console.csrf_failed", 403, "页面已过期或请求来源不明，请刷新页面后重试")


@dataclass(frozen=True)
class Console:
    """The logged-in admin of a console request."""

    request: Request
    identity: console_login.ConsoleIdentity
    scope: Scope
    name: str

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            self.request,
            template,
            {"console": self, "csrf_token": self.identity.csrf_token, **context},
            status_code=status_code,
        )


async def get_console(request: Request, session: SessionDep) -> Console:
    outcome = await console_login.authenticate(
        session,
        request.app.state.sessions,
        request.app.state.driver_pool,
        request.cookies.get(console_login.SESSION_COOKIE),
    )
    if not isinstance(outcome, console_login.ConsoleIdentity):
        raise LoginRequired(outcome)
    if request.method in UNSAFE_METHODS:
        presented = request.headers.get("x-csrf-token")
        if presented is None:
            form = await request.form()
            field = form.get("csrf_token")
            presented = field if isinstance(field, str) else None
        if not console_login.csrf_matches(outcome, presented):
            raise csrf_failed()
    scope = await build_scope(session, outcome.principal)
    if scope.is_empty:
        raise LoginRequired(outcome.session_id)
    name = await console_login.display_name(session, outcome.principal.account_id)
    return Console(request, outcome, scope, name)


ConsoleDep = Annotated[Console, Depends(get_console)]


def error_page(
    request: Request,
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
) -> Response:
    """The page (or, for htmx, the fragment) of an error: its Chinese detail, its code
    and, for a file with bad rows, the rows as a table."""
    fragment = request.headers.get("hx-request") == "true"
    template = "_error.html" if fragment else ("404.html" if status == 404 else "error.html")
    return templates.TemplateResponse(
        request,
        template,
        {"status": status, "code": code, "detail": detail, "errors": errors, "console": None},
        status_code=status,
    )


def _is_console(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def install_error_pages(app: FastAPI) -> None:
    """Console requests get their errors as pages (or htmx fragments); every other path
    keeps the API's problem+json handlers."""
    handlers = app.exception_handlers
    api_handlers: dict[type[Exception] | int, Any] = {
        kind: handlers[kind] for kind in (AppError, RequestValidationError, StarletteHTTPException)
    }

    def wrap(kind: type[Exception]) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handle(request: Request, exc: Exception) -> Response:
            if not _is_console(request):
                result = api_handlers[kind](request, exc)
                answer: Response = await result if isinstance(result, Awaitable) else result
                return answer
            if isinstance(exc, LoginRequired):
                if request.headers.get("hx-request") == "true":
                    return Response(status_code=204, headers={"HX-Redirect": f"{PREFIX}/login"})
                return RedirectResponse(f"{PREFIX}/login", status_code=303)
            if isinstance(exc, AppError):
                rows = [dict(e) for e in exc.errors] if exc.errors else None
                return error_page(request, exc.status, exc.code, exc.detail, rows)
            if isinstance(exc, RequestValidationError):
                return error_page(
                    request, 422, "validation.failed", "筛选条件或表单内容有误，请检查后重试"
                )
            assert isinstance(exc, StarletteHTTPException)
            if exc.status_code == 404:
                return error_page(request, 404, "http.not_found", "页面不存在或不在您的管辖范围内")
            return error_page(request, exc.status_code, "http.error", "请求无法处理")

        return handle

    for kind in list(api_handlers):
        assert isinstance(kind, type)
        app.add_exception_handler(kind, wrap(kind))


def mount_static(app: FastAPI) -> None:
    app.mount(STATIC_PREFIX, CachedStatic(directory=str(HERE / "static")), name="console-static")


M = TypeVar("M", bound=BaseModel)
INT_FIELDS: Final = frozenset({"version", "to_org_id", "volunteer_member_id"})


def form_model(model: type[M], form: Mapping[str, Any]) -> M:
    """A form's fields as the API's request model (the same validation as the API):
    blank fields are left out, whole-number fields become integers."""
    data: dict[str, Any] = {}
    for key, value in form.items():
        if key == "csrf_token" or not isinstance(value, str) or not value.strip():
            continue
        if key in INT_FIELDS and value.strip().isdigit():
            data[key] = int(value.strip())
        else:
            data[key] = value
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise AppError(
            "validation.failed", 422, f"提交的数据有误（{where}）：{_message(first)}"
        ) from None


def _message(error: Any) -> str:
    message = str(error.get("msg", ""))
    if any("\u4e00" <= ch <= "\u9fff" for ch in message):
        return message.removeprefix("Value error, ")
    return {"missing": "必填", "string_too_long": "内容过长"}.get(error.get("type", ""), "取值无效")


LABELS: Final = {
    "pending": "待审批",
    "active": "外出中",
    "rejected": "已驳回",
    "returned": "已返回",
    "withdrawn": "已撤回",
    "cancelled": "已撤销",
    "checkin_overdue": "逾期未报到",
    "report_overdue": "逾期未报告",
    "lost_contact": "失联",
    "transfer_suggested": "建议转接",
    "work": "务工",
    "business": "经商",
    "study": "求学",
    "other": "其他",
    "approve": "批准",
    "verify": "核实通过",
    "requested": "待审批",
    "completed": "已完成",
    "refused": "未接收",
    "refuse": "拒绝接收",
    "verified": "已核实",
    "candidate": "待确认线索",
    "reject": "驳回",
    "accept_checkin": "确认报到",
    "refuse_checkin": "拒绝报到",
    "submitted": "待受理",
    "accepted": "已受理",
    "in_progress": "办理中",
    "resolved": "已办结",
    "closed": "已关闭",
    "transferred": "已转办",
    "start": "开始办理",
    "accept": "受理",
    "transfer": "转办",
    "resolve": "办结",
    "full": "正式党员",
    "probationary": "预备党员",
    "organization": "组织覆盖",
    "joint": "联合覆盖",
    "none": "未覆盖",
    "form_standalone": "单独组建",
    "join_joint": "联合组建",
    "assign_instructor": "选派指导员",
    "theme_day": "主题党日",
    "branch_meeting": "支部党员大会",
    "party_class": "党课",
    "committee_meeting": "支委会",
    "general_meeting": "党员大会/党小组会",
    "online_class": "在线课堂",
    "volunteer": "志愿服务",
    "blue": "正常",
    "yellow": "临期",
    "red": "逾期",
}


def label(value: object) -> str:
    return LABELS.get(str(value), str(value))


templates.env.filters["label"] = label
