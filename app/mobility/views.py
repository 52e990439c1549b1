"""Shaping ledger rows into API responses (masked personal data only)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from app.core.db import Row
from app.mobility.models import OutflowEvent, OutflowReport
from app.mobility.repository import LedgerRow
from app.mobility.rules import flags_of
from app.mobility.schemas import (
    CheckinOut,
    DueDates,
    EventOut,
    Link,
    MemberRef,
    OrgRef,
    OutflowOut,
    OutflowStats,
    RegionCount,
    ReportOut,
)
from app.regions import service as regions

# Away long enough at one place (transfer_suggested): the relation transfer to start.
TRANSFER_LINK = Link(
    rel="transfer",
    method="POST",
    href="/api/v1/transfers",
    title="办理组织关系转接（组织关系转入现所在地党组织）",
)


def outflow_out(row: LedgerRow, today: date) -> OutflowOut:
    o = row.outflow
    flags = flags_of(o, today)
    checkin_org = (
        OrgRef(id=o.checkin_org_id, name=row.checkin_org_name or "")
        if o.checkin_org_id is not None
        else None
    )
    return OutflowOut(
        id=o.id,
        member=MemberRef(id=o.member_id, name=row.member_name, gender=row.member_gender),
        home_org=OrgRef(id=o.home_org_id, name=row.home_org_name),
        status=o.status,
        reason=o.reason,
        destination_region_code=o.destination_region_code,
        destination_region_name=regions.region_name(o.destination_region_code),
        destination_address=o.destination_address,
        employer=o.employer,
        contact_phone=o.contact_phone_masked,
        departed_on=o.departed_on,
        expected_return_on=o.expected_return_on,
        certificate_no=o.certificate_no,
        decided_at=o.decided_at,
        reject_reason=o.reject_reason,
        cancel_reason=o.cancel_reason,
        checkin=CheckinOut(
            status=o.checkin_status,
            org=checkin_org,
            requested_at=o.checkin_requested_at,
            decided_at=o.checkin_decided_at,
            refuse_reason=o.checkin_refuse_reason,
        ),
        last_report_at=o.last_report_at,
        last_report_region_code=o.last_report_region_code,
        last_report_far=o.last_report_far,
        due=DueDates(
            checkin_due_on=o.checkin_due_on,
            report_due_on=o.report_due_on,
            lost_contact_on=o.lost_contact_on,
            transfer_suggest_on=o.transfer_suggest_on,
        ),
        flags=flags,
        location_consent=row.location_consent,
        lost_contact_escalated_at=o.lost_contact_escalated_at,
        returned_on=o.returned_on,
        links=[TRANSFER_LINK] if "transfer_suggested" in flags else [],
        version=o.version,
        created_at=o.created_at,
        updated_at=o.updated_at,
    )


_TRANSFER_LINK_JSON = TRANSFER_LINK.model_dump()


def outflow_item(row: Row, today: date) -> dict[str, Any]:
    """:func:`outflow_out`'s JSON as a plain dict (no model built and validated) from a
    driver row of the ledger page (``app.mobility.ledger_repository``), for the page
    written once with orjson (``app.core.responses``). Same keys in the same order, so
    the bytes are the model's."""
    flags = flags_of(row, today)
    checkin_org_id = row["checkin_org_id"]
    region = row["destination_region_code"]
    return {
        "id": row["id"],
        "member": {
            "id": row["member_id"],
            "name": row["member_name"],
            "gender": row["member_gender"],
        },
        "home_org": {"id": row["home_org_id"], "name": row["home_org_name"]},
        "status": row["status"],
        "reason": row["reason"],
        "destination_region_code": region,
        "destination_region_name": regions.region_name(region),
        "destination_address": row["destination_address"],
        "employer": row["employer"],
        "contact_phone": row["contact_phone_masked"],
        "departed_on": row["departed_on"],
        "expected_return_on": row["expected_return_on"],
        "certificate_no": row["certificate_no"],
        "decided_at": row["decided_at"],
        "reject_reason": row["reject_reason"],
        "cancel_reason": row["cancel_reason"],
        "checkin": {
            "status": row["checkin_status"],
            "org": {"id": checkin_org_id, "name": row["checkin_org_name"] or ""}
            if checkin_org_id is not None
            else None,
            "requested_at": row["checkin_requested_at"],
            "decided_at": row["checkin_decided_at"],
            "refuse_reason": row["checkin_refuse_reason"],
        },
        "last_report_at": row["last_report_at"],
        "last_report_region_code": row["last_report_region_code"],
        "last_report_far": row["last_report_far"],
        "due": {
            "checkin_due_on": row["checkin_due_on"],
            "report_due_on": row["report_due_on"],
            "lost_contact_on": row["lost_contact_on"],
            "transfer_suggest_on": row["transfer_suggest_on"],
        },
        "flags": flags,
        "location_consent": row["location_consent"],
        "lost_contact_escalated_at": row["lost_contact_escalated_at"],
        "returned_on": row["returned_on"],
        "links": [_TRANSFER_LINK_JSON] if "transfer_suggested" in flags else [],
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def event_out(event: OutflowEvent) -> EventOut:
    return EventOut(
        id=event.id,
        action=event.action,
        from_state=event.from_state,
        to_state=event.to_state,
        actor_account_id=event.actor_account_id,
        note=event.note,
        data=dict(event.data or {}),
        created_at=event.created_at,
    )


def report_out(report: OutflowReport) -> ReportOut:
    return ReportOut(
        id=report.id,
        lat=report.lat,
        lon=report.lon,
        region_code=report.region_code,
        region_name=regions.region_name(report.region_code) if report.region_code else None,
        distance_m=round(report.distance_m, 1) if report.distance_m is not None else None,
        far_from_destination=report.far_from_destination,
        note=report.note,
        reported_on=report.reported_on,
        created_at=report.created_at,
    )


def _safe(fn: Any, code: str) -> str | None:
    try:
        return str(fn(code))
    except ValueError:
        return None


def stats_out(raw: dict[str, Any]) -> OutflowStats:
    """Fold counts per destination code into provinces and cities (with names)."""
    provinces: Counter[str] = Counter()
    cities: Counter[str] = Counter()
    for code, count in raw["by_region"]:
        province = _safe(regions.province_of, code)
        if province is not None:
            provinces[province] += count
        city = _safe(regions.city_of, code)
        if city is not None:
            cities[city] += count

    def ranked(counter: Counter[str]) -> list[RegionCount]:
        return [
            RegionCount(code=code, name=regions.region_name(code), count=count)
            for code, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    return OutflowStats(
        total=raw["total"],
        by_status=raw["by_status"],
        by_flag=raw["by_flag"],
        by_reason=raw["by_reason"],
        by_province=ranked(provinces),
        by_city=ranked(cities),
        location_consent_missing=raw["location_consent_missing"],
    )
