"""Registry import: 1,000 entities with 10 bad rows, then a re-import that changes,
closes and leaves rows alone."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.census.models import CensusEntity
from app.core.config import Settings
from tests.conftest import problem
from tests.support.census import (
    County,
    census_day,  # noqa: F401 - autouse: 2026-12-01
    county,
    credit_code,
)
from tests.support.roster import csv_bytes, xlsx_bytes

API = "/api/v1/census/entities/import"
HEADERS = [
    "统一社会信用代码",
    "名称",
    "类型",
    "行业代码",
    "新业态标签",
    "行政区划代码",
    "地址",
    "从业人数",
    "负责人",
    "联系电话",
    "登记状态",
    "注销日期",
    "属地党组织",
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _row(c: County, index: int, code: str | None = None, **change: Any) -> list[Any]:
    values = {
        "code": code or credit_code(),
        "name": f"岳池县第{index}物流有限公司",
        "kind": "企业",
        "industry": "54",
        "tags": "快递物流、网约车" if index % 3 == 0 else "",
        "region": "511621",
        "address": f"九龙街道{index}号",
        "staff": index % 50,
        "person": "赵六",
        "phone": f"139{index:08d}",
        "registration": "存续",
        "closed_on": "",
        "org": c.street_a.name if index % 2 else str(c.street_b.id),
    } | change
    return list(values.values())


async def _upload(
    client: httpx.AsyncClient, c: County, content: bytes, name: str = "名录.xlsx", **params: Any
) -> httpx.Response:
    mime = XLSX if name.endswith("xlsx") else "text/csv"
    return await client.post(
        API, files={"file": (name, content, mime)}, params=params, headers=c.admin.headers
    )


async def _count(db: AsyncSession) -> int:
    return (await db.execute(select(func.count()).select_from(CensusEntity))).scalar_one()


async def test_a_thousand_rows_with_ten_bad_ones(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    rows = [_row(c, i) for i in range(1, 1001)]
    bad_code = rows[9][0][:17] + ("0" if rows[9][0][17] != "0" else "1")
    rows[9] = _row(c, 10, bad_code)  # sheet row 11
    rows[99] = _row(c, 100, region="519999")  # row 101
    rows[199] = _row(c, 200, rows[198][0])  # row 201: duplicate of row 200
    rows[299] = _row(c, 300, name="")  # row 301
    rows[399] = _row(c, 400, industry="98")  # row 401
    rows[499] = _row(c, 500, tags="太空旅行")  # row 501
    rows[599] = _row(c, 600, phone="12345")  # row 601
    rows[699] = _row(c, 700, org="不存在的街道")  # row 701
    rows[799] = _row(c, 800, org=c.other_county.name)  # row 801: outside scope
    rows[899] = _row(c, 900, staff="很多")  # row 901
    content = xlsx_bytes(rows, HEADERS)

    refused = await _upload(client, c, content)
    body = problem(refused, 422, "import.invalid_rows")
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (11, "统一社会信用代码"),
        (101, "行政区划代码"),
        (201, "统一社会信用代码"),
        (301, "名称"),
        (401, "行业代码"),
        (501, "新业态标签"),
        (601, "联系电话"),
        (701, "属地党组织"),
        (801, "属地党组织"),
        (901, "从业人数"),
    ]
    messages = {e["row"]: e["message"] for e in body["errors"]}
    assert "校验位" in messages[11] and "与第 200 行" in messages[201]
    assert "不存在或不在您的管辖范围内" in messages[801]
    assert await _count(db) == 0  # all-or-nothing

    partial = await _upload(client, c, content, partial="true")
    assert partial.status_code == 200, partial.text
    result = partial.json()
    assert (result["created"], result["updated"], result["closed"], result["unchanged"]) == (
        990,
        0,
        0,
        0,
    )
    assert len(result["errors"]) == 10 and len(result["rows"]) == 990
    assert await _count(db) == 990
    tagged = (
        await db.execute(
            select(func.count()).where(CensusEntity.tags.contains(["express_delivery"]))
        )
    ).scalar_one()
    assert tagged == sum(1 for i in range(1, 1001) if i % 3 == 0) - 3  # rows 300, 600, 900 bad
    on_b = (
        await db.execute(
            select(func.count()).where(CensusEntity.responsible_org_id == c.street_b.id)
        )
    ).scalar_one()
    assert on_b == 500 - 10  # even rows go to street B by id; all ten bad rows are even
    audit = (
        await db.execute(select(AuditEntry).where(AuditEntry.action == "census.registry_import"))
    ).scalar_one()
    assert audit.detail["created"] == 990 and audit.detail["rejected"] == 10


async def test_reimport_reports_changed_closed_and_unchanged_rows(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    rows = [_row(c, i) for i in range(1, 6)]
    first = await _upload(client, c, csv_bytes(rows, HEADERS), "名录.csv")
    assert first.json()["created"] == 5
    rows[1] = _row(c, 2, rows[1][0], address="朝阳街道新址8号")
    rows[2] = _row(c, 3, rows[2][0], registration="注销", closed_on="2026-11-20")
    rows[3] = _row(c, 4, rows[3][0], phone="13900000000")
    rows.append(_row(c, 6))
    second = await _upload(client, c, csv_bytes(rows, HEADERS), "名录.csv")
    assert second.status_code == 200, second.text
    result = second.json()
    assert (result["created"], result["updated"], result["closed"], result["unchanged"]) == (
        1,
        2,
        1,
        2,
    )
    assert [(r["row"], r["result"]) for r in result["rows"]] == [
        (3, "updated"),
        (4, "closed"),
        (5, "updated"),
        (7, "created"),
    ]
    closed = (
        await db.execute(select(CensusEntity).where(CensusEntity.credit_code == rows[2][0]))
    ).scalar_one()
    assert (closed.status, closed.closed_on.isoformat() if closed.closed_on else None) == (
        "closed",
        "2026-11-20",
    )
    moved = (
        await db.execute(select(CensusEntity).where(CensusEntity.credit_code == rows[1][0]))
    ).scalar_one()
    assert moved.address == "朝阳街道新址8号" and moved.version == 2


async def test_the_other_county_cannot_touch_our_entities(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    row = _row(c, 1)
    await _upload(client, c, csv_bytes([row], HEADERS), "名录.csv")
    theirs = [_row(c, 1, row[0], org=c.other_county.name, name="改名")]
    response = await client.post(
        API,
        files={"file": ("名录.csv", csv_bytes(theirs, HEADERS), "text/csv")},
        headers=c.other_admin.headers,
    )
    body = problem(response, 422, "import.invalid_rows")
    assert body["errors"][0]["field"] == "统一社会信用代码"
    name = (await db.execute(select(CensusEntity.name))).scalar_one()
    assert name == "岳池县第1物流有限公司"


async def test_unusable_files(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    c = await county(db, settings)
    problem(
        await _upload(client, c, b"\xd0\xcf\x11\xe0" + b"0" * 100, "名录.xls"),
        422,
        "import.unsupported_format",
    )
    problem(await _upload(client, c, b"PK\x03\x04garbage", "名录.xlsx"), 422, "import.unreadable")
    no_code = csv_bytes([["某公司", "54"]], ["名称", "行业代码"])
    body = problem(await _upload(client, c, no_code, "名录.csv"), 422, "import.missing_columns")
    assert "统一社会信用代码" in body["detail"]
    problem(await _upload(client, c, csv_bytes([], HEADERS), "名录.csv"), 422, "import.empty")
    outside = await _upload(
        client, c, csv_bytes([_row(c, 1)], HEADERS), "名录.csv", org_id=c.other_county.id
    )
    problem(outside, 404, "census.org_not_found")
    assert await _count(db) == 0
