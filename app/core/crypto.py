"""Encryption of personal data at rest (ID numbers, phone numbers).

Design
======

* **Keyring.** ``PiiKeyring`` holds versioned 32-byte master secrets (``{1: b"...", 2: b"..."}``)
  and the *current* version and algorithm, which encrypt new values. Every stored blob names the
  key version and algorithm it was written with, so during a rotation old rows keep decrypting
  while new writes use the new key; ``needs_rotation`` tells a background job which rows to
  re-encrypt.
* **Subkeys.** Master secrets are never used directly. HKDF derives one subkey per purpose:
  an encryption key per (version, algorithm) — 16 bytes for SM4, 32 for AES-256 — and a separate
  blind-index key. HKDF uses **SM3** (``hashes.SM3``; cryptography 50 on OpenSSL 3+/4 supports it
  for HKDF and HMAC), keeping the whole construction within the Chinese commercial-crypto suite
  (GM/T 0002 SM4, GM/T 0004 SM3) that 等保/密评 reviewers expect.
* **Cipher.** Default ``sm4-gcm``: SM4 block cipher in GCM mode (RFC 8998), via
  ``Cipher(algorithms.SM4(key), modes.GCM(nonce))``. ``aes-256-gcm`` is selectable
  (``AESGCM``). Both use a random 96-bit nonce and a 128-bit tag. With random nonces a single
  key should encrypt fewer than 2**32 values; rotate long before that.
* **Blob format** (all integers big-endian)::

      offset 0   1 byte   format version (1)
      offset 1   1 byte   algorithm id (1 = sm4-gcm, 2 = aes-256-gcm)
      offset 2   2 bytes  key version (0..65535)
      offset 4  12 bytes  nonce
      offset 16  n bytes  ciphertext, followed by the 16-byte GCM tag

  Associated data = the 4 header bytes + UTF-8 ``context`` (e.g. ``"member.id_number"``). A
  ciphertext therefore cannot be copied into another column (or have its header edited) without
  failing authentication.
* **Blind index.** ``blind_index`` is HMAC-SM3 over a normalised value, for exact lookup and
  unique constraints on encrypted columns. Its key deliberately does **not** follow the
  encryption key version (see ``PiiKeyring.blind_index``).

Errors: ``PiiKeyConfigError`` (a ``ValueError``) for bad configuration; ``PiiDecryptionError``
and its subclasses for anything that goes wrong reading a blob. Messages never contain
plaintext or key material.
"""

from __future__ import annotations

import base64
import binascii
import hmac as _std_hmac
import os
import struct
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "ALGORITHMS",
    "FORMAT_VERSION",
    "Algorithm",
    "MalformedCiphertextError",
    "PiiCryptoError",
    "PiiDecryptionError",
    "PiiKeyConfigError",
    "PiiKeyring",
    "PiiSettings",
    "UnknownKeyVersionError",
    "generate_key",
    "mask_id_number",
    "mask_phone",
    "normalize_for_index",
]

Algorithm = Literal["sm4-gcm", "aes-256-gcm"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("sm4-gcm", "aes-256-gcm")

FORMAT_VERSION: Final = 1
_ALG_IDS: Final[dict[Algorithm, int]] = {"sm4-gcm": 1, "aes-256-gcm": 2}
_ALG_BY_ID: Final[dict[int, Algorithm]] = {v: k for k, v in _ALG_IDS.items()}
_ENC_KEY_LEN: Final[dict[Algorithm, int]] = {"sm4-gcm": 16, "aes-256-gcm": 32}

MASTER_KEY_LEN: Final = 32
_HEADER = struct.Struct(">BBH")  # format version, algorithm id, key version
_HEADER_LEN: Final = _HEADER.size  # 4
_NONCE_LEN: Final = 12
_TAG_LEN: Final = 16
_MIN_BLOB_LEN: Final = _HEADER_LEN + _NONCE_LEN + _TAG_LEN
_MAX_KEY_VERSION: Final = 0xFFFF

_HKDF_SALT: Final = b"branchlink/pii/hkdf-salt/v1"
_INFO_ENC: Final = "branchlink/pii/encrypt/{alg}/v{version}"
_INFO_INDEX: Final = b"branchlink/pii/blind-index/v1"


class PiiCryptoError(Exception):
    """Base class of everything this module raises about ciphertexts."""


class PiiKeyConfigError(PiiCryptoError, ValueError):
    """The keyring configuration is unusable (bad base64, wrong length, unknown version...)."""


class PiiDecryptionError(PiiCryptoError):
    """A blob could not be decrypted: tampered, wrong context, or wrong key."""


class MalformedCiphertextError(PiiDecryptionError):
    """The blob is too short or its header names an unknown format or algorithm."""


class UnknownKeyVersionError(PiiDecryptionError):
    """The blob was written with a key version this keyring does not hold."""

    def __init__(self, version: int) -> None:
        super().__init__(f"PII key version {version} is not configured in this keyring")
        self.version = version


class PiiSettings(Protocol):
    """The attributes of ``app.core.config.Settings`` that ``from_settings`` reads."""

    @property
    def pii_keyring_spec(self) -> str: ...
    @property
    def pii_key_version(self) -> int: ...
    @property
    def pii_algorithm(self) -> str: ...
    @property
    def pii_index_key(self) -> str: ...


def generate_key() -> str:
    """A fresh random master secret, urlsafe base64 — for ``APP_PII_KEYS`` / index key."""
    return base64.urlsafe_b64encode(os.urandom(MASTER_KEY_LEN)).decode("ascii")


def _hkdf(secret: bytes, length: int, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SM3(), length=length, salt=_HKDF_SALT, info=info).derive(secret)


def _check_algorithm(algorithm: str) -> Algorithm:
    if algorithm not in _ALG_IDS:
        raise PiiKeyConfigError(
            f"unknown PII algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}"
        )
    return algorithm


def _check_version(version: int, what: str) -> int:
    if isinstance(version, bool) or not isinstance(version, int):
        raise PiiKeyConfigError(f"{what} must be an integer, got {version!r}")
    if not 0 <= version <= _MAX_KEY_VERSION:
        raise PiiKeyConfigError(f"{what} must be between 0 and {_MAX_KEY_VERSION}, got {version}")
    return version


def _check_secret(secret: bytes, what: str) -> bytes:
    if not isinstance(secret, bytes | bytearray):
        raise PiiKeyConfigError(f"{what} must be bytes")
    if len(secret) != MASTER_KEY_LEN:
        raise PiiKeyConfigError(
            f"{what} must be exactly {MASTER_KEY_LEN} bytes, got {len(secret)} bytes"
        )
    return bytes(secret)


def _decode_key(text: str, what: str) -> bytes:
    """urlsafe base64 (padding optional; standard ``+/`` alphabet accepted too)."""
    cleaned = text.strip()
    if not cleaned:
        raise PiiKeyConfigError(f"{what} is empty")
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError) as exc:
        raise PiiKeyConfigError(f"{what} is not valid urlsafe base64") from exc
    if len(raw) != MASTER_KEY_LEN:
        raise PiiKeyConfigError(
            f"{what} must decode to exactly {MASTER_KEY_LEN} bytes, got {len(raw)} bytes "
            '(generate one with: python -c "import base64,os;'
            'print(base64.urlsafe_b64encode(os.urandom(32)).decode())")'
        )
    return raw


def _parse_keys(spec: str) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    if not entries:
        raise PiiKeyConfigError("PII key list is empty; expected '1:<base64>,2:<base64>'")
    for position, entry in enumerate(entries, start=1):
        version_text, sep, key_text = entry.partition(":")
        if not sep:
            raise PiiKeyConfigError(
                f"PII key entry #{position} has no version; expected '<version>:<base64>'"
            )
        try:
            version = int(version_text.strip())
        except ValueError as exc:
            raise PiiKeyConfigError(
                f"PII key entry #{position} has a non-integer version {version_text.strip()!r}"
            ) from exc
        _check_version(version, f"PII key entry #{position} version")
        if version in keys:
            raise PiiKeyConfigError(f"PII key version {version} is listed twice")
        keys[version] = _decode_key(key_text, f"PII key version {version}")
    return keys


def normalize_for_index(value: str) -> str:
    """Canonical form fed to the blind index: NFKC (full-width digits -> ASCII), strip, upper.

    Upper-casing makes a trailing ``x`` in an ID number match ``X``. Callers should still pass
    values already canonicalised by ``app.identity.validators`` (e.g. a phone without ``+86``);
    this function does not know about phone formats.
    """
    return unicodedata.normalize("NFKC", value).strip().upper()


@dataclass(frozen=True, slots=True)
class _BlobHeader:
    format_version: int
    algorithm: Algorithm
    key_version: int


def _parse_header(blob: bytes) -> _BlobHeader:
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise MalformedCiphertextError("PII ciphertext must be bytes")
    if len(blob) < _MIN_BLOB_LEN:
        raise MalformedCiphertextError(
            f"PII ciphertext is too short ({len(blob)} bytes, minimum {_MIN_BLOB_LEN})"
        )
    fmt, alg_id, key_version = _HEADER.unpack_from(blob, 0)
    if fmt != FORMAT_VERSION:
        raise MalformedCiphertextError(f"unknown PII ciphertext format version {fmt}")
    algorithm = _ALG_BY_ID.get(alg_id)
    if algorithm is None:
        raise MalformedCiphertextError(f"unknown PII ciphertext algorithm id {alg_id}")
    return _BlobHeader(fmt, algorithm, key_version)


class PiiKeyring:
    """Versioned keys for PII encryption plus a blind-index key.

    ``keys`` maps key version -> 32-byte master secret. ``current_version`` and ``algorithm``
    select what ``encrypt`` writes; ``decrypt`` accepts any version in ``keys`` with either
    algorithm.

    The blind-index key is fixed independently of ``current_version``:

    * if ``index_key`` is given (``APP_PII_INDEX_KEY``), the index key is derived from it;
    * otherwise from ``keys[index_key_version]`` (default version 1). That version must then
      stay in the keyring even after all rows are re-encrypted under a newer key, or
      construction fails loudly instead of silently producing different indexes.

    ``index_key_version`` is also exposed so the schema can record which index generation a
    row's index belongs to; changing the index key means recomputing every index (decrypt the
    column, re-index), which is a separate, deliberate migration.
    """

    __slots__ = (
        "_enc_keys",
        "_index_key",
        "_secrets",
        "algorithm",
        "current_version",
        "index_key_version",
    )

    def __init__(
        self,
        keys: Mapping[int, bytes],
        current_version: int,
        algorithm: str = "sm4-gcm",
        *,
        index_key: bytes | None = None,
        index_key_version: int = 1,
    ) -> None:
        if not keys:
            raise PiiKeyConfigError("PII keyring needs at least one key")
        secrets = {
            _check_version(v, "PII key version"): _check_secret(s, f"PII key version {v}")
            for v, s in keys.items()
        }
        _check_version(current_version, "current PII key version")
        if current_version not in secrets:
            raise PiiKeyConfigError(
                f"current PII key version {current_version} is not among the configured "
                f"versions {sorted(secrets)}"
            )
        self.algorithm: Algorithm = _check_algorithm(algorithm)
        self.current_version: int = current_version
        self.index_key_version: int = _check_version(index_key_version, "PII index key version")
        self._secrets: dict[int, bytes] = secrets
        self._enc_keys: dict[tuple[int, Algorithm], bytes] = {}

        if index_key is not None:
            index_secret = _check_secret(index_key, "PII index key")
        elif index_key_version in secrets:
            index_secret = secrets[index_key_version]
        else:
            raise PiiKeyConfigError(
                f"PII index key version {index_key_version} is not in the keyring and no "
                "separate index key was given; blind indexes must keep their key across "
                "rotations, so keep that version configured or set APP_PII_INDEX_KEY"
            )
        self._index_key: bytes = _hkdf(index_secret, 32, _INFO_INDEX)

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_config(
        cls,
        keys: str,
        current_version: int,
        algorithm: str = "sm4-gcm",
        *,
        index_key: str | None = None,
        index_key_version: int = 1,
    ) -> PiiKeyring:
        """Build from settings strings: ``keys`` like ``"1:<b64>,2:<b64>"``.

        Each key is 32 random bytes, urlsafe base64 (padding optional). ``index_key`` is an
        optional separate 32-byte base64 secret for blind indexes.
        """
        parsed = _parse_keys(keys)
        index_raw = _decode_key(index_key, "PII index key") if index_key is not None else None
        return cls(
            parsed,
            current_version,
            algorithm,
            index_key=index_raw,
            index_key_version=index_key_version,
        )

    @classmethod
    def from_settings(cls, settings: PiiSettings) -> PiiKeyring:
        """Build from ``app.core.config.Settings`` (``APP_PII_KEY[S]``, version, algorithm,
        ``APP_PII_INDEX_KEY``)."""
        return cls.from_config(
            settings.pii_keyring_spec,
            settings.pii_key_version,
            settings.pii_algorithm,
            index_key=settings.pii_index_key,
        )

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._secrets))

    def __repr__(self) -> str:  # never show key material
        return (
            f"PiiKeyring(versions={list(self.versions)}, current_version={self.current_version},"
            f" algorithm={self.algorithm!r}, index_key_version={self.index_key_version})"
        )

    # ----------------------------------------------------------------- keys
    def _enc_key(self, version: int, algorithm: Algorithm) -> bytes:
        cached = self._enc_keys.get((version, algorithm))
        if cached is not None:
            return cached
        secret = self._secrets.get(version)
        if secret is None:
            raise UnknownKeyVersionError(version)
        info = _INFO_ENC.format(alg=algorithm, version=version).encode("ascii")
        key = _hkdf(secret, _ENC_KEY_LEN[algorithm], info)
        self._enc_keys[(version, algorithm)] = key
        return key

    # ----------------------------------------------------------------- encryption
    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt ``plaintext`` with the current key and algorithm, bound to ``context``."""
        if not isinstance(plaintext, str):
            raise TypeError("plaintext must be str")
        header = _HEADER.pack(FORMAT_VERSION, _ALG_IDS[self.algorithm], self.current_version)
        nonce = os.urandom(_NONCE_LEN)
        key = self._enc_key(self.current_version, self.algorithm)
        aad = header + _context_bytes(context)
        sealed = _seal(self.algorithm, key, nonce, plaintext.encode("utf-8"), aad)
        return header + nonce + sealed

    def decrypt(self, blob: bytes, *, context: str) -> str:
        """Decrypt a blob written by ``encrypt`` under any configured key version.

        Raises ``PiiDecryptionError`` (or a subclass) if the blob is malformed, was written
        with an unknown key version, was tampered with, or belongs to another ``context``.
        """
        header = _parse_header(blob)
        data = bytes(blob)
        key = self._enc_key(header.key_version, header.algorithm)
        nonce = data[_HEADER_LEN : _HEADER_LEN + _NONCE_LEN]
        sealed = data[_HEADER_LEN + _NONCE_LEN :]
        aad = data[:_HEADER_LEN] + _context_bytes(context)
        try:
            raw = _open(header.algorithm, key, nonce, sealed, aad)
        except InvalidTag:
            raise PiiDecryptionError(
                f"PII ciphertext failed authentication for context {context!r} "
                f"(tampered, wrong column, or wrong key for version {header.key_version})"
            ) from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - authenticated data is always ours
            raise PiiDecryptionError("PII plaintext is not valid UTF-8") from None

    def needs_rotation(self, blob: bytes) -> bool:
        """True if ``blob`` was not written with the current key version and algorithm.

        Raises ``MalformedCiphertextError`` for blobs that are not ours at all.
        """
        header = _parse_header(blob)
        return header.key_version != self.current_version or header.algorithm != self.algorithm

    def reencrypt(self, blob: bytes, *, context: str) -> bytes:
        """Decrypt and encrypt again under the current key (for the rotation job)."""
        return self.encrypt(self.decrypt(blob, context=context), context=context)

    @staticmethod
    def key_version_of(blob: bytes) -> int:
        """The key version recorded in a blob's header."""
        return _parse_header(blob).key_version

    # ----------------------------------------------------------------- blind index
    def blind_index(self, value: str, *, context: str) -> bytes:
        """32-byte HMAC-SM3 of the normalised ``value`` for exact lookup / unique constraints.

        ``context`` (e.g. ``"member.id_number"``) is mixed in, so equal values in different
        columns get unrelated indexes. The value is normalised with ``normalize_for_index``
        (NFKC, strip, upper-case) so ``11010519491231002x`` and ``11010519491231002X`` match.

        The key is the *index* key, which does not change when ``current_version`` moves to a
        new encryption key: if it did, every stored index would stop matching the moment
        rotation began (before the re-encryption job had touched a row), breaking lookups and
        letting unique constraints admit duplicates. Changing it is a separate migration that
        bumps ``index_key_version`` and recomputes all indexes.

        Note: an HMAC over a low-entropy value (an 11-digit phone) is only as strong as the
        secrecy of the index key; keep it out of the database and logs.
        """
        mac = _crypto_hmac.HMAC(self._index_key, hashes.SM3())
        mac.update(_context_bytes(context))
        mac.update(b"\x00")
        mac.update(normalize_for_index(value).encode("utf-8"))
        return mac.finalize()

    def blind_index_matches(self, value: str, index: bytes, *, context: str) -> bool:
        """Constant-time comparison of ``blind_index(value)`` with a stored index."""
        return _std_hmac.compare_digest(self.blind_index(value, context=context), index)


def _context_bytes(context: str) -> bytes:
    if not isinstance(context, str) or not context:
        raise ValueError("context must be a non-empty string such as 'member.id_number'")
    return context.encode("utf-8")


def _seal(algorithm: Algorithm, key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    if algorithm == "aes-256-gcm":
        return AESGCM(key).encrypt(nonce, data, aad)
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(data) + encryptor.finalize()
    return ciphertext + encryptor.tag


def _open(algorithm: Algorithm, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    if algorithm == "aes-256-gcm":
        return AESGCM(key).decrypt(nonce, sealed, aad)
    ciphertext, tag = sealed[:-_TAG_LEN], sealed[-_TAG_LEN:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(ciphertext) + decryptor.finalize()


# --------------------------------------------------------------------- masking
def _mask(value: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, star the rest.

    For values too short to keep that much, keep at most a quarter at each end so at least
    half of the value is always hidden (and anything of length <= 3 is fully starred).
    """
    text = value.strip()
    n = len(text)
    if n == 0:
        return ""
    if n <= head + tail + 1:
        head = tail = n // 4
    hidden = n - head - tail
    return text[:head] + "*" * hidden + (text[n - tail :] if tail else "")


def mask_id_number(value: str | None) -> str:
    """``"440301199001011234"`` -> ``"4403**********1234"`` (first 4, last 4 kept)."""
    if not value:
        return ""
    return _mask(value, 4, 4)


def mask_phone(value: str | None) -> str:
    """``"13812345678"`` -> ``"138****5678"`` (first 3, last 4 kept)."""
    if not value:
        return ""
    return _mask(value, 3, 4)
