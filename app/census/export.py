"""The census ledger and the 一企一档 file as xlsx workbooks.

The ledger streams rows from a server-side cursor into xlsxwriter's ``constant_memory``
mode (one row in memory at a time, written to a temporary file), like the outflow
ledger; the HTTP layer streams the file and removes it. Cells go through the shared
:func:`app.core.xlsx.write_cell`: text that a spreadsheet would take for a formula is
neutralised.
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from datetime import date
from functools import lru_cache
from typing import Any

import xlsxwriter
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.census import errors
from app.census import repository as repo
from app.census.codes import KINDS, TAGS, industry_name
from app.census.repository import LedgerFilter
from app.census.schemas import EntityFile
from app.census.service import CONTACT_PHONE, PERSON_IN_CHARGE, entity_scope
from app.census.views import industry_of, recommendation_reason
from app.core import pii
from app.core.config import Settings
from app.core.xlsx import ExportResult, write_cell
from app.organization.scope import Scope
from app.regions import service as regions

COVERAGE_NAMES = {
    "organization": "单独建立党组织",
    "joint": "联合建立党组织",
    "work": "选派指导员（工作覆盖）",
    "none": "未覆盖",
}
RECOMMENDATION_NAMES = {
    "form_standalone": "单独组建",
    "join_joint": "联合组建",
    "assign_instructor": "选派党建工作指导员",
}
OPERATING_NAMES = {"operating": "正常经营", "suspended": "停业", "closed": "已关闭"}
HEADERS = (
    "序号",
    "统一社会信用代码",
    "名称",
    "类型",
    "行业",
    "新业态",
    "行政区划",
    "地址",
    "从业人数",
    "负责人",
    "联系电话",
    "属地党组织",
    "行业党委",
    "覆盖情况",
    "所在党组织",
    "党员人数",
    "指导员人数",
    "组建建议",
    "建议理由",
    "最近摸排",
    "登记状态",
)
WIDTHS = (6, 21, 30, 10, 22, 16, 20, 30, 8, 8, 14, 22, 20, 18, 24, 8, 8, 16, 36, 11, 8)


@lru_cache(maxsize=4096)
def _region(code: str) -> str:
    return regions.region_name(code) or code


def ledger_values(index: int, row: Any, person: str | None, phone: str | None) -> list[Any]:
    """One ledger row as cells, straight from the query row (no model per row)."""
    section, division = row["industry_section"], row["industry_division"]
    return [
        index,
        row["credit_code"],
        row["name"],
        KINDS[row["kind"]],
        f"{division or section} {industry_name(section, division)}",
        "、".join(TAGS.get(t, t) for t in row["tags"] or ()),
        _region(row["region_code"]),
        row["address"],
        row["staff_count"],
        person,
        phone,
        row["responsible_org_name"],
        row["trade_org_name"],
        COVERAGE_NAMES[row["coverage"]],
        row["org_name"],
        row["member_count"],
        row["instructor_count"],
        RECOMMENDATION_NAMES.get(row["recommendation"] or ""),
        recommendation_reason(row["recommendation"], row["member_count"]),
        row["last_surveyed_on"],
        "注销" if row["status"] == "closed" else "存续",
    ]


async def write_ledger_xlsx(
    session: AsyncSession,
    settings: Settings,
    where: ColumnElement[bool],
    filters: LedgerFilter,
    *,
    full: bool,
    title: str,
) -> ExportResult:
    fd, path = tempfile.mkstemp(prefix="census-", suffix=".xlsx")
    os.close(fd)
    ring = pii.keyring(settings) if full else None
    book = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": tempfile.gettempdir()})
    count = 0
    try:
        sheet = book.add_worksheet("两个覆盖台账")
        title_fmt = book.add_format({"bold": True, "font_size": 14, "align": "center"})
        head_fmt = book.add_format({"bold": True, "border": 1, "bg_color": "#F2DCDB"})
        fmt = book.add_format({"border": 1})
        date_fmt = book.add_format({"border": 1, "num_format": "yyyy-mm-dd"})
        for col, width in enumerate(WIDTHS):
            sheet.set_column(col, col, width)
        sheet.merge_range(0, 0, 0, len(HEADERS) - 1, title, title_fmt)
        for col, header in enumerate(HEADERS):
            sheet.write_string(1, col, header, head_fmt)
        sheet.freeze_panes(2, 3)
        async for row in repo.stream_export(session, where, filters):
            count += 1
            person, phone = row["person_in_charge_masked"], row["contact_phone_masked"]
            if ring is not None:
                if row["person_in_charge_enc"] is not None:
                    person = ring.decrypt(row["person_in_charge_enc"], context=PERSON_IN_CHARGE)
                if row["contact_phone_enc"] is not None:
                    phone = ring.decrypt(row["contact_phone_enc"], context=CONTACT_PHONE)
            for col, value in enumerate(ledger_values(count, row, person, phone)):
                write_cell(sheet, count + 1, col, value, fmt, date_fmt)
        await asyncio.to_thread(book.close)
    except BaseException:
        book.close()
        os.unlink(path)
        raise
    return ExportResult(path=path, rows=count)


def entity_file_xlsx(file: EntityFile) -> bytes:
    """一企一档: profile, organisation and instructors, then every round's answers."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True})
    fmt = book.add_format({})
    date_fmt = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet = book.add_worksheet("单位档案")
    sheet.set_column(0, 0, 16)
    sheet.set_column(1, 1, 50)
    industry = industry_of(file.industry.section, file.industry.division)
    profile: list[tuple[str, Any]] = [
        ("统一社会信用代码", file.credit_code),
        ("名称", file.name),
        ("类型", KINDS[file.kind]),
        ("行业", f"{industry.code} {industry.name}"),
        ("新业态", "、".join(TAGS.get(t, t) for t in file.tags)),
        ("行政区划", file.region_name or file.region_code),
        ("地址", file.address),
        ("从业人数", file.staff_count),
        ("负责人", file.person_in_charge),
        ("联系电话", file.contact_phone),
        ("属地党组织", file.responsible_org.name),
        ("行业党委", file.trade_org.name if file.trade_org else None),
        ("覆盖情况", COVERAGE_NAMES[file.coverage]),
        ("所在党组织", file.organization.name if file.organization else None),
        ("党员人数", file.member_count),
        ("组建建议", RECOMMENDATION_NAMES.get(file.recommendation or "")),
        ("建议理由", recommendation_reason(file.recommendation, file.member_count)),
        ("党建工作指导员", "、".join(i.name for i in file.instructors)),
        ("登记状态", "注销" if file.status == "closed" else "存续"),
    ]
    for r, (label, value) in enumerate(profile):
        sheet.write_string(r, 0, label, bold)
        write_cell(sheet, r, 1, value, fmt, date_fmt)
    rounds = book.add_worksheet("历次摸排")
    heads = (
        "轮次", "摸排日期", "经营状况", "从业人数", "党员人数", "出资人（负责人）是否党员",
        "未建党组织原因", "工会", "共青团", "妇联", "当时覆盖情况", "备注",
    )  # fmt: skip
    for col, head in enumerate(heads):
        rounds.write_string(0, col, head, bold)
    for r, s in enumerate(file.surveys, start=1):
        values = (
            s.period,
            s.surveyed_on,
            OPERATING_NAMES[s.operating],
            s.staff_count,
            s.member_count,
            "是" if s.person_in_charge_is_member else "否",
            s.no_org_reason,
            "有" if s.union else "无",
            "有" if s.youth_league else "无",
            "有" if s.womens_org else "无",
            COVERAGE_NAMES[s.coverage],
            s.note,
        )
        for col, value in enumerate(values):
            write_cell(rounds, r, col, value, fmt, date_fmt)
    book.close()
    return out.getvalue()


async def export_ledger(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    *,
    org_id: int | None,
    filters: LedgerFilter,
    full: bool,
    reason: str | None,
    today: date,
) -> ExportResult:
    """Every export is audited; the one with full contacts needs a reason."""
    if full and not (reason and reason.strip()):
        raise errors.export_reason_required()
    where = await entity_scope(session, scope, org_id)
    title = f"新兴领域“两个覆盖”台账（{today.isoformat()}）"
    result = await write_ledger_xlsx(session, settings, where, filters, full=full, title=title)
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.export_full" if full else "census.export",
        org_id=org_id,
        subject_type="census_ledger",
        reason=reason,
        detail={
            "rows": result.rows,
            "filters": {k: str(v) for k, v in vars(filters).items() if v is not None},
        },
    )
    return result
