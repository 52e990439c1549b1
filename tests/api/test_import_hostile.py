"""Hostile spreadsheets: bombs, DTDs, entities, broken XML. Each is a 4xx, none stalls.

The bombs run against a real uvicorn process: ``/healthz`` is measured over a socket
while each upload is parsed, which is what an event loop blocked by parsing breaks.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import zipfile
from collections.abc import Callable

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.members.models import Member
from app.members.spreadsheet import LIMITS
from tests import factories as f
from tests.conftest import problem
from tests.live import admin_token, live_server, scratch_database
from tests.support.roster import xlsx_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEET = "xl/worksheets/sheet1.xml"


def _roster(*extra: str) -> bytes:
    return xlsx_bytes([["张三", f.unique_id_number(), *extra]], headers=["姓名", "身份证号"])


def _rewrite(part: str, change: Callable[[bytes], bytes], base: bytes | None = None) -> bytes:
    """A copy of a real roster workbook with one part changed."""
    source = zipfile.ZipFile(io.BytesIO(base or _roster()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == part:
                changed = change(data)
                assert changed != data, part
                data = changed
            target.writestr(info.filename, data)
    assert part in source.namelist(), part
    return out.getvalue()


def dimension_bomb() -> bytes:
    """1.5 KB that declares 702 columns x 100,000 rows."""
    return _rewrite(
        SHEET,
        lambda xml: re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:ZZ100000"/>', xml),
    )


def empty_row_bomb(rows: int = 1_000_000) -> bytes:
    """A header, then a million empty ``<row/>`` elements (about 2 MB compressed)."""
    empty = b"".join(b'<row r="%d"/>' % n for n in range(3, rows + 3))
    return _rewrite(SHEET, lambda xml: xml.replace(b"</sheetData>", empty + b"</sheetData>"))


async def _upload(client: httpx.AsyncClient, token: str, content: bytes) -> httpx.Response:
    return await client.post(
        "/api/v1/members/import",
        files={"file": ("名册.xlsx", content, XLSX)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


async def _health_while(base: str, upload: asyncio.Task[httpx.Response]) -> list[float]:
    """``/healthz`` latencies (s), one request every 20 ms on its own connection, until
    ``upload`` is answered."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as probe:
        await probe.get("/healthz")  # connection open before the upload starts
        while not upload.done():
            start = time.perf_counter()
            answer = await probe.get("/healthz")
            latencies.append(time.perf_counter() - start)
            assert answer.status_code == 200
            await asyncio.sleep(0.02)
    return latencies


async def test_bombs_answer_4xx_in_time_while_healthz_stays_fast(migrated_url: str) -> None:
    async with scratch_database(migrated_url, "branchlink_bombs") as url:
        token = await admin_token(url, "炸弹测试县委")
        with live_server(url) as base:
            async with httpx.AsyncClient(base_url=base) as client:
                # A first upload pays the process's one-time costs (connections, caches);
                # it is parsed, and its row lacks an organisation.
                warm = await _upload(client, token, _roster())
                assert warm.json()["code"] == "import.invalid_rows"
                for name, content, code in (
                    ("dimension", dimension_bomb(), "import.too_many_rows"),
                    ("empty rows", empty_row_bomb(), "import.too_many_rows"),
                ):
                    started = time.perf_counter()
                    upload = asyncio.create_task(_upload(client, token, content))
                    latencies = await _health_while(base, upload)
                    answer = await upload
                    elapsed = time.perf_counter() - started
                    assert answer.status_code == 422, (name, answer.text)
                    assert answer.json()["code"] == code, name
                    assert elapsed < LIMITS.max_seconds, (name, elapsed)
                    assert latencies, name
                    assert max(latencies) < 0.1, (name, sorted(latencies)[-5:])


async def _setup(db: AsyncSession, settings: Settings) -> f.Actor:
    county = await f.org(db, "岳池县委")
    return await f.admin_actor(db, settings, county)


async def _members(db: AsyncSession) -> int:
    return (await db.execute(select(func.count()).select_from(Member))).scalar_one()


async def test_bombs_through_the_app_are_refused_and_write_nothing(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await _setup(db, settings)
    before = await _members(db)
    body = problem(
        await _upload(client, admin.token, dimension_bomb()), 422, "import.too_many_rows"
    )
    assert "20050" in body["detail"]
    problem(await _upload(client, admin.token, empty_row_bomb(30_000)), 422, "import.too_many_rows")
    assert await _members(db) == before


def zip_bomb() -> bytes:
    """A sheet part that inflates to 100 MB of spaces (about 100 KB compressed)."""
    padding = b" " * (100 * 1024 * 1024)
    return _rewrite(SHEET, lambda xml: xml.replace(b"<sheetData>", b"<sheetData>" + padding))


def billion_laughs() -> bytes:
    dtd = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
            for n in range(1, 10)
        )
        + b"]>"
    )
    return _rewrite(
        SHEET,
        lambda xml: (
            dtd
            + re.sub(rb"^<\?xml[^>]*\?>", b"", xml).replace(
                b"<sheetData>",
                b'<sheetData><row r="9"><c r="A9" t="inlineStr"><is><t>&lol9;</t></is></c></row>',
            )
        ),
    )


def external_entity() -> bytes:
    dtd = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return _rewrite("xl/workbook.xml", lambda xml: dtd + re.sub(rb"^<\?xml[^>]*\?>", b"", xml))


def malformed() -> bytes:
    return _rewrite(SHEET, lambda xml: xml.replace(b"</sheetData>", b"<row><c></sheetData>"))


async def test_zip_bomb_dtd_entities_and_broken_xml_are_4xx(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await _setup(db, settings)
    before = await _members(db)
    body = problem(await _upload(client, admin.token, zip_bomb()), 422, "import.too_large")
    assert "64 MB" in body["detail"]
    for content in (billion_laughs(), external_entity()):
        body = problem(await _upload(client, admin.token, content), 422, "import.unreadable")
        assert "DTD" in body["detail"]
    body = problem(await _upload(client, admin.token, malformed()), 422, "import.unreadable")
    assert body["detail"] == "文件无法读取，请确认文件未损坏"
    assert await _members(db) == before


async def test_a_sheet_wider_than_the_limit_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = await _setup(db, settings)
    before = await _members(db)
    body = problem(
        await _upload(client, admin.token, _roster(*["x"] * 100)), 422, "import.too_large"
    )
    assert "64 列" in body["detail"]
    assert await _members(db) == before
