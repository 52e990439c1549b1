"""Lean routes: documented like every route, served without the framework's plumbing.

FastAPI's per-request work (its exception and exit-stack middleware, route matching,
solving the dependency tree, validating and serialising through it) and a SQLAlchemy
session cost several times what the check-in statement costs in PostgreSQL. For an
endpoint that phones call in bursts, :func:`served_by` on the endpoint names a lean
handler, and :class:`LeanDispatch` hands it the plain JSON requests straight from the
request middleware (:class:`app.core.middleware.RequestContextMiddleware`):

* the endpoint function stays the route's documentation (its parameters and
  ``response_model`` generate the OpenAPI operation) and still serves every request
  the lean handler does not take: those with an ``Idempotency-Key`` (stored in the
  request's transaction), bodies not declared as JSON, and requests from browsers
  (with an ``Origin``: CORS is answered on the regular path);
* the lean handler authenticates with the same functions as the dependencies, parses
  and validates the body as FastAPI does, with the same pydantic model
  (:func:`parse_body`, identical errors), and its errors are answered by the app's own
  exception handlers;
* request id, access log, metrics, body limits and the last-resort error rendering are
  the middleware's, for both paths.

Both paths call the same service function, so the rule lives in one place; only the
plumbing differs.
"""

from __future__ import annotations

import functools
import json
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

LeanHandler = Callable[[Request], Awaitable[Response]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
ModelT = TypeVar("ModelT", bound=BaseModel)

_LEAN_ATTRIBUTE = "__lean_handler__"


def served_by(handler: LeanHandler) -> Callable[[Endpoint], Endpoint]:
    """Mark an endpoint as served by ``handler`` where it can (see :class:`LeanDispatch`)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _LEAN_ATTRIBUTE, handler)
        return endpoint

    return mark


def takes_lean_path(headers: Mapping[bytes, bytes]) -> bool:
    """Plain JSON without ``Idempotency-Key`` or ``Origin`` (raw ASGI header names)."""
    if b"idempotency-key" in headers or b"origin" in headers:
        return False
    content_type = headers.get(b"content-type", b"")
    return content_type.partition(b";")[0].strip().lower() == b"application/json"


@dataclass(frozen=True, slots=True)
class _Lean:
    handler: LeanHandler
    route: APIRoute


class LeanDispatch:
    """The lean handlers of an app by (method, path), and how to serve one."""

    def __init__(self, app: FastAPI, routers: Iterable[tuple[str, APIRouter]]) -> None:
        """``routers``: (prefix, router) as the app includes them; every route whose
        endpoint is marked with :func:`served_by` and whose path has no parameters."""
        self._app = app
        self._table: dict[tuple[str, str], _Lean] = {}
        for prefix, router in routers:
            for route in router.routes:
                handler = getattr(getattr(route, "endpoint", None), _LEAN_ATTRIBUTE, None)
                if handler is None or not isinstance(route, APIRoute):
                    continue
                if route.param_convertors:
                    raise ValueError(f"lean routes take no path parameters: {route.path}")
                for method in route.methods or ():
                    self._table[(method, prefix + route.path)] = _Lean(handler, route)

    def app_for(self, scope: Scope, headers: Mapping[bytes, bytes]) -> ASGIApp | None:
        """What serves this request if a lean handler takes it, else None."""
        lean = self._table.get((scope["method"], scope["path"]))
        if lean is None or not takes_lean_path(headers):
            return None
        return functools.partial(self._serve, lean)

    async def _serve(self, lean: _Lean, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the handler; an error the app has a handler for is answered by it, any
        other goes up to the middleware's last-resort rendering."""
        scope["route"] = lean.route  # what access log and metrics name the request by
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        try:
            response = await lean.handler(request)
        except Exception as error:
            answer = self._exception_handler(error)
            if answer is None:
                raise
            response = await answer(request, error)
        await response(scope, receive, send)

    def _exception_handler(self, error: Exception) -> ExceptionHandler | None:
        """The app's handler for ``error``'s class or its nearest base, as Starlette
        looks it up."""
        # The app registers only async handlers (app.main.install_error_handlers).
        handlers = typing.cast("Mapping[Any, ExceptionHandler]", self._app.exception_handlers)
        for cls in type(error).__mro__:
            if cls in handlers:
                return handlers[cls]
        return None


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    """The JSON body as ``model``; errors exactly as FastAPI reports a body parameter's."""
    raw = await request.body()
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        data = json.loads(raw)  # what FastAPI parses with, so NaN and the like match too
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": {}}],
            body=raw,
        ) from error
    except (UnicodeDecodeError, RecursionError) as error:
        # FastAPI answers any other failure to parse (such as JSON nested 10,000 deep)
        # with this 400; so does the lean path, so both give the same problem.
        raise HTTPException(400, "There was an error parsing the body") from error
    try:
        return model.model_validate(data, from_attributes=True)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)],
            body=raw,
        ) from None


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
