"""The inflow state machine and its flags, as pure functions.

States: ``candidate`` (a census survey named him; nobody has spoken to him yet),
``pending`` (he declared himself), ``verified``, ``rejected``, ``withdrawn``. Every legal
move is one entry of :data:`TRANSITIONS`; anything else is ``409
inflow.invalid_transition``.

Flags (days in Asia/Shanghai, like the outflow ledger's):

* ``transfer_suggested``: verified, and his ID number is not on our roster: he is
  managed here as an inflow member, and should transfer his relation (组织关系转接).
* ``verify_overdue``: still a candidate or pending more than
  :data:`VERIFY_WITHIN_DAYS` days after it entered the ledger.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from app.core import clock
from app.inflows.errors import invalid_transition

TRANSITIONS: dict[tuple[str, str], str] = {
    # "new": no row yet.
    ("new", "declare"): "pending",
    ("new", "discover"): "candidate",
    # The member a census found shows himself: his declaration completes the row.
    ("candidate", "declare"): "pending",
    ("candidate", "verify"): "verified",
    ("candidate", "reject"): "rejected",
    ("pending", "verify"): "verified",
    ("pending", "reject"): "rejected",
    # The declarant takes back what nobody has decided on yet.
    ("pending", "withdraw"): "withdrawn",
}

FLAGS = ("transfer_suggested", "verify_overdue")
VERIFY_WITHIN_DAYS = 30

TRANSFER_PROMPT = (
    "您已在本组织登记为流入党员。组织关系仍在原党组织，建议办理组织关系转接，"
    "转入后可在本组织正常参加组织生活。"
)


def next_state(status: str | None, action: str) -> str:
    """The state after ``action``, or InvalidTransition (409)."""
    state = status or "new"
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise invalid_transition(state, action)
    return target


def overdue_cutoff(today: date) -> datetime:
    """Rows created before this instant are ``verify_overdue`` while undecided."""
    start = datetime(today.year, today.month, today.day, tzinfo=clock.SHANGHAI)
    return start - timedelta(days=VERIFY_WITHIN_DAYS)


def flags_of(
    status: str, matched_member_id: int | None, created_at: datetime, today: date
) -> list[str]:
    """The flags raised today: exactly the ledger's SQL rule (repository.flag_condition)."""
    raised = []
    if status == "verified" and matched_member_id is None:
        raised.append("transfer_suggested")
    if status in ("candidate", "pending") and created_at < overdue_cutoff(today):
        raised.append("verify_overdue")
    return raised
