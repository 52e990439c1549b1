"""One error type for the whole service, rendered as RFC 9457 problem+json.

Every error a client can see carries a stable machine ``code`` (``outflow.already_active``)
and a Chinese ``detail`` for the user. Domains subclass nothing: they raise ``AppError``
with their own code, usually through small factory functions in their ``errors.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class AppError(Exception):
    """An error with a stable code, an HTTP status and a Chinese detail."""

    def __init__(
        self,
        code: str,
        status: int,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.status = status
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        # Writes that must outlive the request's rollback (the audit entry of a refused
        # attempt): the session dependency runs them on the rolled-back session and
        # commits them alone. See app.core.db.keep_after_rollback.
        self.after_rollback: Callable[[Any], Awaitable[None]] | None = None


def problem_body(
    code: str,
    status: int,
    detail: str,
    *,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://branchlink.example/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return body


def rfc3339(moment: datetime) -> str:
    """A timestamp as every body and problem extension writes it: UTC with ``Z``
    (what pydantic writes for the response models)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def problem_response(
    code: str,
    status: int,
    detail: str,
    *,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    return Response(
        content=orjson.dumps(problem_body(code, status, detail, errors=errors, extra=extra)),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def app_error_response(exc: AppError) -> Response:
    return problem_response(
        exc.code, exc.status, exc.detail, errors=exc.errors, headers=exc.headers, extra=exc.extra
    )


class FieldError(ValueError):
    """A cross-field check failed in a model validator: names the field to blame.

    Raised inside ``@model_validator``; the 422 lists ``field`` instead of the whole body.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# Shared errors that several domains raise.


def not_found(code: str = "not_found", detail: str = "对象不存在或无权访问") -> AppError:
    return AppError(code, 404, detail)


def forbidden(code: str = "auth.forbidden", detail: str = "当前身份无权执行此操作") -> AppError:
    return AppError(code, 403, detail)


def stale_version() -> AppError:
    return AppError("conflict.stale_version", 409, "数据已被他人修改，请刷新后重试")


def service_unavailable(detail: str = "服务暂时繁忙，请稍后重试", retry_after: int = 2) -> AppError:
    return AppError("service.unavailable", 503, detail, headers={"Retry-After": str(retry_after)})


class InvalidTransition(AppError):
    """An illegal move in a state machine (409).

    The machine names stay in the ``state`` and ``action`` extensions; the ``detail``
    speaks Chinese, with the domain's labels where it has them.
    """

    def __init__(
        self,
        code: str,
        state: str,
        action: str,
        *,
        state_labels: Mapping[str, str] | None = None,
        action_labels: Mapping[str, str] | None = None,
    ) -> None:
        state_label = (state_labels or {}).get(state)
        action_label = (action_labels or {}).get(action)
        if state_label and action_label:
            detail = f"当前状态为“{state_label}”，不能{action_label}"
        elif state_label:
            detail = f"当前状态为“{state_label}”，不能执行该操作"
        else:
            detail = "当前状态不允许执行该操作，请刷新后重试"
        super().__init__(code, 409, detail, extra={"state": state, "action": action})
