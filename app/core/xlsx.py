"""Reading untrusted spreadsheets (xlsx, csv) off the event loop, within hard limits.

An upload is parsed in a small pool of worker processes, never in the serving process:
a thread would share its interpreter lock with the event loop, and on a busy machine
the loop then waits whenever the parsing thread is descheduled while holding it. So
``/healthz`` and every other request keep answering while a file is read. Every read
is bounded by :class:`SheetLimits`:

* the zip: total and per-part uncompressed size (a zip bomb stops at the cap, since
  :mod:`zipfile` never inflates a part beyond its declared size), and the number of parts;
* the XML: no DTD at all (xlsx parts never have one) and no entities, external or
  internal (``defusedxml``, which openpyxl uses when it is installed), so neither XXE
  nor "billion laughs"; malformed XML is an unreadable file, not a 500;
* the sheet: the declared ``<dimension>`` (checked before a row is read; openpyxl would
  otherwise pad every row to it), the rows (empty ones count: a million ``<row/>``
  elements stop at the limit), the columns of a row and the cells in all;
* the time: the parser checks a deadline on every row (a file queued behind others
  counts from its upload), and the caller stops waiting at the deadline whatever the
  parser is doing.

Every refusal is an :class:`~app.core.errors.AppError` (422, ``import.*`` codes, Chinese
details). :func:`read_rows` is the one entry point: bytes and limits in, rows out.

Writing: every workbook the service hands out writes its cells through
:func:`write_cell`, which neutralises text that a spreadsheet would take for a formula
(OWASP "CSV injection": a leading ``=``, ``+``, ``-``, ``@``, tab or carriage return
gets a single quote in front), so a member's "employer" of ``=HYPERLINK(...)`` stays text
when a secretary edits the cell.
"""

from __future__ import annotations

import asyncio
import csv
import io
import multiprocessing
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, BinaryIO, Final
from urllib.parse import quote

import structlog
import xlsxwriter
from openpyxl import DEFUSEDXML  # True when defusedxml is installed: openpyxl parses with it
from starlette.responses import StreamingResponse

from app.core.errors import AppError

log = structlog.stdlib.get_logger("app.xlsx")

if not DEFUSEDXML:  # pragma: no cover - a broken installation, not a runtime condition
    raise RuntimeError("defusedxml must be installed: openpyxl would expand XML entities")

XLSX_MAGIC: Final = b"PK\x03\x04"

# Two parses at a time per serving process; more wait (their deadline runs meanwhile).
# Started on first use ("spawn": a clean interpreter, safe beside threads and the loop).
_WORKERS: Final = 2
_pool: ProcessPoolExecutor | None = None

_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
# The same markers in UTF-16 (either byte order): an XML part may declare that encoding.
_DTD_UTF16 = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!doctype", "<!ENTITY", "<!entity")
    for encoding in ("utf-16-le", "utf-16-be")
)
_CHUNK = 1 << 16


@dataclass(frozen=True)
class SheetLimits:
    """Hard limits of one read; the defaults suit a 20,000-row roster of ~10 columns."""

    max_rows: int = 20_050
    max_columns: int = 64
    max_cells: int = 400_000
    max_uncompressed_bytes: int = 64 * 1024 * 1024
    max_parts: int = 200
    max_seconds: float = 10.0


def unreadable(detail: str = "文件无法读取，请确认文件未损坏") -> AppError:
    return AppError("import.unreadable", 422, detail)


def too_many_rows(limit: int) -> AppError:
    return AppError("import.too_many_rows", 422, f"单个文件最多 {limit} 行，请分批导入")


def too_large(detail: str) -> AppError:
    return AppError("import.too_large", 422, detail)


def too_slow(seconds: float) -> AppError:
    return AppError(
        "import.too_slow", 422, f"文件在 {seconds:g} 秒内未能读完，请删除多余的行列或分批导入"
    )


Row = tuple[int, list[Any]]
"""``(sheet row number, cell values)``; numbers start at 1."""


@dataclass(frozen=True)
class _Refusal:
    """An ``AppError`` of the worker, carried back as data (exceptions with keyword
    arguments do not survive pickling)."""

    code: str
    detail: str


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(_WORKERS, mp_context=multiprocessing.get_context("spawn"))
    return _pool


async def read_rows(content: bytes, kind: str, limits: SheetLimits) -> list[Row]:
    """The rows of an ``xlsx`` (first sheet) or ``csv`` file, read in a worker process.

    Raises an ``AppError`` (422) when the file is unreadable or breaks a limit; answers
    within ``limits.max_seconds`` whatever the file holds.
    """
    global _pool
    # CLOCK_MONOTONIC is the machine's, so the worker can check the same deadline.
    deadline = time.monotonic() + limits.max_seconds
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(_executor(), _read, content, kind, limits, deadline)
        outcome = await asyncio.wait_for(future, timeout=limits.max_seconds)
    except TimeoutError:
        raise too_slow(limits.max_seconds) from None
    except BrokenProcessPool:
        # A worker died (killed for memory, say): start afresh for the next upload.
        log.warning("spreadsheet worker died")
        _pool = None
        raise unreadable() from None
    if isinstance(outcome, _Refusal):
        raise AppError(outcome.code, 422, outcome.detail)
    return outcome


def _read(content: bytes, kind: str, limits: SheetLimits, deadline: float) -> list[Row] | _Refusal:
    """In a worker process: the rows, or why not."""
    try:
        return _rows(content, kind, limits, deadline)
    except AppError as error:
        return _Refusal(error.code, error.detail)


def _rows(content: bytes, kind: str, limits: SheetLimits, deadline: float) -> list[Row]:
    if time.monotonic() > deadline:  # waited in the queue past its time
        raise too_slow(limits.max_seconds)
    source = _xlsx_rows(content, limits) if kind == "xlsx" else _csv_rows(content)
    rows: list[Row] = []
    cells = 0
    try:
        for number, values in source:
            if time.monotonic() > deadline:
                raise too_slow(limits.max_seconds)
            if number > limits.max_rows:
                raise too_many_rows(limits.max_rows)
            while values and values[-1] is None:  # trailing empty cells of a styled row
                values.pop()
            if len(values) > limits.max_columns:
                raise too_large(f"文件最多 {limits.max_columns} 列")
            cells += len(values)
            if cells > limits.max_cells:
                raise too_large(f"文件最多 {limits.max_cells} 个单元格，请分批导入")
            rows.append((number, values))
    except AppError:
        raise
    except Exception as error:
        # Whatever a hostile file makes the parser raise (ParseError, EntitiesForbidden,
        # KeyError of a missing part, ...) means the same to the uploader.
        log.info("spreadsheet unreadable", error=type(error).__name__)
        raise unreadable() from None
    return rows


def _xlsx_rows(content: bytes, limits: SheetLimits) -> Iterator[Row]:
    from openpyxl import load_workbook

    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise unreadable() from error
    _check_archive(archive, limits)
    book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        declared_rows, declared_columns = sheet.max_row, sheet.max_column
        if declared_rows is not None and declared_rows > limits.max_rows:
            raise too_many_rows(limits.max_rows)
        if declared_columns is not None and declared_columns > limits.max_columns:
            raise too_large(f"文件最多 {limits.max_columns} 列")
        # Rows as the file has them, not padded to the declared dimension.
        sheet.reset_dimensions()
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(values)
    finally:
        book.close()


def _check_archive(archive: zipfile.ZipFile, limits: SheetLimits) -> None:
    """Sizes from the central directory, then every XML part inflated (up to its declared
    size, which :mod:`zipfile` enforces) and searched for a DTD."""
    parts = archive.infolist()
    if len(parts) > limits.max_parts:
        raise too_large("文件结构异常（部件过多）")
    if sum(part.file_size for part in parts) > limits.max_uncompressed_bytes:
        raise too_large(f"文件解压后超过 {limits.max_uncompressed_bytes // (1 << 20)} MB")
    for part in parts:
        if part.filename.endswith((".xml", ".rels", ".vml")):
            _refuse_dtd(archive, part)


def _refuse_dtd(archive: zipfile.ZipFile, part: zipfile.ZipInfo) -> None:
    tail = b""
    with archive.open(part) as stream:
        while chunk := stream.read(_CHUNK):
            window = tail + chunk
            if _DTD.search(window) or any(m in window for m in _DTD_UTF16):
                raise unreadable("文件包含不允许的 XML 声明（DTD 或实体），请另存为标准 xlsx")
            tail = window[-32:]


def _csv_rows(content: bytes) -> Iterator[Row]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise unreadable("CSV 文件编码无法识别，请保存为 UTF-8 或 GBK 编码")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        for number, values in enumerate(reader, start=1):
            yield number, list(values)
    except csv.Error as error:
        raise unreadable("CSV 文件格式错误") from error


# ------------------------------------------------------------------------- writing
FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralize(text: str) -> str:
    """Text a spreadsheet will never evaluate: a leading formula character is quoted."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def write_cell(sheet: Any, row: int, col: int, value: Any, cell_fmt: Any, date_fmt: Any) -> None:
    """One cell of an xlsxwriter worksheet: dates (the day) as dates, integers and
    decimals as numbers, anything else as neutralised text."""
    if isinstance(value, date):
        sheet.write_datetime(row, col, datetime(value.year, value.month, value.day), date_fmt)
    elif value is None:
        sheet.write_blank(row, col, None, cell_fmt)
    elif isinstance(value, int) and not isinstance(value, bool):
        sheet.write_number(row, col, value, cell_fmt)
    elif isinstance(value, Decimal):  # money (numeric columns): a number a sheet can sum
        sheet.write_number(row, col, float(value), cell_fmt)
    else:
        sheet.write_string(row, col, neutralize(str(value)), cell_fmt)


class LedgerSheet:
    """A ledger workbook written row by row in xlsxwriter's ``constant_memory`` mode to a
    temporary file: a title row across the columns, a header row, then :meth:`add` per
    data row (cells through :func:`write_cell`). :meth:`finish` zips it off the event
    loop and returns ``(path, rows)``; the caller streams and removes the file.
    :meth:`discard` removes it after a failure."""

    def __init__(
        self,
        *,
        prefix: str,
        sheet_name: str,
        title: str,
        headers: tuple[str, ...],
        widths: tuple[int, ...],
        freeze_cols: int = 2,
    ) -> None:
        fd, self.path = tempfile.mkstemp(prefix=prefix, suffix=".xlsx")
        os.close(fd)
        self.rows = 0
        self._book = xlsxwriter.Workbook(
            self.path, {"constant_memory": True, "tmpdir": tempfile.gettempdir()}
        )
        self._sheet = self._book.add_worksheet(sheet_name)
        title_fmt = self._book.add_format({"bold": True, "font_size": 14, "align": "center"})
        head_fmt = self._book.add_format({"bold": True, "border": 1, "bg_color": "#F2DCDB"})
        self._fmt = self._book.add_format({"border": 1})
        self._date_fmt = self._book.add_format({"border": 1, "num_format": "yyyy-mm-dd"})
        for col, width in enumerate(widths):
            self._sheet.set_column(col, col, width)
        self._sheet.merge_range(0, 0, 0, len(headers) - 1, title, title_fmt)
        for col, header in enumerate(headers):
            self._sheet.write_string(1, col, header, head_fmt)
        self._sheet.freeze_panes(2, freeze_cols)
        self._columns = len(headers)

    def add(self, values: list[Any]) -> None:
        self.rows += 1
        for col, value in enumerate(values):
            write_cell(self._sheet, self.rows + 1, col, value, self._fmt, self._date_fmt)

    async def finish(self) -> tuple[str, int]:
        self._sheet.autofilter(1, 0, 1 + self.rows, self._columns - 1)
        await asyncio.to_thread(self._book.close)
        return self.path, self.rows

    def discard(self) -> None:
        self._book.close()
        os.unlink(self.path)


# ------------------------------------------------------------------------ downloads
@dataclass(frozen=True)
class ExportResult:
    """A ledger workbook written to a temporary file, and how many data rows it holds."""

    path: str
    rows: int


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_download(result: ExportResult, *, ascii_name: str, name: str) -> StreamingResponse:
    """The written workbook as a streamed, uncached download named ``name`` (``ascii_name``
    for clients that cannot read RFC 5987), with its row count in ``X-Total-Count``."""
    return StreamingResponse(
        stream_file(result.path),
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quote(name)}",
            "X-Total-Count": str(result.rows),
            "Cache-Control": "no-store",
        },
    )


def stream_file(path: str) -> Iterator[bytes]:
    """The file's bytes as an iterator. The name is unlinked at once, so nothing is left
    behind even if the client goes away; the data is freed when the handle closes."""
    handle = open(path, "rb")  # noqa: SIM115 - closed by _chunks
    os.unlink(path)
    return _chunks(handle)


def _chunks(handle: BinaryIO, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    try:
        while chunk := handle.read(chunk_size):
            yield chunk
    finally:
        handle.close()
