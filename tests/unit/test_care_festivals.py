"""Festival days come from the lunar calendar package (checked against the published
calendar of the State Council's holiday notices)."""

from __future__ import annotations

from datetime import date

import pytest

from app.care.festivals import festival_date, next_festival_date


@pytest.mark.parametrize(
    ("festival", "year", "day"),
    [
        ("mid_autumn", 2027, date(2027, 9, 15)),
        ("spring_festival", 2027, date(2027, 2, 6)),
        ("spring_festival", 2026, date(2026, 2, 17)),
        ("lantern", 2027, date(2027, 2, 20)),
        ("dragon_boat", 2027, date(2027, 6, 9)),
        ("double_ninth", 2027, date(2027, 10, 8)),
        ("mid_autumn", 2023, date(2023, 9, 29)),  # a year with a leap (2nd) month
        ("dragon_boat", 2025, date(2025, 5, 31)),  # a year with a leap 6th month
    ],
)
def test_festival_dates(festival: str, year: int, day: date) -> None:
    assert festival_date(festival, year) == day


def test_the_next_occurrence_is_on_or_after_today() -> None:
    assert next_festival_date("mid_autumn", date(2026, 12, 1)) == date(2027, 9, 15)
    assert next_festival_date("mid_autumn", date(2026, 9, 25)) == date(2026, 9, 25)
    assert next_festival_date("mid_autumn", date(2026, 9, 26)) == date(2027, 9, 15)
    assert next_festival_date("spring_festival", date(2026, 1, 1)) == date(2026, 2, 17)
