"""Helpers of the care tests: mobile members (an active outflow) written directly."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pii
from app.core.config import Settings
from app.members.models import Member
from app.mobility.models import Outflow

API = "/api/v1/care"


async def make_mobile(db: AsyncSession, settings: Settings, member: Member) -> None:
    """``member`` has an approved (active) outflow: he is a mobile member."""
    ring = pii.keyring(settings)
    db.add(
        Outflow(
            member_id=member.id,
            home_org_id=member.home_org_id,
            status="active",
            reason="work",
            destination_region_code="440305",
            destination_address="深圳市南山区",
            contact_phone_enc=ring.encrypt("13800000000", context="outflow.contact_phone"),
            contact_phone_masked="138****0000",
            departed_on=date(2026, 1, 1),
            expected_return_on=date(2027, 12, 31),
        )
    )
    await db.flush()
