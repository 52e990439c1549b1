"""Rules of the census that are not SQL: the round's state machine and the blue / yellow /
red light of progress against a due date (蓝黄红目标推进)."""

from __future__ import annotations

from datetime import date
from typing import Final

from app.census.errors import round_closed

# (state, action) -> next state. A closed round takes no more surveys.
ROUND_TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    ("open", "close"): "closed",
    ("open", "survey"): "open",
}


def next_round_state(state: str, action: str) -> str:
    target = ROUND_TRANSITIONS.get((state, action))
    if target is None:
        raise round_closed(state, action)
    return target


def light(total: int, surveyed: int, opened_on: date, due_on: date, today: date) -> str:
    """blue: done, or surveyed at least in proportion to the time gone; yellow: behind
    that pace; red: the due date has passed with entities left."""
    if surveyed >= total:
        return "blue"
    if today > due_on:
        return "red"
    span = max((due_on - opened_on).days, 1)
    expected = min(max((today - opened_on).days, 0) / span, 1.0)
    return "blue" if surveyed / total >= expected else "yellow"


def region_prefix(code: str) -> str:
    """A province (``XX0000``) or city (``XXXX00``) code matches the regions under it."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code
