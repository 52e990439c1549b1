"""The census's hidden members (issue 17, 口袋党员 / 隐形党员): members a survey names as
working at an entity are matched against the roster (blind index of the ID number):

* on the roster, registered outside the entity's responsible organisation's subtree:
  a prompt to him (show yourself, check in, transfer), once per member and entity;
* on the roster there: nothing to do;
* not on the roster: an inflow *candidate* in the responsible organisation's inflow
  ledger (``source=census``), which its admin verifies or rejects like a declaration,
  and which becomes the person's declaration if he declares himself there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core import clock, pii
from app.core.config import Settings
from app.core.crypto import mask_id_number
from app.inflows import repository as repo
from app.inflows.notices import prompt_member, tell_admins
from app.inflows.rules import next_state
from app.inflows.service import ID_NUMBER


@dataclass(frozen=True)
class Findings:
    prompted: int
    candidates: int


async def survey_findings(
    session: AsyncSession,
    settings: Settings,
    *,
    actor_account_id: int,
    survey_id: int,
    entity_id: int,
    entity_name: str,
    org_id: int,
    members: Sequence[tuple[str, str]],
) -> Findings:
    """Act on the ``(name, id_number)`` pairs a survey of ``entity_id`` named."""
    org = await repo.get_org(session, org_id)
    if org is None or not members:
        return Findings(0, 0)
    ring = pii.keyring(settings)
    indexed = [
        (name, number, ring.blind_index(number, context=pii.ID_NUMBER)) for name, number in members
    ]
    matches = await repo.roster_matches(session, [idx for _, _, idx in indexed])
    now = clock.now()
    status = next_state(None, "discover")
    prompted = 0
    candidates: dict[bytes, dict[str, object]] = {}
    for name, number, idx in indexed:
        match = matches.get(idx)
        if match is None:
            candidates[idx] = {
                "org_id": org.id,
                "source": "census",
                "status": status,
                "entity_id": entity_id,
                "name": name,
                "id_number_enc": ring.encrypt(number, context=ID_NUMBER),
                "id_number_idx": idx,
                "id_number_masked": mask_id_number(number),
                "created_at": now,
                "updated_at": now,
            }
        elif not match.home_path.startswith(org.path):
            prompted += await prompt_member(
                session,
                member_id=match.member_id,
                entity_id=entity_id,
                entity_name=entity_name,
                org_id=org.id,
            )
    added = await repo.add_candidates(session, list(candidates.values()))
    if added:
        await tell_admins(
            session,
            org.id,
            title="摸排发现名册外党员线索",
            body=f"{entity_name}的摸排登记了 {added} 名不在党员名册中的党员，"
            "已列入流入党员台账，请联系核实。",
            query="status=candidate&source=census",
            dedupe=f"census:survey:{survey_id}:candidates",
        )
    if added or prompted:
        await record(
            session,
            actor_account_id=actor_account_id,
            action="inflow.census_findings",
            org_id=org.id,
            subject_type="census_entity",
            subject_id=entity_id,
            detail={"survey_id": survey_id, "candidates": added, "prompted": prompted},
        )
    return Findings(prompted, added)
