"""The process-wide PII keyring, built once from the settings."""

from __future__ import annotations

from functools import lru_cache

from app.core.config import Settings
from app.core.crypto import PiiKeyring

ID_NUMBER = "member.id_number"
PHONE = "member.phone"


@lru_cache(maxsize=4)
def _keyring(spec: str, version: int, algorithm: str, index_key: str) -> PiiKeyring:
    return PiiKeyring.from_config(spec, version, algorithm, index_key=index_key)


def keyring(settings: Settings) -> PiiKeyring:
    return _keyring(
        settings.pii_keyring_spec,
        settings.pii_key_version,
        settings.pii_algorithm,
        settings.pii_index_key,
    )
