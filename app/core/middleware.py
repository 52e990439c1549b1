"""Pure ASGI middleware: request id, access log, metrics, body limits, last-resort errors.

Kept as raw ASGI (not ``@app.middleware("http")``) so it never buffers bodies, never
breaks streaming responses and sees every exception, including those of other middleware.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import set_request_meta
from app.core.db import is_database_unavailable, is_invalid_input
from app.core.errors import AppError, app_error_response, problem_response, service_unavailable
from app.core.logging import log_access
from app.core.metrics import method_label, record, route_label, route_paths

log = structlog.stdlib.get_logger("app.request")

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge("http_requests_in_flight", "Requests being served", multiprocess_mode="livesum")

# The labelled children, looked up once: ``labels()`` takes a lock and builds its key on
# every call. Labels are bounded (app/core/metrics.py: known methods or ``other``, route
# templates or ``unmatched``), so these stay small.
_COUNTERS: dict[tuple[str, str, str], Any] = {}
_LATENCIES: dict[tuple[str, str], Any] = {}


def _observe(method: str, route: str, status: str, elapsed_s: float) -> None:
    counter = _COUNTERS.get((method, route, status))
    if counter is None:
        counter = _COUNTERS[(method, route, status)] = REQUESTS.labels(method, route, status)
    latency = _LATENCIES.get((method, route))
    if latency is None:
        latency = _LATENCIES[(method, route)] = LATENCY.labels(method, route)
    counter.inc()
    latency.observe(elapsed_s)


JSON_LIMIT = 1 * 1024 * 1024
UPLOAD_LIMIT = 10 * 1024 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


# Request ids: 32 hex digits as uuid4().hex gave, a random prefix per process and a
# counter (uuid4 costs a getrandom system call per request). A forked worker draws its
# own prefix.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = secrets.token_hex(8)
    _ID_COUNTER = itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class BodyTooLarge(Exception):
    pass


def _limit_for(headers: dict[bytes, bytes]) -> int:
    content_type = headers.get(b"content-type", b"").lower()
    if (
        content_type.startswith(b"multipart/")
        or content_type.startswith(b"application/vnd.openxmlformats")
        or content_type.startswith(b"text/csv")
        or content_type.startswith(b"application/octet-stream")
    ):
        return UPLOAD_LIMIT
    return JSON_LIMIT


class RequestContextMiddleware:
    """Request id, access log, metrics and body limits for every request."""

    def __init__(self, app: ASGIApp, routes: Iterable[Any] = ()) -> None:
        self.app = app
        # Metrics and access lines name a request by its route's OpenAPI path.
        self.route_paths = route_paths(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        client = scope.get("client")
        set_request_meta(request_id, client[0] if client else None)

        limit = _limit_for(headers)
        declared = headers.get(b"content-length")
        started = time.perf_counter()
        status_holder = {"status": 500, "sent": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["sent"] = True
                raw = list(message.get("headers", []))
                raw.append((b"x-request-id", request_id.encode()))
                raw.extend(SECURITY_HEADERS)
                message["headers"] = raw
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI turns errors while reading the body into a 400; the flag
                    # lets the HTTP error handler answer 413 instead.
                    scope["state"]["body_too_large"] = True
                    raise BodyTooLarge()
            return message

        IN_FLIGHT.inc()
        try:
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise BodyTooLarge()
            await self.app(scope, receive_wrapper, send_wrapper)
        except BaseException as error:
            if not isinstance(error, Exception):
                raise
            if status_holder["sent"]:
                log.exception("error after response started")
                return
            route_template = getattr(scope.get("route"), "path", None)
            response = self._error_response(error, request_id, limit, route_template)
            await response(scope, receive, send_wrapper)
        finally:
            IN_FLIGHT.dec()
            template = route_label(scope.get("route"), self.route_paths)
            elapsed = time.perf_counter() - started
            status = str(status_holder["status"])
            method = method_label(scope["method"])
            record("http_requests", lambda: _observe(method, template, status, elapsed))
            log_access(method, template, status_holder["status"], round(elapsed * 1000, 2))

    @staticmethod
    def _error_response(error: Exception, request_id: str, limit: int, route: str | None) -> Any:
        if isinstance(error, BodyTooLarge):
            return problem_response(
                "request.too_large", 413, f"请求体过大，上限为 {limit // (1024 * 1024)} MiB"
            )
        if isinstance(error, AppError):
            return app_error_response(error)
        if is_invalid_input(error):
            log.warning("invalid input reached the database", error=type(error).__name__)
            return problem_response("validation.out_of_range", 422, "提交的数值或日期超出允许范围")
        if is_database_unavailable(error):
            log.warning("database unavailable", error=type(error).__name__)
            return app_error_response(service_unavailable("服务暂时不可用，请稍后重试"))
        log.error("unhandled error", route=route, exc_info=error)
        return problem_response(
            "internal.error", 500, f"服务器内部错误，请联系管理员（请求编号 {request_id}）"
        )
