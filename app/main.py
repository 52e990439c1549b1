"""Application factory: routers, error handlers, middleware and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.core import clock, embedded
from app.core.config import Settings, get_settings
from app.core.db import Replica, create_engine, make_sessionmaker
from app.core.driver_pool import DriverPool
from app.core.errors import AppError, FieldError, app_error_response, problem_response
from app.core.health import pool_sampling
from app.core.health import router as health_router
from app.core.logging import configure_logging, flush_logs
from app.core.middleware import RequestContextMiddleware
from app.core.openapi import install_openapi, operation_id
from app.identity.sessions import AuthListener, SessionCache
from app.study.batching import AwardBatcher
from app.wechat.client import WeChatClient
from app.wechat.simulator import WeChatSimulator

log = structlog.stdlib.get_logger("app")

SIMULATOR_BASE = "http://wechat-simulator.local"

_HTTP_CODES = {
    400: ("request.bad", "请求格式错误"),
    401: ("auth.unauthorized", "请先登录"),
    403: ("auth.forbidden", "无权执行此操作"),
    404: ("http.not_found", "请求的资源不存在"),
    405: ("http.method_not_allowed", "不支持该请求方法"),
    406: ("http.not_acceptable", "无法提供所请求的格式"),
    413: ("request.too_large", "请求体过大"),
    415: ("http.unsupported_media_type", "不支持的内容类型"),
}


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            loc = [*(loc or ["body"]), cause.field]
        errors.append(
            {
                "field": ".".join(loc[1:]) if len(loc) > 1 else ".".join(loc),
                "location": loc[0] if loc else "body",
                "type": error.get("type", "value_error"),
                "message": _chinese_message(error),
            }
        )
    return errors


_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "int_parsing": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为布尔值",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "datetime_parsing": "时间格式应为 RFC 3339",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "string_pattern_mismatch": "格式不正确",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
    "list_type": "应为数组",
    "too_long": "条目过多",
    "too_short": "条目过少",
    "timezone_aware": "时间须带时区，如 2026-12-01T09:30:00+08:00",
    "decimal_max_digits": "数字位数过多",
    "decimal_type": "应为数字",
}

# The mistakes a mini-program developer makes most, answered specifically.
_COORDINATE_MESSAGES = {
    "lat": "纬度 lat 应在 -90 到 90 之间；是否把经度和纬度填反了？"
    "（wx.getLocation 的 latitude 对应 lat）",
    "lon": "经度 lon 应在 -180 到 180 之间",
}
_RANGE_ERRORS = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")


_SPECIFIC_TYPES = ("timezone_aware", "decimal_max_places", "decimal_whole_digits")


def _specific_detail(errors: list[dict[str, Any]]) -> str | None:
    """The message of a common mistake, as the problem's detail, when there is one."""
    for error in errors:
        specific = error["type"] in _SPECIFIC_TYPES or (
            error["type"] in _RANGE_ERRORS and error["field"].rsplit(".", 1)[-1] in ("lat", "lon")
        )
        if specific:
            return str(error["message"])
    return None


def _chinese_message(error: Any) -> str:
    kind = error.get("type", "")
    field = str(error.get("loc", ("",))[-1])
    ctx = error.get("ctx") or {}
    if kind in _RANGE_ERRORS and field in _COORDINATE_MESSAGES:
        return _COORDINATE_MESSAGES[field]
    if kind == "decimal_max_places":
        return f"小数位数过多（最多 {ctx.get('decimal_places')} 位）"
    if kind == "decimal_whole_digits":
        return f"整数部分位数过多（最多 {ctx.get('whole_digits')} 位）"
    if kind == "value_error":
        ctx = error.get("ctx") or {}
        cause = ctx.get("error")
        if cause is not None:
            return str(cause)
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    # Our own validators (ID numbers, phones...) already speak Chinese.
    message = str(error.get("msg", ""))
    if any("\u4e00" <= ch <= "\u9fff" for ch in message):
        return message.removeprefix("Value error, ")
    return "取值无效"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> Response:
        return app_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        errors = _validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response("request.malformed_json", 400, "请求体不是有效的 JSON")
        return problem_response(
            "validation.failed",
            422,
            _specific_detail(errors) or "提交的数据有误，请检查标出的字段",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if getattr(request.state, "body_too_large", False):
            return problem_response("request.too_large", 413, "请求体过大")
        code, detail = _HTTP_CODES.get(exc.status_code, ("http.error", "请求无法处理"))
        return problem_response(code, exc.status_code, detail, headers=exc.headers)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    owns_engine = app.state.engine is None
    if owns_engine:
        url = settings.database_url or embedded.start(settings.data_dir)
        app.state.engine = create_engine(settings, url)
        app.state.sessionmaker = make_sessionmaker(app.state.engine)
    engine: AsyncEngine = app.state.engine
    owns_driver_pool = app.state.driver_pool is None
    if owns_driver_pool:
        app.state.driver_pool = await DriverPool.open(
            settings, engine.url.render_as_string(hide_password=False)
        )
    app.state.replica = Replica.open(settings)  # heavy reads (app.core.db.ReadSessionDep)
    if app.state.replica is not None and settings.database_replica_url:
        app.state.replica.driver = await DriverPool.open(settings, settings.database_replica_url)
    # Study check-ins share statements on the driver pool (app/study/batching.py).
    app.state.award_batcher = AwardBatcher(app.state.driver_pool)

    transport: httpx.AsyncBaseTransport | None = app.state.wechat_transport
    base_url = settings.wechat_api_base
    if transport is None and settings.simulator_enabled:
        transport = httpx.ASGITransport(app=app.state.wechat_simulator.asgi())
        base_url = SIMULATOR_BASE
    http = httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        timeout=httpx.Timeout(settings.wechat_timeout_s, connect=3.0),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
    )
    app.state.http = http
    app.state.wechat = WeChatClient(
        http, appid=settings.wechat_appid, secret=settings.wechat_secret, engine=engine
    )
    listener = AuthListener(
        settings, engine.url.render_as_string(hide_password=False), app.state.sessions
    )
    listener.start()
    worker_task = None
    if settings.worker_in_process:
        from app.notify.worker import start_in_process

        worker_task = start_in_process(app)
    if owns_engine:
        # A serving process (tests hand in their engine and build many apps): what was
        # built so far (modules, routes, pools) lives as long as the process, so out of
        # the collector's sight a full collection under load walks only request garbage
        # instead of the whole framework (bench.checkin: a lower p99).
        gc.collect()
        gc.freeze()
    try:
        async with pool_sampling(app):
            yield
    finally:
        if worker_task is not None:
            worker_task.cancel()
            # Let it finish rolling back before the engine goes away.
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task
        await http.aclose()
        await app.state.award_batcher.drain()
        await listener.stop()
        if app.state.replica is not None:
            await app.state.replica.close()
            app.state.replica = None
        if owns_driver_pool:
            await app.state.driver_pool.close()
            app.state.driver_pool = None
        if owns_engine:
            await engine.dispose()
        # uvicorn ends a process it stopped on SIGTERM by raising the signal again,
        # without exit handlers: the buffered access log is written out here.
        flush_logs()


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    wechat_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(json=settings.env != "dev", flush_interval_s=settings.log_flush_interval_s)
    clock.set_offset(settings.clock_offset)
    app = FastAPI(
        title="branchlink API",
        version="1.0.0",
        summary="流动党员服务小程序后端：外出登记、在线学习打卡、活动、订单式服务",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url="/docs" if settings.docs_on else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_on else None,
        # Metrics and the access log are the app's own (app/core/middleware.py); FastAPI's
        # OpenTelemetry hooks would otherwise look up providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine) if engine is not None else None
    app.state.driver_pool = None
    app.state.replica = None
    app.state.sessions = SessionCache()
    app.state.wechat_transport = wechat_transport
    app.state.wechat_simulator = WeChatSimulator(settings.wechat_appid, settings.wechat_secret)
    if settings.simulator_enabled:
        app.mount("/_wechat", app.state.wechat_simulator.asgi())

    install_error_handlers(app)
    install_openapi(app)
    app.include_router(health_router)
    from app.api import API_PREFIX, DOMAIN_ROUTERS

    for router in DOMAIN_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    from app.console.install import install as install_console

    install_console(app)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        )
    app.add_middleware(RequestContextMiddleware, routes=app.routes)
    # Outermost: logs, rate limits and audit see the client behind trusted proxies.
    app.add_middleware(
        ProxyHeadersMiddleware, trusted_hosts=[str(n) for n in settings.trusted_proxies]
    )
    return app
