"""PII key rotation: re-encrypt member rows under the new key, concurrently and safely."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import pii
from app.core.config import DEV_PII_KEY, Settings
from app.core.crypto import PiiKeyring, UnknownKeyVersionError, generate_key
from app.members.models import Member
from app.members.rotation import rotate_pii
from app.members.service import find_by_id_number
from tests import factories as f

NEW_KEY = generate_key()


def rotated_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"pii_keys": f"1:{DEV_PII_KEY},2:{NEW_KEY}", "pii_key_version": 2}
    )


async def _versions(session: AsyncSession) -> list[tuple[int, int | None]]:
    rows = await session.execute(
        select(Member.id_number_enc, Member.phone_enc)
        .order_by(Member.id)
        .execution_options(populate_existing=True)
    )
    return [
        (
            PiiKeyring.key_version_of(id_enc),
            PiiKeyring.key_version_of(phone_enc) if phone_enc else None,
        )
        for id_enc, phone_enc in rows
    ]


async def test_rotation_reencrypts_old_rows_only(db: AsyncSession, settings: Settings) -> None:
    new = rotated_settings(settings)
    home = await f.org(db, "支部")
    numbers = [f.unique_id_number() for _ in range(3)]
    old = [
        await f.member(db, settings, home, f"党员{i}", id_number=n) for i, n in enumerate(numbers)
    ]
    no_phone = old[2]
    no_phone.phone_enc = no_phone.phone_idx = no_phone.phone_masked = None
    fresh_number = f.unique_id_number()
    await f.member(db, new, home, "新钥匙写入", id_number=fresh_number)
    await db.flush()
    assert await _versions(db) == [(1, 1), (1, 1), (1, None), (2, 2)]

    assert await rotate_pii(db, new, batch_size=2) == 3
    assert await _versions(db) == [(2, 2), (2, 2), (2, None), (2, 2)]
    assert await rotate_pii(db, new, batch_size=2) == 0

    ring = pii.keyring(new)
    for member, number in zip(old, numbers, strict=True):
        await db.refresh(member)
        assert ring.decrypt(member.id_number_enc, context=pii.ID_NUMBER) == number
        # Blind indexes do not depend on the encryption key: lookups keep working.
        found = await find_by_id_number(db, new, number)
        assert found is not None and found.id == member.id
    with pytest.raises(UnknownKeyVersionError):
        pii.keyring(settings).decrypt(old[0].id_number_enc, context=pii.ID_NUMBER)


async def test_parallel_rotations_share_the_work(
    committing_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    new = rotated_settings(settings)
    async with AsyncSession(engine, expire_on_commit=False) as s:
        home = await f.org(s, "支部")
        for i in range(9):
            await f.member(s, settings, home, f"党员{i}")
        await s.commit()
        stamps = select(Member.id, Member.updated_at).order_by(Member.id)
        updated_before = (await s.execute(stamps)).all()

    async def worker() -> int:
        async with AsyncSession(engine) as s:
            done = await rotate_pii(s, new, batch_size=2)
            await asyncio.sleep(0.05)  # hold the locks a moment so the runs overlap
            await s.commit()
            return done

    counts = await asyncio.gather(worker(), worker(), worker())
    assert sum(counts) == 9
    async with AsyncSession(engine) as s:
        assert await _versions(s) == [(2, 2)] * 9
        # Re-encryption is not an edit: updated_at (and version) stay as they were.
        assert (await s.execute(stamps)).all() == updated_before
        assert await rotate_pii(s, new) == 0
