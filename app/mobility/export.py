"""The outflow ledger as an xlsx workbook, in the layout a branch hands to the county.

Rows come from the ledger query through a server-side cursor and go straight into
xlsxwriter's ``constant_memory`` mode (one row in memory at a time, written to a
temporary file), so 100,000 rows export in constant memory. The HTTP layer streams
the file afterwards.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import date
from typing import Any

import xlsxwriter
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, pii
from app.core.config import Settings
from app.core.xlsx import ExportResult, write_cell
from app.mobility import repository
from app.mobility.repository import LedgerFilter, LedgerRow
from app.mobility.rules import flags_of
from app.regions import service as regions

CONTACT_PHONE = "outflow.contact_phone"

HEADERS = (
    "序号",
    "姓名",
    "性别",
    "所在支部",
    "外出原因",
    "流入地",
    "详细地址",
    "工作单位",
    "联系电话",
    "外出日期",
    "预计返回",
    "活动证编号",
    "状态",
    "报到组织",
    "最近报告",
    "标记",
    "位置授权",
    "返回日期",
)
WIDTHS = (6, 10, 5, 22, 8, 20, 28, 22, 14, 11, 11, 18, 8, 22, 17, 20, 8, 11)

GENDERS = {"male": "男", "female": "女"}
REASONS = {"work": "务工", "business": "经商", "study": "求学", "other": "其他"}
STATUSES = {
    "pending": "待审批",
    "active": "外出中",
    "rejected": "未通过",
    "returned": "已返回",
    "withdrawn": "已撤回",
    "cancelled": "已撤销",
    "transferred": "已转接",
}
CHECKIN = {"pending": "待确认", "accepted": "已报到", "refused": "已拒绝"}
FLAGS = {
    "checkin_overdue": "逾期未报到",
    "report_overdue": "逾期未报告",
    "lost_contact": "失联",
    "transfer_suggested": "建议转接",
}
TITLE_ROWS = 2  # title, then the header row; data starts on the third row


CONSENT = {True: "已授权位置信息", False: "未授权位置信息"}


def ledger_title(filters: LedgerFilter, today: date, org_name: str | None) -> str:
    """The sheet's title: which ledger, of which organisation, filtered how, as of when."""
    f = filters
    parts = [f"{org_name}及下级组织" if org_name else "管辖范围内全部"]
    if f.status:
        parts.append(f"状态：{STATUSES.get(f.status, f.status)}")
    if f.flag:
        parts.append(f"标记：{FLAGS.get(f.flag, f.flag)}")
    if f.destination_region_code:
        name = regions.region_name(f.destination_region_code) or f.destination_region_code
        parts.append(f"流入地：{name}")
    if f.reason:
        parts.append(f"外出原因：{REASONS.get(f.reason, f.reason)}")
    if f.checkin_status:
        parts.append(f"报到：{CHECKIN.get(f.checkin_status, '未报到')}")
    for label, start, end in (
        ("外出日期", f.departed_from, f.departed_to),
        ("返回日期", f.returned_from, f.returned_to),
    ):
        if start or end:
            parts.append(f"{label}：{start or ''}至{end or ''}")
    if f.q:
        parts.append(f"关键字：{f.q}")
    if f.consent is not None:
        parts.append(CONSENT[f.consent])
    return f"流动党员外出登记台账（{'；'.join(parts)}；截至 {today.isoformat()}）"


def row_values(index: int, row: LedgerRow, today: date, phone: str) -> list[Any]:
    o = row.outflow
    checkin = ""
    if row.checkin_org_name and o.checkin_status in CHECKIN:
        checkin = f"{row.checkin_org_name}（{CHECKIN[o.checkin_status]}）"
    last_report = (
        o.last_report_at.astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M")
        if o.last_report_at
        else ""
    )
    return [
        index,
        row.member_name,
        GENDERS.get(row.member_gender, row.member_gender),
        row.home_org_name,
        REASONS.get(o.reason, o.reason),
        regions.region_name(o.destination_region_code) or o.destination_region_code,
        o.destination_address,
        o.employer or "",
        phone,
        o.departed_on,
        o.expected_return_on,
        o.certificate_no or "",
        STATUSES.get(o.status, o.status),
        checkin,
        last_report,
        "、".join(FLAGS[f] for f in flags_of(o, today)),
        "已授权" if row.location_consent else "未授权",
        o.returned_on,
    ]


async def write_ledger_xlsx(
    session: AsyncSession,
    settings: Settings,
    visible: ColumnElement[bool],
    filters: LedgerFilter,
    today: date,
    *,
    full: bool,
    title: str,
) -> ExportResult:
    """Write the ledger to a temporary xlsx file; the caller streams and removes it."""
    fd, path = tempfile.mkstemp(prefix="outflows-", suffix=".xlsx")
    os.close(fd)
    ring = pii.keyring(settings) if full else None
    workbook = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": tempfile.gettempdir()})
    count = 0
    try:
        sheet = workbook.add_worksheet("流动党员台账")
        title_fmt = workbook.add_format({"bold": True, "font_size": 14, "align": "center"})
        head_fmt = workbook.add_format(
            {"bold": True, "border": 1, "bg_color": "#F2DCDB", "align": "center"}
        )
        cell_fmt = workbook.add_format({"border": 1})
        date_fmt = workbook.add_format({"border": 1, "num_format": "yyyy-mm-dd"})
        for col, width in enumerate(WIDTHS):
            sheet.set_column(col, col, width)
        sheet.merge_range(0, 0, 0, len(HEADERS) - 1, title, title_fmt)
        for col, header in enumerate(HEADERS):
            sheet.write_string(1, col, header, head_fmt)
        sheet.freeze_panes(TITLE_ROWS, 2)  # title and header stay, as do 序号 and 姓名
        async for row in repository.stream_ledger(session, visible, filters, today):
            count += 1
            phone = row.outflow.contact_phone_masked
            if ring is not None:
                phone = ring.decrypt(row.outflow.contact_phone_enc, context=CONTACT_PHONE)
            for col, value in enumerate(row_values(count, row, today, phone)):
                write_cell(sheet, TITLE_ROWS + count - 1, col, value, cell_fmt, date_fmt)
        # Filter buttons on the header row, over every data row written.
        sheet.autofilter(TITLE_ROWS - 1, 0, TITLE_ROWS - 1 + count, len(HEADERS) - 1)
        # Zipping the workbook is the one long CPU step: keep it off the event loop.
        await asyncio.to_thread(workbook.close)
    except BaseException:
        workbook.close()
        os.unlink(path)
        raise
    return ExportResult(path=path, rows=count)
