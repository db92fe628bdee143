"""Calendar dates as the standards write them (GB/T 7408, ISO 8601): YYYYMMDD inside numbers
(the resident ID, the 学籍号, the foreign permanent residence number), YYYY-MM-DD and YYYY-MM in
the columns ingest has normalised.

A date is handled as one integer YYYYMMDD (0 where there is no real date), so comparing a date
inside an ID with 出生日期 is integer equality over whole columns. A real date is one that the
Gregorian calendar has, from ``EARLIEST_YEAR`` on: 2015-02-29 and 2015-13-01 are not, and years
before 1900 are placeholders, not birth dates of anyone in a roster.

>>> real(np.array([2016, 2015, 2015, 1899]), np.array([2, 2, 13, 1]), np.array([29, 29, 1, 1]))
array([ True, False, False, False])
>>> iso_date_numbers(["2015-03-01", "2015-02-29", "2015-3-1", None]).tolist()
[20150301, 0, 0, 0]
>>> iso_month_numbers(["2015-09", "2015-13", "2015-9"]).tolist()
[201509, 0, 0]
>>> yyyymmdd("2026-11-28")
20261128
"""

from __future__ import annotations

from datetime import date
from functools import cache

import numpy as np

from xueji_quality.standards.fixed_width import (
    Column,
    arrow_text,
    digit_values,
    fixed_width_bytes,
)

EARLIEST_YEAR = 1900
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_DASH = ord("-")


def number_at(digits: np.ndarray, start: int, stop: int) -> np.ndarray:
    """int64 decimal number written by the digit values (0..9) in columns ``start:stop``."""
    out = np.zeros(len(digits), dtype=np.int64)
    for pos in range(start, stop):
        out = out * 10 + digits[:, pos]
    return out


def real(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """True where year-month-day is a calendar date from ``EARLIEST_YEAR`` on."""
    year, month, day = (np.asarray(x, dtype=np.int64) for x in (year, month, day))
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_ok = (month >= 1) & (month <= 12)
    limit = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + (leap & (month == 2))
    return month_ok & (day >= 1) & (day <= limit) & (year >= EARLIEST_YEAR)


def _real_by_arithmetic(numbers: np.ndarray) -> np.ndarray:
    return real(numbers // 10000, numbers // 100 % 100, numbers % 100)


# Numbers of the years EARLIEST_YEAR .. 2199 are looked up in a table made once by ``real``
# (3 MB): a tenth of the time of the arithmetic, for columns judged a slice at a time.
_TABLE_START, _TABLE_END = EARLIEST_YEAR * 10000, 2200 * 10000


@cache
def _real_table() -> np.ndarray:
    return _real_by_arithmetic(np.arange(_TABLE_START, _TABLE_END, dtype=np.int64))


def real_numbers(numbers: np.ndarray) -> np.ndarray:
    """True where a YYYYMMDD number is a real date."""
    numbers = np.asarray(numbers, dtype=np.int64)
    table = _real_table()
    at = numbers - _TABLE_START
    inside = (at >= 0) & (at < len(table))
    out = inside & table[np.where(inside, at, 0)]
    beyond = numbers >= _TABLE_END
    if beyond.any():
        out[beyond] = _real_by_arithmetic(numbers[beyond])
    return out


def ymd_numbers(digits: np.ndarray, year_at: int, month_at: int, day_at: int) -> np.ndarray:
    """YYYYMMDD read from digit positions of an (n, width) matrix of digit values; 0 where the
    digits there are not a real date."""
    year = number_at(digits, year_at, year_at + 4)
    month = number_at(digits, month_at, month_at + 2)
    day = number_at(digits, day_at, day_at + 2)
    return np.where(real(year, month, day), year * 10000 + month * 100 + day, 0)


def iso_date_numbers(values: Column) -> np.ndarray:
    """YYYY-MM-DD text -> YYYYMMDD int64; 0 where missing, misshapen or not a real date."""
    mask, raw = fixed_width_bytes(arrow_text(values), 10)
    digits, is_digit = digit_values(raw)
    shaped = (
        mask
        & is_digit[:, [0, 1, 2, 3, 5, 6, 8, 9]].all(axis=1)
        & (raw[:, 4] == _DASH)
        & (raw[:, 7] == _DASH)
    )
    return np.where(shaped, ymd_numbers(digits, 0, 5, 8), 0)


def iso_month_numbers(values: Column) -> np.ndarray:
    """YYYY-MM text -> YYYYMM int64; 0 where missing, misshapen or not a real month."""
    mask, raw = fixed_width_bytes(arrow_text(values), 7)
    digits, is_digit = digit_values(raw)
    shaped = mask & is_digit[:, [0, 1, 2, 3, 5, 6]].all(axis=1) & (raw[:, 4] == _DASH)
    year, month = number_at(digits, 0, 4), number_at(digits, 5, 7)
    real_month = shaped & (month >= 1) & (month <= 12) & (year >= EARLIEST_YEAR)
    return np.where(real_month, year * 100 + month, 0)


def to_date(value: date | str) -> date:
    """A date, or the date at the start of an ISO text (2026-11-28, 2026-11-28T10:00)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def yyyymmdd(value: date | str) -> int:
    """The date as one integer YYYYMMDD."""
    d = to_date(value)
    return d.year * 10000 + d.month * 100 + d.day


def from_number(number: int) -> date:
    """The date of a real YYYYMMDD number (ValueError otherwise)."""
    if not real_numbers(np.array([number]))[0]:
        raise ValueError(f"不是有效日期: {number}")
    return date(number // 10000, number // 100 % 100, number % 100)
