"""The unified social credit code check (GB 32100-2015) and GB/T 4754 industry codes."""

from __future__ import annotations

import pytest

from app.census.codes import (
    DIVISIONS,
    SECTIONS,
    CreditCodeError,
    credit_check_char,
    is_valid_credit_code,
    normalize_credit_code,
    parse_industry,
    section_of_division,
)

# Published codes: the example of GB 32100-2015 and codes of well-known companies.
KNOWN_VALID = (
    "91350100M000100Y43",
    "91110000600037341L",
    "911100001000079554",
    "91440300708461136T",
    "9144030071526726XG",
)


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_known_valid_codes(code: str) -> None:
    assert normalize_credit_code(code) == code
    assert normalize_credit_code(code.lower()[:9] + " " + code[9:]) == code


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_every_other_check_character_is_refused(code: str) -> None:
    wrong = [c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if c != code[17]]
    assert not any(is_valid_credit_code(code[:17] + c) for c in wrong)


def test_check_character_is_zero_when_the_sum_divides() -> None:
    # A body whose weighted sum is a multiple of 31 gets check character "0".
    for tail in range(1000):
        first17 = f"91350100M{tail:08d}"
        if credit_check_char(first17) == "0":
            assert is_valid_credit_code(first17 + "0")
            break
    else:  # pragma: no cover
        pytest.fail("no body with check character 0 found")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91350100M000100Y4", "18位"),
        ("91350100M000100Y4I", "不允许的字符"),
        ("91AB0100M000100Y43", "行政区划码"),
        ("91350100M000100Y44", "校验位"),
    ],
)
def test_invalid_codes_say_why(code: str, message: str) -> None:
    with pytest.raises(CreditCodeError) as error:
        normalize_credit_code(code)
    assert message in error.value.message


def test_industry_sections_cover_every_division_once() -> None:
    assert list(SECTIONS) == [chr(c) for c in range(ord("A"), ord("T") + 1)]
    covered = [f"{n:02d}" for _, (low, high) in SECTIONS.values() for n in range(low, high + 1)]
    assert covered == sorted(DIVISIONS) and len(DIVISIONS) == 97
    assert section_of_division("60") == "G" and section_of_division("64") == "I"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("I", ("I", None)), ("64", ("I", "64")), ("i64", ("I", "64")), ("5430", ("G", "54"))],
)
def test_parse_industry(value: str, expected: tuple[str, str | None]) -> None:
    assert parse_industry(value) == expected


@pytest.mark.parametrize("value", ["U", "00", "98", "A64", "", "6"])
def test_parse_industry_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        parse_industry(value)
