"""Request and response models of the study domain."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.core.types import Id

ItemKind = Literal["article", "video", "vr_hall", "quiz"]
Period = Literal["day", "month", "year"]
EventStatus = Literal["accepted", "duplicate", "rejected"]

ClientEventId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    kind: ItemKind
    url: str = Field(min_length=2, max_length=500, pattern=r"^(https://|http://|/)\S+$")
    min_seconds: int = Field(ge=0, le=24 * 3600)
    # Omitted: the points of the credit rule for this kind at the item's organisation.
    points: int | None = Field(default=None, ge=0, le=100)
    # Omitted by a superadmin: a global item, visible to every member.
    org_id: Id | None = None


class ItemOut(BaseModel):
    id: int
    org_id: int | None
    title: str
    kind: ItemKind
    url: str
    min_seconds: int
    points: int
    created_at: datetime


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: Id


class SessionOut(BaseModel):
    session_id: int
    item_id: int
    started_at: datetime
    min_seconds: int


class CheckinCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: Id
    client_event_id: str = ClientEventId


class CheckinOut(BaseModel):
    checkin_id: int
    points_awarded: int
    daily_points: int
    daily_cap_reached: bool
    # True when this answers a repeat of an earlier check-in (same client_event_id or session).
    replayed: bool = False


class BatchEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: Id
    client_event_id: str = ClientEventId
    occurred_at: AwareDatetime

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError as error:  # e.g. 0001-01-01T00:00+08:00
            raise ValueError("时间超出范围") from error


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[BatchEvent] = Field(min_length=1, max_length=100)


class BatchResult(BaseModel):
    client_event_id: str
    session_id: int
    status: EventStatus
    code: str | None = None
    detail: str | None = None
    checkin_id: int | None = None
    points_awarded: int = 0
    daily_points: int | None = None
    daily_cap_reached: bool | None = None
    seconds_remaining: int | None = None


class BatchOut(BaseModel):
    results: list[BatchResult]
    points_awarded: int


class CreditsOut(BaseModel):
    today: int
    this_month: int
    this_year: int
    total: int
    streak_days: int
    day: date


class LeaderboardEntry(BaseModel):
    rank: int
    member_id: int
    name: str
    points: int


class MyStanding(BaseModel):
    member_id: int
    name: str
    points: int
    # None when the member earned nothing in the period (he is not ranked).
    rank: int | None


class LeaderboardOut(BaseModel):
    org_id: int
    period: Period
    start: date
    end: date
    items: list[LeaderboardEntry]
    next_cursor: str | None = None
    # The caller's own rank and points in this subtree and period (None if not a member).
    me: MyStanding | None = None
