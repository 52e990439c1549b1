"""JSON bodies serialized once, for hot reads that shape plain dicts.

A read that returns a pydantic model validates every item as it is built, and the
documented route validates the whole page again as its response model. A hot list
endpoint may instead shape plain dicts from its row's already typed values and return
:func:`json_response`: orjson writes them as pydantic's ``model_dump_json`` does
(timestamps RFC 3339 in UTC with ``Z``, fractional seconds only when non-zero, ``null``
for None), in one pass. The route keeps ``response_model`` so the OpenAPI document is
unchanged, and a test per such endpoint checks its body against that model.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response

_OPTIONS = orjson.OPT_UTC_Z


def json_response(content: Any, status_code: int = 200) -> Response:
    """``content`` (dicts, lists, str, int, bool, None, aware datetimes) as JSON."""
    return Response(
        orjson.dumps(content, option=_OPTIONS),
        status_code=status_code,
        media_type="application/json",
    )


def model_json(model: BaseModel) -> orjson.Fragment:
    """A model's own JSON, to place in (or return as) such a body unchanged."""
    return orjson.Fragment(model.model_dump_json())


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """A model's own JSON as the body (``model_dump_json``: no detour through dicts)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
