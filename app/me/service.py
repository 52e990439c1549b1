"""``/me`` composed from each domain: identity (account, roles), members (the roster,
for binding) and mobility (the open outflow). Identity itself knows no other domain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.identity import errors as identity_errors
from app.identity import service as identity
from app.identity.principal import Principal
from app.members.service import find_by_id_number
from app.mobility.service import active_outflow_summary


@dataclass(frozen=True)
class Me:
    profile: identity.Profile
    active_outflow: dict[str, Any] | None


async def me(session: AsyncSession, principal: Principal) -> Me:
    profile = await identity.profile(session, principal)
    active_outflow = None
    if profile.member is not None:
        active_outflow = await active_outflow_summary(session, profile.member.id)
    return Me(profile=profile, active_outflow=active_outflow)


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
