"""Whether a valid ID agrees with its own record (a number can pass MOD 11-2 and be made up).

Two valid, different IDs say "two people" only when each agrees with its record; a valid ID that
contradicts it may be made up or re-made, and the other fields decide. What makes a valid ID
inconsistent is kept as bits (``Records.id_conflict``), named in Chinese in the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np

from xueji_quality.standards import dates, gb2260, resident_id

CONFLICT_ADDRESS = 1  # the address code was never issued (GB/T 2260), or names no province
CONFLICT_ID_DATE = 2  # the date inside the ID is not a real date (or lies after the run date)
CONFLICT_DATE_MISMATCH = 4  # the date inside the ID differs from a valid 出生日期
CONFLICT_BIRTH_INVALID = 8  # 出生日期 is filled but not a real date
CONFLICT_SEX = 16  # the 17th digit's parity differs from 性别
CONFLICT_AGE = 32  # the birth date gives an age impossible for the grade
CONFLICT_LABELS: tuple[tuple[int, str], ...] = (
    (CONFLICT_ADDRESS, "身份证号地址码不存在"),
    (CONFLICT_ID_DATE, "证内出生日期无效"),
    (CONFLICT_DATE_MISMATCH, "证内出生日期与出生日期不符"),
    (CONFLICT_BIRTH_INVALID, "出生日期无效"),
    (CONFLICT_SEX, "身份证号性别位与性别不符"),
    (CONFLICT_AGE, "出生日期与年级明显不符"),
)
# Years the birth date may lie outside the nominal window of the grade before the age counts as
# impossible (config/linkage.json ``consistency`` overrides): the AGE_GRADE rule's window (one
# year older allowed) widened by one year on either side. An age that only loses the ID its
# veto costs nothing when the other fields say two people (different guardian or household).
AGE_SLACK_YEARS = {"older": 2, "younger": 1}
# Real dates as a table over YYYYMMDD - DATE_TABLE_START (years EARLIEST_YEAR .. 2199).
DATE_TABLE_START, DATE_TABLE_END = dates.EARLIEST_YEAR * 10000, 2200 * 10000


@cache
def _known_address_table() -> np.ndarray:
    """bool per 6-digit number: an address code an ID may carry (GB/T 2260 codes ever issued,
    and the residence permits' codes, which GB/T 2260 does not list as counties)."""
    table = np.zeros(10**6, dtype=bool)
    codes = [int(c) for c in gb2260.known_codes() if len(c) == 6 and c.isdigit()]
    permits = [int(c) for c in resident_id.PERMIT_ADDRESS_CODES]
    table[np.array([*codes, *permits], dtype=np.int64)] = True
    return table


@cache
def _real_date_table() -> np.ndarray:
    days = np.arange(
        f"{DATE_TABLE_START // 10000}-01-01",
        f"{DATE_TABLE_END // 10000}-01-01",
        dtype="datetime64[D]",
    )
    months = days.astype("datetime64[M]")
    numbers = (
        (days.astype("datetime64[Y]").astype(np.int64) + 1970) * 10000
        + (months.astype(np.int64) % 12 + 1) * 100
        + (days - months).astype(np.int64)
        + 1
    )
    table = np.zeros(DATE_TABLE_END - DATE_TABLE_START, dtype=bool)
    table[numbers - DATE_TABLE_START] = True
    return table


def real_date_numbers(numbers: np.ndarray) -> np.ndarray:
    """True where a YYYYMMDD number is a real date (years EARLIEST_YEAR .. 2199), by table
    look-up: a million numbers in one gather."""
    table = _real_date_table()
    at = np.asarray(numbers, dtype=np.int64) - DATE_TABLE_START
    inside = (at >= 0) & (at < len(table))
    return inside & table[np.where(inside, at, 0)]


@dataclass(frozen=True)
class Consistency:
    """What the conflict bits of a roster are judged against (see ``id_conflicts``)."""

    school_year: int  # Y of the school year starting in September of Y
    as_of: int  # YYYYMMDD of the run date
    older_years: int
    younger_years: int


def consistency_rules(as_of: date | str | None = None, settings: dict | None = None) -> Consistency:
    """The run date and the age slack (config ``consistency``) the conflict bits use."""
    day = as_of if isinstance(as_of, date) else None
    if day is None:
        day = date.fromisoformat(str(as_of)[:10]) if as_of is not None else date.today()
    slack = AGE_SLACK_YEARS | (settings or {}).get("age_slack_years", {})
    return Consistency(
        # The AGE_GRADE rule's school year (rules.checks.school_year): September starts it.
        school_year=day.year if day.month >= 9 else day.year - 1,
        as_of=day.year * 10000 + day.month * 100 + day.day,
        older_years=int(slack["older"]),
        younger_years=int(slack["younger"]),
    )


def id_conflicts(
    values: np.ndarray,
    valid: np.ndarray,
    given: np.ndarray,
    given_filled: np.ndarray,
    sex: np.ndarray,
    grade: np.ndarray,
    rules: Consistency,
) -> np.ndarray:
    """CONFLICT_* bits of each valid ID (int64 value, resident_id.PLACE) against its record (0
    where the ID is not valid).

    ``given`` is 出生日期 as YYYYMMDD (0 where blank or not a real date), ``given_filled`` whether
    the field held anything, ``sex`` 1/2 (0 unknown), ``grade`` 1..12 (0 unknown). A blank field
    contradicts nothing: the date inside the ID stands for a blank 出生日期, also in the age check.
    """
    values = np.where(valid, values, 0)
    inside = resident_id.birth_numbers_from_values(values)
    real = real_date_numbers(inside) & (inside <= rules.as_of)
    bits = np.zeros(len(values), dtype=np.uint8)
    bits[~_known_address_table()[values // resident_id.ADDRESS_PLACE]] |= CONFLICT_ADDRESS
    bits[~real] |= CONFLICT_ID_DATE
    bits[real & (given > 0) & (given != inside)] |= CONFLICT_DATE_MISMATCH
    bits[given_filled & (given == 0)] |= CONFLICT_BIRTH_INVALID
    male = values // resident_id.SEQUENCE_PLACE % 2 == 1
    bits[(sex > 0) & (male != (sex == 1))] |= CONFLICT_SEX
    # The AGE_GRADE window of grade g in school year Y: born 1 Sep (Y-g-6) .. 31 Aug (Y-g-5),
    # widened by the slack years: outside it the age is impossible, not only unusual.
    born = np.where(given > 0, given, np.where(real, inside, 0))
    g = grade.astype(np.int64)
    earliest = (rules.school_year - g - 6 - rules.older_years) * 10000 + 901
    latest = (rules.school_year - g - 5 + rules.younger_years) * 10000 + 831
    bits[(g > 0) & (born > 0) & ((born < earliest) | (born > latest))] |= CONFLICT_AGE
    bits[~valid] = 0
    return bits


def conflict_texts(bits: np.ndarray) -> np.ndarray:
    """Chinese list (、) of the conflicts named by each bit mask."""
    table = np.array(
        ["、".join(label for bit, label in CONFLICT_LABELS if mask & bit) for mask in range(64)],
        dtype=object,
    )
    return table[np.asarray(bits, dtype=np.int64) & 63]
