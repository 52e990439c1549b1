"""Response shapes of the inflow ledger, straight from the ledger query's rows."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import RowMapping

from app.inflows.rules import TRANSFER_PROMPT, flags_of
from app.inflows.schemas import InflowOut, InflowStats, OrgRef
from app.mobility.schemas import RegionCount
from app.regions import service as regions


def region_name(code: str | None) -> str | None:
    return regions.region_name(code) if code else None


def inflow_out(row: RowMapping, today: date) -> InflowOut:
    flags = flags_of(row["status"], row["matched_member_id"], row["created_at"], today)
    return InflowOut(
        id=row["id"],
        org=OrgRef(id=row["org_id"], name=row["org_name"]),
        source=row["source"],
        status=row["status"],
        name=row["name"],
        id_number=row["id_number_masked"],
        phone=row["phone_masked"],
        home_org_name=row["home_org_name"],
        home_region_code=row["home_region_code"],
        home_region_name=region_name(row["home_region_code"]),
        employer=row["employer"],
        arrived_on=row["arrived_on"],
        entity=(
            OrgRef(id=row["entity_id"], name=row["entity_name"])
            if row["entity_id"] is not None
            else None
        ),
        matched_member_id=row["matched_member_id"],
        outflow_id=row["outflow_id"],
        flags=flags,
        prompt=TRANSFER_PROMPT if "transfer_suggested" in flags else None,
        decided_at=row["decided_at"],
        decision_note=row["decision_note"],
        version=row["version"],
        created_at=row["created_at"],
    )


def stats_out(raw: dict[str, Any]) -> InflowStats:
    return InflowStats(
        total=raw["total"],
        by_status=raw["by_status"],
        by_source=raw["by_source"],
        by_flag=raw["by_flag"],
        matched=raw["matched"],
        by_home_province=[
            RegionCount(code=f"{prefix}0000", name=region_name(f"{prefix}0000"), count=n)
            for prefix, n in raw["by_province"]
        ],
    )
