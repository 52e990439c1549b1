"""Organisation tree rules: creating nodes and keeping materialised paths right."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AppError
from app.organization.models import Organization


def parent_not_found() -> AppError:
    return AppError("org.parent_not_found", 404, "上级组织不存在或无权访问")


async def create_organization(
    session: AsyncSession,
    *,
    name: str,
    kind: str,
    parent_id: int | None,
    host: str | None = None,
    region_code: str | None = None,
    address: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    settings: dict[str, Any] | None = None,
) -> Organization:
    parent_path = "/"
    depth = 0
    if parent_id is not None:
        parent = await session.get(Organization, parent_id)
        if parent is None:
            raise parent_not_found()
        parent_path = parent.path
        depth = parent.depth + 1
    new_id = (
        await session.execute(
            select(func.nextval(text("pg_get_serial_sequence('organizations', 'id')")))
        )
    ).scalar_one()
    org = Organization(
        id=new_id,
        name=name,
        kind=kind,
        host=host,
        parent_id=parent_id,
        path=f"{parent_path}{new_id}/",
        depth=depth,
        region_code=region_code,
        address=address,
        lat=lat,
        lon=lon,
        settings=settings or {},
    )
    session.add(org)
    await session.flush()
    return org
