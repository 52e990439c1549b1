"""Roster import (xlsx/csv) and its template."""

from __future__ import annotations

import asyncio
import io
from datetime import date, datetime

import httpx
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEntry
from app.core import pii
from app.core.config import Settings
from app.members.models import Member
from app.members.service import find_by_id_number
from app.organization.models import Organization
from tests import factories as f
from tests.conftest import problem
from tests.factories import Actor
from tests.support.roster import HEADERS, csv_bytes, xlsx_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _setup(db: AsyncSession, settings: Settings) -> tuple[dict[str, Organization], Actor]:
    county = await f.org(db, "岳池县委")
    village = await f.org(db, "花园村党支部", parent=county)
    village2 = await f.org(db, "白庙村党支部", parent=county)
    other = await f.org(db, "邻县县委")
    other_branch = await f.org(db, "邻县某支部", parent=other)
    admin = await f.admin_actor(db, settings, county)
    orgs = {
        "county": county,
        "village": village,
        "village2": village2,
        "other": other,
        "other_branch": other_branch,
    }
    return orgs, admin


async def _upload(
    client: httpx.AsyncClient,
    actor: Actor,
    content: bytes,
    name: str = "名册.xlsx",
    mime: str = XLSX,
    **params: object,
) -> httpx.Response:
    return await client.post(
        "/api/v1/members/import",
        files={"file": (name, content, mime)},
        params=params,
        headers=actor.headers,
    )


async def _count(db: AsyncSession) -> int:
    return (await db.execute(select(func.count()).select_from(Member))).scalar_one()


async def test_xlsx_import_creates_then_updates_by_id_number(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t, admin = await _setup(db, settings)
    before = await _count(db)
    wang = f.make_id_number(date(1988, 5, 2))
    liu = f.make_id_number(date(1992, 11, 30), female=True)
    rows = [
        [
            "王建国",
            "男",
            datetime(1988, 5, 2),
            wang,
            13800138000,
            "花园村党支部",
            date(2012, 7, 1),
            "正式党员",
        ],
        ["刘芳", "", "", liu.lower(), "", t["village2"].id, "2015年7月1日", "预备党员"],
        [
            "陈志强",
            None,
            "1985/01/17",
            f.make_id_number(date(1985, 1, 17)),
            "139 1234 5678",
            None,
            "2010.07",
            None,
        ],
    ]
    done = await _upload(client, admin, xlsx_bytes(rows), org_id=t["village"].id)
    assert done.status_code == 200, done.text
    assert done.json() == {"created": 3, "updated": 0, "unchanged": 0, "errors": []}
    assert await _count(db) == before + 3

    first = await find_by_id_number(db, settings, wang)
    second = await find_by_id_number(db, settings, liu)
    assert first is not None and second is not None
    assert (first.home_org_id, first.gender, first.status) == (t["village"].id, "male", "full")
    assert first.joined_on == date(2012, 7, 1) and first.phone_masked == "138****8000"
    assert (second.home_org_id, second.gender, second.status) == (
        t["village2"].id,
        "female",
        "probationary",
    )
    assert second.birth_date == date(1992, 11, 30) and second.phone_enc is None
    ring = pii.keyring(settings)
    assert ring.decrypt(second.id_number_enc, context=pii.ID_NUMBER) == liu.upper()

    # Re-import: same people, new data; nothing is duplicated.
    rows[0][1:] = ["男", None, wang, "13900001111", "白庙村党支部", None, "正式党员"]
    rows[1][7] = "正式党员"
    again = await _upload(client, admin, xlsx_bytes(rows[:2]), org_id=t["village"].id)
    assert again.json() == {"created": 0, "updated": 2, "unchanged": 0, "errors": []}
    assert await _count(db) == before + 3
    refreshed = (
        (
            await db.execute(
                select(Member)
                .where(Member.id.in_([first.id, second.id]))
                .order_by(Member.id)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    assert [(m.home_org_id, m.status, m.version) for m in refreshed] == [
        (t["village2"].id, "full", 2),
        (t["village2"].id, "full", 2),
    ]
    assert refreshed[0].phone_masked == "139****1111"
    assert refreshed[0].joined_on == date(2012, 7, 1)  # empty cell keeps the old value

    audits = (
        (
            await db.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "members.import")
                .order_by(AuditEntry.id)
            )
        )
        .scalars()
        .all()
    )
    assert [(a.detail["created"], a.detail["updated"]) for a in audits] == [(3, 0), (0, 2)]
    assert audits[0].actor_account_id == admin.account.id


async def test_bad_rows_are_reported_and_nothing_is_written(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t, admin = await _setup(db, settings)
    good = f.make_id_number(date(1988, 5, 2))
    outsider = await f.member(db, settings, t["other_branch"], "外县人")
    before = await _count(db)
    outsider_number = pii.keyring(settings).decrypt(outsider.id_number_enc, context=pii.ID_NUMBER)
    rows = [
        ["王建国", "男", "1988-05-02", good, "13800138000", "花园村党支部", "", "正式党员"],
        [
            "",
            "女",
            "",
            good[:-1] + ("0" if good[-1] != "0" else "1"),
            "12345",
            "不存在的支部",
            "明天",
            "积极分子",
        ],
        ["重复", "", "", good, "", "", "", ""],
        ["性别错", "女", "1988-05-03", f.make_id_number(date(1988, 5, 2)), "", "", "", ""],
        ["外县", "", "", outsider_number, "", "", "", ""],
        ["越权", "", "", f.make_id_number(date(1970, 1, 1)), "", "邻县某支部", "", ""],
        ["科学计数", "", "", 5.11621198805021e17, "", "", "", ""],
    ]
    failed = await _upload(client, admin, xlsx_bytes(rows), org_id=t["village"].id)
    body = problem(failed, 422, "import.invalid_rows")
    assert body["created"] == 0 and body["updated"] == 0
    got = {(e["row"], e["field"]) for e in body["errors"]}
    assert got == {
        (3, "姓名"),
        (3, "身份证号"),
        (3, "手机号"),
        (3, "所在支部"),
        (3, "入党日期"),
        (3, "党员状态"),
        (4, "身份证号"),
        (5, "性别"),
        (5, "出生日期"),
        (6, "身份证号"),
        (7, "所在支部"),
        (8, "身份证号"),
    }
    messages = {(e["row"], e["field"]): e["message"] for e in body["errors"]}
    assert messages[(4, "身份证号")] == "与第 2 行的身份证号重复"
    assert messages[(3, "身份证号")] == "身份证号校验位错误"
    assert "组织关系转接" in messages[(6, "身份证号")]  # names no organisation
    assert "文本格式" in messages[(8, "身份证号")]
    assert [e["row"] for e in body["errors"]] == sorted(e["row"] for e in body["errors"])
    assert await _count(db) == before
    assert (await find_by_id_number(db, settings, good)) is None

    partial = await _upload(client, admin, xlsx_bytes(rows), org_id=t["village"].id, partial="true")
    assert partial.status_code == 200
    assert partial.json()["created"] == 1 and partial.json()["updated"] == 0
    assert len(partial.json()["errors"]) == len(body["errors"])
    assert await _count(db) == before + 1
    assert (await find_by_id_number(db, settings, good)) is not None


async def test_csv_with_aliases_gbk_and_title_row(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t, admin = await _setup(db, settings)
    headers = ["序号", "党员姓名", "公民身份号码", "联系电话", "所在党组织", "人员类别"]
    number = f.make_id_number(date(1975, 3, 9), female=True)
    content = csv_bytes(
        [["1", "张秀英", number, "13812345678", "花园村党支部", "预备"]],
        headers=headers,
        encoding="gb18030",
    )
    content = "花园村党支部党员名册\n".encode("gb18030") + content
    done = await _upload(client, admin, content, name="roster.csv", mime="text/csv")
    assert done.json() == {"created": 1, "updated": 0, "unchanged": 0, "errors": []}, done.text
    m = await find_by_id_number(db, settings, number)
    assert m is not None and m.status == "probationary" and m.gender == "female"
    assert m.home_org_id == t["village"].id


async def test_missing_org_column_needs_a_default(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, admin = await _setup(db, settings)
    content = csv_bytes([["李四", f.unique_id_number()]], headers=["姓名", "身份证号"])
    body = problem(
        await _upload(client, admin, content, name="a.csv", mime="text/csv"),
        422,
        "import.invalid_rows",
    )
    assert body["errors"] == [
        {"row": 2, "field": "所在支部", "message": "请填写所在支部，或在上传时选择导入到的组织"}
    ]


async def test_ambiguous_org_name_and_default_org_scope(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t, admin = await _setup(db, settings)
    await f.org(db, "花园村党支部", parent=t["village2"])
    content = csv_bytes(
        [["李四", f.unique_id_number(), "花园村党支部"]], headers=["姓名", "身份证号", "支部"]
    )
    body = problem(
        await _upload(client, admin, content, name="a.csv", mime="text/csv"),
        422,
        "import.invalid_rows",
    )
    assert body["errors"][0]["message"] == "存在多个同名组织，请改填组织编号"
    problem(
        await _upload(client, admin, content, name="a.csv", mime="text/csv", org_id=t["other"].id),
        404,
        "org.not_found",
    )


async def test_wrong_files_are_rejected(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _, admin = await _setup(db, settings)
    problem(
        await _upload(
            client,
            admin,
            b"\xd0\xcf\x11\xe0" + b"\x00" * 600,
            name="old.xls",
            mime="application/vnd.ms-excel",
        ),
        422,
        "import.unsupported_format",
    )
    problem(
        await _upload(client, admin, b"%PDF-1.7\n\x00\x01", name="a.pdf", mime="application/pdf"),
        422,
        "import.unsupported_format",
    )
    problem(
        await _upload(client, admin, b"PK\x03\x04broken", name="a.xlsx"),
        422,
        "import.unreadable",
    )
    body = problem(
        await _upload(
            client,
            admin,
            csv_bytes([["x"]], headers=["姓名", "电话"]),
            name="a.csv",
            mime="text/csv",
        ),
        422,
        "import.missing_columns",
    )
    assert body["errors"] == [{"row": 1, "field": "身份证号", "message": "缺少该列"}]
    problem(
        await _upload(client, admin, csv_bytes([]), name="a.csv", mime="text/csv"),
        422,
        "import.empty",
    )
    no_file = await client.post("/api/v1/members/import", headers=admin.headers)
    assert problem(no_file, 422, "validation.failed")["errors"][0]["field"] == "file"
    big = await _upload(
        client, admin, b"a" * (10 * 1024 * 1024 + 10), name="a.csv", mime="text/csv"
    )
    problem(big, 413, "request.too_large")


async def test_import_requires_admin(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t, _ = await _setup(db, settings)
    member = await f.member_actor(db, settings, t["village"])
    content = csv_bytes([["李四", f.unique_id_number()]], headers=["姓名", "身份证号"])
    anonymous = await client.post(
        "/api/v1/members/import", files={"file": ("a.csv", content, "text/csv")}
    )
    problem(anonymous, 401, "auth.missing_token")
    problem(
        await _upload(client, member, content, name="a.csv", mime="text/csv"),
        403,
        "auth.admin_required",
    )
    problem(await client.get("/api/v1/members/import/template"), 401, "auth.missing_token")


async def test_template_is_a_real_workbook_that_imports(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    t, admin = await _setup(db, settings)
    got = await client.get("/api/v1/members/import/template", headers=admin.headers)
    assert got.status_code == 200
    assert got.headers["content-type"] == XLSX
    assert "attachment" in got.headers["content-disposition"]
    book = load_workbook(io.BytesIO(got.content))
    sheet = book.worksheets[0]
    assert [c.value for c in sheet[1]] == HEADERS
    assert sheet["D2"].number_format == "@"  # ID numbers stay text
    assert "填写说明" in book.sheetnames
    sheet.append(
        [
            "赵六",
            "女",
            None,
            f.make_id_number(date(1990, 4, 4), female=True),
            "13655556666",
            t["village"].id,
            None,
            "正式党员",
        ]
    )
    out = io.BytesIO()
    book.save(out)
    done = await _upload(client, admin, out.getvalue())
    assert done.json() == {"created": 1, "updated": 0, "unchanged": 0, "errors": []}, done.text


async def test_concurrent_imports_of_the_same_people(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        county = await f.org(s, "县委")
        admin = await f.admin_actor(s, settings, county)
        await s.commit()
    content = csv_bytes(
        [[f"党员{i}", f.unique_id_number()] for i in range(50)], headers=["姓名", "身份证号"]
    )

    async def upload() -> httpx.Response:
        return await committing_client.post(
            "/api/v1/members/import",
            params={"org_id": county.id},
            files={"file": ("a.csv", content, "text/csv")},
            headers=admin.headers,
        )

    results = await asyncio.gather(upload(), upload())
    by_status = sorted(results, key=lambda r: r.status_code)
    # The second either waited and found them unchanged, or lost the race on the unique index (409).
    assert by_status[0].json() == {"created": 50, "updated": 0, "unchanged": 0, "errors": []}
    if by_status[1].status_code == 409:
        problem(by_status[1], 409, "import.conflict")
    else:
        assert by_status[1].json() == {"created": 0, "updated": 0, "unchanged": 50, "errors": []}
    async with AsyncSession(engine) as s:
        n = await s.execute(select(func.count()).where(Member.home_org_id == county.id))
        assert n.scalar_one() == 51  # 50 imported + the admin himself
