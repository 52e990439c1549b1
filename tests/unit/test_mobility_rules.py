"""The outflow transition table, rule merging, flag dates and geography, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.core.clock import shanghai_day
from app.core.errors import InvalidTransition
from app.mobility.models import Outflow
from app.mobility.repository import region_prefix
from app.mobility.rules import (
    DEFAULT_RULES,
    TRANSITIONS,
    apply_state,
    flags_of,
    is_far,
    merge_rules,
    next_state,
    recompute_due_dates,
    same_area,
    state_of,
)


def outflow(status: str = "active", checkin: str = "none") -> Outflow:
    return Outflow(
        status=status,
        checkin_status=checkin,
        departed_on=date(2026, 3, 1),
        expected_return_on=date(2027, 3, 1),
        destination_region_code="440305",
        decided_at=datetime(2026, 3, 2, 4, tzinfo=UTC),
    )


def test_every_state_and_action_is_either_in_the_table_or_refused() -> None:
    states = ["pending", "rejected", "returned", "withdrawn", "cancelled"] + [
        f"active:{c}" for c in ("none", "pending", "accepted", "refused")
    ]
    actions = {action for _, action in TRANSITIONS}
    for state in states:
        status, _, checkin = state.partition(":")
        o = outflow(status, checkin or "none")
        assert state_of(o) == state
        for action in actions:
            if (state, action) in TRANSITIONS:
                assert next_state(o, action) == TRANSITIONS[(state, action)]
            else:
                with pytest.raises(InvalidTransition) as error:
                    next_state(o, action)
                assert error.value.status == 409
                assert error.value.code == "outflow.invalid_transition"
    # Closed outflows accept nothing.
    closed = ("rejected", "returned", "withdrawn", "cancelled")
    assert not [k for k in TRANSITIONS if k[0] in closed]


def test_apply_state_sets_status_and_checkin() -> None:
    o = outflow("pending")
    apply_state(o, "active:none")
    assert (o.status, o.checkin_status) == ("active", "none")
    apply_state(o, "returned")
    assert (o.status, o.checkin_status) == ("returned", "none")


def test_merge_rules_nearest_wins_and_ignores_bad_values() -> None:
    rules = merge_rules(
        [
            {"report_interval_days": 60, "lost_contact_days": 100},
            {"report_interval_days": 30, "lost_contact_days": -1, "checkin_deadline_days": True},
        ]
    )
    assert rules.report_interval_days == 30
    assert rules.lost_contact_days == 100
    assert rules.checkin_deadline_days == DEFAULT_RULES["checkin_deadline_days"]


def test_shanghai_day_boundary() -> None:
    assert shanghai_day(datetime(2026, 3, 1, 15, 59, tzinfo=UTC)) == date(2026, 3, 1)
    assert shanghai_day(datetime(2026, 3, 1, 16, 0, tzinfo=UTC)) == date(2026, 3, 2)


def test_due_dates_and_flags() -> None:
    o = outflow()
    recompute_due_dates(o, merge_rules([]))
    assert o.checkin_due_on == date(2026, 4, 1)
    assert flags_of(o, date(2026, 4, 1)) == []
    assert flags_of(o, date(2026, 4, 2)) == ["checkin_overdue"]
    o.status = "returned"
    recompute_due_dates(o, merge_rules([]))
    assert (o.checkin_due_on, o.report_due_on, o.lost_contact_on, o.transfer_suggest_on) == (
        None,
        None,
        None,
        None,
    )
    assert flags_of(o, date(2030, 1, 1)) == []


def test_region_prefix() -> None:
    assert region_prefix("440000") == "44"
    assert region_prefix("440300") == "4403"
    assert region_prefix("440305") == "440305"


def test_same_area_and_far() -> None:
    assert same_area("440304", "440305")  # same city 深圳
    assert same_area("440305", "440000")  # inside the province
    assert not same_area("440104", "440305")  # 广州 is another city
    assert not same_area(None, "440305")
    near, distance = is_far(
        lat=22.5333, lon=113.9305, resolved_code="440305", destination_code="440305", far_km=50
    )
    assert near is False and distance is not None and distance < 20_000
    far, _ = is_far(
        lat=23.1291, lon=113.2644, resolved_code="440104", destination_code="440305", far_km=500
    )
    assert far is True  # another city, even within the distance threshold
    abroad, _ = is_far(
        lat=1.29, lon=103.85, resolved_code=None, destination_code="440305", far_km=50
    )
    assert abroad is True
