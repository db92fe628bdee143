"""Vectorised row checks behind every roster rule (the only implementation of each rule).

Each function takes whole columns (pandas Series of text, any dtype, any Unicode, None/<NA>) and
returns a boolean Series on the same index: True where the row passes, False where the rule fires.
They are total: no value, however broken, raises. Missing values pass every check except the ones
about missing values (an empty optional field is not a format error).

The resident ID rules follow GB 11643-1999 as ``xueji_quality.standards.resident_id`` defines it
(check character, date inside the number, spreadsheet damage, and the classification of a number:
missing, spreadsheet damage, bad shape, bad check character, no such province, valid); rules that need its parts (birth date, sex, address code) only look at valid numbers,
so one broken number yields one problem, not five.

Which numbers are judged as resident ID numbers: those typed 居民身份证 (1); those with no type
that look like one (15 to 18 digits, the last may be X: the type was left out, REQUIRED_MISSING
says so); and residence permits of Hong Kong, Macao and Taiwan residents typed 6/7/8 (18
characters beginning 810000/820000/830000, issued under GB 11643 with its check character).
Other documents are judged by their own structure or not at all: the 2023 外国人永久居留身份证
typed 9 has its own rule (FOREIGN_PR_FORMAT), passports and 通行证 have none.

Fixed-width values (ID numbers, dates) are read as byte matrices straight from the pyarrow
buffers; the parts of a column are computed once and reused by every rule that needs them
(GX hands each rule a copy of the batch frame, but pyarrow copies share their buffers, which
identify the column).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from xueji_quality.standards import dates, foreign_pr, gb2260, resident_id
from xueji_quality.standards import student_no as student_no_standard
from xueji_quality.standards.fixed_width import as_text
from xueji_quality.standards.resident_id import PERMIT_ADDRESS_CODES as PERMIT_ADDRESS_CODES
from xueji_quality.text_sets import is_in

# Classification of an ID number (int8 codes): resident_id's classes, and 0 for the numbers
# that are not judged as resident ID numbers.
ID_NOT_CHECKED = 0  # id_type is not one that carries a resident ID number
ID_MISSING = resident_id.MISSING
ID_DAMAGED = resident_id.DAMAGED
ID_BAD_FORMAT = resident_id.BAD_FORMAT
ID_BAD_CHECKSUM = resident_id.BAD_CHECKSUM
ID_VALID = resident_id.VALID
ID_BAD_PROVINCE = resident_id.BAD_PROVINCE

RESIDENT_ID_TYPES: tuple[str, ...] = ("1",)
# Residence permits of Hong Kong, Macao and Taiwan residents (resident_id.PERMIT_ADDRESS_CODES);
# rosters type them 1 or as the holder's travel document (6 香港, 7 澳门, 8 台湾).
PERMIT_ID_TYPES: tuple[str, ...] = ("6", "7", "8")
# 境外永久居住证: the 2023 外国人永久居留身份证 (standards.foreign_pr) is judged under type 9.
FOREIGN_PR_TYPES: tuple[str, ...] = ("9",)
# An untyped value judged as a resident ID: 15 (legacy) to 18 characters of digits, X last.
RESIDENT_LIKE = r"[0-9]{14,17}[0-9X]"


def _arrow(values: pd.Series) -> pa.Array:
    """The values as one pyarrow string array (zero-copy for pyarrow-backed strings)."""
    array = pa.array(as_text(values).array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


def fullmatch(values: pd.Series, pattern: str) -> pd.Series:
    """True where the whole value matches ``pattern``; missing values give False."""
    whole = f"(?:{pattern})"  # pandas anchors with ^...$, which would bind to the first/last branch
    hit = as_text(values).str.fullmatch(whole)
    return hit.fillna(False).astype(bool)


def present(values: pd.Series) -> pd.Series:
    """True where a value is there and is not blank."""
    text = as_text(values)
    return (text.str.strip().str.len() > 0).fillna(False).astype(bool)


# --- memo of per-column work -------------------------------------------------------------------

_MEMO: OrderedDict[tuple, tuple[list[pa.Array], Any]] = OrderedDict()
_MEMO_LOCK = threading.Lock()
_MEMO_SIZE = 8


def _identity(array: pa.Array) -> tuple:
    return (
        str(array.type),
        array.offset,
        len(array),
        tuple(b.address if b is not None else 0 for b in array.buffers()),
    )


def _memo(name: str, arrays: list[pa.Array], compute: Callable[[], Any]) -> Any:
    """``compute()`` once per (name, column buffers); entries keep their arrays alive, so a
    buffer address cannot be reused by another column while its entry exists."""
    key = (name, *(_identity(a) for a in arrays))
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key][1]
    value = compute()
    with _MEMO_LOCK:
        _MEMO[key] = (arrays, value)
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return value


# --- dates -------------------------------------------------------------------------------------


def date_numbers(values: pd.Series) -> np.ndarray:
    """YYYY-MM-DD text -> YYYYMMDD int64; 0 where missing, misshapen or not a real date."""
    array = _arrow(values)
    return _memo("date", [array], lambda: dates.iso_date_numbers(array))


# --- resident ID numbers ---------------------------------------------------------------------


def id_parts(id_number: pd.Series) -> resident_id.Parts:
    """Shape, digits, check, damage signs and birth date of each ID number (computed once)."""
    array = _arrow(id_number)
    return _memo("id_parts", [array], lambda: resident_id.parts(array))


def _id_status(id_type: pd.Series, id_number: pd.Series) -> np.ndarray:
    parts = id_parts(id_number)
    number_class = resident_id.classify(_arrow(id_number), p=parts)
    filled = number_class != resident_id.MISSING
    untyped = ~present(id_type).to_numpy()
    permit = resident_id.is_permit_column(parts)
    resident = is_in(id_type, RESIDENT_ID_TYPES).to_numpy() | (
        is_in(id_type, PERMIT_ID_TYPES).to_numpy() & permit
    )
    if untyped.any():
        resident |= untyped & fullmatch(id_number, RESIDENT_LIKE).to_numpy()
    status = np.where(resident & filled, number_class, ID_NOT_CHECKED).astype(np.int8)
    status[is_in(id_type, RESIDENT_ID_TYPES).to_numpy() & ~filled] = ID_MISSING
    status[number_class == resident_id.DAMAGED] = ID_DAMAGED
    return status


def id_status(id_type: pd.Series, id_number: pd.Series) -> np.ndarray:
    """int8 classification of each ID number (ID_NOT_CHECKED ... ID_BAD_PROVINCE).

    Spreadsheet damage is recognised whatever the ID type (it is never a real number); the other
    classes apply to the numbers judged as resident ID numbers (see the module docstring). The
    学籍号 is not consulted here (see ``id_not_damaged``).
    """
    arrays = [_arrow(id_type), _arrow(id_number)]
    return _memo("id_status", arrays, lambda: _id_status(id_type, id_number))


def id_present(id_type: pd.Series, id_number: pd.Series) -> pd.Series:
    """ID_MISSING: a resident ID type needs a number."""
    return pd.Series(id_status(id_type, id_number) != ID_MISSING, index=id_number.index)


def id_not_damaged(id_number: pd.Series, student_no: pd.Series | None = None) -> pd.Series:
    """ID_SPREADSHEET_DAMAGE: the value is not a number a spreadsheet stored as a float
    (``resident_id.is_spreadsheet_damaged``; the 学籍号 G + the intact number is evidence too)."""
    damaged = resident_id.is_spreadsheet_damaged_column(
        _arrow(id_number), None if student_no is None else _arrow(student_no), id_parts(id_number)
    )
    return pd.Series(~damaged, index=id_number.index)


def id_format_ok(id_type: pd.Series, id_number: pd.Series) -> pd.Series:
    """ID_FORMAT: 18 characters, 17 digits and a digit or X (15-digit legacy numbers fail)."""
    return pd.Series(id_status(id_type, id_number) != ID_BAD_FORMAT, index=id_number.index)


def id_checksum_ok(id_type: pd.Series, id_number: pd.Series) -> pd.Series:
    """ID_CHECKSUM: ISO 7064 MOD 11-2 check character."""
    return pd.Series(id_status(id_type, id_number) != ID_BAD_CHECKSUM, index=id_number.index)


def id_province_known(
    id_type: pd.Series, id_number: pd.Series, foreign_form: bool | None = None
) -> pd.Series:
    """ID_PROVINCE_UNKNOWN: the first two digits of a resident ID number with a right check
    character are one of the 34 province-level codes (810000/820000/830000 permits aside).

    ``foreign_form`` True judges only numbers beginning with 9 (the form of the 2023
    外国人永久居留身份证: the type is likely wrong), False only the others, None all.
    """
    bad = id_status(id_type, id_number) == ID_BAD_PROVINCE
    if foreign_form is not None:
        nine = id_parts(id_number).digits[:, 0] == int(foreign_pr.FIRST)
        bad &= nine if foreign_form else ~nine
    return pd.Series(~bad, index=id_number.index)


def foreign_pr_ok(id_type: pd.Series, id_number: pd.Series, as_of: date | str) -> pd.Series:
    """FOREIGN_PR_FORMAT: a number typed 境外永久居住证 (9) that begins with 9 has the structure
    of the 2023 外国人永久居留身份证 (``standards.foreign_pr``), its birth date not after ``as_of``.

    Numbers of other forms under type 9 (the earlier 3 letters and 12 digits, other countries'
    cards) are not judged; spreadsheet damage is ID_SPREADSHEET_DAMAGE's business.
    """
    array = _arrow(id_number)
    judged = (
        is_in(id_type, FOREIGN_PR_TYPES).to_numpy()
        & foreign_pr.has_form_column(array)
        & (id_status(id_type, id_number) != ID_DAMAGED)
    )
    ok = foreign_pr.is_valid_column(array, as_of, id_parts(id_number))
    return pd.Series(~(judged & ~ok), index=id_number.index)


def id_date_ok(id_type: pd.Series, id_number: pd.Series, as_of: date | str) -> pd.Series:
    """ID_DATE: the birth date inside a valid number is a real date, not after ``as_of``."""
    valid = id_status(id_type, id_number) == ID_VALID
    born = id_parts(id_number).born
    bad = valid & ((born == 0) | (born > dates.yyyymmdd(as_of)))
    return pd.Series(~bad, index=id_number.index)


def birth_date_matches_id(
    id_type: pd.Series, id_number: pd.Series, birth_date: pd.Series
) -> pd.Series:
    """BIRTHDATE_MISMATCH: 出生日期 equals the date inside a valid ID number.

    An 出生日期 that is no date (0000-00-00, 1900-01-01) is BIRTHDATE_INVALID's alone.
    """
    valid = id_status(id_type, id_number) == ID_VALID
    born = id_parts(id_number).born
    given = date_numbers(birth_date)
    real = given >= dates.yyyymmdd(EARLIEST_BIRTH_DATE)
    bad = valid & (born > 0) & real & (given != born)
    return pd.Series(~bad, index=id_number.index)


def sex_matches_id(id_type: pd.Series, id_number: pd.Series, sex: pd.Series) -> pd.Series:
    """SEX_MISMATCH: 性别 agrees with the parity of the 17th digit (odd 男 1, even 女 2)."""
    valid = id_status(id_type, id_number) == ID_VALID
    odd = id_parts(id_number).digits[:, 16] % 2 == 1
    text = as_text(sex)
    male = (text == "1").fillna(False).to_numpy(dtype=bool)
    female = (text == "2").fillna(False).to_numpy(dtype=bool)
    bad = valid & ((male & ~odd) | (female & odd))
    return pd.Series(~bad, index=id_number.index)


def _address_codes(id_number: pd.Series) -> pd.Series:
    return as_text(id_number).str.slice(0, 6)


def id_region_known(id_type: pd.Series, id_number: pd.Series) -> pd.Series:
    """ID_REGION_UNKNOWN: the address code of a valid number was issued at some time (GB/T 2260).

    A number whose first two digits are no province is ID_PROVINCE_UNKNOWN's (not valid here).
    """
    valid = id_status(id_type, id_number) == ID_VALID
    codes = _address_codes(id_number)
    known = gb2260.is_known(codes).to_numpy() | resident_id.is_permit_column(id_parts(id_number))
    return pd.Series(~(valid & ~known), index=id_number.index)


def id_region_in_force(id_type: pd.Series, id_number: pd.Series) -> pd.Series:
    """ID_REGION_ERA: a known address code was in force in the birth year inside the number."""
    valid = id_status(id_type, id_number) == ID_VALID
    born = id_parts(id_number).born
    codes = _address_codes(id_number)
    # A permit's 810000/820000/830000 is not a division with years in force.
    permit = resident_id.is_permit_column(id_parts(id_number))
    check = valid & gb2260.is_known(codes).to_numpy() & ~permit & (born > 0)
    years = pd.Series(born[check] // 10000)
    ok = gb2260.in_force(codes[check].reset_index(drop=True), years).to_numpy()
    bad = np.zeros(len(codes), dtype=bool)
    bad[np.flatnonzero(check)[~ok]] = True
    return pd.Series(~bad, index=id_number.index)


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
    shape = student_no_standard.shape_column(_arrow(student_no))
    chosen = student_no_standard.of_kind(shape, letters)
    bad = np.zeros(len(chosen), dtype=bool)
    if compare_id:
        # G + the number of a 居民身份证: a permit typed 6/7/8 is checked for its own sake only.
        valid = (id_status(id_type, id_number) == ID_VALID) & ~is_in(
            id_type, PERMIT_ID_TYPES
        ).to_numpy()
        same = (as_text(student_no).str.slice(1) == as_text(id_number)).fillna(False)
        bad |= chosen & valid & ~same.to_numpy(dtype=bool)
        date_rows = chosen & ~valid
    else:
        date_rows = chosen
    inner = student_no_standard.birth_number_column(shape, date_start)
    given = date_numbers(birth_date)
    bad |= date_rows & (given > 0) & (inner != given)
    return pd.Series(~bad, index=student_no.index)


def school_in_province(school_code: pd.Series, province: str) -> pd.Series:
    """SCHOOL_PROVINCE: digits 3-4 of a well-formed 10-digit school code are the run's province."""
    text = as_text(school_code)
    shaped = fullmatch(text, r"[0-9]{10}").to_numpy()
    same = (text.str.slice(2, 4) == str(province)[:2]).fillna(False).to_numpy(dtype=bool)
    return pd.Series(~shaped | same, index=school_code.index)


def county_of_province(county_code: pd.Series, province: str, year: int = 2024) -> pd.Series:
    """COUNTY_UNKNOWN: the county code is a current county-level code of the province."""
    current = gb2260.counties(str(province)[:2], year)["code"]
    ok = is_in(county_code, current).to_numpy()
    return pd.Series(ok | ~present(county_code).to_numpy(), index=county_code.index)


# --- dates -----------------------------------------------------------------------------------


def school_year(as_of: date | str) -> int:
    """The year Y whose September starts the school year ``as_of`` falls in."""
    d = dates.to_date(as_of)
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
    # An 出生日期 that is no date is BIRTHDATE_INVALID's alone.
    known = (born >= dates.yyyymmdd(EARLIEST_BIRTH_DATE)) & np.isfinite(level)
    g = np.where(known, level, 0).astype(np.int64)
    y = school_year(as_of)
    earliest = (y - g - 6 - int(older_years)) * 10000 + 901
    latest = (y - g - 5 + int(younger_years)) * 10000 + 831
    bad = known & ((born < earliest) | (born > latest))
    return pd.Series(~bad, index=birth_date.index)


def enroll_date_ok(enroll_date: pd.Series, birth_date: pd.Series, as_of: date | str) -> pd.Series:
    """ENROLL_DATE: 入学年月 is a real YYYY-MM, not after ``as_of`` and not before the birth month."""
    filled = present(enroll_date).to_numpy()
    month_no = dates.iso_month_numbers(_arrow(enroll_date))
    d = dates.to_date(as_of)
    born_month = date_numbers(birth_date) // 100
    bad = filled & (
        (month_no == 0)
        | (month_no > d.year * 100 + d.month)
        | ((born_month > 0) & (month_no < born_month))
    )
    return pd.Series(~bad, index=enroll_date.index)


# --- 出生日期 itself --------------------------------------------------------------------------

# No one born before this is a pupil of a roster (the oldest adult learner of a 中职 school would
# be in their seventies); what lies before it is placeholders: 1900-01-01, Excel's day 0 and 1,
# database minimum dates (1753-01-01, 0001-01-01). Later but implausible dates are AGE_GRADE's.
EARLIEST_BIRTH_DATE = "1950-01-01"


def birth_date_valid(
    birth_date: pd.Series, as_of: date | str, earliest: date | str = EARLIEST_BIRTH_DATE
) -> pd.Series:
    """BIRTHDATE_INVALID: 出生日期 is a real date written YYYY-MM-DD, from ``earliest`` to ``as_of``.

    Ingest writes every date it can read certainly as YYYY-MM-DD and keeps the rest as typed, so
    a value of any other shape (0000-00-00, 00000000, 04/03/2012, 12-3-4, 不详) is one that is
    no date; an empty value is REQUIRED_MISSING's business and passes here.
    """
    born = date_numbers(birth_date)
    filled = present(birth_date).to_numpy()
    bad = filled & (
        (born == 0) | (born < dates.yyyymmdd(earliest)) | (born > dates.yyyymmdd(as_of))
    )
    return pd.Series(~bad, index=birth_date.index)
