"""The one clock of the app: "now", and the Asia/Shanghai day that every rule counts in.

Every rule that asks what time it is asks here (flags and due dates of outflows, order
SLAs, study sessions and caps, activity sign-up windows and attendance QR codes, the
worker's due jobs and the scheduler's periods). In ``dev`` and ``test`` the clock can be
moved forward by an offset, so that a tester can watch a member turn overdue and lost or
an order escalate and close without waiting weeks:

* ``APP_CLOCK_OFFSET=3d`` (or ``12h``, ``181d6h``, ``90m``, ``3600``) in the environment,
  or ``python -m app dev --clock-offset 3d`` (also ``serve`` and ``worker``);
* tests move it with the ``clock`` fixture (``clock.advance(days=3)``, or stop it at an
  instant with ``clock.now = ...``), they never sleep.

``prod`` refuses to start with an offset (see ``Settings``). Timestamps that PostgreSQL
writes by itself (``server_default now()``) and security windows counted in epoch
seconds (JWT lifetimes, rate limits) stay on the real clock: a moved clock must neither
lengthen nor shorten them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SECONDS = re.compile(r"\s*\d+(?:\.\d+)?\s*")
_PARTS = re.compile(r"(?:\s*\d+(?:\.\d+)?\s*[smhd])+\s*", re.IGNORECASE)
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
# The offset this process runs with (``set_offset``, ``advance``).
_offset = timedelta(0)
# Tests only: a stopped clock (``pin``), so that exact instants and day boundaries hold.
_pinned: datetime | None = None


def now() -> datetime:
    """The current instant (aware, UTC), moved by the offset in dev and test."""
    return (_pinned if _pinned is not None else datetime.now(UTC)) + _offset


def shanghai_day(moment: datetime) -> date:
    """The calendar day in Asia/Shanghai of an aware timestamp."""
    return moment.astimezone(SHANGHAI).date()


def today() -> date:
    """Today in Asia/Shanghai: "days" in this service are Chinese calendar days."""
    return shanghai_day(now())


def offset() -> timedelta:
    return _offset


def parse_offset(value: str | float | timedelta | None) -> timedelta:
    """``"3d"``, ``"12h"``, ``"181d6h"``, ``"90m"``, ``"30s"`` or plain seconds; never
    negative."""
    if value is None or value == "":
        return timedelta(0)
    if isinstance(value, timedelta):
        delta = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        delta = timedelta(seconds=value)
    elif _SECONDS.fullmatch(str(value)):
        delta = timedelta(seconds=float(value))
    elif _PARTS.fullmatch(str(value)):
        delta = timedelta(
            seconds=sum(float(n) * _UNITS[unit.lower()] for n, unit in _PART.findall(str(value)))
        )
    else:
        raise ValueError(f"clock offset {value!r}: write e.g. 3d, 12h, 181d6h, 90m or 3600")
    if delta < timedelta(0):
        raise ValueError("the clock only moves forward: the offset cannot be negative")
    return delta


def set_offset(delta: timedelta) -> None:
    """Run this process with ``delta`` ahead of real time (the app's settings checked
    that it is allowed: not in prod)."""
    global _offset
    if delta < timedelta(0):
        raise ValueError("the clock only moves forward: the offset cannot be negative")
    _offset = delta


def advance(delta: timedelta) -> datetime:
    """Move the clock forward by ``delta`` (tests and drills); returns the new now."""
    set_offset(_offset + delta)
    return now()


def pin(moment: datetime | None) -> None:
    """Tests only: stop the clock at ``moment`` (aware) with no offset; None: run again."""
    global _pinned, _offset
    if moment is not None and moment.tzinfo is None:
        raise ValueError("pin an aware datetime")
    _pinned = moment.astimezone(UTC) if moment is not None else None
    _offset = timedelta(0)
