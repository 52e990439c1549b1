"""Request and response models of the activity domain."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from app.core.types import Id

ActivityKind = Literal[
    "theme_day",  # 主题党日
    "branch_meeting",  # 支部党员大会
    "party_class",  # 党课
    "committee_meeting",  # 支委会
    "general_meeting",  # 党员大会 / 党小组会
    "online_class",  # 在线课堂
    "volunteer",  # 志愿服务
]

MAX_DURATION = timedelta(days=31)
# The sign-in window may open at most this long before the activity starts.
MAX_EARLY_CHECKIN = timedelta(hours=24)


class ActivityCreate(BaseModel):
    """A new activity. On-site activities (``online: false``) need ``lat``, ``lon`` and
    ``radius_m``; the sign-in window must open before it closes, no earlier than 24 h
    before the start, and close no later than the end."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=100)
    org_id: Id
    kind: ActivityKind
    description: str | None = Field(default=None, max_length=2000)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    checkin_opens_at: AwareDatetime
    checkin_closes_at: AwareDatetime
    online: bool = False
    lat: float | None = Field(default=None, ge=-90, le=90, validate_default=True)
    lon: float | None = Field(default=None, ge=-180, le=180, validate_default=True)
    radius_m: int | None = Field(default=None, ge=10, le=10_000, validate_default=True)
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    credit_points: int | None = Field(default=None, ge=0, le=100)

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if starts_at is None:
            return value
        if value <= starts_at:
            raise ValueError("结束时间必须晚于开始时间")
        if value - starts_at > MAX_DURATION:
            raise ValueError("活动时长不能超过 31 天")
        return value

    @field_validator("checkin_opens_at")
    @classmethod
    def _opens_sanely(cls, value: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        ends_at = info.data.get("ends_at")
        if starts_at is not None and value < starts_at - MAX_EARLY_CHECKIN:
            raise ValueError("签到最早只能在活动开始前 24 小时开放")
        if ends_at is not None and value >= ends_at:
            raise ValueError("签到开放时间必须早于活动结束时间")
        return value

    @field_validator("checkin_closes_at")
    @classmethod
    def _closes_sanely(cls, value: datetime, info: ValidationInfo) -> datetime:
        opens_at = info.data.get("checkin_opens_at")
        ends_at = info.data.get("ends_at")
        if opens_at is not None and value <= opens_at:
            raise ValueError("签到截止时间必须晚于签到开放时间")
        if ends_at is not None and value > ends_at:
            raise ValueError("签到截止时间不能晚于活动结束时间")
        return value

    @field_validator("lat", "lon", "radius_m")
    @classmethod
    def _onsite_needs_location(
        cls, value: float | int | None, info: ValidationInfo
    ) -> float | int | None:
        if value is None and info.data.get("online") is False:
            raise ValueError("线下活动必须填写活动地点坐标和签到半径")
        return value


class ActivityOut(BaseModel):
    id: int
    org_id: int
    org_name: str
    title: str
    kind: ActivityKind
    description: str | None
    starts_at: datetime
    ends_at: datetime
    checkin_opens_at: datetime
    checkin_closes_at: datetime
    online: bool
    lat: float | None
    lon: float | None
    radius_m: int | None
    capacity: int | None
    signup_count: int
    credit_points: int | None
    version: int
    created_at: datetime
    # The caller's own state (null for admins who are not concerned).
    my_signup_status: Literal["signed_up", "cancelled"] | None = None
    my_attended_at: datetime | None = None


class SignupOut(BaseModel):
    id: int
    activity_id: int
    member_id: int
    status: Literal["signed_up", "cancelled"]
    signed_up_at: datetime
    cancelled_at: datetime | None


class AttendanceIn(BaseModel):
    """``{lat, lon}`` (wx.getLocation, GCJ-02) or ``{qr_token}`` scanned on site; online
    activities accept an empty body. A valid QR token takes precedence over location."""

    model_config = ConfigDict(extra="forbid")

    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180, validate_default=True)
    qr_token: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$"
    )

    @field_validator("lon")
    @classmethod
    def _lat_and_lon_together(cls, value: float | None, info: ValidationInfo) -> float | None:
        if (value is None) != (info.data.get("lat") is None):
            raise ValueError("纬度和经度必须同时提供")
        return value


class AttendanceOut(BaseModel):
    id: int
    activity_id: int
    member_id: int
    method: Literal["location", "qr", "online"]
    distance_m: int | None
    attended_at: datetime
    credits_awarded: int


class QrOut(BaseModel):
    qr_token: str
    expires_at: datetime
    step_seconds: int


class RollEntry(BaseModel):
    member_id: int
    name: str
    phone_masked: str | None
    home_org_id: int
    signed_up_at: datetime | None
    attended_at: datetime | None
    method: Literal["location", "qr", "online"] | None


class RollOut(BaseModel):
    """``expected`` = members whose home organisation is in the activity organisation's
    subtree plus everyone signed up; ``absent`` = expected but not attended."""

    activity_id: int
    expected_count: int
    signed_up: list[RollEntry]
    attended: list[RollEntry]
    absent: list[RollEntry]
