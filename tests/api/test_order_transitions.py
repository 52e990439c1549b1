"""Every (state, action, role) of the order state machine, generated.

The expected table is written out here independently of the service: allowed moves must
move and record, every other combination is 409 (illegal move), 403 (wrong role) or 404
(outside the caller's scope) and changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.orders import service
from app.orders.models import ServiceOrder, ServiceOrderEvent
from tests import factories as f
from tests.api.test_order_helpers import World, count, moved, submit, who, world
from tests.conftest import problem

STATES = (
    "submitted",
    "accepted",
    "in_progress",
    "resolved",
    "closed",
    "transferred",
    "rejected",
    "cancelled",
)
ACTIONS = ("accept", "start", "transfer", "resolve", "reject", "cancel", "reopen", "rate")
ADMIN_ACTIONS = {"accept", "start", "transfer", "resolve", "reject"}

# (state, action) -> next state, as the contract (docs/domain.md, docs/api-guide.md) describes it.
EXPECTED = {
    ("submitted", "accept"): "accepted",
    ("submitted", "reject"): "rejected",
    ("submitted", "transfer"): "submitted",  # via "transferred", at the new organisation
    ("submitted", "cancel"): "cancelled",
    ("accepted", "start"): "in_progress",
    ("accepted", "reject"): "rejected",
    ("accepted", "transfer"): "submitted",
    ("in_progress", "transfer"): "submitted",
    ("in_progress", "resolve"): "resolved",
    ("resolved", "reopen"): "in_progress",
    ("resolved", "rate"): "closed",
}

# Roles, seen from an order that was transferred from 村支部 to 外县支部:
#   handler   admin of the order's current organisation       -> may take admin actions
#   sender    admin of the organisation it came from          -> read only: 403
#   submitter the account that filed it                       -> submitter actions
#   member    another member of the same branch               -> 404
#   outsider  admin of an unrelated tree                      -> 404
ROLES = ("handler", "sender", "submitter", "member", "outsider")


def expected_outcome(state: str, action: str, role: str) -> tuple[int, str | None]:
    if role in ("member", "outsider"):
        return 404, "order.not_found"
    wants_admin = action in ADMIN_ACTIONS
    if (wants_admin and role != "handler") or (not wants_admin and role != "submitter"):
        return 403, "order.action_forbidden"
    if (state, action) in EXPECTED:
        return 200, None
    if (state, action) == ("closed", "rate"):  # the closed order here was closed by rating
        return 409, "order.already_rated"
    return 409, "order.invalid_transition"


def test_expected_table_matches_the_service_table() -> None:
    public = {
        (state, action): rule.to
        for (state, action), rule in service.TRANSITIONS.items()
        if action not in ("close", "arrive")
    }
    # A transfer passes through "transferred" and arrives as "submitted".
    public = {k: "submitted" if k[1] == "transfer" else v for k, v in public.items()}
    assert public == EXPECTED
    assert service.TRANSITIONS[("transferred", "arrive")].to == "submitted"
    assert service.TRANSITIONS[("resolved", "close")].to == "closed"


async def _order_in(
    client: httpx.AsyncClient, db: AsyncSession, w: World, state: str
) -> dict[str, Any]:
    order = await submit(client, w.submitter, w.village)
    order = await moved(
        client, w.village_admin, order, "transfer", to_org_id=w.other_branch.id, note="属地办理"
    )
    path = {
        "submitted": [],
        "accepted": ["accept"],
        "in_progress": ["accept", "start"],
        "resolved": ["accept", "start", "resolve"],
        "closed": ["accept", "start", "resolve", "rate"],
        "rejected": ["reject"],
        "cancelled": ["cancel"],
        "transferred": [],
    }[state]
    for action in path:
        order = await _do(
            client, w, order, action, "submitter" if action in ("cancel", "rate") else "handler"
        )
        assert order.status_code == 200, order.text
        order = order.json()
    if state == "transferred":  # a transient state: put an order there by hand
        await db.execute(
            update(ServiceOrder).where(ServiceOrder.id == order["id"]).values(status="transferred")
        )
        order["status"] = "transferred"
    assert order["status"] == state
    return order


def _actor(w: World, extra: dict[str, Any], role: str) -> Any:
    return {
        "handler": w.other_admin,
        "sender": w.village_admin,
        "submitter": w.submitter,
        "member": w.stranger,
        "outsider": extra.get("outsider"),
    }[role]


async def _do(
    client: httpx.AsyncClient,
    w: World,
    order: dict[str, Any],
    action: str,
    role: str,
    extra: dict[str, Any] | None = None,
) -> httpx.Response:
    actor = _actor(w, extra or {}, role)
    if action == "rate":
        return await client.post(
            f"/api/v1/orders/{order['id']}/rating",
            json={"score": 4, "comment": "满意", "version": order["version"]},
            headers=actor.headers,
        )
    payload: dict[str, Any] = {"action": action, "version": order["version"], "note": "说明"}
    if action == "transfer":
        payload["to_org_id"] = w.town.id
    return await client.post(
        f"/api/v1/orders/{order['id']}/transitions", json=payload, headers=actor.headers
    )


@pytest.mark.parametrize("state", STATES)
async def test_every_action_and_role_from(
    state: str, client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    outsider_root = await f.org(db, "无关县委")
    extra = {"outsider": who(await f.admin_actor(db, settings, outsider_root, name="无关管理员"))}
    await db.commit()
    checked = 0
    order = await _order_in(client, db, w, state)
    for action in ACTIONS:
        for role in ROLES:
            status, code = expected_outcome(state, action, role)
            events_before = await count(
                db, ServiceOrderEvent, ServiceOrderEvent.order_id == order["id"]
            )
            response = await _do(client, w, order, action, role, extra)
            row = await db.get(ServiceOrder, order["id"], populate_existing=True)
            assert row is not None
            events_after = await count(
                db, ServiceOrderEvent, ServiceOrderEvent.order_id == order["id"]
            )
            where = f"{state} --{action}--> as {role}"
            if status == 200:
                assert response.status_code == 200, (where, response.text)
                body = response.json()
                assert body["status"] == EXPECTED[(state, action)] == row.status, where
                assert row.version == order["version"] + 1, where
                recorded = 2 if action == "transfer" else 1
                assert events_after == events_before + recorded, where
                assert body["timeline"][-recorded]["action"] == action, where
                order = await _order_in(client, db, w, state)  # a fresh one for the next
            else:
                problem(response, status, code or "")
                assert row.status == state and row.version == order["version"], where
                assert events_after == events_before, where
            checked += 1
    assert checked == len(ACTIONS) * len(ROLES)
