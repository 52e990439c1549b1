"""``/me`` composed from each domain: identity (account, roles), members (the roster,
for binding) and mobility (the open outflow). Identity itself knows no other domain."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import clock
from app.core.config import Settings
from app.core.db import ConnectionSource
from app.core.security import RoleClaim
from app.identity import errors as identity_errors
from app.identity import service as identity
from app.identity.principal import Principal
from app.identity.sessions import kind_of
from app.me import repository as repo
from app.members.service import find_by_id_number
from app.mobility.service import outflow_summary


async def me(source: ConnectionSource, principal: Principal) -> dict[str, Any]:
    """Account, member (masked), roles and their organisations, home organisation and
    the open outflow's summary, read in one statement (app/me/repository.py), as
    ``MeOut``'s JSON: a plain dict in the model's field order, written once by the
    router (``app.core.responses``; what ``GET /me`` cost in models built and validated
    was a sixth of the request). ``tests/api/test_me.py`` checks the body against the
    model."""
    row = await repo.me(source, principal.account_id)
    if row is None:
        raise identity_errors.account_not_found()
    if row["disabled"]:
        raise identity_errors.account_disabled()
    roles = [
        {"id": role_id, "role": role, "org": {"id": org_id, "name": name, "kind": kind}}
        for role_id, role, org_id, name, kind in orjson.loads(row["roles"])
    ]
    claims = tuple(RoleClaim(r["role"], r["org"]["id"]) for r in roles)
    member = home_org = active_outflow = None
    if row["m_id"] is not None:
        member = {
            "id": row["m_id"],
            "name": row["m_name"],
            "gender": row["m_gender"],
            "birth_date": row["m_birth_date"],
            "status": row["m_status"],
            "joined_on": row["m_joined_on"],
            "id_number_masked": row["m_id_number_masked"],
            "phone_masked": row["m_phone_masked"],
        }
        home_org = {"id": row["home_id"], "name": row["home_name"], "kind": row["home_kind"]}
        if row["id"] is not None:  # already JSON-ready, in ActiveOutflowOut's order
            active_outflow = outflow_summary(
                row, clock.today(), location_consent=row["location_consent"]
            )
    member_id = row["member_id"]
    return {
        "account": {
            "id": row["account_id"],
            "kind": kind_of(row["is_superadmin"], member_id, claims),
            "member_id": member_id,
        },
        # A member who bound by ID number never gave a display name: his roster name.
        "display_name": row["display_name"] or (member["name"] if member else None),
        "is_superadmin": row["is_superadmin"],
        "member": member,
        "home_org": home_org,
        "roles": roles,
        "active_outflow": active_outflow,
    }


async def bind(
    session: AsyncSession,
    settings: Settings,
    engine: AsyncEngine,
    principal: Principal,
    *,
    name: str,
    id_number: str,
) -> identity.TokenPair:
    """Link the caller's account to the roster member with this name and ID number.

    Wrong name and unknown number give the same 404, and attempts are counted (see
    :func:`app.identity.service.unbound_account`), so neither the roster nor a member's
    name can be enumerated.
    """
    account = await identity.unbound_account(session, settings, engine, principal, id_number)
    found = await find_by_id_number(session, settings, id_number)
    if found is None or identity.normalize_name(found.name) != identity.normalize_name(name):
        raise identity_errors.not_found_in_roster()
    return await identity.bind_member(session, settings, account, found.id)
