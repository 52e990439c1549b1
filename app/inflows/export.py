"""The inflow ledger's xlsx layout: its title, columns and one row's cells (the workbook
itself is :class:`app.core.xlsx.LedgerSheet`, streamed by the router)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import RowMapping

from app.core import clock
from app.inflows.repository import LedgerFilter
from app.inflows.rules import flags_of
from app.inflows.views import region_name

HEADERS = (
    "序号",
    "姓名",
    "身份证号",
    "联系电话",
    "原所在党组织",
    "原所在地",
    "工作单位",
    "到达日期",
    "登记组织",
    "来源",
    "摸排单位",
    "状态",
    "名册匹配",
    "标记",
    "核实日期",
    "核实意见",
)
WIDTHS = (6, 10, 20, 14, 24, 18, 22, 11, 22, 8, 22, 8, 10, 20, 11, 24)

STATUSES = {
    "candidate": "摸排线索",
    "pending": "待核实",
    "verified": "已核实",
    "rejected": "未通过",
    "withdrawn": "已撤回",
}
SOURCES = {"declaration": "本人登记", "census": "摸排发现"}
FLAGS = {"transfer_suggested": "建议转接组织关系", "verify_overdue": "逾期未核实"}


def ledger_title(filters: LedgerFilter, today: date, org_name: str | None) -> str:
    parts = [f"{org_name}及下级组织" if org_name else "管辖范围内全部"]
    if filters.status:
        parts.append(f"状态：{STATUSES.get(filters.status, filters.status)}")
    if filters.source:
        parts.append(f"来源：{SOURCES.get(filters.source, filters.source)}")
    if filters.flag:
        parts.append(f"标记：{FLAGS.get(filters.flag, filters.flag)}")
    if filters.q:
        parts.append(f"关键字：{filters.q}")
    return f"流入党员台账（{'；'.join(parts)}；截至 {today.isoformat()}）"


def row_values(
    index: int, row: RowMapping, today: date, id_number: str, phone: str | None
) -> list[Any]:
    flags = flags_of(row["status"], row["matched_member_id"], row["created_at"], today)
    matched = ""
    if row["status"] == "verified":
        matched = "名册党员（双向共管）" if row["matched_member_id"] else "名册外"
    return [
        index,
        row["name"],
        id_number,
        phone,
        row["home_org_name"],
        region_name(row["home_region_code"]),
        row["employer"],
        row["arrived_on"],
        row["org_name"],
        SOURCES[row["source"]],
        row["entity_name"],
        STATUSES[row["status"]],
        matched,
        "、".join(FLAGS[f] for f in flags),
        clock.shanghai_day(row["decided_at"]) if row["decided_at"] else None,
        row["decision_note"],
    ]
