"""Benchmark: import a 5,000-row xlsx roster through the HTTP API on a real PostgreSQL.

    python -m bench.import_roster [--rows 5000]

Starts the embedded PostgreSQL in a temporary directory (or uses ``DATABASE_URL``),
migrates it, builds the app with ``create_app`` and talks to it through
``httpx.ASGITransport``. Prints the time of the first import (all rows created) and of
a second import of the same file (all rows updated, matched by ID-number blind index).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
from openpyxl import Workbook

from app.core.config import Settings
from app.core.db import create_engine, make_sessionmaker
from app.identity.models import Account
from app.identity.service import issue_token_pair
from app.identity.validators import id_check_digit
from app.main import create_app
from app.organization.service import create_organization
from bench.load import report

ROOT = Path(__file__).resolve().parent.parent
HEADERS = ["姓名", "性别", "出生日期", "身份证号", "手机号", "所在支部", "入党日期", "党员状态"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "建国秀英志强芳明华军伟丽娟敏静磊洋艳勇杰娜涛"


def build_roster(rows: int, branches: list[str]) -> bytes:
    rng = random.Random(20261123)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("党员名册")
    sheet.append(HEADERS)
    seen: set[str] = set()
    while len(seen) < rows:
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
        order = rng.randrange(0, 1000)
        first17 = f"511621{birth:%Y%m%d}{order:03d}"
        number = first17 + id_check_digit(first17)
        if number in seen:
            continue
        seen.add(number)
        sheet.append(
            [
                rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, 2)),
                "男" if order % 2 else "女",
                birth,
                number,
                f"13{rng.randrange(0, 10)}{rng.randrange(10_000_000, 99_999_999)}",
                rng.choice(branches),
                birth + timedelta(days=365 * 25),
                "正式党员" if rng.random() < 0.9 else "预备党员",
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


async def _run(url: str, rows: int) -> None:
    settings = Settings(env="test", database_url=url, wechat_simulator=True, demo_data=False)
    engine = create_engine(settings, url)
    try:
        async with make_sessionmaker(engine)() as session:
            county = await create_organization(
                session, name="基准县委", kind="committee", parent_id=None, region_code="511621"
            )
            names = []
            for i in range(20):
                branch = await create_organization(
                    session, name=f"基准村第{i + 1}党支部", kind="branch", parent_id=county.id
                )
                names.append(branch.name)
            admin = Account(openid=f"bench-{time.time_ns()}", is_superadmin=True)
            session.add(admin)
            await session.flush()
            token = (await issue_token_pair(session, settings, admin)).access_token
            await session.commit()

        started = time.perf_counter()
        content = build_roster(rows, names)
        print(
            f"built {rows}-row xlsx ({len(content) / 1024:.0f} KiB) in "
            f"{time.perf_counter() - started:.2f} s"
        )

        app = create_app(settings, engine=engine)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as client:
                for label in ("create", "update"):
                    started = time.perf_counter()
                    response = await client.post(
                        "/api/v1/members/import",
                        files={"file": ("roster.xlsx", content, "application/octet-stream")},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    elapsed = time.perf_counter() - started
                    body = response.json()
                    assert response.status_code == 200, body
                    print(
                        f"import ({label}): {rows} rows in {elapsed:.2f} s = "
                        f"{rows / elapsed:,.0f} rows/s  created={body['created']} "
                        f"updated={body['updated']} errors={len(body['errors'])}"
                    )
                    report(
                        "import_roster",
                        f"{label} {rows} rows",
                        elapsed,
                        "s",
                        "seconds",
                        "python -m bench.import_roster",
                    )
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    external = os.environ.get("DATABASE_URL")
    tmp: Path | None = None
    if external:
        url = external
    else:
        from app.core import embedded

        tmp = Path(tempfile.mkdtemp(prefix="branchlink-bench-"))
        os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp))
        url = embedded.start(tmp, cleanup_mode="delete")
    try:
        _migrate(url)
        asyncio.run(_run(url, args.rows))
    finally:
        if tmp is not None:
            from app.core import embedded

            embedded.stop(tmp)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
