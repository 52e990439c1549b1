"""One way to answer with a generated spreadsheet: streamed, named in ASCII and (RFC
6266 ``filename*``) in Chinese, never cached, with the row count in a header."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from datetime import date
from urllib.parse import quote

from starlette.responses import StreamingResponse

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_download(
    content: AsyncIterable[bytes] | Iterable[bytes],
    *,
    stem: str,
    title: str,
    day: date,
    rows: int | None = None,
) -> StreamingResponse:
    """``stem``/``title``: the ASCII and the Chinese file name before ``-<day>.xlsx``."""
    name = f"{title}-{day.isoformat()}.xlsx"
    headers = {
        "Content-Disposition": f'attachment; filename="{stem}-{day.isoformat()}.xlsx"; '
        f"filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store",
    }
    if rows is not None:
        headers["X-Total-Count"] = str(rows)
    return StreamingResponse(content, media_type=XLSX, headers=headers)
