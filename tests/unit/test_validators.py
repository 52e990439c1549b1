"""ID number and mobile number validation: app.identity.validators."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import BaseModel, ValidationError

from app.identity.validators import (
    IdInfo,
    IdNumber,
    IdNumberError,
    MobilePhone,
    MobilePhoneError,
    id_check_digit,
    is_valid_id_number,
    is_valid_mobile_phone,
    normalize_id_number,
    normalize_mobile_phone,
    parse_id_number,
)

SAMPLE = "11010519491231002X"  # the worked example of GB 11643-1999


def check_digit(first17: str) -> str:
    """Independent ISO 7064 MOD 11-2 implementation: sum(a_i * 2^(17-i) mod 11)."""
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(first17))
    return "10X98765432"[total % 11]


def make_id(region: str = "440301", birth: str = "19900101", seq: str = "123") -> str:
    first17 = region + birth + seq
    return first17 + check_digit(first17)


def with_wrong_check(number: str) -> str:
    good = number[17]
    wrong = next(c for c in "0123456789X" if c != good)
    return number[:17] + wrong


# ------------------------------------------------------------------ ID numbers: valid
def test_sample_is_valid_and_parses() -> None:
    assert check_digit(SAMPLE[:17]) == "X"
    assert id_check_digit(SAMPLE[:17]) == "X"
    info = parse_id_number(SAMPLE)
    assert info == IdInfo(birth_date=date(1949, 12, 31), gender="female", region_code="110105")


def test_gb_second_example_check_digit() -> None:
    assert id_check_digit("44052418800101001") == "4"


@pytest.mark.parametrize(
    ("region", "birth", "seq"),
    [
        ("440301", "19900101", "123"),
        ("110105", "20000229", "001"),  # leap day
        ("650102", "19991231", "998"),
        ("810101", "19800615", "010"),  # HK resident permit prefix
        ("320583", "19700101", "000"),
    ],
)
def test_generated_valid_numbers(region: str, birth: str, seq: str) -> None:
    number = make_id(region, birth, seq)
    info = parse_id_number(number)
    assert info.region_code == region
    assert info.birth_date == date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    assert is_valid_id_number(number)
    assert normalize_id_number(number) == number


def test_many_check_digits_agree_with_independent_implementation() -> None:
    for n in range(2_000):
        first17 = f"{(n * 7_919_370_073_237) % 10**17:017d}"
        assert id_check_digit(first17) == check_digit(first17)


def test_gender_from_17th_digit() -> None:
    assert parse_id_number(make_id(seq="001")).gender == "male"
    assert parse_id_number(make_id(seq="123")).gender == "male"
    assert parse_id_number(make_id(seq="002")).gender == "female"
    assert parse_id_number(make_id(seq="990")).gender == "female"


def test_normalisation_lowercase_x_spaces_fullwidth() -> None:
    assert normalize_id_number(" 11010519491231002x ") == SAMPLE
    assert normalize_id_number("110105 19491231 002X") == SAMPLE
    assert normalize_id_number("１１０１０５１９４９１２３１００２Ｘ") == SAMPLE
    assert parse_id_number("11010519491231002x").gender == "female"


# ------------------------------------------------------------------ ID numbers: invalid
def _error(value: str, today: date | None = None) -> IdNumberError:
    with pytest.raises(IdNumberError) as exc:
        parse_id_number(value, today=today)
    assert isinstance(exc.value, ValueError)
    return exc.value


def test_wrong_check_digit() -> None:
    err = _error(with_wrong_check(SAMPLE))
    assert str(err) == "身份证号校验位错误"
    assert err.code == "id_number.checksum"
    assert not is_valid_id_number(with_wrong_check(make_id()))


def test_single_digit_typo_is_caught_by_check_digit() -> None:
    typo = SAMPLE[:3] + ("2" if SAMPLE[3] != "2" else "3") + SAMPLE[4:]
    assert _error(typo).code == "id_number.checksum"


@pytest.mark.parametrize("birth", ["19900230", "19900231", "19900431", "19000229", "19901301",
                                   "19900001", "19900100", "20230229"])  # fmt: skip
def test_impossible_dates(birth: str) -> None:
    err = _error(make_id(birth=birth))
    assert err.code == "id_number.birth_date"
    assert "出生日期" in str(err)


def test_birth_before_1900_rejected() -> None:
    assert _error("440524188001010014").code == "id_number.birth_date"


def test_future_birth_date() -> None:
    today = date(2026, 11, 23)
    tomorrow = today + timedelta(days=1)
    err = _error(make_id(birth=tomorrow.strftime("%Y%m%d")), today=today)
    assert err.code == "id_number.birth_in_future"
    assert str(err) == "身份证号中的出生日期不能晚于今天"
    # born today is fine
    assert parse_id_number(make_id(birth="20261123"), today=today).birth_date == today
    # default "today" is today in China: something in 2099 is always in the future
    assert _error(make_id(birth="20990101")).code == "id_number.birth_in_future"


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        ("", "id_number.required", "请填写身份证号"),
        ("   ", "id_number.required", "请填写身份证号"),
        ("1101051949123100", "id_number.length", "身份证号应为18位"),
        ("11010519491231002X1", "id_number.length", "身份证号应为18位"),
        ("110105491231002", "id_number.legacy_15", "15位"),
        ("11010519491231002Y", "id_number.format", "格式错误"),
        ("1101051949123100X2", "id_number.format", "格式错误"),
        ("11010519491231002١", "id_number.format", "格式错误"),  # Arabic-Indic digit
    ],
)
def test_format_errors(value: str, code: str, message: str) -> None:
    err = _error(value)
    assert err.code == code
    assert message in str(err)


@pytest.mark.parametrize("region", ["000000", "990101", "100101", "440000", "910101"])
def test_bad_region_codes(region: str) -> None:
    err = _error(make_id(region=region))
    assert err.code == "id_number.region"
    assert str(err) == "身份证号地区码错误"


def test_non_string_input() -> None:
    with pytest.raises(IdNumberError):
        parse_id_number(None)  # type: ignore[arg-type]


# ------------------------------------------------------------------ phones
@pytest.mark.parametrize(
    "value",
    [
        "13812345678",
        " 13812345678 ",
        "+86 138-1234-5678",
        "+8613812345678",
        "008613812345678",
        "86 138 1234 5678",
        "(+86) 138.1234.5678",
        "１３８１２３４５６７８",
        "138\u30001234\u30005678",
    ],
)
def test_phone_normalisation(value: str) -> None:
    assert normalize_mobile_phone(value) == "13812345678"
    assert is_valid_mobile_phone(value)


@pytest.mark.parametrize("prefix", ["13", "14", "15", "16", "17", "18", "19"])
def test_phone_prefixes_accepted(prefix: str) -> None:
    assert normalize_mobile_phone(prefix + "012345678") == prefix + "012345678"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "phone.required"),
        ("  - ", "phone.required"),
        ("12812345678", "phone.format"),
        ("10012345678", "phone.format"),
        ("23812345678", "phone.format"),
        ("1381234567", "phone.length"),
        ("138123456789", "phone.length"),
        ("1381234567a", "phone.format"),
        ("+85291234567", "phone.not_mainland"),
        ("+1 415 555 0100", "phone.not_mainland"),
        ("010-12345678", "phone.format"),  # landline: 11 digits but wrong prefix
    ],
)
def test_phone_errors(value: str, code: str) -> None:
    with pytest.raises(MobilePhoneError) as exc:
        normalize_mobile_phone(value)
    assert exc.value.code == code
    assert isinstance(exc.value, ValueError)
    assert "手机号" in str(exc.value)
    assert not is_valid_mobile_phone(value)


# ------------------------------------------------------------------ pydantic
class BindRequest(BaseModel):
    name: str
    id_number: IdNumber
    phone: MobilePhone | None = None


def test_pydantic_types_normalise() -> None:
    req = BindRequest(name="张三", id_number=" 11010519491231002x", phone="+86 138-1234-5678")
    assert req.id_number == SAMPLE
    assert req.phone == "13812345678"


def test_pydantic_types_report_chinese_errors() -> None:
    with pytest.raises(ValidationError) as exc:
        BindRequest(name="张三", id_number=with_wrong_check(SAMPLE), phone="12812345678")
    errors = {e["loc"][0]: e for e in exc.value.errors()}
    assert errors["id_number"]["type"] == "id_number.checksum"
    assert errors["id_number"]["msg"] == "身份证号校验位错误"
    assert errors["phone"]["type"] == "phone.format"
    assert errors["phone"]["msg"].startswith("手机号")


def test_pydantic_json_schema_is_string() -> None:
    schema = BindRequest.model_json_schema()
    assert schema["properties"]["id_number"]["type"] == "string"
