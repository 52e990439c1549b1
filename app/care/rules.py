"""The two state machines of care, each one transition table.

Campaign: ``scheduled`` → ``sent`` (the worker, on its day) or ``cancelled`` (an admin,
before it was sent). Case: ``open`` takes help and stays open, ``close`` ends it;
``reopen`` brings a closed case back (hardship returns). Any other move is 409.
"""

from __future__ import annotations

from typing import Final

from app.core.errors import InvalidTransition

CAMPAIGN_TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    ("scheduled", "send"): "sent",
    ("scheduled", "cancel"): "cancelled",
}
CAMPAIGN_STATES: Final = {"scheduled": "待发送", "sent": "已发送", "cancelled": "已取消"}
CAMPAIGN_ACTIONS: Final = {"send": "发送", "cancel": "取消"}

CASE_TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    ("open", "help"): "open",
    ("open", "close"): "closed",
    ("closed", "reopen"): "open",
}
CASE_STATES: Final = {"open": "帮扶中", "closed": "已结案"}
CASE_ACTIONS: Final = {"help": "登记帮扶", "close": "结案", "reopen": "重新开启"}


def campaign_next(state: str, action: str) -> str:
    try:
        return CAMPAIGN_TRANSITIONS[(state, action)]
    except KeyError:
        raise InvalidTransition(
            "care.campaign_invalid_transition",
            state,
            action,
            state_labels=CAMPAIGN_STATES,
            action_labels=CAMPAIGN_ACTIONS,
        ) from None


def case_next(state: str, action: str) -> str:
    try:
        return CASE_TRANSITIONS[(state, action)]
    except KeyError:
        raise InvalidTransition(
            "care.case_invalid_transition",
            state,
            action,
            state_labels=CASE_STATES,
            action_labels=CASE_ACTIONS,
        ) from None
