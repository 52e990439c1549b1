"""Reading roster files (xlsx, csv) into header-mapped rows, and writing the template.

The columns are the ones branches already keep in their Excel ledgers (姓名, 性别,
出生日期, 身份证号, 手机号, 所在支部, 入党日期, 党员状态); common variants of each header
are accepted. Nothing here touches the database.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from app.core import xlsx
from app.core.xlsx import XLSX_MAGIC
from app.members import errors

OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0"  # legacy .xls

# Canonical field -> the header shown in the template and in error reports.
COLUMNS: Final[dict[str, str]] = {
    "name": "姓名",
    "gender": "性别",
    "birth_date": "出生日期",
    "id_number": "身份证号",
    "phone": "手机号",
    "org": "所在支部",
    "joined_on": "入党日期",
    "status": "党员状态",
}
REQUIRED: Final = ("name", "id_number")
MAX_ROWS: Final = 20_000
# Every sheet row counts, empty or not; a few more than MAX_ROWS for titles and blanks.
LIMITS: Final = xlsx.SheetLimits(max_rows=MAX_ROWS + 50, max_columns=64)

_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "name": ("姓名", "名字", "党员姓名", "name"),
    "gender": ("性别", "gender", "sex"),
    "birth_date": ("出生日期", "出生年月", "出生年月日", "生日", "birthdate", "birth_date"),
    "id_number": (
        "身份证号",
        "身份证号码",
        "公民身份号码",
        "公民身份证号",
        "身份证",
        "证件号码",
        "idnumber",
        "id_number",
    ),
    "phone": ("手机号", "手机号码", "手机", "联系电话", "联系方式", "电话", "phone", "mobile"),
    "org": (
        "所在支部",
        "所在党支部",
        "所在党组织",
        "所属支部",
        "所属党组织",
        "党组织",
        "支部",
        "组织",
        "home_org",
        "home_org_id",
        "org",
    ),
    "joined_on": ("入党日期", "入党时间", "入党年月", "joined_on", "joindate"),
    "status": ("党员状态", "党员类型", "人员类别", "党员类别", "status"),
}
_HEADER_TO_FIELD: Final = {
    alias.lower(): field for field, aliases in _ALIASES.items() for alias in aliases
}
_HEADER_NOISE = re.compile(r"[\s*＊:：]|[（(](必填|选填|可选|必须)[)）]")


def canonical_header(raw: Any) -> str | None:
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", str(raw))
    text = _HEADER_NOISE.sub("", text).lower()
    return _HEADER_TO_FIELD.get(text)


@dataclass(frozen=True)
class Sheet:
    """Header-mapped rows: ``(sheet row number, {field: raw cell value})``."""

    fields: tuple[str, ...]
    rows: list[tuple[int, dict[str, Any]]]
    format: str


def detect_format(content: bytes, filename: str | None) -> str:
    name = (filename or "").lower()
    if content.startswith(XLSX_MAGIC):
        return "xlsx"
    if content.startswith(OLE_MAGIC) or name.endswith((".xls", ".xlsx", ".xlsm", ".et", ".wps")):
        raise errors.unsupported_format()
    if b"\x00" in content[:4096]:
        raise errors.unsupported_format()
    if name.endswith((".csv", ".txt")) or not name:
        return "csv"
    raise errors.unsupported_format()


async def read_sheet(content: bytes, filename: str | None, *, max_rows: int) -> Sheet:
    """The header-mapped rows of a roster file; the file is parsed off the event loop
    within :data:`LIMITS` (see :mod:`app.core.xlsx`)."""
    kind = detect_format(content, filename)
    raw_rows = await xlsx.read_rows(content, kind, LIMITS)
    header: dict[int, str] | None = None
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, cells in raw_rows:
        if header is None:
            mapped = {i: canonical_header(c) for i, c in enumerate(cells)}
            found = {i: f for i, f in mapped.items() if f is not None}
            if not found:
                # A title line above the table ("XX支部党员名册"): keep looking a little.
                if any(_present(c) for c in cells) and number >= 10:
                    break
                continue
            header = found
            continue
        if not any(_present(c) for c in cells):
            continue
        record = {field: cells[i] for i, field in header.items() if i < len(cells)}
        rows.append((number, record))
        if len(rows) > max_rows:
            raise xlsx.too_many_rows(max_rows)
    if header is None:
        raise errors.missing_columns([COLUMNS[f] for f in REQUIRED])
    fields = tuple(dict.fromkeys(header.values()))
    missing = [COLUMNS[f] for f in REQUIRED if f not in fields]
    if missing:
        raise errors.missing_columns(missing)
    if not rows:
        raise errors.empty_file()
    return Sheet(fields=fields, rows=rows, format=kind)


def _present(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


# ------------------------------------------------------------------------- cells
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
_MONTH_PATTERNS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月?$"),
)


def text_cell(value: Any) -> str:
    """A cell as trimmed text; whole-number floats lose their ``.0``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


@dataclass(frozen=True)
class CellDate:
    """A date read from a cell; ``month_only`` when the cell gave a month (出生年月
    "1990年1月", 入党年月 "1998.07"): ``value`` is then the first of that month."""

    value: date
    month_only: bool = False

    def agrees_with(self, exact: date) -> bool:
        """Does it name ``exact``, at the precision it was written with?"""
        if self.month_only:
            return (self.value.year, self.value.month) == (exact.year, exact.month)
        return self.value == exact


def dated_cell(value: Any) -> CellDate | None:
    """A date from an Excel date cell or a text such as 1985-06-15, 1985/6/15, 1985年6月15日,
    or a month such as 1985.06, 1985-6, 1985年6月.

    Raises ``ValueError`` for text that is not a date.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return CellDate(value.date())
    if isinstance(value, date):
        return CellDate(value)
    text = text_cell(value)
    if not text:
        return None
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            return CellDate(date(int(match[1]), int(match[2]), int(match[3])))
    for pattern in _MONTH_PATTERNS:
        match = pattern.match(text)
        if match:
            return CellDate(date(int(match[1]), int(match[2]), 1), month_only=True)
    raise ValueError(text)


def id_number_cell(value: Any) -> str:
    """The ID number as text; a float means Excel turned it into a number and lost digits."""
    if isinstance(value, float) and abs(value) >= 1e15:
        raise ValueError("precision")
    return text_cell(value)


# ---------------------------------------------------------------------- template
TEMPLATE_NOTES = (
    "填写说明",
    "1. 姓名、身份证号为必填；出生日期、性别可不填，系统按身份证号自动识别，"
    "填写时必须与身份证号一致。",
    "2. 身份证号、手机号请保持文本格式，以免 Excel 把长数字变成科学计数法。",
    "3. 所在支部填写组织全称或组织编号，须在您的管辖范围内；不填时导入到上传时选择的组织。",
    "4. 党员状态填写“正式党员”或“预备党员”，不填默认为正式党员。",
    "5. 日期格式：1985-06-15 或 1985年6月15日；出生年月可只写到月，如 1985年6月 或 1985.06。",
    "6. 按身份证号识别同一人：再次导入会更新已有党员，不会重复创建。",
    "7. 默认有任何一行错误则整份名册不导入；可选择“仅导入正确的行”。",
)


def build_template() -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = "党员名册"
    headers = list(COLUMNS.values())
    sheet.append(headers)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="FDE9D9")
    for cell in sheet[1]:
        cell.font = bold
        cell.fill = fill
    widths = {"A": 12, "B": 8, "C": 14, "D": 22, "E": 16, "F": 28, "G": 14, "H": 12}
    for column, width in widths.items():
        sheet.column_dimensions[column].width = width
        # Text format so long ID numbers and phones stay exact.
        if column in ("D", "E"):
            for row in range(2, 1002):
                sheet[f"{column}{row}"].number_format = "@"
    gender = DataValidation(type="list", formula1='"男,女"', allow_blank=True)
    status = DataValidation(type="list", formula1='"正式党员,预备党员"', allow_blank=True)
    sheet.add_data_validation(gender)
    sheet.add_data_validation(status)
    gender.add("B2:B5001")
    status.add("H2:H5001")
    sheet.freeze_panes = "A2"
    notes = book.create_sheet("填写说明")
    for line in TEMPLATE_NOTES:
        notes.append([line])
    notes.column_dimensions["A"].width = 100
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
