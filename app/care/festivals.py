"""The solar dates of the lunar festivals greeting campaigns are sent on.

Lunar dates come from ``lunar_python`` (6tail/lunar-python, MIT; the same tables back
its Java and JavaScript twins), never from a hand-made table: the lunar calendar's
leap months and month lengths follow astronomical new moons.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from lunar_python import Lunar

# festival -> (lunar month, lunar day, Chinese name)
LUNAR_DATES: Final[dict[str, tuple[int, int, str]]] = {
    "spring_festival": (1, 1, "春节"),
    "lantern": (1, 15, "元宵节"),
    "dragon_boat": (5, 5, "端午节"),
    "mid_autumn": (8, 15, "中秋节"),
    "double_ninth": (9, 9, "重阳节"),
}
# The calendar package covers these years; requests outside get a 422.
FIRST_YEAR, LAST_YEAR = 1901, 2099


def festival_name(festival: str) -> str:
    return LUNAR_DATES[festival][2]


def festival_date(festival: str, year: int) -> date:
    """The Gregorian day of ``festival`` in the lunar year ``year`` (2027 mid_autumn:
    2027-09-15). Every one of these festivals falls in the same Gregorian year."""
    month, day, _ = LUNAR_DATES[festival]
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def next_festival_date(festival: str, today: date) -> date:
    """The festival's next day on or after ``today``."""
    this_year = festival_date(festival, today.year)
    return this_year if this_year >= today else festival_date(festival, today.year + 1)
