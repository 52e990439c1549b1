"""Roster import: validate every row, then write all of them at once (or none).

* Every bad cell is reported as ``{row, field, message}`` with the sheet's row number,
  the column's Chinese header and a Chinese reason; values are never echoed back (they
  are personal data).
* All-or-nothing per file unless ``partial``: then the valid rows are written and the
  rest reported.
* The same person (same ID number, by blind index) is updated, not duplicated; the
  existing rows are fetched in one query and locked, new rows go in one bulk INSERT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.service import record
from app.core import pii
from app.core.config import Settings
from app.core.crypto import PiiKeyring, mask_id_number, mask_phone
from app.identity.validators import (
    IdNumberError,
    MobilePhoneError,
    check_joined_on,
    normalize_id_number,
    normalize_mobile_phone,
    normalize_person_name,
    parse_id_number,
)
from app.members import conflicts, errors
from app.members import repository as repo
from app.members.repository import RosterRow
from app.members.schemas import ImportResult, ImportRowError
from app.members.spreadsheet import (
    COLUMNS,
    MAX_ROWS,
    CellDate,
    dated_cell,
    id_number_cell,
    read_sheet,
    text_cell,
)
from app.organization import repository as org_repo
from app.organization.scope import Scope, get_visible_org_ids

PRECISION_LOST = "身份证号被存成了数字，末尾几位已丢失；请把该列设为文本格式后重新填写"

_GENDERS = {"男": "male", "女": "female", "male": "male", "female": "female", "m": "male"}
_GENDERS |= {"f": "female", "男性": "male", "女性": "female"}
_STATUSES = {
    "正式党员": "full",
    "正式": "full",
    "full": "full",
    "预备党员": "probationary",
    "预备": "probationary",
    "probationary": "probationary",
}


@dataclass
class _Row:
    number: int
    name: str
    id_number: str
    gender: str
    birth_date: date
    phone: str | None
    joined_on: date | None
    status: str | None
    home_org_id: int | None = None
    index: bytes = b""


@dataclass
class _Report:
    errors: list[ImportRowError] = field(default_factory=list)
    bad_rows: set[int] = field(default_factory=set)

    def add(self, row: int, column: str, message: str) -> None:
        self.errors.append(ImportRowError(row=row, field=COLUMNS[column], message=message))
        self.bad_rows.add(row)


def _parse_row(number: int, cells: dict[str, Any], report: _Report) -> _Row | None:
    before = len(report.errors)
    name = normalize_person_name(text_cell(cells.get("name")))
    if not name:
        report.add(number, "name", "请填写姓名")
    elif len(name) > 50:
        report.add(number, "name", "姓名不能超过50个字")

    id_number = ""
    info = None
    try:
        id_number = normalize_id_number(id_number_cell(cells.get("id_number")))
        info = parse_id_number(id_number)
    except IdNumberError as error:
        report.add(number, "id_number", error.message)
    except ValueError:
        report.add(number, "id_number", PRECISION_LOST)

    gender: str | None = None
    gender_text = text_cell(cells.get("gender")).lower()
    if gender_text:
        gender = _GENDERS.get(gender_text)
        if gender is None:
            report.add(number, "gender", "性别应填写“男”或“女”")
        elif info is not None and gender != info.gender:
            report.add(number, "gender", "性别与身份证号不一致")

    birth = _dated(number, cells, "birth_date", report)
    if birth is not None and info is not None and not birth.agrees_with(info.birth_date):
        what = "出生年月" if birth.month_only else "出生日期"
        report.add(number, "birth_date", f"{what}与身份证号不一致")

    phone: str | None = None
    phone_text = text_cell(cells.get("phone"))
    if phone_text:
        try:
            phone = normalize_mobile_phone(phone_text)
        except MobilePhoneError as error:
            report.add(number, "phone", error.message)

    joined_on = _date(number, cells, "joined_on", report)
    if joined_on is not None:
        try:
            check_joined_on(joined_on)
        except ValueError as error:
            report.add(number, "joined_on", str(error))
        else:
            if info is not None and joined_on < info.birth_date:
                report.add(number, "joined_on", "入党日期不能早于出生日期")

    status: str | None = None
    status_text = text_cell(cells.get("status")).lower()
    if status_text:
        status = _STATUSES.get(status_text)
        if status is None:
            report.add(number, "status", "党员状态应填写“正式党员”或“预备党员”")

    if len(report.errors) > before or info is None:
        return None
    return _Row(
        number=number,
        name=name,
        id_number=id_number,
        gender=info.gender,
        birth_date=info.birth_date,
        phone=phone,
        joined_on=joined_on,
        status=status,
    )


def _dated(number: int, cells: dict[str, Any], column: str, report: _Report) -> CellDate | None:
    try:
        return dated_cell(cells.get(column))
    except ValueError:
        report.add(number, column, "日期格式错误，请填写如 1985-06-15 或 1985年6月")
        return None


def _date(number: int, cells: dict[str, Any], column: str, report: _Report) -> date | None:
    parsed = _dated(number, cells, column, report)
    return parsed.value if parsed is not None else None


async def _resolve_orgs(
    session: AsyncSession,
    scope: Scope,
    refs: list[tuple[int, str | None]],
    default_org_id: int | None,
    report: _Report,
) -> dict[int, int]:
    """``sheet row -> home org id`` for every row whose 所在支部 resolves in scope."""
    found = await org_repo.resolve_refs(session, scope, [ref for _, ref in refs if ref])
    resolved: dict[int, int] = {}
    for number, ref in refs:
        org_id = found.get(ref) if ref else None
        if ref is None:
            if default_org_id is None:
                report.add(number, "org", "请填写所在支部，或在上传时选择导入到的组织")
            else:
                resolved[number] = default_org_id
        elif org_id is None:
            report.add(number, "org", "所在支部不存在或不在您的管辖范围内")
        elif org_id == org_repo.AMBIGUOUS:
            report.add(number, "org", "存在多个同名组织，请改填组织编号")
        else:
            resolved[number] = org_id
    return resolved


def _flag_duplicates(rows: list[_Row], report: _Report) -> None:
    first_seen: dict[bytes, int] = {}
    for row in rows:
        earlier = first_seen.get(row.index)
        if earlier is None:
            first_seen[row.index] = row.number
        else:
            report.add(row.number, "id_number", f"与第 {earlier} 行的身份证号重复")


def _same_as_roster(row: _Row, found: RosterRow, ring: PiiKeyring) -> bool:
    """Would importing this row change nothing? Empty optional cells keep what is there."""
    return (
        row.name == found.name
        and row.home_org_id == found.home_org_id
        and row.gender == found.gender
        and row.birth_date == found.birth_date
        and (row.phone is None or ring.blind_index(row.phone, context=pii.PHONE) == found.phone_idx)
        and (row.joined_on is None or row.joined_on == found.joined_on)
        and (row.status is None or row.status == found.status)
    )


async def import_roster(
    session: AsyncSession,
    settings: Settings,
    engine: AsyncEngine,
    scope: Scope,
    *,
    content: bytes,
    filename: str | None,
    default_org_id: int | None,
    partial: bool,
) -> ImportResult:
    if default_org_id is not None and not await get_visible_org_ids(
        session, scope, [default_org_id]
    ):
        raise errors.org_not_found()
    sheet = await read_sheet(content, filename, max_rows=MAX_ROWS)
    report = _Report()
    parsed = [_parse_row(number, cells, report) for number, cells in sheet.rows]
    rows = [r for r in parsed if r is not None]
    refs = [(number, text_cell(cells.get("org")) or None) for number, cells in sheet.rows]
    homes = await _resolve_orgs(session, scope, refs, default_org_id, report)
    for row in rows:
        row.home_org_id = homes.get(row.number)

    ring = pii.keyring(settings)
    for row in rows:
        row.index = ring.blind_index(row.id_number, context=pii.ID_NUMBER)
    _flag_duplicates(rows, report)

    existing = await repo.by_id_number_indexes(
        session, [r.index for r in rows if r.number not in report.bad_rows], for_update=True
    )
    home_ids = sorted({found.home_org_id for found in existing.values()})
    # The *change* verb: a row updates a member only where the caller owns his record.
    manageable = await get_visible_org_ids(session, scope, home_ids)
    holders: list[conflicts.Holder] = []
    tried_at = default_org_id  # where the caller tried: his default, else a row's branch
    for row in rows:
        found = existing.get(row.index)
        if (
            found is not None
            and found.home_org_id not in manageable
            and row.number not in report.bad_rows
        ):
            # The same answer as POST /members, wherever the number is registered.
            report.add(row.number, "id_number", errors.id_number_taken().detail)
            holders.append(conflicts.Holder(found.id, found.home_org_id))
            tried_at = tried_at or row.home_org_id

    report.errors.sort(key=lambda e: e.row)
    if holders:
        refusal = await conflicts.refused(
            engine,
            scope,
            errors.invalid_rows([e.model_dump() for e in report.errors]),
            via="import",
            org_id=tried_at,
            holders=holders,
        )
        if not partial or refusal.status == 429:
            raise refusal
        await conflicts.record_conflicts(
            session, scope, via="import", org_id=tried_at, holders=holders, count=len(holders)
        )
    elif report.errors and not partial:
        raise errors.invalid_rows([e.model_dump() for e in report.errors])

    good = [r for r in rows if r.number not in report.bad_rows]
    inserts: list[dict[str, Any]] = []
    updates: dict[frozenset[str], list[dict[str, Any]]] = {}
    unchanged = 0
    for row in good:
        found = existing.get(row.index)
        if found is not None and _same_as_roster(row, found, ring):
            unchanged += 1  # no write at all: version and updated_at stay
            continue
        values: dict[str, Any] = {
            "name": row.name,
            "gender": row.gender,
            "birth_date": row.birth_date,
            "home_org_id": row.home_org_id,
        }
        if row.phone is not None:
            values |= {
                "phone_enc": ring.encrypt(row.phone, context=pii.PHONE),
                "phone_idx": ring.blind_index(row.phone, context=pii.PHONE),
                "phone_masked": mask_phone(row.phone),
            }
        if row.joined_on is not None:
            values["joined_on"] = row.joined_on
        if found is None:
            values |= {
                "id_number_enc": ring.encrypt(row.id_number, context=pii.ID_NUMBER),
                "id_number_idx": row.index,
                "id_number_masked": mask_id_number(row.id_number),
                "status": row.status or "full",
                "phone_enc": values.get("phone_enc"),
                "phone_idx": values.get("phone_idx"),
                "phone_masked": values.get("phone_masked"),
                "joined_on": row.joined_on,
            }
            inserts.append(values)
        else:
            if row.status is not None:
                values["status"] = row.status
            values |= {"id": found.id, "version": found.version + 1}
            updates.setdefault(frozenset(values), []).append(values)

    try:
        async with session.begin_nested():
            created = await repo.bulk_insert(session, inserts)
    except IntegrityError:
        # Another import or registration added one of these ID numbers meanwhile.
        raise errors.import_conflict() from None
    updated = 0
    for batch in updates.values():
        updated += await repo.bulk_update(session, batch)
    await session.flush()
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="members.import",
        org_id=default_org_id,
        subject_type="organization" if default_org_id else None,
        subject_id=default_org_id,
        detail={
            "format": sheet.format,
            "rows": len(sheet.rows),
            "created": created,
            "updated": updated,
            "unchanged": unchanged,
            "rejected": len(report.bad_rows),
            "partial": partial,
        },
    )
    return ImportResult(created=created, updated=updated, unchanged=unchanged, errors=report.errors)
