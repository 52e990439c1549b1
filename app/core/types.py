"""Strict identifiers for requests: one type for bodies, one for paths and queries.

Pydantic's lax mode turns ``true`` into ``1`` and ``1.0`` into ``1``: ``{"org_id": true}``
filed an order at organisation 1. An identifier in a JSON body must be a JSON integer
(not a boolean, a float or a string); in a path or a query it must be plain decimal
digits (not ``+5``, `` 5``, ``5_000`` or ``1.0``). Both are 1 … 2⁶³−1 (a PostgreSQL
``bigint``), so an out-of-range number is a 422, never a database error.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

MAX_ID: Final = 2**63 - 1  # the largest PostgreSQL bigint: every id fits below it
_DIGITS: Final = re.compile(r"[0-9]{1,19}")


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "应为整数")
    return value


def _decimal_digits(value: Any) -> Any:
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise PydanticCustomError("int_parsing", "应为整数")
        return int(value)
    return _json_integer(value)


Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_json_integer)]
"""An identifier in a JSON body."""

ParamId = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_decimal_digits)]
"""An identifier in a path or a query string."""

Version = Annotated[int, Field(ge=1, le=2**31 - 1), BeforeValidator(_json_integer)]
"""An optimistic-lock version in a JSON body."""
