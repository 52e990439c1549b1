"""The hardship-case ledger as an xlsx workbook, streamed like the other ledgers.

Only the home subtree exports (the change verb): the ledger is the home organisation's
record of its members. Descriptions are written only with ``full=true`` and a reason;
every export is an audit entry. Cells go through :func:`app.core.xlsx.write_cell`, so
text a spreadsheet would take for a formula is neutralised.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.care import repository as repo
from app.care.cases import DESCRIPTION, KIND_NAMES, filters, org_conditions
from app.core import clock, pii
from app.core.config import Settings
from app.core.errors import AppError
from app.core.xlsx import ExportResult, LedgerSheet
from app.organization.scope import Scope

STATUS_NAMES = {"open": "帮扶中", "closed": "已结案"}
HEADERS = (
    "序号",
    "姓名",
    "组织关系所在党组织",
    "困难类型",
    "状态",
    "登记日期",
    "来源",
    "帮扶次数",
    "帮扶金额（元）",
    "结案时间",
    "困难情况",
)
WIDTHS = (6, 10, 28, 10, 8, 11, 8, 8, 14, 17, 50)


def row_values(index: int, row: Any, description: str | None) -> list[Any]:
    closed = row["closed_at"]
    return [
        index,
        row["member_name"],
        row["home_org_name"],
        KIND_NAMES[row["kind"]],
        STATUS_NAMES[row["status"]],
        row["opened_on"],
        "本人申请" if row["requested_by"] == "member" else "组织登记",
        row["help_count"],
        Decimal(row["funds_yuan"]),
        closed.astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M") if closed else None,
        description,
    ]


async def export_cases(
    session: AsyncSession,
    settings: Settings,
    scope: Scope,
    *,
    org_id: int | None,
    status: str | None,
    kind: str | None,
    full: bool,
    reason: str | None,
    today: date,
) -> ExportResult:
    if full and not (reason and reason.strip()):
        raise AppError("care.export_reason_required", 422, "导出困难情况须填写导出原因")
    where = [
        repo.case_changeable(scope),
        *await org_conditions(session, scope, org_id),
        *filters(status, kind),
    ]
    ring = pii.keyring(settings) if full else None
    sheet = LedgerSheet(
        prefix="care-",
        sheet_name="困难党员帮扶台账",
        title=f"困难党员帮扶台账（{today.isoformat()}）",
        headers=HEADERS,
        widths=WIDTHS,
    )
    try:
        async for row in repo.stream_export(session, where):
            description = (
                ring.decrypt(row["description_enc"], context=DESCRIPTION) if ring else None
            )
            sheet.add(row_values(sheet.rows + 1, row, description))
        path, count = await sheet.finish()
    except BaseException:
        sheet.discard()
        raise
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="care.export_full" if full else "care.export",
        org_id=org_id,
        subject_type="care_ledger",
        reason=reason,
        detail={"rows": count, "status": status or "", "kind": kind or ""},
    )
    return ExportResult(path=path, rows=count)
