"""Pure rules of the study domain: Asia/Shanghai days and leaderboard periods."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.core.clock import shanghai_day
from app.organization.models import path_ids
from app.study.service import period_range


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        (datetime(2026, 3, 10, 15, 59, 59, tzinfo=UTC), date(2026, 3, 10)),  # 23:59:59
        (datetime(2026, 3, 10, 16, 0, 0, tzinfo=UTC), date(2026, 3, 11)),  # 00:00:00
        (datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC), date(2027, 1, 1)),
    ],
)
def test_shanghai_day(moment: datetime, day: date) -> None:
    assert shanghai_day(moment) == day


def test_period_ranges() -> None:
    assert period_range("day", date(2026, 3, 10)) == (date(2026, 3, 10), date(2026, 3, 10))
    assert period_range("month", date(2028, 2, 10)) == (date(2028, 2, 1), date(2028, 2, 29))
    assert period_range("month", date(2026, 12, 31)) == (date(2026, 12, 1), date(2026, 12, 31))
    assert period_range("year", date(2026, 7, 1)) == (date(2026, 1, 1), date(2026, 12, 31))


def test_path_ids_are_the_org_and_its_ancestors() -> None:
    assert path_ids("/1/7/42/") == [1, 7, 42]
    assert path_ids("/") == []
