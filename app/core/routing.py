"""A route class for the plainest requests of hot endpoints, inside the framework.

FastAPI's generic dependency solving (exit stacks, parameter walks, overrides lookup per
node) costs more CPU than the check-in's whole statement does in PostgreSQL. An
endpoint that phones call in bursts is registered twice on one path, with the *same*
endpoint function: first with :class:`PlainRoute` (not in the OpenAPI document),
then as documented. :meth:`PlainRoute.matches` takes only plain requests: without
``Idempotency-Key`` or ``Origin``, and with a JSON body where the endpoint takes one;
everything else (keyed requests, browsers and CORS, other content types) falls through
to the documented route.

A plain request still goes through every middleware (request id, access log, metrics,
body limits, CORS), the router and the app's exception handlers; only the parameters
are resolved here, by the same functions and with the same errors:

* the request, and ``async def`` sub-dependencies that take the request, query
  parameters or other such sub-dependencies (authentication, a ledger's filters),
  honouring ``app.dependency_overrides``;
* one JSON body parameter, parsed and validated as FastAPI does (:func:`read_json`,
  :func:`validate_body`), and the query parameters of the endpoint and its
  dependencies (FastAPI's own ``request_params_to_args``, kept per query string:
  :func:`_query`), every failure reported together as FastAPI reports them;
* a dependency named in :data:`PLAIN_SUBSTITUTES` by its plain-request substitute
  (``Idempotency-Key`` absent: a keyless handle that never opens a session).

A route whose endpoint needs anything else is refused when it is built, so nothing is
silently resolved differently.

:class:`DomainRouter`, the router of every domain, declines at a glance a request whose
path none of its routes can match.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any
from uuid import UUID

import orjson
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from app.core.responses import model_response

Provider = Callable[[Request, dict[Any, Any]], Awaitable[Any]]

# Dependencies replaced on plain requests: {dependency: substitute(request)}. Filled by
# the modules that own the dependency (app/core/idempotency.py).
PLAIN_SUBSTITUTES: dict[Callable[..., Any], Callable[[Request], Awaitable[Any]]] = {}


def is_plain(scope: Scope, *, with_body: bool) -> bool:
    """No ``Idempotency-Key`` or ``Origin`` (raw ASGI headers), and, for a route with a
    body, declared as JSON."""
    content_type = b""
    for name, value in scope.get("headers") or ():
        if name == b"idempotency-key" or name == b"origin":
            return False
        if name == b"content-type":
            content_type = value
    if not with_body:
        return True
    return content_type.partition(b";")[0].strip().lower() == b"application/json"


async def read_json(request: Request) -> Any:
    """The body as JSON; errors exactly as FastAPI reports an unparseable body."""
    raw = await request.body()
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        # orjson where it parses (what phones send); whatever it refuses (NaN, integers
        # beyond 64 bits, lone surrogates) goes to json.loads, FastAPI's own parser, so
        # values and errors stay the documented route's.
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": {}}],
            body=raw,
        ) from error
    except (UnicodeDecodeError, RecursionError) as error:
        # FastAPI answers any other failure to parse (JSON nested 10,000 deep, say)
        # with this 400.
        raise HTTPException(400, "There was an error parsing the body") from error


def validate_body(model: type[BaseModel], data: Any, raw: bytes) -> BaseModel:
    """``data`` as ``model``; errors exactly as FastAPI reports a body parameter's."""
    try:
        return model.model_validate(data, from_attributes=True)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)],
            body=raw,
        ) from None


class PlainRoute(APIRoute):
    """See the module docstring. Register it before the documented route of the path."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["include_in_schema"] = False
        super().__init__(path, endpoint, **kwargs)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.FULL or not is_plain(
            scope, with_body=bool(self.dependant.body_params)
        ):
            return Match.NONE, {}
        return match, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Straight to the handler. FastAPI's ``request_response`` would wrap it in two
        exit stacks, for dependencies with ``yield`` (a plain route resolves none:
        :func:`_dependency` refuses them), and in a second pass of the app's exception
        handlers (the ``ExceptionMiddleware`` around the router applies the same
        handlers to whatever is raised here). :meth:`matches` took only the route's
        methods, so there is no 405 to answer."""
        handler = self._plain_handler
        if handler is None:
            handler = self._plain_handler = self.get_route_handler()
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    _plain_handler: Callable[[Request], Coroutine[Any, Any, Response]] | None = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        arguments = _arguments(self.dependant)
        body = _body_model(self.dependant)
        status_code = self.status_code or 200

        async def handle(request: Request) -> Response:
            data = await read_json(request) if body is not None else None
            overrides: Mapping[Any, Any] = request.app.dependency_overrides
            solved: dict[Any, Any] = {"overrides": overrides, "errors": []}
            values = await arguments(request, solved)
            errors: list[Any] = solved["errors"]
            if body is not None:  # its errors join the parameters', as FastAPI reports them
                name, model = body
                try:
                    validated = validate_body(model, data, await request.body())
                except RequestValidationError as invalid:
                    errors.extend(invalid.errors())
                else:
                    if values is not None:
                        values[name] = validated
            if errors or values is None:
                raise RequestValidationError(errors)
            result = await endpoint(**values)
            if isinstance(result, Response):
                return result
            if isinstance(result, BaseModel):
                return model_response(result, status_code)
            raise TypeError("a plain route's endpoint returns a Response or a model")

        return handle


def _body_model(dependant: Dependant) -> tuple[str, type[BaseModel]] | None:
    if not dependant.body_params:
        return None
    if len(dependant.body_params) != 1:
        raise ValueError("a plain route takes at most one body parameter")
    field = dependant.body_params[0]
    model = field.field_info.annotation
    if not (inspect.isclass(model) and issubclass(model, BaseModel)):
        raise ValueError("a plain route's body is one pydantic model")
    return field.name, model


# Values a query string converts to that no endpoint can change in place: an answer
# made of them can be handed to the next request with the same query string.
_IMMUTABLE = (str, int, float, Decimal, Enum, date, datetime, UUID, type(None))
QUERY_CACHE_SIZE = 256

Query = Callable[[Request], tuple[Mapping[str, Any], list[Any]]]


def _query(dependant: Dependant) -> Query:
    """The query parameters of an endpoint or dependency and their errors, converted
    and validated by FastAPI's own function, so values and errors are the documented
    route's.

    That function costs ~9 µs a parameter (a pydantic validation each; 75 µs for the
    eight of ``GET /orders``) and is a function of the query string alone, which phones
    repeat (``?mine=true``, ``?limit=10``): its answer is kept per dependant for the
    last :data:`QUERY_CACHE_SIZE` query strings, when every value is immutable. A query
    string that fails is validated anew each time."""
    fields = dependant.query_params
    if not fields:
        return lambda _request: ({}, [])
    known: dict[bytes, Mapping[str, Any]] = {}

    def read(request: Request) -> tuple[Mapping[str, Any], list[Any]]:
        raw: bytes = request.scope.get("query_string", b"")
        values = known.get(raw)
        if values is not None:
            return values, []
        values, errors = request_params_to_args(fields, request.query_params)
        if errors:
            return {}, list(errors)
        if all(isinstance(value, _IMMUTABLE) for value in values.values()):
            if len(known) >= QUERY_CACHE_SIZE:
                del known[next(iter(known))]  # the oldest
            known[raw] = MappingProxyType(values)
        return values, []

    return read


Arguments = Callable[[Request, dict[Any, Any]], Awaitable[dict[str, Any] | None]]


def _arguments(dependant: Dependant) -> Arguments:
    """The keyword arguments of a call of ``dependant`` (an endpoint or a dependency):
    the request, its sub-dependencies in order, then its query parameters; None when
    one of them failed validation. As FastAPI's ``solve_dependencies`` does, failures
    are gathered in ``solved["errors"]`` (sub-dependencies' first, then the query's),
    a dependency whose parameters failed is not called, the others are."""
    if dependant.path_params or dependant.header_params or dependant.cookie_params:
        raise ValueError(f"a plain route resolves no path, header or cookie: {dependant}")
    providers: list[tuple[str, Provider]] = []
    if dependant.request_param_name:
        providers.append((dependant.request_param_name, _the_request))
    for sub in dependant.dependencies:
        if sub.name is None or sub.call is None:
            raise ValueError("a plain route has no unnamed dependencies")
        providers.append((sub.name, _dependency(sub)))
    query = _query(dependant)

    async def arguments(request: Request, solved: dict[Any, Any]) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        valid = True
        for name, provide in providers:
            value = values[name] = await provide(request, solved)
            valid = valid and value is not _INVALID
        found, errors = query(request)
        if errors:
            solved["errors"].extend(errors)
            return None
        values.update(found)
        return values if valid else None

    return arguments


_OVERRIDES: dict[Callable[..., Any], Arguments] = {}


def _override_arguments(target: Callable[..., Any]) -> Arguments:
    """The parameters of an override (tests), resolved by its own signature."""
    found = _OVERRIDES.get(target)
    if found is None:
        found = _OVERRIDES[target] = _arguments(get_dependant(path="", call=target))
    return found


async def _the_request(request: Request, _solved: dict[Any, Any]) -> Request:
    return request


_INVALID = object()  # what a dependency whose parameters failed validation gives


def _dependency(sub: Dependant) -> Provider:
    call = sub.call
    assert call is not None
    substitute = PLAIN_SUBSTITUTES.get(call)
    if substitute is not None:

        async def substituted(request: Request, _solved: dict[Any, Any]) -> Any:
            return await substitute(request)

        return substituted
    if not inspect.iscoroutinefunction(call) or sub.body_params:
        raise ValueError(f"a plain route resolves only async dependencies: {call!r}")
    inner = _arguments(sub)

    async def resolved(request: Request, solved: dict[Any, Any]) -> Any:
        # Once per request, like FastAPI's dependency cache; overrides as FastAPI does.
        if call in solved:
            return solved[call]
        target = solved["overrides"].get(call, call)
        arguments = inner if target is call else _override_arguments(target)
        kwargs = await arguments(request, solved)
        if kwargs is None:
            return _INVALID  # not called, not kept: as FastAPI solves it
        value = target(**kwargs)
        if inspect.isawaitable(value):  # an override may be a plain function
            value = await value
        solved[call] = value
        return value

    return resolved


class DomainRouter(APIRouter):
    """A domain's router: declines, before FastAPI walks its routes, a request whose path
    contains none of its routes' literal heads.

    The application matches a request against the included routers in turn, and each
    included router walks all of its routes (path regex, scope bookkeeping per route)
    twice: once to say it matches, once to pick the route. With sixteen domains that
    was a fifth of the CPU of ``GET /me``. A route's path regex only matches a path that
    contains the literal part of its template before the first parameter (``/me/credits``,
    ``/outflows/`` of ``/outflows/{id}/approve``), wherever the router is mounted; a path
    that contains none of them is declined here, and every answer (404, 405, the
    trailing-slash redirect) stays FastAPI's.
    """

    _heads: tuple[str, ...] | None = None  # None: any path may match
    _heads_of: int = -1  # len(self.routes) the heads were computed for
    _plain_first: int = 0  # plain routes moved to the front so far

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        """As FastAPI's; a :class:`PlainRoute` then moves to the front of the domain's
        routes (after the plain routes before it), where FastAPI's two walks reach it
        first, unless a route before it could take its requests (its path has no
        parameters, so that is a route whose pattern matches the path, for one of its
        methods): the answer stays the one the order of declaration gives."""
        super().add_api_route(path, endpoint, **kwargs)
        route = self.routes[-1]
        if not isinstance(route, PlainRoute):
            return
        earlier = self.routes[self._plain_first : -1]
        if any(
            isinstance(other, APIRoute)
            and (other.methods or set()) & (route.methods or set())
            and other.path_regex.match(route.path)
            for other in earlier
        ):
            return
        self.routes.insert(self._plain_first, self.routes.pop())
        self._plain_first += 1
        changed = getattr(self, "_mark_routes_changed", None)  # FastAPI's route caches
        if changed is not None:
            changed()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self._heads_of != len(self.routes):
            self._heads, self._heads_of = literal_heads(self.routes), len(self.routes)
        heads = self._heads
        if heads is not None:
            path = scope["path"]
            for head in heads:
                if head in path:
                    break
            else:
                return Match.NONE, {}
        return super().matches(scope)


def literal_heads(routes: list[BaseRoute]) -> tuple[str, ...] | None:
    """The literal part before the first parameter of every route's path, without those
    that contain another (a path containing ``/orders/`` contains ``/orders``), or None
    when a route has none to offer (a mounted app, a nested router, a parameter first)."""
    heads: set[str] = set()
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(route, APIRoute) or not isinstance(path, str):
            return None
        head = path.split("{", 1)[0]
        if len(head) < 2:
            return None
        heads.add(head)
    return tuple(sorted(h for h in heads if not any(o != h and o in h for o in heads)))
