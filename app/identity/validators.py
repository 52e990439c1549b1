"""Validation of Chinese resident ID numbers and mainland mobile numbers, and the one
normal form of a person's name. Pure functions.

* ID numbers (居民身份证号码, GB 11643-1999): 18 characters = 6-digit region code (地址码),
  8-digit birth date YYYYMMDD (出生日期码), 3-digit sequence (顺序码, odd = male, even = female),
  and a check character computed with ISO 7064 MOD 11-2 (``0-9`` or ``X``).
* Mobile numbers: 11 digits starting ``1[3-9]``; ``+86``/``0086``/``86`` prefixes, spaces,
  hyphens, dots and brackets are stripped first.

Every failure raises ``IdNumberError`` / ``MobilePhoneError`` (both ``ValueError``) with a
Chinese message for the user and a stable ``code`` for the API. ``IdNumber`` and
``MobilePhone`` are ``Annotated`` types for request schemas; they yield the canonical form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Final, Literal

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from app.core import clock

__all__ = [
    "BirthDate",
    "IdInfo",
    "IdNumber",
    "IdNumberError",
    "JoinedOn",
    "MobilePhone",
    "MobilePhoneError",
    "check_birth_date",
    "check_joined_on",
    "id_check_digit",
    "is_valid_id_number",
    "is_valid_mobile_phone",
    "normalize_id_number",
    "normalize_mobile_phone",
    "normalize_person_name",
    "parse_id_number",
]

Gender = Literal["male", "female"]

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS: Final = "10X98765432"  # index = weighted sum mod 11
_ID_SHAPE: Final = re.compile(r"\d{17}[\dX]")
_MIN_BIRTH_YEAR: Final = 1900
# The Party's founding day: nobody joined before it.
PARTY_FOUNDED: Final = date(1921, 7, 1)

# Province-level codes (GB/T 2260 first two digits). 81/82/83 appear on residence permits
# for Hong Kong, Macao and Taiwan residents, which use the same 18-character format.
_PROVINCE_CODES: Final = frozenset(
    {
        "11", "12", "13", "14", "15",
        "21", "22", "23",
        "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46",
        "50", "51", "52", "53", "54",
        "61", "62", "63", "64", "65",
        "71", "81", "82", "83",
    }
)  # fmt: skip

_MOBILE_SHAPE: Final = re.compile(r"1[3-9]\d{9}")
_PHONE_SEPARATORS: Final = re.compile(r"[\s\-.()\u3000]")


class IdNumberError(ValueError):
    """An invalid ID number. ``str(err)`` is the Chinese message; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MobilePhoneError(ValueError):
    """An invalid mobile number. ``str(err)`` is the Chinese message; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class IdInfo:
    """What an ID number says about its holder."""

    birth_date: date
    gender: Gender
    region_code: str  # 6 digits, e.g. "440301" (深圳市福田区)


def _clean(value: str) -> str:
    # NFKC turns full-width digits/letters (common from Chinese IMEs) into ASCII.
    return unicodedata.normalize("NFKC", value)


# --------------------------------------------------------------------- ID numbers
def id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise IdNumberError("id_number.format", "身份证号前17位必须是数字")
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def normalize_id_number(value: str) -> str:
    """Canonical form (trimmed, inner spaces removed, upper-case ``X``) of a *valid* number.

    Raises ``IdNumberError`` exactly as ``parse_id_number`` does.
    """
    number = _canonical_id(value)
    _validate_id(number, today=None)
    return number


def parse_id_number(value: str, *, today: date | None = None) -> IdInfo:
    """Validate an 18-character ID number and return birth date, gender and region code.

    Checks, in order: present → 18 characters → 17 digits + digit/X → check character →
    region code → birth date is a real date, not before 1900 and not after ``today``
    (default: today in China).
    """
    return _validate_id(_canonical_id(value), today=today)


def is_valid_id_number(value: str, *, today: date | None = None) -> bool:
    try:
        parse_id_number(value, today=today)
    except IdNumberError:
        return False
    return True


def _canonical_id(value: str) -> str:
    if not isinstance(value, str):
        raise IdNumberError("id_number.required", "请填写身份证号")
    return re.sub(r"\s+", "", _clean(value)).upper()


def _validate_id(number: str, *, today: date | None) -> IdInfo:
    if not number:
        raise IdNumberError("id_number.required", "请填写身份证号")
    if len(number) != 18:
        if len(number) == 15 and number.isascii() and number.isdigit():
            raise IdNumberError("id_number.legacy_15", "不支持15位旧身份证号，请填写18位身份证号")
        raise IdNumberError("id_number.length", "身份证号应为18位")
    if not number.isascii() or not _ID_SHAPE.fullmatch(number):
        raise IdNumberError(
            "id_number.format", "身份证号格式错误：前17位应为数字，最后一位为数字或X"
        )
    if id_check_digit(number[:17]) != number[17]:
        raise IdNumberError("id_number.checksum", "身份证号校验位错误")

    region = number[:6]
    if region[:2] not in _PROVINCE_CODES or region[2:] == "0000":
        # A person's region code names a county/district, never a bare province.
        raise IdNumberError("id_number.region", "身份证号地区码错误")

    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdNumberError("id_number.birth_date", "身份证号中的出生日期无效") from None
    if birth.year < _MIN_BIRTH_YEAR:
        raise IdNumberError("id_number.birth_date", "身份证号中的出生日期无效")
    if birth > (today or clock.today()):
        raise IdNumberError("id_number.birth_in_future", "身份证号中的出生日期不能晚于今天")

    gender: Gender = "male" if int(number[16]) % 2 == 1 else "female"
    return IdInfo(birth_date=birth, gender=gender, region_code=region)


# --------------------------------------------------------------------- mobile numbers
def normalize_mobile_phone(value: str) -> str:
    """``"+86 138-1234-5678"`` -> ``"13812345678"``; raises ``MobilePhoneError`` if invalid."""
    if not isinstance(value, str):
        raise MobilePhoneError("phone.required", "请填写手机号")
    text = _PHONE_SEPARATORS.sub("", _clean(value))
    if not text:
        raise MobilePhoneError("phone.required", "请填写手机号")
    if text.startswith("+"):
        if not text.startswith("+86"):
            raise MobilePhoneError("phone.not_mainland", "仅支持中国大陆手机号")
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif len(text) == 13 and text.startswith("86"):
        text = text[2:]
    if not text.isascii() or not text.isdigit():
        raise MobilePhoneError("phone.format", "手机号只能包含数字")
    if len(text) != 11:
        raise MobilePhoneError("phone.length", "手机号应为11位")
    if not _MOBILE_SHAPE.fullmatch(text):
        raise MobilePhoneError("phone.format", "手机号格式错误")
    return text


def is_valid_mobile_phone(value: str) -> bool:
    try:
        normalize_mobile_phone(value)
    except MobilePhoneError:
        return False
    return True


# --------------------------------------------------------------------- person names
_MIDDLE_DOTS: Final = str.maketrans({"•": "·", "‧": "·", "・": "·", "⋅": "·", "．": "·"})
# CJK ideographs (with extensions and compatibility forms) and the middle dot of
# transliterated names: whitespace between two of them is padding, not a word break.
_CJK_CHAR: Final = "[\u2e80-\u9fff\uf900-\ufaff\U00020000-\U0003134f·]"
_CJK_GAP: Final = re.compile(f"(?<={_CJK_CHAR})\\s+(?={_CJK_CHAR})")


def normalize_person_name(value: str) -> str:
    """The stored and searched form of a name, the same at import, create, bind and search.

    NFKC (full-width letters and the ideographic space become plain ones), one middle dot
    ``·`` for its look-alikes, no leading, trailing or repeated whitespace, and none between
    two CJK characters: ``"王　伟"`` (a sheet padding a two-character name) -> ``"王伟"``,
    ``"阿依古丽 • 买买提"`` -> ``"阿依古丽·买买提"``; ``"Ali  Khan"`` -> ``"Ali Khan"``.
    """
    text = unicodedata.normalize("NFKC", value.translate(_MIDDLE_DOTS)).translate(_MIDDLE_DOTS)
    return _CJK_GAP.sub("", " ".join(text.split()))


# --------------------------------------------------------------------- pydantic types
def _pydantic_id_number(value: str) -> str:
    try:
        return normalize_id_number(value)
    except IdNumberError as exc:
        # A custom error keeps the Chinese message clean (no "Value error, " prefix) and
        # exposes the stable code as the error ``type`` in 422 responses.
        raise PydanticCustomError(exc.code, exc.message) from None


def _pydantic_mobile_phone(value: str) -> str:
    try:
        return normalize_mobile_phone(value)
    except MobilePhoneError as exc:
        raise PydanticCustomError(exc.code, exc.message) from None


PersonNameText = Annotated[str, AfterValidator(normalize_person_name)]
"""A person's name in its normal form (see :func:`normalize_person_name`)."""

IdNumber = Annotated[str, AfterValidator(_pydantic_id_number)]
"""An 18-character resident ID number, validated and returned upper-cased without spaces."""

MobilePhone = Annotated[str, AfterValidator(_pydantic_mobile_phone)]
"""A mainland mobile number, validated and returned as 11 bare digits."""


# --------------------------------------------------------------------- plausible dates
def check_joined_on(value: date, *, today: date | None = None) -> date:
    """An 入党日期 on or after 1921-07-01 and not after today (China); ``ValueError``
    with the Chinese reason otherwise."""
    if value < PARTY_FOUNDED:
        raise ValueError("入党日期不能早于1921年7月1日")
    if value > (today or clock.today()):
        raise ValueError("入党日期不能晚于今天")
    return value


def check_birth_date(value: date, *, today: date | None = None) -> date:
    """A birth date in 1900 or later and not after today (China), as ID numbers allow."""
    if value.year < _MIN_BIRTH_YEAR:
        raise ValueError("出生日期不能早于1900年")
    if value > (today or clock.today()):
        raise ValueError("出生日期不能晚于今天")
    return value


def _pydantic_date(check: Callable[[date], date], code: str) -> Callable[[date], date]:
    def validate(value: date) -> date:
        try:
            return check(value)
        except ValueError as exc:
            raise PydanticCustomError(code, str(exc)) from None

    return validate


JoinedOn = Annotated[date, AfterValidator(_pydantic_date(check_joined_on, "date.implausible"))]
"""入党日期: from 1921-07-01 to today."""

BirthDate = Annotated[date, AfterValidator(_pydantic_date(check_birth_date, "date.implausible"))]
"""出生日期: from 1900-01-01 to today."""
