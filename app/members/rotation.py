"""Re-encrypting personal data under the current PII key (key rotation).

Run by the worker after ``APP_PII_KEYS``/``APP_PII_KEY_VERSION`` move to a new key: every
row whose ciphertext header names another key version or algorithm is decrypted with the
old key (still in the keyring) and encrypted with the current one. Blind indexes do not
change (their key is independent of the encryption key version), so lookups and the
unique ID-number index keep working during the whole rotation.

Rows are taken in id order, ``batch_size`` at a time, with ``FOR UPDATE SKIP LOCKED``:
several workers may run it at once and each row is rotated by exactly one of them; a row
locked by a user's edit is skipped and picked up by the next run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pii
from app.core.config import Settings
from app.members import repository as repo


def _current_header(settings: Settings) -> bytes:
    """Algorithm id + key version bytes that a blob written now starts with (after byte 0)."""
    blob = pii.keyring(settings).encrypt("header-probe", context="rotation.probe")
    return blob[1:4]


async def rotate_pii(session: AsyncSession, settings: Settings, batch_size: int = 500) -> int:
    """Re-encrypt every member row not yet under the current key; returns rows rewritten.

    Flushes per batch; the caller commits (one transaction, or call it again with a
    fresh session per run: it resumes where rows are still old).
    """
    ring = pii.keyring(settings)
    header = _current_header(settings)
    rotated = 0
    after_id = 0
    while True:
        batch = await repo.pii_batch_needing_rotation(
            session, header, after_id=after_id, limit=batch_size
        )
        if not batch:
            return rotated
        rows: list[dict[str, Any]] = []
        for member_id, id_enc, phone_enc in batch:
            values: dict[str, Any] = {"id": member_id, "id_number_enc": id_enc}
            if ring.needs_rotation(id_enc):
                values["id_number_enc"] = ring.reencrypt(id_enc, context=pii.ID_NUMBER)
            if phone_enc is not None and ring.needs_rotation(phone_enc):
                values["phone_enc"] = ring.reencrypt(phone_enc, context=pii.PHONE)
            else:
                values["phone_enc"] = phone_enc
            rows.append(values)
        await repo.write_ciphertexts(session, rows)
        await session.flush()
        rotated += len(rows)
        after_id = batch[-1][0]
        if len(batch) < batch_size:
            return rotated
