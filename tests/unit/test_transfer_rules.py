"""The relation transfer's transition table: every action has a side and Chinese labels,
the open states are exactly those that can still move."""

from __future__ import annotations

import pytest

from app.core.errors import InvalidTransition
from app.transfers.errors import ACTION_LABELS, STATE_LABELS
from app.transfers.models import OPEN_STATUSES, TRANSFER_STATUSES
from app.transfers.rules import ACTIONS, OPEN, SIDES, STATES, TRANSITIONS, next_state


def test_every_move_has_a_side_and_labels() -> None:
    assert set(SIDES) == set(ACTIONS) - {"request"}
    assert set(STATES) <= set(STATE_LABELS) and set(ACTIONS) <= set(ACTION_LABELS)
    assert set(STATES) - {"new"} == set(TRANSFER_STATUSES)


def test_open_states_are_those_that_can_still_move() -> None:
    movable = {state for state, _ in TRANSITIONS} - {"new"}
    assert movable == OPEN == set(OPEN_STATUSES)


def test_the_path_and_the_ends() -> None:
    assert next_state("new", "request") == "requested"
    assert next_state("requested", "approve") == "approved"
    assert next_state("approved", "accept") == "completed"
    with pytest.raises(InvalidTransition) as raised:
        next_state("completed", "withdraw")
    assert raised.value.status == 409 and raised.value.code == "transfer.invalid_transition"
    assert raised.value.detail == "当前状态为“已完成转接”，不能撤回申请"
