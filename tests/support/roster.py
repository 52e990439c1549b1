"""Roster files in the layout branches keep, as xlsx or csv bytes (import tests)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

HEADERS = ["姓名", "性别", "出生日期", "身份证号", "手机号", "所在支部", "入党日期", "党员状态"]


def xlsx_bytes(rows: Sequence[Sequence[Any]], headers: Sequence[str] = HEADERS) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(
    rows: Sequence[Sequence[Any]], headers: Sequence[str] = HEADERS, encoding: str = "utf-8-sig"
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)
