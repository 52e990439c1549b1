"""The outflow state machine, its guards, and the flag rules, as pure functions.

State machine
-------------
The state of an outflow is its ``status``, refined for active outflows by the
destination check-in sub-state: ``pending``, ``active:none``, ``active:pending``,
``active:accepted``, ``active:refused``, ``rejected``, ``returned``, ``withdrawn``,
``cancelled``, ``transferred``. Every legal move is
one entry of :data:`TRANSITIONS`; anything else is ``409 outflow.invalid_transition``.

Flags (all days in Asia/Shanghai)
---------------------------------
Each flag has a *due date*, the last day that is still in time. The flag is raised
from the day after: ``flag <=> due_on < today``. Day before: not flagged; the due day
itself: not flagged; the day after: flagged.

* ``checkin_overdue``: ``checkin_due_on = (relocated_on or approval day) +
  checkin_deadline_days`` while the check-in is not accepted.
* ``report_overdue``: ``report_due_on = (last report day or approval day) +
  report_interval_days``.
* ``lost_contact``: ``lost_contact_on = last contact day + lost_contact_days``; contact is
  approval, a report, a check-in request or a relocation.
* ``transfer_suggested``: ``transfer_suggest_on = (relocated_on or departed_on) +
  transfer_after_days`` (away more than ~6 months at one place).

Intervals come from ``Organization.settings`` of the home organisation or its nearest
ancestor that sets the key, over :data:`DEFAULT_RULES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.core import clock
from app.core.db import Row
from app.mobility.errors import (
    already_departed,
    checkin_to_home_subtree,
    destination_org_mismatch,
    invalid_transition,
    returned_before_departure,
    returned_in_future,
)
from app.mobility.models import CHECKIN_STATUSES, Outflow
from app.regions import service as regions

DEFAULT_RULES: dict[str, int] = {
    "checkin_deadline_days": 30,
    "report_interval_days": 90,
    "lost_contact_days": 180,
    "transfer_after_days": 183,
    # A report farther than this from the destination's centroid is flagged.
    "report_far_km": 50,
}

FLAGS = ("checkin_overdue", "report_overdue", "lost_contact", "transfer_suggested")
FLAG_COLUMNS: dict[str, str] = {
    "checkin_overdue": "checkin_due_on",
    "report_overdue": "report_due_on",
    "lost_contact": "lost_contact_on",
    "transfer_suggested": "transfer_suggest_on",
}

# ---------------------------------------------------------------------------
# The transition table
# ---------------------------------------------------------------------------

_ACTIVE = tuple(f"active:{c}" for c in CHECKIN_STATUSES)

TRANSITIONS: dict[tuple[str, str], str] = {
    # "new": an outflow not yet registered (no row yet).
    ("new", "register"): "pending",
    ("pending", "approve"): "active:none",
    ("pending", "reject"): "rejected",
    # The member takes back a registration nobody has decided on yet.
    ("pending", "withdraw"): "withdrawn",
    ("active:none", "checkin"): "active:pending",
    ("active:refused", "checkin"): "active:pending",
    ("active:pending", "accept_checkin"): "active:accepted",
    ("active:pending", "refuse_checkin"): "active:refused",
    **{(state, "report"): state for state in _ACTIVE},
    # A new destination needs a new check-in there: the old co-management ends.
    **{(state, "relocate"): "active:none" for state in _ACTIVE},
    **{(state, "return"): "returned" for state in _ACTIVE},
    # The home branch calls off an approved outflow before he leaves (guard_cancel).
    **{(state, "cancel"): "cancelled" for state in _ACTIVE},
    # An organisation verifies his inflow declaration (app.inflows): he is checked in
    # there, accepted, at once; a member without an outflow gets one (app.mobility.arrivals).
    ("new", "inflow"): "active:accepted",
    **{(state, "inflow"): "active:accepted" for state in _ACTIVE},
    # A completed relation transfer (app.transfers) closes whatever is still open: his
    # records belong to the receiving organisation now.
    **{(state, "transfer"): "transferred" for state in ("pending", *_ACTIVE)},
}


def state_of(outflow: Outflow) -> str:
    if outflow.status is None:  # built in memory, not yet registered
        return "new"
    if outflow.status == "active":
        return f"active:{outflow.checkin_status}"
    return outflow.status


def next_state(outflow: Outflow, action: str) -> str:
    """The state after ``action``, or InvalidTransition (409)."""
    state = state_of(outflow)
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise invalid_transition(state, action)
    return target


def apply_state(outflow: Outflow, target: str) -> None:
    status, _, checkin = target.partition(":")
    outflow.status = status
    if checkin:
        outflow.checkin_status = checkin


# ---------------------------------------------------------------------------
# Guards beside the table (the ones that need no database)
# ---------------------------------------------------------------------------


def guard_return(outflow: Outflow, returned_on: date, today: date) -> None:
    if returned_on < outflow.departed_on:
        raise returned_before_departure()
    if returned_on > today:
        raise returned_in_future()


def guard_cancel(outflow: Outflow, today: date) -> None:
    """Only before departure: once he has left, the way back is a return registration."""
    if outflow.departed_on <= today:
        raise already_departed()


def same_area(org_region_code: str | None, destination_code: str) -> bool:
    """Is an organisation's region inside the registered destination's city (or province)?"""
    if not org_region_code or not regions.is_valid_region_code(org_region_code):
        return False
    try:
        if regions.province_of(org_region_code) != regions.province_of(destination_code):
            return False
        dest_city = _city_or_none(destination_code)
        return dest_city is None or _city_or_none(org_region_code) == dest_city
    except ValueError:
        return False


def guard_checkin(
    outflow: Outflow, *, org_region_code: str | None, org_path: str, home_path: str
) -> None:
    # The home branch and its ancestors already manage him; a mobile branch they set up
    # at the destination (a child of the county, say) is a proper check-in target.
    if home_path.startswith(org_path):
        raise checkin_to_home_subtree()
    if not same_area(org_region_code, outflow.destination_region_code):
        raise destination_org_mismatch()


def _city_or_none(code: str) -> str | None:
    try:
        return regions.city_of(code)
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# Days and rules
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    checkin_deadline_days: int
    report_interval_days: int
    lost_contact_days: int
    transfer_after_days: int
    report_far_km: int


def merge_rules(chain: Iterable[Mapping[str, Any]]) -> Rules:
    """Merge organisation settings from the root down to the home organisation.

    The nearest organisation that sets a key wins; values that are not positive integers
    are ignored (so a broken setting never disables a rule).
    """
    merged = dict(DEFAULT_RULES)
    for settings in chain:
        for key in DEFAULT_RULES:
            value = settings.get(key) if isinstance(settings, Mapping) else None
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 3650:
                merged[key] = value
    return Rules(**merged)


def recompute_due_dates(outflow: Outflow, rules: Rules) -> None:
    """Refresh the stored flag dates after any change of the outflow."""
    if outflow.status != "active" or outflow.decided_at is None:
        outflow.checkin_due_on = None
        outflow.report_due_on = None
        outflow.lost_contact_on = None
        outflow.transfer_suggest_on = None
        return
    approved_on = clock.shanghai_day(outflow.decided_at)
    if outflow.checkin_status == "accepted":
        outflow.checkin_due_on = None
    else:
        base = outflow.relocated_on or approved_on
        outflow.checkin_due_on = base + timedelta(days=rules.checkin_deadline_days)
    last_report_on = clock.shanghai_day(outflow.last_report_at) if outflow.last_report_at else None
    outflow.report_due_on = (last_report_on or approved_on) + timedelta(
        days=rules.report_interval_days
    )
    contact = outflow.last_contact_on or approved_on
    outflow.lost_contact_on = contact + timedelta(days=rules.lost_contact_days)
    settled = outflow.relocated_on or outflow.departed_on
    outflow.transfer_suggest_on = settled + timedelta(days=rules.transfer_after_days)


def flags_of(outflow: Outflow | Row, today: date) -> list[str]:
    """The flags raised today: exactly the ledger's SQL rule ``due_on < today``."""
    raised = []
    for flag, column in FLAG_COLUMNS.items():
        due: date | None = getattr(outflow, column)
        if due is not None and due < today:
            raised.append(flag)
    return raised


def is_far(
    *,
    lat: float,
    lon: float,
    resolved_code: str | None,
    destination_code: str,
    far_km: int,
) -> tuple[bool, float | None]:
    """Far from the registered destination: beyond ``far_km`` of its centroid, or
    another city (or outside China). Returns (far, distance in metres)."""
    centroid = regions.region_centroid(destination_code)
    distance = regions.distance_m(lat, lon, centroid[0], centroid[1]) if centroid else None
    if resolved_code is None:
        return True, distance
    far = distance is not None and distance > far_km * 1000
    dest_city = _city_or_none(destination_code)
    if (dest_city is not None and _city_or_none(resolved_code) != dest_city) or (
        dest_city is None and not same_area(resolved_code, destination_code)
    ):
        far = True
    return far, distance


# ---------------------------------------------------------------------------
# What the member should do next (GET /me/outflow)
# ---------------------------------------------------------------------------


def _due_text(what: str, due: date, today: date) -> str:
    days = (due - today).days
    if days < 0:
        return f"{what}已逾期 {-days} 天，请尽快办理"
    if days == 0:
        return f"{what}今天到期"
    return f"{what}还有 {days} 天到期（{due.isoformat()} 前）"


def next_actions(
    outflow: Outflow | Row, today: date, *, location_consent: bool
) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    if outflow.status == "pending":
        actions.append({"code": "await_approval", "text": "外出登记等待党支部审批", "due_on": None})
        return actions
    if outflow.status != "active":
        return actions
    if outflow.checkin_status in ("none", "refused") and outflow.checkin_due_on is not None:
        text = _due_text("流入地报到", outflow.checkin_due_on, today)
        if outflow.checkin_status == "refused":
            text = "报到被拒绝，请选择其他流入地党组织。" + text
        actions.append({"code": "checkin", "text": text, "due_on": outflow.checkin_due_on})
    elif outflow.checkin_status == "pending":
        actions.append(
            {"code": "await_checkin", "text": "报到申请等待流入地党组织确认", "due_on": None}
        )
    if not location_consent:
        actions.append(
            {
                "code": "consent",
                "text": "提交定期报告前，请先同意收集位置信息",
                "due_on": None,
            }
        )
    if outflow.report_due_on is not None:
        actions.append(
            {
                "code": "report",
                "text": _due_text("定期报告", outflow.report_due_on, today),
                "due_on": outflow.report_due_on,
            }
        )
    if outflow.transfer_suggest_on is not None and outflow.transfer_suggest_on < today:
        actions.append(
            {
                "code": "transfer",
                "text": "在外已超过 6 个月且地点固定，建议办理组织关系转接",
                "due_on": None,
            }
        )
    if (outflow.expected_return_on - today).days <= 7:
        actions.append(
            {
                "code": "return",
                "text": "预计返回日期临近，返回后请办理返回登记",
                "due_on": outflow.expected_return_on,
            }
        )
    return actions
