"""Cursor pagination: ``?limit=&cursor=`` in, ``{items, next_cursor}`` out.

A cursor is the opaque, URL-safe encoding of the sort key of the last row seen.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from app.core.errors import AppError

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as error:
        raise invalid_cursor() from error
    if not isinstance(values, list) or len(values) != arity:
        raise invalid_cursor()
    return values


def invalid_cursor() -> AppError:
    return AppError("pagination.invalid_cursor", 422, "分页游标无效，请从第一页重新加载")


LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="每页条数，最多 100")]
CursorParam = Annotated[str | None, Query(max_length=512, description="上一页返回的 next_cursor")]


def page_of(rows: list[T], limit: int, key: Any) -> tuple[list[T], str | None]:
    """Given up to ``limit + 1`` rows, return the page and the cursor of the next one."""
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        values = key(last)
        return rows, encode_cursor(*values)
    return rows, None
