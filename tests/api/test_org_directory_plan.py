"""The nearest-first directory search walks the earthdistance GiST index (KNN), in the
custom plan and in the generic plan asyncpg's prepared statement ends up with."""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.organization.repository import directory_statement

KNN = "Index Scan using ix_organizations_listed_earth"


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


async def test_nearest_first_walks_the_gist_index(db: AsyncSession) -> None:
    # 20,000 organisations around Guangzhou, one in ten listed.
    await db.execute(
        text(
            "INSERT INTO organizations (name, kind, path, depth, region_code, lat, lon, listed)"
            " SELECT '组织' || g, 'branch', '/x' || g || '/', 0, '440106',"
            " 22.5 + (g % 200) * 0.005, 113.0 + (g / 200) * 0.005, g % 10 = 0"
            " FROM generate_series(1, 20000) AS g"
        )
    )
    await db.execute(text("ANALYZE organizations"))
    for after in (False, True):
        stmt = directory_statement(near=True, after=after)
        params = {"lat": 23.13, "lon": 113.33, "limit": 21}
        if after:
            params |= {"after_gap": 1000.0, "after_id": 1}
        compiled = stmt.compile(db.get_bind())
        values = compiled.construct_params(params)
        args = ", ".join(_literal(values[name]) for name in compiled.positiontup or ())
        await db.execute(text(f"PREPARE nearest AS {compiled}"))
        for mode in ("force_custom_plan", "force_generic_plan"):
            await db.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
            plan = "\n".join(
                row[0] for row in await db.execute(text(f"EXPLAIN EXECUTE nearest({args})"))
            )
            assert KNN in plan and "Order By" in plan, (after, mode, plan)
        await db.execute(text("DEALLOCATE nearest"))

    await db.execute(text("SET LOCAL plan_cache_mode = auto"))
    stmt = directory_statement(near=True)
    params = {"lat": 23.13, "lon": 113.33, "limit": 21}
    await db.execute(stmt, params)  # prepared once
    started = time.perf_counter()
    rows = (await db.execute(stmt, params)).all()
    print(
        f"nearest 21 of 2,000 listed (20,000 rows): {(time.perf_counter() - started) * 1000:.1f} ms"
    )
    assert len(rows) == 21
    assert [r.gap for r in rows] == sorted(r.gap for r in rows)
