"""One request path for every endpoint, and nothing on it that hops to a thread.

FastAPI runs a plain ``def`` endpoint or dependency in its thread pool: a thread hop
per request (a queue put, a lock, a wake-up) that cost GET /me/credits a seventh of its
CPU. Every endpoint and every dependency of the app is ``async def``; and no endpoint is
served beside the framework (the former ``app/core/lean.py`` dispatcher is gone).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant

from app.core.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]


def _routes() -> list[Any]:
    """Every API route as served: each included router's effective routes (with the
    dependencies of the routers it was included through)."""
    app = create_app(Settings(env="test", database_url="postgresql://bench/none"))
    return [
        context
        for route in app.routes
        if hasattr(route, "effective_route_contexts")
        for context in route.effective_route_contexts()
    ]


def _calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _is_async(call: object) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


def test_every_endpoint_and_dependency_is_async() -> None:
    routes = _routes()
    assert len(routes) > 50
    sync = {
        f"{route.path_format}: {getattr(call, '__qualname__', call)}"
        for route in routes
        for call in (route.endpoint, *_calls(route.dependant))
        if not _is_async(call)
    }
    assert sync == set()


def test_no_dispatcher_beside_the_framework() -> None:
    assert not (ROOT / "app" / "core" / "lean.py").exists()
    for path in (ROOT / "app").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "served_by" not in text.replace("member_served_by", ""), path
        assert "LeanDispatch" not in text, path


def test_plain_routes_share_the_documented_endpoint() -> None:
    """A plain route (app/core/routing.py) is the documented route's own endpoint on the
    same path: no endpoint has two bodies."""
    from app.core.routing import PlainRoute

    routes = _routes()
    plain = [r for r in routes if isinstance(r.original_route, PlainRoute)]
    assert {r.path_format for r in plain} == {
        "/api/v1/me",
        "/api/v1/me/credits",
        "/api/v1/me/notifications",
        "/api/v1/activities",
        "/api/v1/orders",
        "/api/v1/outflows",
        "/api/v1/study/checkins",
        "/api/v1/study/sessions",
    }
    for route in plain:
        documented = [
            r
            for r in routes
            if r.path_format == route.path_format
            and r.methods == route.methods
            and not isinstance(r.original_route, PlainRoute)
        ]
        assert len(documented) == 1
        assert documented[0].endpoint is route.endpoint
        assert documented[0].include_in_schema and not route.include_in_schema


def test_domain_routers_decline_only_paths_they_cannot_match() -> None:
    """A domain router declines a path that contains none of its routes' literal heads
    (app/core/routing.py): every served route's own path (parameters filled in) gets
    past its router's check, and most other domains' paths are declined."""
    from app.api import DOMAIN_ROUTERS
    from app.core.routing import DomainRouter, literal_heads

    app = create_app(Settings(env="test", database_url="postgresql://bench/none"))
    served = [
        (context.path_format, route.original_router)
        for route in app.routes
        if hasattr(route, "effective_route_contexts")
        for context in route.effective_route_contexts()
    ]
    assert all(isinstance(router, DomainRouter) for router in DOMAIN_ROUTERS)
    heads = {id(router): literal_heads(router.routes) for router in DOMAIN_ROUTERS}
    assert all(h is not None for h in heads.values())  # every domain can decline
    declined = 0
    for path_format, owner in served:
        path = "/api/v1" + path_format.replace("{", "").replace("}", "")  # .../orders/order_id
        for router in DOMAIN_ROUTERS:
            passes = any(h in path for h in heads[id(router)] or ())
            if router is owner:
                assert passes, path_format
            declined += not passes
    assert declined > len(served) * (len(DOMAIN_ROUTERS) - 2)


def test_no_two_domains_serve_one_path() -> None:
    """So the order of ``DOMAIN_ROUTERS`` (hot domains first) decides nothing but speed:
    no route of one domain matches a path of another's (parameters as a number and as
    a word), for a method both take."""
    import re

    from app.api import DOMAIN_ROUTERS

    routes = [
        (index, route) for index, router in enumerate(DOMAIN_ROUTERS) for route in router.routes
    ]
    shared = {
        (a.path, b.path)
        for i, a in routes
        for j, b in routes
        if i != j
        and a.methods & b.methods
        and any(a.path_regex.match(re.sub(r"\{[^}]+\}", value, b.path)) for value in ("123", "abc"))
    }
    assert shared == set()


def test_plain_routes_come_first_in_their_domains() -> None:
    """Where FastAPI's walks over a domain's routes reach them first; none of them was
    moved past a route that could take its requests (DomainRouter.add_api_route)."""
    from app.api import DOMAIN_ROUTERS
    from app.core.routing import PlainRoute

    plain = 0
    for router in DOMAIN_ROUTERS:
        kinds = [isinstance(route, PlainRoute) for route in router.routes]
        assert kinds == sorted(kinds, reverse=True), [r.path for r in router.routes]
        plain += sum(kinds)
    assert plain == 8
