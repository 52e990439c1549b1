"""Cursor pagination: ``?limit=&cursor=`` in, ``{items, next_cursor}`` out.

A cursor is the opaque, URL-safe encoding of the sort key of the last row seen.
:func:`decode_cursor` is the one decoder: it checks the shape and the type of every
value, so a forged or garbled cursor is a 422 ``pagination.invalid_cursor`` and never
reaches a query.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar, cast, overload

import orjson
from fastapi import Path, Query
from pydantic import BaseModel

from app.core.errors import AppError
from app.core.types import MAX_ID, ParamId

T = TypeVar("T")
K1 = TypeVar("K1", int, float, str, datetime)
K2 = TypeVar("K2", int, float, str, datetime)

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MIN_BIGINT = -MAX_ID - 1  # the smallest PostgreSQL bigint

IdPath = Annotated[ParamId, Path()]
"""A row id in the path: plain digits, a positive bigint (app/core/types.py)."""


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


@overload
def decode_cursor(cursor: str | None, kind: type[K1], /) -> K1 | None: ...


@overload
def decode_cursor(
    cursor: str | None, kind: type[K1], kind2: type[K2], /
) -> tuple[K1, K2] | None: ...


def decode_cursor(cursor: str | None, *kinds: type[Any]) -> Any:
    """The values of ``cursor``, one of each type in ``kinds`` (``int``: a bigint, not a
    bool; ``float``: a finite number; ``str``; ``datetime``: an ISO 8601 string with a
    time zone), or ``None`` for no cursor. Anything else raises :func:`invalid_cursor`."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error) as error:
        raise invalid_cursor() from error
    if not isinstance(values, list) or len(values) != len(kinds):
        raise invalid_cursor()
    decoded = tuple(_value(value, kind) for value, kind in zip(values, kinds, strict=True))
    return decoded[0] if len(kinds) == 1 else decoded


def _value(value: object, kind: type[Any]) -> Any:
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool) and MIN_BIGINT <= value <= MAX_ID:
            return value
    elif kind is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and math.isfinite(cast(float, value)):
            return float(cast(float, value))
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind is datetime:
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                return moment
    else:  # pragma: no cover - a programming error, not a caller's
        raise TypeError(f"no cursor values of type {kind!r}")
    raise invalid_cursor()


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
