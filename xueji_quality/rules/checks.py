"""Vectorised row checks behind every roster rule (the only implementation of each rule).

Each function takes whole columns (pandas Series of text, any dtype, any Unicode, None/<NA>) and
returns a boolean Series on the same index: True where the row passes, False where the rule fires.
They are total: no value, however broken, raises. Missing values pass every check except the ones
about missing values (an empty optional field is not a format error).

The resident ID rules follow GB 11643-1999 (see ``xueji_quality.idcard``); an ID number is first
classified once (missing, spreadsheet damage, bad shape, bad check character, valid), and rules
that need its parts (birth date, sex, address code) only look at valid numbers, so one broken
number yields one problem, not five.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd

from xueji_quality import idcard, regions

# Classification of an ID number (int8 codes).
ID_NOT_CHECKED = 0  # id_type is not one that carries a resident ID number
ID_MISSING = 1
ID_DAMAGED = 2
ID_BAD_FORMAT = 3
ID_BAD_CHECKSUM = 4
ID_VALID = 5

RESIDENT_ID_TYPES: tuple[str, ...] = ("1",)
# Residence permits of Hong Kong, Macao and Taiwan residents carry these address codes.
PERMIT_ADDRESS_CODES: frozenset[str] = frozenset({"810000", "820000", "830000"})

SHAPE_18 = r"[0-9]{17}[0-9X]"
# 4.40106E+17, 4.40106200001011e17: an ID that went through a spreadsheet as a float.
SCIENTIFIC = r"[0-9]+(\.[0-9]*)?[Ee]\+?[0-9]+"
# 15 significant digits survive a float: the last three of 18 come back as 000 (sequence 000 is
# never issued, so a real number does not end that way).
ZEROED_TAIL = r"[0-9]{15}000"
DATE_10 = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
MONTH_7 = r"[0-9]{4}-[0-9]{2}"
EARLIEST_YEAR = 1900


def as_text(values: pd.Series) -> pd.Series:
    """The column as pandas strings (pyarrow-backed when every value can be, else Python)."""
    if isinstance(values.dtype, pd.StringDtype):
        return values
    try:
        return values.astype("string[pyarrow]")
    except Exception:  # e.g. lone surrogates, which pyarrow cannot hold
        return values.map(lambda v: v if v is None or v is pd.NA else str(v)).astype(
            "string[python]"
        )


def fullmatch(values: pd.Series, pattern: str) -> pd.Series:
    """True where the whole value matches ``pattern``; missing values give False."""
    text = as_text(values)
    try:
        hit = text.str.fullmatch(pattern)
    except (ValueError, re.error):  # an engine that rejects the value (pyarrow UTF-8 issues)
        hit = as_text(text.astype(object)).str.fullmatch(pattern)
    return hit.fillna(False).astype(bool)


def present(values: pd.Series) -> pd.Series:
    """True where a value is there and is not blank."""
    text = as_text(values)
    return (text.str.strip().str.len() > 0).fillna(False).astype(bool)


def _ascii_matrix(text: pd.Series, mask: np.ndarray, width: int) -> np.ndarray:
    """(mask.sum(), width) uint8 byte matrix of the masked values (each exactly ``width`` ASCII)."""
    chosen = text[mask].tolist()
    if not chosen:
        return np.zeros((0, width), dtype=np.uint8)
    return np.frombuffer("".join(chosen).encode("ascii"), dtype=np.uint8).reshape(-1, width)


def _digits_to_int(matrix: np.ndarray, start: int, stop: int) -> np.ndarray:
    out = np.zeros(len(matrix), dtype=np.int64)
    for pos in range(start, stop):
        out = out * 10 + (matrix[:, pos].astype(np.int64) - 48)
    return out


def _valid_ymd(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    month_ok = (month >= 1) & (month <= 12)
    limit = days[np.where(month_ok, month, 0)] + (leap & (month == 2))
    return month_ok & (day >= 1) & (day <= limit) & (year >= EARLIEST_YEAR)


def _to_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _yyyymmdd(value: date | str) -> int:
    d = _to_date(value)
    return d.year * 10000 + d.month * 100 + d.day


def date_numbers(values: pd.Series) -> np.ndarray:
    """YYYY-MM-DD text -> YYYYMMDD int64; 0 where missing, misshapen or not a real date."""
    text = as_text(values)
    mask = fullmatch(text, DATE_10).to_numpy()
    out = np.zeros(len(text), dtype=np.int64)
    m = _ascii_matrix(text, mask, 10)
    year, month, day = _digits_to_int(m, 0, 4), _digits_to_int(m, 5, 7), _digits_to_int(m, 8, 10)
    out[mask] = np.where(_valid_ymd(year, month, day), year * 10000 + month * 100 + day, 0)
    return out


# --- resident ID numbers ---------------------------------------------------------------------


def spreadsheet_damaged(id_number: pd.Series, student_no: pd.Series | None = None) -> pd.Series:
    """True where the value is an ID number that a spreadsheet stored as a float.

    E notation (4.40106E+17) always is. Eighteen digits ending in 000 (a float keeps 15
    significant digits) are when the check character fails, or when the 学籍号 carries the same
    first 15 digits with a different tail (G + the intact number): a real number may end in 000.
    """
    text = as_text(id_number)
    zeroed = fullmatch(text, ZEROED_TAIL).to_numpy()
    shaped, digits = id_digits(text)
    check_fails = ~(idcard.check_digit_values(digits) == digits[:, 17])
    evidence = check_fails
    if student_no is not None:
        inner = as_text(student_no).str.slice(1)
        same_head = (
            (inner.str.slice(0, 15) == text.str.slice(0, 15)).fillna(False).to_numpy(dtype=bool)
        )
        other_tail = (inner.str.slice(15) != "000").fillna(False).to_numpy(dtype=bool)
        evidence = evidence | (same_head & other_tail & fullmatch(inner, SHAPE_18).to_numpy())
    damaged = fullmatch(text, SCIENTIFIC).to_numpy() | (zeroed & shaped & evidence)
    return pd.Series(damaged, index=id_number.index)


def id_digits(id_number: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(shaped mask, (n, 18) digit values: X = 10; rows that are not shaped are all zero)."""
    text = as_text(id_number)
    shaped = fullmatch(text, SHAPE_18).to_numpy()
    digits = np.zeros((len(text), 18), dtype=np.uint8)
    raw = _ascii_matrix(text, shaped, 18)
    digits[shaped] = np.where(raw == ord("X"), 10, raw - 48)
    return shaped, digits


def id_status(id_type: pd.Series, id_number: pd.Series) -> np.ndarray:
    """int8 classification of each ID number (ID_NOT_CHECKED ... ID_VALID).

    Spreadsheet damage is recognised whatever the ID type (it is never a real number); the other
    classes apply to resident ID numbers (id_type 1) only.
    """
    resident = as_text(id_type).isin(RESIDENT_ID_TYPES).fillna(False).to_numpy(dtype=bool)
    filled = present(id_number).to_numpy()
    damaged = spreadsheet_damaged(id_number).to_numpy()
    shaped, digits = id_digits(id_number)
    check_ok = shaped & (idcard.check_digit_values(digits) == digits[:, 17])
    status = np.full(len(resident), ID_NOT_CHECKED, dtype=np.int8)
    status[resident & filled] = ID_VALID
    status[resident & filled & ~check_ok] = ID_BAD_CHECKSUM
    status[resident & filled & ~shaped] = ID_BAD_FORMAT
    status[resident & ~filled] = ID_MISSING
    status[filled & damaged] = ID_DAMAGED
    return status


def id_present(id_type: pd.Series, id_number: pd.Series) -> pd.Series:
    """ID_MISSING: a resident ID type needs a number."""
    return pd.Series(id_status(id_type, id_number) != ID_MISSING, index=id_number.index)


def id_not_damaged(id_number: pd.Series, student_no: pd.Series | None = None) -> pd.Series:
    """ID_SPREADSHEET_DAMAGE (see ``spreadsheet_damaged``)."""
    return ~spreadsheet_damaged(id_number, student_no)


def id_format_ok(id_type: pd.Series, id_number: pd.Series) -> pd.Series:
    """ID_FORMAT: 18 characters, 17 digits and a digit or X (15-digit legacy numbers fail)."""
    return pd.Series(id_status(id_type, id_number) != ID_BAD_FORMAT, index=id_number.index)


def id_checksum_ok(id_type: pd.Series, id_number: pd.Series) -> pd.Series:
    """ID_CHECKSUM: ISO 7064 MOD 11-2 check character."""
    return pd.Series(id_status(id_type, id_number) != ID_BAD_CHECKSUM, index=id_number.index)


def _valid_id_dates(
    id_type: pd.Series, id_number: pd.Series
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(valid mask, birth date YYYYMMDD in the ID or 0 if impossible, digit matrix)."""
    valid = id_status(id_type, id_number) == ID_VALID
    _, digits = id_digits(id_number)
    d = digits.astype(np.int64)

    def number(a: int, b: int) -> np.ndarray:
        out = np.zeros(len(d), dtype=np.int64)
        for pos in range(a, b):
            out = out * 10 + d[:, pos]
        return out

    year, month, day = number(6, 10), number(10, 12), number(12, 14)
    born = np.where(_valid_ymd(year, month, day), year * 10000 + month * 100 + day, 0)
    return valid, born, digits


def id_date_ok(id_type: pd.Series, id_number: pd.Series, as_of: date | str) -> pd.Series:
    """ID_DATE: the birth date inside a valid number is a real date, not after ``as_of``."""
    valid, born, _ = _valid_id_dates(id_type, id_number)
    bad = valid & ((born == 0) | (born > _yyyymmdd(as_of)))
    return pd.Series(~bad, index=id_number.index)


def birth_date_matches_id(
    id_type: pd.Series, id_number: pd.Series, birth_date: pd.Series
) -> pd.Series:
    """BIRTHDATE_MISMATCH: 出生日期 equals the date inside a valid ID number."""
    valid, born, _ = _valid_id_dates(id_type, id_number)
    text = as_text(birth_date)
    given = date_numbers(text)
    bad = valid & (born > 0) & present(text).to_numpy() & (given != born)
    return pd.Series(~bad, index=id_number.index)


def sex_matches_id(id_type: pd.Series, id_number: pd.Series, sex: pd.Series) -> pd.Series:
    """SEX_MISMATCH: 性别 agrees with the parity of the 17th digit (odd 男 1, even 女 2)."""
    valid, _, digits = _valid_id_dates(id_type, id_number)
    expected = np.where(digits[:, 16] % 2 == 1, "1", "2")
    given = as_text(sex).fillna("").to_numpy(dtype=object)
    coded = (given == "1") | (given == "2")
    bad = valid & coded & (given != expected)
    return pd.Series(~bad, index=id_number.index)


def _address_codes(id_number: pd.Series) -> pd.Series:
    return as_text(id_number).str.slice(0, 6)


def id_region_known(id_type: pd.Series, id_number: pd.Series) -> pd.Series:
    """ID_REGION_UNKNOWN: the address code of a valid number was issued at some time (GB/T 2260)."""
    valid = id_status(id_type, id_number) == ID_VALID
    codes = _address_codes(id_number)
    known = regions.is_known(codes).to_numpy() | codes.isin(PERMIT_ADDRESS_CODES).fillna(
        False
    ).to_numpy(dtype=bool)
    return pd.Series(~(valid & ~known), index=id_number.index)


def id_region_in_force(id_type: pd.Series, id_number: pd.Series) -> pd.Series:
    """ID_REGION_ERA: a known address code was in force in the birth year inside the number."""
    valid, born, _ = _valid_id_dates(id_type, id_number)
    codes = _address_codes(id_number)
    known = regions.is_known(codes).to_numpy()
    check = valid & known & (born > 0)
    years = pd.Series(np.where(check, born // 10000, 0), index=id_number.index)
    ok = regions.in_force(codes.where(check, "000000"), years).to_numpy()
    return pd.Series(~(check & ~ok), index=id_number.index)


# --- national student numbers ----------------------------------------------------------------


def student_no_matches(
    student_no: pd.Series,
    id_type: pd.Series,
    id_number: pd.Series,
    birth_date: pd.Series,
    letters: list[str] | tuple[str, ...] = ("G",),
    compare_id: bool = True,
    date_start: int = 7,
) -> pd.Series:
    """STUDENT_NO_MISMATCH for student numbers starting with one of ``letters``.

    With ``compare_id`` (the G layout: letter + ID number), the 18 characters after the letter
    must equal a valid resident ID number; where there is no valid ID to compare with, the birth
    date at ``date_start`` (YYYYMMDD) must equal 出生日期. Numbers without the right shape are
    STUDENT_NO_FORMAT's business.
    """
    text = as_text(student_no)
    shaped = fullmatch(text, r"[GJL][0-9]{17}[0-9X]").to_numpy()
    letter = text.str.slice(0, 1).isin(list(letters)).fillna(False).to_numpy(dtype=bool)
    chosen = shaped & letter
    valid = id_status(id_type, id_number) == ID_VALID
    ids = as_text(id_number).fillna("").to_numpy(dtype=object)
    inner = text.str.slice(1).fillna("").to_numpy(dtype=object)
    bad = np.zeros(len(text), dtype=bool)
    if compare_id:
        bad |= chosen & valid & (inner != ids)
        date_rows = chosen & ~valid
    else:
        date_rows = chosen
    inner_date = text.str.slice(date_start, date_start + 8)
    inner_date = (
        inner_date.str.slice(0, 4)
        + "-"
        + inner_date.str.slice(4, 6)
        + "-"
        + inner_date.str.slice(6, 8)
    )
    given = date_numbers(birth_date)
    bad |= date_rows & (given > 0) & (date_numbers(inner_date) != given)
    return pd.Series(~bad, index=student_no.index)


# --- codes -----------------------------------------------------------------------------------


def school_in_province(school_code: pd.Series, province: str) -> pd.Series:
    """SCHOOL_PROVINCE: digits 3-4 of a well-formed 10-digit school code are the run's province."""
    text = as_text(school_code)
    shaped = fullmatch(text, r"[0-9]{10}").to_numpy()
    same = (text.str.slice(2, 4) == str(province)[:2]).fillna(False).to_numpy(dtype=bool)
    return pd.Series(~shaped | same, index=school_code.index)


def county_of_province(county_code: pd.Series, province: str, year: int = 2024) -> pd.Series:
    """COUNTY_UNKNOWN: the county code is a current county-level code of the province."""
    current = set(regions.counties(str(province)[:2], year)["code"].tolist())
    ok = as_text(county_code).isin(current).fillna(False).to_numpy(dtype=bool)
    return pd.Series(ok | ~present(county_code).to_numpy(), index=county_code.index)


# --- dates -----------------------------------------------------------------------------------


def school_year(as_of: date | str) -> int:
    """The year Y whose September starts the school year ``as_of`` falls in."""
    d = _to_date(as_of)
    return d.year if d.month >= 9 else d.year - 1


def birth_date_fits_grade(
    birth_date: pd.Series,
    grade_level: pd.Series,
    as_of: date | str,
    older_years: int = 1,
    younger_years: int = 0,
) -> pd.Series:
    """AGE_GRADE: birth date inside the nominal window of the grade, with slack in years.

    Grade g in the school year starting September Y: born 1 Sep (Y-g-6) .. 31 Aug (Y-g-5).
    """
    born = date_numbers(birth_date)
    level = pd.to_numeric(grade_level, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    known = (born > 0) & np.isfinite(level)
    g = np.where(known, level, 0).astype(np.int64)
    y = school_year(as_of)
    earliest = (y - g - 6 - int(older_years)) * 10000 + 901
    latest = (y - g - 5 + int(younger_years)) * 10000 + 831
    bad = known & ((born < earliest) | (born > latest))
    return pd.Series(~bad, index=birth_date.index)


def enroll_date_ok(enroll_date: pd.Series, birth_date: pd.Series, as_of: date | str) -> pd.Series:
    """ENROLL_DATE: 入学年月 is a real YYYY-MM, not after ``as_of`` and not before the birth month."""
    text = as_text(enroll_date)
    filled = present(text).to_numpy()
    shaped = fullmatch(text, MONTH_7).to_numpy()
    m = _ascii_matrix(text, shaped, 7)
    month_no = np.zeros(len(text), dtype=np.int64)
    year, month = _digits_to_int(m, 0, 4), _digits_to_int(m, 5, 7)
    real = (month >= 1) & (month <= 12) & (year >= EARLIEST_YEAR)
    month_no[shaped] = np.where(real, year * 100 + month, 0)
    d = _to_date(as_of)
    born_month = date_numbers(birth_date) // 100
    bad = filled & (
        (month_no == 0)
        | (month_no > d.year * 100 + d.month)
        | ((born_month > 0) & (month_no < born_month))
    )
    return pd.Series(~bad, index=enroll_date.index)
