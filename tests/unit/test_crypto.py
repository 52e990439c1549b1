"""PII encryption at rest: app.core.crypto (no database)."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from app.core.crypto import (
    ALGORITHMS,
    MalformedCiphertextError,
    PiiDecryptionError,
    PiiKeyConfigError,
    PiiKeyring,
    UnknownKeyVersionError,
    generate_key,
    mask_id_number,
    mask_phone,
    normalize_for_index,
)

K1 = b"\x01" * 32
K2 = b"\x02" * 32
ID = "11010519491231002X"
CTX = "member.id_number"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.fixture(params=ALGORITHMS)
def keyring(request: pytest.FixtureRequest) -> PiiKeyring:
    return PiiKeyring({1: K1}, 1, request.param)


# ------------------------------------------------------------------ primitives
def test_sm4_gcm_known_answer_rfc8998() -> None:
    """cryptography's SM4 + GCM is real SM4-GCM: RFC 8998 appendix A.1 test vector."""
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    iv = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    pt = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    enc = Cipher(algorithms.SM4(key), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(aad)
    ct = enc.update(pt) + enc.finalize()
    assert ct.hex().upper() == (
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
    )
    assert enc.tag.hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("plaintext", [ID, "13812345678", "", "张三 · 深圳市福田区", "x" * 5000])
def test_round_trip(keyring: PiiKeyring, plaintext: str) -> None:
    blob = keyring.encrypt(plaintext, context=CTX)
    assert plaintext.encode() not in blob or plaintext == ""
    assert keyring.decrypt(blob, context=CTX) == plaintext


def test_blob_layout(keyring: PiiKeyring) -> None:
    blob = keyring.encrypt("13812345678", context="member.phone")
    assert blob[0] == 1  # format version
    assert blob[1] == {"sm4-gcm": 1, "aes-256-gcm": 2}[keyring.algorithm]
    assert int.from_bytes(blob[2:4], "big") == 1
    assert len(blob) == 4 + 12 + 11 + 16
    assert PiiKeyring.key_version_of(blob) == 1


def test_random_nonce_makes_ciphertexts_differ(keyring: PiiKeyring) -> None:
    a = keyring.encrypt(ID, context=CTX)
    b = keyring.encrypt(ID, context=CTX)
    assert a != b
    assert a[4:16] != b[4:16]


def test_algorithms_use_different_keys_from_same_secret() -> None:
    sm4 = PiiKeyring({1: K1}, 1, "sm4-gcm")
    aes = PiiKeyring({1: K1}, 1, "aes-256-gcm")
    blob = aes.encrypt(ID, context=CTX)
    # Both keyrings can read both algorithms: the blob says which one it is.
    assert sm4.decrypt(blob, context=CTX) == ID
    assert aes.decrypt(sm4.encrypt(ID, context=CTX), context=CTX) == ID
    assert sm4.needs_rotation(blob) is True
    assert aes.needs_rotation(blob) is False


def test_default_algorithm_is_sm4() -> None:
    ring = PiiKeyring({1: K1}, 1)
    assert ring.algorithm == "sm4-gcm"
    assert ring.encrypt(ID, context=CTX)[1] == 1


# ------------------------------------------------------------------ rotation
def test_rotation_old_blobs_still_decrypt() -> None:
    old = PiiKeyring({1: K1}, 1, "sm4-gcm")
    blob_v1 = old.encrypt(ID, context=CTX)

    new = PiiKeyring({1: K1, 2: K2}, 2, "sm4-gcm")
    assert new.decrypt(blob_v1, context=CTX) == ID
    assert new.needs_rotation(blob_v1) is True

    blob_v2 = new.reencrypt(blob_v1, context=CTX)
    assert PiiKeyring.key_version_of(blob_v2) == 2
    assert new.needs_rotation(blob_v2) is False
    assert new.decrypt(blob_v2, context=CTX) == ID
    assert old.needs_rotation(blob_v1) is False


def test_rotation_from_config() -> None:
    old = PiiKeyring.from_config(f"1:{b64(K1)}", 1, "sm4-gcm")
    blob = old.encrypt("13812345678", context="member.phone")
    new = PiiKeyring.from_config(f"1:{b64(K1)}, 2:{b64(K2)}", 2, "aes-256-gcm")
    assert new.decrypt(blob, context="member.phone") == "13812345678"
    assert new.needs_rotation(blob)


def test_algorithm_change_alone_needs_rotation() -> None:
    blob = PiiKeyring({1: K1}, 1, "sm4-gcm").encrypt(ID, context=CTX)
    assert PiiKeyring({1: K1}, 1, "aes-256-gcm").needs_rotation(blob) is True


def test_unknown_key_version() -> None:
    blob = PiiKeyring({1: K1, 2: K2}, 2).encrypt(ID, context=CTX)
    only_v1 = PiiKeyring({1: K1}, 1)
    with pytest.raises(UnknownKeyVersionError) as exc:
        only_v1.decrypt(blob, context=CTX)
    assert exc.value.version == 2
    assert isinstance(exc.value, PiiDecryptionError)


def test_same_version_different_secret_fails() -> None:
    blob = PiiKeyring({1: K1}, 1).encrypt(ID, context=CTX)
    with pytest.raises(PiiDecryptionError):
        PiiKeyring({1: K2}, 1).decrypt(blob, context=CTX)


# ------------------------------------------------------------------ tamper / context
def test_tamper_detection_every_byte(keyring: PiiKeyring) -> None:
    blob = keyring.encrypt(ID, context=CTX)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(PiiDecryptionError):
            keyring.decrypt(bytes(tampered), context=CTX)


def test_truncated_and_garbage_blobs(keyring: PiiKeyring) -> None:
    blob = keyring.encrypt(ID, context=CTX)
    with pytest.raises(PiiDecryptionError):
        keyring.decrypt(blob[:-1], context=CTX)
    with pytest.raises(MalformedCiphertextError):
        keyring.decrypt(blob[:20], context=CTX)
    with pytest.raises(MalformedCiphertextError):
        keyring.decrypt(b"", context=CTX)
    with pytest.raises(MalformedCiphertextError):
        keyring.decrypt(b"\x09" + blob[1:], context=CTX)  # unknown format version
    with pytest.raises(MalformedCiphertextError):
        keyring.needs_rotation(b"\x01\x07" + blob[2:])  # unknown algorithm


def test_context_binding(keyring: PiiKeyring) -> None:
    blob = keyring.encrypt("13812345678", context="member.phone")
    with pytest.raises(PiiDecryptionError, match="authentication"):
        keyring.decrypt(blob, context="order.contact_phone")
    assert keyring.decrypt(blob, context="member.phone") == "13812345678"


def test_empty_context_refused(keyring: PiiKeyring) -> None:
    with pytest.raises(ValueError):
        keyring.encrypt(ID, context="")


def test_header_swap_algorithm_is_detected() -> None:
    """Relabelling an SM4 blob as AES (or changing its key version) fails authentication."""
    ring = PiiKeyring({1: K1, 2: K1}, 1, "sm4-gcm")
    blob = ring.encrypt(ID, context=CTX)
    with pytest.raises(PiiDecryptionError):
        ring.decrypt(blob[:1] + b"\x02" + blob[2:], context=CTX)
    with pytest.raises(PiiDecryptionError):
        ring.decrypt(blob[:2] + (2).to_bytes(2, "big") + blob[4:], context=CTX)


# ------------------------------------------------------------------ blind index
def test_blind_index_stable_and_normalised() -> None:
    ring = PiiKeyring({1: K1}, 1)
    idx = ring.blind_index(ID, context=CTX)
    assert len(idx) == 32
    assert ring.blind_index(ID, context=CTX) == idx
    assert ring.blind_index("  11010519491231002x ", context=CTX) == idx
    full_width = "１１０１０５１９４９１２３１００２Ｘ"
    assert ring.blind_index(full_width, context=CTX) == idx
    assert ring.blind_index("110105194912310038", context=CTX) != idx
    assert ring.blind_index_matches("11010519491231002x", idx, context=CTX)
    assert not ring.blind_index_matches("110105194912310038", idx, context=CTX)


def test_blind_index_depends_on_context() -> None:
    ring = PiiKeyring({1: K1}, 1)
    assert ring.blind_index("13812345678", context="member.phone") != ring.blind_index(
        "13812345678", context="order.contact_phone"
    )


def test_blind_index_survives_encryption_key_rotation() -> None:
    before = PiiKeyring({1: K1}, 1, "sm4-gcm")
    during = PiiKeyring({1: K1, 2: K2}, 2, "aes-256-gcm")
    assert before.blind_index(ID, context=CTX) == during.blind_index(ID, context=CTX)


def test_blind_index_with_separate_index_key() -> None:
    ik = os.urandom(32)
    a = PiiKeyring({1: K1}, 1, index_key=ik)
    b = PiiKeyring({2: K2}, 2, index_key=ik)  # key 1 retired entirely
    assert a.blind_index(ID, context=CTX) == b.blind_index(ID, context=CTX)
    assert a.blind_index(ID, context=CTX) != PiiKeyring({1: K1}, 1).blind_index(ID, context=CTX)
    c = PiiKeyring.from_config(f"3:{b64(K2)}", 3, index_key=b64(ik))
    assert c.blind_index(ID, context=CTX) == a.blind_index(ID, context=CTX)


def test_blind_index_needs_its_key_version() -> None:
    with pytest.raises(PiiKeyConfigError, match="index key version 1"):
        PiiKeyring({2: K2}, 2)
    ring = PiiKeyring({2: K2, 3: K1}, 3, index_key_version=2)
    same = PiiKeyring({2: K2}, 2, index_key_version=2)
    assert ring.blind_index(ID, context=CTX) == same.blind_index(ID, context=CTX)


def test_blind_index_is_not_a_bare_hash() -> None:
    assert PiiKeyring({1: K1}, 1).blind_index(ID, context=CTX) != PiiKeyring(
        {1: K2}, 1
    ).blind_index(ID, context=CTX)


def test_normalize_for_index() -> None:
    assert normalize_for_index(" 11010519491231002x\t") == ID
    assert normalize_for_index("１３８１２３４５６７８") == "13812345678"


# ------------------------------------------------------------------ configuration
def test_from_config_parses_and_validates() -> None:
    ring = PiiKeyring.from_config(f"1:{b64(K1)},2:{b64(K2)}", 2, "aes-256-gcm")
    assert ring.versions == (1, 2)
    assert ring.current_version == 2
    assert ring.algorithm == "aes-256-gcm"
    # unpadded base64 and standard alphabet are accepted
    raw = bytes(range(200, 232))
    unpadded = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    std = base64.b64encode(raw).decode()
    assert (
        PiiKeyring.from_config(f"1:{unpadded}", 1).decrypt(
            PiiKeyring.from_config(f"1:{std}", 1).encrypt("a", context=CTX), context=CTX
        )
        == "a"
    )


def test_generate_key_is_accepted() -> None:
    ring = PiiKeyring.from_config(f"1:{generate_key()}", 1, index_key=generate_key())
    assert ring.decrypt(ring.encrypt("x", context=CTX), context=CTX) == "x"


@pytest.mark.parametrize(
    ("spec", "current", "algorithm", "message"),
    [
        ("", 1, "sm4-gcm", "empty"),
        (f"{b64(K1)}", 1, "sm4-gcm", "no version"),
        (f"one:{b64(K1)}", 1, "sm4-gcm", "non-integer"),
        (f"1:{b64(b'short')}", 1, "sm4-gcm", "exactly 32 bytes, got 5"),
        (f"1:{b64(b'x' * 33)}", 1, "sm4-gcm", "exactly 32 bytes, got 33"),
        ("1:!!!not-base64!!!", 1, "sm4-gcm", "base64"),
        ("1:", 1, "sm4-gcm", "empty"),
        (f"1:{b64(K1)},1:{b64(K2)}", 1, "sm4-gcm", "twice"),
        (f"1:{b64(K1)}", 2, "sm4-gcm", "current PII key version 2"),
        (f"1:{b64(K1)}", 1, "des", "unknown PII algorithm"),
        (f"70000:{b64(K1)}", 70000, "sm4-gcm", "between 0 and 65535"),
    ],
)
def test_from_config_errors(spec: str, current: int, algorithm: str, message: str) -> None:
    with pytest.raises(PiiKeyConfigError, match=message):
        PiiKeyring.from_config(spec, current, algorithm)


def test_config_error_is_value_error_and_repr_hides_keys() -> None:
    with pytest.raises(ValueError):
        PiiKeyring({1: b"short"}, 1)
    ring = PiiKeyring({1: K1}, 1)
    assert b64(K1) not in repr(ring) and "x01" not in repr(ring)


def test_from_settings_duck_typed() -> None:
    class FakeSettings:
        pii_keyring_spec = f"1:{b64(K1)},2:{b64(K2)}"
        pii_key_version = 2
        pii_algorithm = "sm4-gcm"
        pii_index_key = b64(b"i" * 32)

    ring = PiiKeyring.from_settings(FakeSettings())
    assert ring.current_version == 2
    assert ring.decrypt(ring.encrypt(ID, context=CTX), context=CTX) == ID


# ------------------------------------------------------------------ masking
def test_mask_id_number() -> None:
    assert mask_id_number("440301199001011234") == "4403**********1234"
    assert mask_id_number(ID) == "1101**********002X"
    assert mask_id_number(" 440301199001011234 ") == "4403**********1234"


def test_mask_phone() -> None:
    assert mask_phone("13812345678") == "138****5678"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("", ""),
        ("1", "*"),
        ("12", "**"),
        ("123", "***"),
        ("1234", "1**4"),
        ("12345678", "12****78"),
        ("123456789", "12*****89"),
        ("1234567890", "1234**7890"),
    ],
)
def test_mask_id_number_short_input(value: str | None, expected: str) -> None:
    assert mask_id_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ""), ("", ""), ("5", "*"), ("1234", "1**4"), ("1234567", "1*****7"),
     ("12345678", "12****78"), ("123456789", "123**6789")],
)  # fmt: skip
def test_mask_phone_short_input(value: str | None, expected: str) -> None:
    assert mask_phone(value) == expected


@pytest.mark.parametrize("value", ["1", "12345", "123456789", "440301199001011234", "1" * 40])
def test_masks_always_hide_at_least_half(value: str) -> None:
    for masked in (mask_id_number(value), mask_phone(value)):
        assert len(masked) == len(value)
        assert masked.count("*") * 2 >= len(value) or len(value) >= 9
