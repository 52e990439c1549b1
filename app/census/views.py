"""Shaping census rows into responses: masked personal data, names of codes, reasons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping

from app.census.codes import DIVISIONS, KINDS, SECTIONS, TAGS, industry_name
from app.census.schemas import (
    CoverageCounts,
    CoverageGroup,
    CoveringOrg,
    EntityFile,
    EntityOut,
    Industry,
    OrgRef,
)
from app.regions import service as regions

COVERAGES = ("organization", "joint", "work", "none")


def mask_name(name: str | None) -> str | None:
    """张三 -> 张*, 欧阳明华 -> 欧**华."""
    if not name:
        return None
    if len(name) <= 2:
        return name[0] + "*" * (len(name) - 1)
    return name[0] + "*" * (len(name) - 2) + name[-1]


def recommendation_reason(recommendation: str | None, member_count: int | None) -> str | None:
    if recommendation == "form_standalone":
        return f"有党员 {member_count} 名（3 名以上），具备单独组建党组织的条件"
    if recommendation == "join_joint":
        return f"有党员 {member_count} 名，不足 3 名，宜按地域相邻、行业相近联合组建"
    if recommendation == "assign_instructor":
        return "暂无党员，宜选派党建工作指导员实现工作覆盖"
    return None


def industry_of(section: str, division: str | None) -> Industry:
    return Industry(
        code=division or section,
        section=section,
        division=division,
        name=industry_name(section, division),
    )


def entity_out(row: RowMapping | Mapping[str, Any]) -> EntityOut:
    return EntityOut(**_entity_fields(row))


def entity_file(row: RowMapping | Mapping[str, Any]) -> EntityFile:
    return EntityFile(
        **_entity_fields(row),
        surveys=row["surveys"],
        instructors=row["instructors"],
        open_rounds=row["open_rounds"],
    )


def _entity_fields(row: RowMapping | Mapping[str, Any]) -> dict[str, Any]:
    trade = (
        OrgRef(id=row["trade_org_id"], name=row["trade_org_name"])
        if row["trade_org_id"] is not None
        else None
    )
    covering = (
        CoveringOrg(id=row["org_id"], name=row["org_name"], mode=row["org_mode"])
        if row["org_id"] is not None
        else None
    )
    return {
        "id": row["id"],
        "credit_code": row["credit_code"],
        "name": row["name"],
        "kind": row["kind"],
        "status": row["status"],
        "closed_on": row["closed_on"],
        "industry": industry_of(row["industry_section"], row["industry_division"]),
        "tags": list(row["tags"] or []),
        "region_code": row["region_code"],
        "region_name": regions.region_name(row["region_code"]),
        "address": row["address"],
        "lat": row["lat"],
        "lon": row["lon"],
        "staff_count": row["staff_count"],
        "person_in_charge": row["person_in_charge_masked"],
        "contact_phone": row["contact_phone_masked"],
        "responsible_org": OrgRef(id=row["responsible_org_id"], name=row["responsible_org_name"]),
        "trade_org": trade,
        "organization": covering,
        "member_count": row["member_count"],
        "last_surveyed_on": row["last_surveyed_on"],
        "last_round_id": row["last_round_id"],
        "instructor_count": row["instructor_count"],
        "coverage": row["coverage"],
        "recommendation": row["recommendation"],
        "recommendation_reason": recommendation_reason(row["recommendation"], row["member_count"]),
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def rate(part: int, total: int) -> float:
    return round(part / total, 4) if total else 0.0


def counts_of(by_coverage: Mapping[str, int]) -> dict[str, Any]:
    total = sum(by_coverage.get(c, 0) for c in COVERAGES)
    organization = by_coverage.get("organization", 0) + by_coverage.get("joint", 0)
    covered = organization + by_coverage.get("work", 0)
    return {
        "total": total,
        **{c: by_coverage.get(c, 0) for c in COVERAGES},
        "organization_rate": rate(organization, total),
        "coverage_rate": rate(covered, total),
    }


def coverage_counts(by_coverage: Mapping[str, int]) -> CoverageCounts:
    return CoverageCounts(**counts_of(by_coverage))


def _group_name(dim: str, key: str) -> str | None:
    if dim == "kind":
        return KINDS.get(key)
    if dim == "industry":
        return SECTIONS[key][0] if key in SECTIONS else DIVISIONS.get(key)
    if dim == "region":
        return regions.region_name(key)
    return TAGS.get(key)


def groups(dim: str, by_key: Mapping[str, Mapping[str, int]]) -> list[CoverageGroup]:
    out = [
        CoverageGroup(key=key, name=_group_name(dim, key), **counts_of(counts))
        for key, counts in by_key.items()
    ]
    out.sort(key=lambda g: (-g.total, g.key))
    return out
