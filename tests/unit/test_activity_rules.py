"""Activity rules that need no database: validation, the sign-up table, the geofence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.activity import qr
from app.activity.models import Activity
from app.activity.schemas import ActivityCreate, AttendanceIn
from app.activity.service import SIGNUP_TRANSITIONS, check_presence, next_signup_state
from app.core.config import Settings
from app.core.errors import AppError, InvalidTransition
from app.regions.service import distance_m

START = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "七一主题党日",
        "org_id": 1,
        "kind": "theme_day",
        "starts_at": START,
        "ends_at": START + timedelta(hours=2),
        "checkin_opens_at": START - timedelta(minutes=30),
        "checkin_closes_at": START + timedelta(hours=1),
        "lat": 30.5392,
        "lon": 106.4405,
        "radius_m": 300,
    }
    body.update(overrides)
    return body


def _fields(error: ValidationError) -> set[str]:
    return {str(e["loc"][0]) for e in error.errors()}


def test_valid_onsite_and_online_bodies() -> None:
    assert ActivityCreate(**_body()).online is False
    online = ActivityCreate(**_body(online=True, lat=None, lon=None, radius_m=None))
    assert online.online and online.lat is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ends_at": START}, "ends_at"),
        ({"ends_at": START + timedelta(days=32)}, "ends_at"),
        ({"checkin_opens_at": START - timedelta(hours=25)}, "checkin_opens_at"),
        ({"checkin_opens_at": START + timedelta(hours=2)}, "checkin_opens_at"),
        ({"checkin_closes_at": START - timedelta(minutes=30)}, "checkin_closes_at"),
        ({"checkin_closes_at": START + timedelta(hours=3)}, "checkin_closes_at"),
        ({"lon": None}, "lon"),
        ({"lat": 91}, "lat"),
        ({"title": "   "}, "title"),
        ({"version": 3}, "version"),
    ],
)
def test_invalid_bodies_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ActivityCreate(**_body(**overrides))
    assert field in _fields(caught.value)


def test_attendance_body_needs_lat_and_lon_together() -> None:
    assert AttendanceIn(lat=1.0, lon=2.0).qr_token is None
    assert AttendanceIn().lat is None
    with pytest.raises(ValidationError) as caught:
        AttendanceIn(lat=1.0)
    assert _fields(caught.value) == {"lon"}


def test_signup_transition_table() -> None:
    assert next_signup_state("signed_up", "cancel") == "cancelled"
    assert next_signup_state("cancelled", "sign_up") == "signed_up"
    assert len(SIGNUP_TRANSITIONS) == 2
    with pytest.raises(InvalidTransition) as caught:
        next_signup_state("cancelled", "cancel")
    assert caught.value.status == 409 and caught.value.code == "activity.invalid_transition"


def _activity(**overrides: Any) -> Activity:
    values: dict[str, Any] = {
        "id": 42,
        "online": False,
        "lat": 30.5392,
        "lon": 106.4405,
        "radius_m": 300,
        "checkin_opens_at": START - timedelta(minutes=30),
        "checkin_closes_at": START + timedelta(hours=1),
    }
    values.update(overrides)
    return Activity(**values)


SETTINGS = Settings(env="test", qr_secret="unit-qr")


def _code(error: pytest.ExceptionInfo[AppError]) -> str:
    return error.value.code


def test_window_edges_are_inclusive() -> None:
    activity = _activity()
    here = AttendanceIn(lat=30.5392, lon=106.4405)
    assert check_presence(activity, here, SETTINGS, activity.checkin_opens_at).method == "location"
    assert check_presence(activity, here, SETTINGS, activity.checkin_closes_at).method == "location"
    for moment in (
        activity.checkin_opens_at - timedelta(seconds=1),
        activity.checkin_closes_at + timedelta(seconds=1),
    ):
        with pytest.raises(AppError) as caught:
            check_presence(activity, here, SETTINGS, moment)
        assert _code(caught) == "activity.window_closed"


def test_geofence_uses_haversine_distance() -> None:
    activity = _activity()
    # 0.0027° north is about 300 m: 0.0026° is inside, 0.0028° outside.
    inside = AttendanceIn(lat=30.5392 + 0.0026, lon=106.4405)
    outside = AttendanceIn(lat=30.5392 + 0.0028, lon=106.4405)
    presence = check_presence(activity, inside, SETTINGS, START)
    assert presence.distance_m == pytest.approx(289.1, abs=0.5)
    with pytest.raises(AppError) as caught:
        check_presence(activity, outside, SETTINGS, START)
    assert _code(caught) == "activity.too_far"
    assert caught.value.extra == {"distance_m": 311, "radius_m": 300}
    # One degree of latitude on the 6,371 km sphere.
    assert distance_m(0, 0, 1, 0) == pytest.approx(111_195, abs=1)


def test_qr_and_online_presence() -> None:
    activity = _activity()
    token = qr.token_for("unit-qr", 42, qr.step_of(START))
    assert check_presence(activity, AttendanceIn(qr_token=token), SETTINGS, START).method == "qr"
    with pytest.raises(AppError) as caught:
        check_presence(activity, AttendanceIn(qr_token=token + "x"), SETTINGS, START)
    assert _code(caught) == "activity.invalid_qr"
    with pytest.raises(AppError) as caught:
        check_presence(activity, AttendanceIn(), SETTINGS, START)
    assert _code(caught) == "activity.location_required"
    online = _activity(online=True, lat=None, lon=None, radius_m=None)
    assert check_presence(online, AttendanceIn(), SETTINGS, START).method == "online"
