"""Lean routes: documented like every route, served without dependency injection.

FastAPI's per-request work (solving the dependency tree, validating and serialising
through it) and a SQLAlchemy session cost several times what the check-in statement
costs in PostgreSQL. For an endpoint that phones call in bursts, the router's
``route_class=LeanRoute`` plus :func:`served_by` on the endpoint make the plain
JSON request take a lean handler:

* the endpoint function stays the route's documentation (its parameters and
  ``response_model`` generate the OpenAPI operation) and still serves every request
  the lean handler does not take: those with an ``Idempotency-Key`` (stored in the
  request's transaction) and bodies that are not declared as JSON;
* the lean handler authenticates with the same functions as the dependencies, parses
  and validates the body as FastAPI does, with the same pydantic model
  (:func:`parse_body`, identical errors) and runs its statement on a connection of the
  driver pool
  (:class:`app.core.db.DriverPool`).

Both paths call the same service function, so the rule lives in one place; only the
plumbing differs. Middleware (request id, access log, metrics, body limits, error
rendering) is the same for both.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

LeanHandler = Callable[[Request], Awaitable[Response]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
ModelT = TypeVar("ModelT", bound=BaseModel)

_LEAN_ATTRIBUTE = "__lean_handler__"


def served_by(handler: LeanHandler) -> Callable[[Endpoint], Endpoint]:
    """Mark an endpoint of a ``LeanRoute`` router as served by ``handler`` where it can."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _LEAN_ATTRIBUTE, handler)
        return endpoint

    return mark


def takes_lean_path(request: Request) -> bool:
    """Plain JSON without ``Idempotency-Key``: everything else takes the regular path."""
    headers = request.headers
    if "idempotency-key" in headers:
        return False
    content_type = headers.get("content-type", "")
    return content_type.partition(";")[0].strip().lower() == "application/json"


class LeanRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        regular = super().get_route_handler()
        lean: LeanHandler | None = getattr(self.endpoint, _LEAN_ATTRIBUTE, None)
        if lean is None:
            return regular

        async def handle(request: Request) -> Response:
            if takes_lean_path(request):
                return await lean(request)
            return await regular(request)

        return handle


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
    except UnicodeDecodeError as error:
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
