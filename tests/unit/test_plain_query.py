"""A plain route's query parameters (app/core/routing.py ``_query``): FastAPI's own
conversion, kept per query string only when nothing in it can change."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Query
from fastapi.dependencies.utils import get_dependant
from starlette.requests import Request

from app.core import routing


async def _endpoint(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    mine: bool = False,
    tags: Annotated[list[str] | None, Query()] = None,
) -> None:
    return None


def _request(query: str) -> Request:
    return Request({"type": "http", "query_string": query.encode(), "headers": []})


def test_answers_are_fastapis_and_kept_per_query_string(monkeypatch: pytest.MonkeyPatch) -> None:
    read = routing._query(get_dependant(path="/", call=_endpoint))
    calls = []
    real = routing.request_params_to_args

    def counting(fields, params):  # type: ignore[no-untyped-def]
        calls.append(str(params))
        return real(fields, params)

    monkeypatch.setattr(routing, "request_params_to_args", counting)
    for _ in range(2):
        values, errors = read(_request("limit=10&mine=true"))
        assert (dict(values), errors) == ({"limit": 10, "mine": True, "tags": None}, [])
    assert calls == ["limit=10&mine=true"]  # the second answer was the first's
    # A list can be changed in place by whoever gets it: converted anew each time.
    assert read(_request("tags=a&tags=b"))[0]["tags"] == ["a", "b"]
    assert read(_request("tags=a&tags=b"))[0]["tags"] == ["a", "b"]
    assert calls.count("tags=a&tags=b") == 2
    # A query string that fails fails every time, with FastAPI's errors.
    for _ in range(2):
        values, errors = read(_request("limit=1000"))
        assert values == {} and [e["loc"] for e in errors] == [("query", "limit")]
    assert calls.count("limit=1000") == 2


def test_kept_answers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "QUERY_CACHE_SIZE", 3)
    read = routing._query(get_dependant(path="/", call=_endpoint))
    for limit in range(1, 10):
        assert read(_request(f"limit={limit}"))[0]["limit"] == limit
    kept = read.__closure__  # the cache lives in the closure: look at its size
    assert kept is not None
    sizes = [len(c.cell_contents) for c in kept if isinstance(c.cell_contents, dict)]
    assert sizes == [3]
