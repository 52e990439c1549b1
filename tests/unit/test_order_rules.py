"""Pure rules of the orders domain: the transition table's shape, overdue, category paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.orders import service
from app.orders.models import ORDER_STATUSES, ServiceOrder
from app.organization.models import path_ids as ancestor_ids


def test_every_action_has_one_role_and_every_state_is_known() -> None:
    for (state, action), rule in service.TRANSITIONS.items():
        assert state in ORDER_STATUSES and rule.to in ORDER_STATUSES
        assert service.ACTION_ROLE[action] == rule.role
    assert {r.role for r in service.TRANSITIONS.values()} == {
        service.ADMIN,
        service.SUBMITTER,
        service.SYSTEM,
    }
    # Terminal states have no way out.
    for terminal in ("closed", "rejected", "cancelled"):
        assert not [k for k in service.TRANSITIONS if k[0] == terminal]
    assert all(len(label) <= 5 for label in service.STATUS_LABEL.values())  # WeChat "phrase"


def _order(status: str, accept_in: float, resolve_in: float, now: datetime) -> ServiceOrder:
    return ServiceOrder(
        status=status,
        accept_due_at=now + timedelta(hours=accept_in),
        due_at=now + timedelta(hours=resolve_in),
    )


def test_overdue_counts_the_accept_deadline_only_before_acceptance() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert service.is_overdue(_order("submitted", -1, 10, now), now)
    assert not service.is_overdue(_order("accepted", -1, 10, now), now)
    assert service.is_overdue(_order("in_progress", -20, -1, now), now)
    assert not service.is_overdue(_order("resolved", -20, -1, now), now)
    assert not service.is_overdue(_order("submitted", 1, 10, now), now)


def test_ancestor_ids_of_a_materialised_path() -> None:
    assert ancestor_ids("/1/7/42/") == [1, 7, 42]
    assert ancestor_ids("/5/") == [5]
