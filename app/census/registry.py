"""Registry import: the lists a county gets from market regulation and civil affairs.

Matched by unified social credit code: each valid row is new (created), changed
(updated), deregistered (closed) or unchanged. Like the roster import, every bad cell is
reported as ``{row, field, message}``, and the file is imported all-or-nothing unless
``partial``. Reading the file, validating the cells and encrypting personal data run in
a worker thread, off the event loop; the database work is a few set-based statements
(existing rows by ``= ANY(array)``, one multi-row INSERT, executemany UPDATEs).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.census import errors
from app.census import repository as repo
from app.census.codes import KINDS, TAGS, CreditCodeError, normalize_credit_code, parse_industry
from app.census.schemas import ImportResult, ImportRowError, ImportRowResult
from app.census.service import PERSON_IN_CHARGE, seal_contact
from app.core import pii, xlsx
from app.core.config import Settings
from app.identity.validators import MobilePhoneError, normalize_mobile_phone
from app.members.spreadsheet import dated_cell, detect_format, text_cell
from app.organization import repository as org_repo
from app.organization.scope import Scope, get_visible_org_ids
from app.regions.service import is_valid_region_code

MAX_ROWS: Final = 50_000
# The shared reader's limits (app/core/xlsx.py), sized for a county's registry: 50,000
# rows of up to 14 columns, plus a title and header rows.
LIMITS: Final = xlsx.SheetLimits(
    max_rows=MAX_ROWS + 20, max_columns=64, max_cells=1_000_000, max_seconds=30.0
)

COLUMNS: Final[dict[str, str]] = {
    "credit_code": "统一社会信用代码",
    "name": "名称",
    "kind": "类型",
    "industry_code": "行业代码",
    "tags": "新业态标签",
    "region_code": "行政区划代码",
    "address": "地址",
    "staff_count": "从业人数",
    "person_in_charge": "负责人",
    "contact_phone": "联系电话",
    "registration": "登记状态",
    "closed_on": "注销日期",
    "responsible_org": "属地党组织",
    "trade_org": "行业党委",
}
REQUIRED: Final = ("credit_code", "name", "industry_code", "region_code")
_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "credit_code": ("统一社会信用代码", "信用代码", "社会信用代码", "credit_code", "uscc"),
    "name": ("名称", "单位名称", "企业名称", "社会组织名称", "主体名称", "name"),
    "kind": ("类型", "单位类型", "主体类型", "市场主体类型", "kind"),
    "industry_code": ("行业代码", "行业", "所属行业", "国民经济行业代码", "industry_code"),
    "tags": ("新业态标签", "标签", "新业态", "tags"),
    "region_code": ("行政区划代码", "区划代码", "所在地区划代码", "region_code"),
    "address": ("地址", "住所", "经营场所", "详细地址", "address"),
    "staff_count": ("从业人数", "职工人数", "员工人数", "staff_count"),
    "person_in_charge": ("负责人", "法定代表人", "出资人", "经营者", "person_in_charge"),
    "contact_phone": ("联系电话", "手机号", "电话", "contact_phone"),
    "registration": ("登记状态", "经营状态", "状态", "registration", "status"),
    "closed_on": ("注销日期", "注销时间", "closed_on"),
    "responsible_org": ("属地党组织", "属地", "属地党（工）委", "responsible_org"),
    "trade_org": ("行业党委", "行业党组织", "trade_org"),
}
_HEADER: Final = {a.lower(): f for f, aliases in _ALIASES.items() for a in aliases}
_NOISE = re.compile(r"[\s*＊:：]|[（(](必填|选填|可选|必须)[)）]")
_KIND_TEXT: Final = (
    {v: k for k, v in KINDS.items()}
    | {k: k for k in KINDS}
    | {
        "个体户": "individual",
        "民办非企业单位": "social_org",
        "社会团体": "social_org",
        "基金会": "social_org",
    }
)
_TAG_TEXT: Final = {v: k for k, v in TAGS.items()} | {k: k for k in TAGS}
_ACTIVE: Final = {"存续", "在业", "开业", "正常", "在营", "active"}
_CLOSED: Final = {"注销", "吊销", "撤销", "已注销", "已吊销", "closed"}
# Columns compared to decide "changed" (personal data by blind index / plaintext).
_COMPARED: Final = (
    "name",
    "kind",
    "industry_section",
    "industry_division",
    "tags",
    "region_code",
    "address",
    "staff_count",
    "responsible_org_id",
    "trade_org_id",
    "status",
    "closed_on",
)


def _canonical(raw: Any) -> str | None:
    if raw is None:
        return None
    text = _NOISE.sub("", unicodedata.normalize("NFKC", str(raw))).lower()
    return _HEADER.get(text)


@dataclass
class Row:
    number: int
    values: dict[str, Any]
    person: str | None
    phone: str | None
    responsible_ref: str | None
    trade_ref: str | None


@dataclass
class Parsed:
    format: str
    rows: list[Row] = field(default_factory=list)
    errors: list[ImportRowError] = field(default_factory=list)
    bad: set[int] = field(default_factory=set)
    total: int = 0

    def add(self, row: int, column: str, message: str) -> None:
        self.errors.append(ImportRowError(row=row, field=COLUMNS[column], message=message))
        self.bad.add(row)


def parse_registry(source: list[xlsx.Row], kind: str) -> Parsed:
    """Validate every row read from the file (CPU only: runs in a worker thread)."""
    parsed = Parsed(format=kind)
    header: dict[int, str] | None = None
    seen: dict[str, int] = {}
    for number, cells in source:
        if header is None:
            found = {i: f for i, c in enumerate(cells) if (f := _canonical(c)) is not None}
            if found:
                header = found
            elif number >= 10:
                break
            continue
        if not any(c is not None and str(c).strip() for c in cells):
            continue
        parsed.total += 1
        record_ = {f: cells[i] for i, f in header.items() if i < len(cells)}
        row = _parse_row(number, record_, parsed)
        if row is None:
            continue
        earlier = seen.get(row.values["credit_code"])
        if earlier is not None:
            parsed.add(number, "credit_code", f"与第 {earlier} 行的统一社会信用代码重复")
            continue
        seen[row.values["credit_code"]] = number
        parsed.rows.append(row)
    if header is None:
        raise errors.missing_columns([COLUMNS[f] for f in REQUIRED])
    missing = [COLUMNS[f] for f in REQUIRED if f not in header.values()]
    if missing:
        raise errors.missing_columns(missing)
    if parsed.total == 0:
        raise errors.empty_file()
    return parsed


def _parse_row(number: int, cells: dict[str, Any], parsed: Parsed) -> Row | None:
    before = len(parsed.errors)
    values: dict[str, Any] = {}
    try:
        values["credit_code"] = normalize_credit_code(text_cell(cells.get("credit_code")))
    except CreditCodeError as error:
        parsed.add(number, "credit_code", error.message)
    name = text_cell(cells.get("name"))
    if not name or len(name) > 100:
        parsed.add(number, "name", "请填写名称（不超过100个字）")
    values["name"] = name
    kind_text = text_cell(cells.get("kind"))
    values["kind"] = _KIND_TEXT.get(kind_text, "enterprise" if not kind_text else None)
    if values["kind"] is None:
        parsed.add(number, "kind", "类型应为“企业”“社会组织”或“个体工商户”")
    try:
        values["industry_section"], values["industry_division"] = parse_industry(
            text_cell(cells.get("industry_code"))
        )
    except (ValueError, IndexError):
        parsed.add(number, "industry_code", "行业代码应为国民经济行业分类（GB/T 4754）的门类或大类")
    tags: set[str] = set()
    for part in re.split(r"[、,，;；/\s]+", text_cell(cells.get("tags"))):
        if part:
            tag = _TAG_TEXT.get(part)
            if tag is None:
                parsed.add(number, "tags", f"未知的新业态标签：{part[:20]}")
            else:
                tags.add(tag)
    values["tags"] = sorted(tags)
    region = text_cell(cells.get("region_code"))
    if not (len(region) == 6 and region.isdigit() and is_valid_region_code(region)):
        parsed.add(number, "region_code", "行政区划代码不存在")
    values["region_code"] = region
    address = text_cell(cells.get("address"))
    if len(address) > 200:
        parsed.add(number, "address", "地址不能超过200个字")
    values["address"] = address or None
    staff = text_cell(cells.get("staff_count"))
    values["staff_count"] = None
    if staff:
        if staff.isdigit() and int(staff) <= 10_000_000:
            values["staff_count"] = int(staff)
        else:
            parsed.add(number, "staff_count", "从业人数应为非负整数")
    person = text_cell(cells.get("person_in_charge")) or None
    if person is not None and len(person) > 50:
        parsed.add(number, "person_in_charge", "负责人姓名不能超过50个字")
    phone: str | None = None
    phone_text = text_cell(cells.get("contact_phone"))
    if phone_text:
        try:
            phone = normalize_mobile_phone(phone_text)
        except MobilePhoneError as error:
            parsed.add(number, "contact_phone", error.message)
    registration = text_cell(cells.get("registration"))
    values["status"] = "active"
    if registration in _CLOSED:
        values["status"] = "closed"
    elif registration and registration not in _ACTIVE:
        parsed.add(number, "registration", "登记状态应为“存续”“在业”或“注销”“吊销”")
    try:
        closed_on = dated_cell(cells.get("closed_on"))
        values["closed_on"] = closed_on.value if closed_on is not None else None
    except (ValueError, TypeError):
        parsed.add(number, "closed_on", "日期格式错误，请填写如 2026-06-15")
        values["closed_on"] = None
    if values["status"] == "active":
        values["closed_on"] = None
    if len(parsed.errors) > before:
        return None
    return Row(
        number=number,
        values=values,
        person=person,
        phone=phone,
        responsible_ref=text_cell(cells.get("responsible_org")) or None,
        trade_ref=text_cell(cells.get("trade_org")) or None,
    )


async def _resolve(
    session: AsyncSession,
    scope: Scope,
    parsed: Parsed,
    column: str,
    refs: list[tuple[Row, str | None]],
) -> dict[int, int | None]:
    """Sheet row -> organisation id (by id or exact name) inside the caller's scope."""
    found = await org_repo.resolve_refs(session, scope, [ref for _, ref in refs if ref])
    resolved: dict[int, int | None] = {}
    for row, ref in refs:
        org_id = found.get(ref) if ref else None
        if ref is None:
            resolved[row.number] = None
        elif org_id is None:
            parsed.add(row.number, column, "组织不存在或不在您的管辖范围内")
        elif org_id == org_repo.AMBIGUOUS:
            parsed.add(row.number, column, "存在多个同名组织，请改填组织编号")
        else:
            resolved[row.number] = org_id
    return resolved


def _seal_rows(settings: Settings, rows: list[tuple[Row, dict[str, Any]]]) -> None:
    for row, values in rows:
        values.update(seal_contact(settings, row.person, row.phone))


async def import_registry(
    session: AsyncSession,
    settings: Settings,
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
    kind = detect_format(content, filename)
    rows = await xlsx.read_rows(content, kind, LIMITS)
    parsed = await asyncio.to_thread(parse_registry, rows, kind)
    responsible = await _resolve(
        session, scope, parsed, "responsible_org", [(r, r.responsible_ref) for r in parsed.rows]
    )
    trade = await _resolve(
        session, scope, parsed, "trade_org", [(r, r.trade_ref) for r in parsed.rows]
    )
    existing = await repo.by_credit_codes(
        session, scope, [r.values["credit_code"] for r in parsed.rows if r.number not in parsed.bad]
    )
    ring = pii.keyring(settings)
    inserts: list[tuple[Row, dict[str, Any]]] = []
    updates: list[tuple[Row, dict[str, Any], str]] = []
    unchanged = 0
    for row in parsed.rows:
        if row.number in parsed.bad:
            continue
        values = dict(row.values)
        found = existing.get(values["credit_code"])
        org_id = responsible[row.number] or (found[0].responsible_org_id if found else None)
        org_id = org_id or default_org_id
        if org_id is None:
            parsed.add(
                row.number, "responsible_org", "请填写属地党组织，或在上传时选择导入到的组织"
            )
            continue
        values["responsible_org_id"] = org_id
        values["trade_org_id"] = trade[row.number]
        if found is None:
            inserts.append((row, values))
            continue
        entity, visible = found
        if not visible:
            parsed.add(
                row.number, "credit_code", "该单位已登记在您管辖范围以外的组织，请联系上级组织处理"
            )
            continue
        if trade[row.number] is None:
            values["trade_org_id"] = entity.trade_org_id
        same_phone = (row.phone is None and entity.contact_phone_idx is None) or (
            row.phone is not None
            and entity.contact_phone_idx == ring.blind_index(row.phone, context=pii.PHONE)
        )
        same_person = (row.person is None) == (entity.person_in_charge_enc is None) and (
            row.person is None
            or ring.decrypt(entity.person_in_charge_enc or b"", context=PERSON_IN_CHARGE)
            == row.person
        )
        changed = [c for c in _COMPARED if getattr(entity, c) != values[c]]
        if not changed and same_phone and same_person:
            unchanged += 1
            continue
        result = (
            "closed" if entity.status == "active" and values["status"] == "closed" else "updated"
        )
        values |= {"id": entity.id, "version": entity.version + 1}
        updates.append((row, values, result))

    parsed.errors.sort(key=lambda e: e.row)
    if parsed.errors and not partial:
        raise errors.invalid_rows([e.model_dump() for e in parsed.errors])
    await asyncio.to_thread(_seal_rows, settings, [(r, v) for r, v, _ in updates] + inserts)
    try:
        async with session.begin_nested():
            await repo.bulk_insert(session, [v for _, v in inserts])
    except IntegrityError:
        raise errors.import_conflict() from None
    await repo.bulk_update(session, [v for _, v, _ in updates])
    await session.flush()

    results = [
        ImportRowResult(
            row=r.number,
            credit_code=v["credit_code"],
            result="closed" if v["status"] == "closed" else "created",
        )
        for r, v in inserts
    ] + [
        ImportRowResult(row=r.number, credit_code=v["credit_code"], result=res)
        for r, v, res in updates
    ]
    results.sort(key=lambda x: x.row)
    counts = {"created": 0, "updated": 0, "closed": 0}
    for item in results:
        counts[item.result] += 1
    await record(
        session,
        actor_account_id=scope.principal.account_id,
        action="census.registry_import",
        org_id=default_org_id,
        subject_type="organization" if default_org_id else None,
        subject_id=default_org_id,
        detail={
            "format": parsed.format,
            "rows": parsed.total,
            **counts,
            "unchanged": unchanged,
            "rejected": len({e.row for e in parsed.errors}),
            "partial": partial,
        },
    )
    return ImportResult(**counts, unchanged=unchanged, rows=results, errors=parsed.errors)
