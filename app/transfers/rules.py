"""The relation transfer state machine: one table of moves, the side that may take each.

States: ``requested`` → ``approved`` (home side, with the letter of introduction's
number) → ``completed`` (receiving side; the member's home organisation changes), or
``rejected`` (home side), ``refused`` (receiving side), ``withdrawn`` (before
completion). Every legal move is one entry of :data:`TRANSITIONS`; anything else is
``409 transfer.invalid_transition``.

Sides (who may take a move; everyone else who can see the transfer gets 403, everyone
who cannot see it 404):

* ``home``: admins whose subtree holds the member's home organisation (the *change*
  verb of :mod:`app.organization.scope`; co-managing organisations are not home);
* ``receiving``: admins whose subtree holds the receiving organisation;
* ``requester``: the member himself, the account that asked, or the home side.
"""

from __future__ import annotations

from typing import Final

from app.transfers.errors import invalid_transition

HOME: Final = "home"
RECEIVING: Final = "receiving"
REQUESTER: Final = "requester"

# (state, action) -> next state. "new": not yet requested (no row).
TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    ("new", "request"): "requested",
    ("requested", "approve"): "approved",
    ("requested", "reject"): "rejected",
    ("requested", "withdraw"): "withdrawn",
    ("approved", "accept"): "completed",
    ("approved", "refuse"): "refused",
    ("approved", "withdraw"): "withdrawn",
}

# Who may take each action (the request itself is checked where it is made).
SIDES: Final[dict[str, str]] = {
    "approve": HOME,
    "reject": HOME,
    "accept": RECEIVING,
    "refuse": RECEIVING,
    "withdraw": REQUESTER,
}

STATES: Final = tuple(sorted({s for s, _ in TRANSITIONS} | set(TRANSITIONS.values())))
ACTIONS: Final = tuple(sorted({a for _, a in TRANSITIONS}))
OPEN: Final = frozenset({"requested", "approved"})


def next_state(state: str, action: str) -> str:
    """The state after ``action``, or InvalidTransition (409)."""
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise invalid_transition(state, action)
    return target
