"""公民身份号码, the resident identity number (GB 11643-1999), one value or a column at a time.

Eighteen characters: a 6-digit address code (GB/T 2260 county of the household registration
when the number was issued; it does not change when the family moves), the birth date YYYYMMDD,
a 3-digit sequence whose last digit is odd for men and even for women, and an ISO 7064 MOD 11-2
check character (see ``iso7064``). Standard examples: 11010519491231002X, 34052419800101001X.

>>> validate("11010519491231002x")
'11010519491231002X'
>>> birth_date("34052419800101001X"), sex("34052419800101001X"), address_code("34052419800101001X")
(datetime.date(1980, 1, 1), '1', '340524')
>>> check_digit("34052419800101001")
'X'
>>> validate("340524198001010010")
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidChecksum: 身份证号校验码应为 X，不是 0

The 15-digit numbers of GB 11643-1989 (address, YYMMDD of the 1900s, sequence, no check
character) were replaced in 1999; a child born after 2000 cannot hold one, so in a roster one is
an error (often a guardian's number typed into the student's field). ``to_18`` writes the 18-digit
number it became: "19" inserted before the year and the check character appended.

>>> validate("340524800101001")
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidLength: 15位旧身份证号（1999年以前的编码），应为18位：34052419800101001X
>>> to_18("340524800101001"), birth_date("340524800101001")
('34052419800101001X', datetime.date(1980, 1, 1))

Residence permits of Hong Kong, Macao and Taiwan residents are issued under this standard with
the address codes 810000, 820000 and 830000 (GB/T 2260 does not list 830000 as a region).

Spreadsheet damage: a number that went through Excel as a float comes back in E notation
(4.40106E+17) or, keeping 15 significant digits, with its last three digits turned to 000. E
notation always is damage; a number ending in 000 is when its check character fails (a real one
ends in 000 about once in a thousand), or when the 学籍号 (G + the intact number) carries the
same first 15 digits with another tail. The fix is at the source file, not in the number.

>>> is_spreadsheet_damaged("4.40106E+17"), is_spreadsheet_damaged("440106201501011000")
(True, True)
>>> is_spreadsheet_damaged("440106201501010000", "G440106201501010123")
True
>>> spreadsheet_forms("440106201501011234")
('4.40106E+17', '440106201501011000')

Columns (``_column`` forms, ``parts``, ``classify``) read the values as an (n, 18) matrix of digit
values (X = 10) from the Arrow buffers; they take values as ingest left them (normalised: no
blanks, full-width digits or lower-case x), where the scalar forms ``compact`` first.

>>> classify(["34052419800101001X", "340524198001010010", "4.40106E+17", "", "990106201503011232"])
array([5, 4, 2, 1, 6], dtype=int8)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np
import pyarrow.compute as pc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from xueji_quality.standards import accepts, dates, gb2260, iso7064
from xueji_quality.standards.fixed_width import Column, arrow_text, fixed_width_bytes

LENGTH = 18
LEGACY_LENGTH = 15
PERMIT_ADDRESS_CODES: frozenset[str] = frozenset({"810000", "820000", "830000"})
# 4.40106E+17, 4.40106201501011e17: a number that went through a spreadsheet as a float.
SCIENTIFIC = r"[0-9]+(\.[0-9]*)?[Ee]\+?[0-9]+"

# Classes of ``classify`` (int8), worst first where several apply.
MISSING = 1  # blank
DAMAGED = 2  # spreadsheet damage
BAD_FORMAT = 3  # not 17 digits and a digit or X (15-digit legacy numbers included)
BAD_CHECKSUM = 4
VALID = 5
BAD_PROVINCE = 6  # right check character, but the first two digits are no province

# Place values of the 18 positions when a number is held as one int64: 17 decimal digits, then
# the check value (0..10) in base 11, so every number of ID shape is a distinct value below 1.1e18.
PLACE = np.array([11 * 10 ** (16 - k) for k in range(17)] + [1], dtype=np.int64)
ADDRESS_PLACE = int(PLACE[5])
BIRTH_PLACE = int(PLACE[13])
SEQUENCE_PLACE = int(PLACE[16])

_BLANKS = re.compile(r"[\s\u200b-\u200d\u2060\ufeff]")
_SCIENTIFIC = re.compile(f"(?:{SCIENTIFIC})")
_LEGACY = re.compile(r"[0-9]{15}")
_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_X = ord("X")


class SpreadsheetDamaged(InvalidFormat):
    """The number went through a spreadsheet as a float."""


# --- one number --------------------------------------------------------------------------------


def compact(number: str) -> str:
    """The number without blanks, full-width characters turned ASCII, x upper-cased."""
    return _BLANKS.sub("", unicodedata.normalize("NFKC", str(number))).upper()


def _shaped(number: str) -> str:
    """The compact number if it has the shape of an 18- or a 15-digit number."""
    number = compact(number)
    if _SHAPE.fullmatch(number) or _LEGACY.fullmatch(number):
        return number
    raise InvalidFormat(f"不是身份证号的格式（18位：17位数字加数字或X）: {number!r}")


def check_digit(number: str) -> str:
    """The check character the first 17 digits call for (the 18th, if given, is ignored)."""
    body = compact(number)[:17]
    if len(body) != LENGTH - 1:
        raise InvalidLength(f"算校验码需要前17位数字，只有{len(body)}位")
    return iso7064.check_digit(body)


def is_spreadsheet_damaged(number: str, student_no: str | None = None) -> bool:
    """Whether the value is a number a spreadsheet stored as a float (see the module text)."""
    number = compact(number)
    if _SCIENTIFIC.fullmatch(number):
        return True
    if not (_SHAPE.fullmatch(number) and number.endswith("000")):
        return False
    if check_digit(number) != number[17]:
        return True
    inner = compact(student_no)[1:] if student_no is not None else ""
    return bool(_SHAPE.fullmatch(inner)) and inner[:15] == number[:15] and inner[15:] != "000"


def spreadsheet_forms(number: str) -> tuple[str, str]:
    """What a spreadsheet makes of an 18-digit number: (E notation, last three digits 000)."""
    number = compact(number)
    return f"{number[0]}.{number[1:6]}E+17", number[:15] + "000"


def to_18(number: str) -> str:
    """The 18-digit number of a 15-digit legacy one (an 18-digit number is returned as is)."""
    number = _shaped(number)
    if len(number) == LENGTH:
        return number
    body = number[:6] + "19" + number[6:]
    return body + iso7064.check_digit(body)


def birth_date(number: str) -> date:
    """The birth date inside the number (15-digit numbers: 19YYMMDD)."""
    number = to_18(number)
    try:
        return dates.from_number(int(number[6:14]))
    except ValueError:
        text = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
        raise InvalidComponent(f"身份证号中的出生日期 {text} 不存在") from None


def sex(number: str) -> str:
    """'1' (male, odd sequence) or '2' (female, even), the GB/T 2261.1 codes."""
    return "1" if int(to_18(number)[16]) % 2 == 1 else "2"


def address_code(number: str) -> str:
    """The 6-digit address code (GB/T 2260) at the front of the number."""
    return _shaped(number)[:6]


def value(number: str) -> int:
    """The number as one integer (``PLACE``: 17 digits, then the check value in base 11)."""
    number = compact(number)
    if not _SHAPE.fullmatch(number):
        raise InvalidFormat(f"不是身份证号的格式: {number!r}")
    return int(number[:17]) * 11 + iso7064.CHECK_CHARS.index(number[17])


def validate(number: str) -> str:
    """The compact number if it is a valid resident ID number, else a ``ValueError`` subclass
    whose message says what is wrong (damage, length, characters, check, province, date)."""
    number = compact(number)
    if not number:
        raise InvalidLength("身份证号为空")
    if _SCIENTIFIC.fullmatch(number):
        raise SpreadsheetDamaged(
            f"身份证号被电子表格存成了数字（{number}），请在源文件中将该列设为文本后重新录入"
        )
    if _LEGACY.fullmatch(number):
        raise InvalidLength(f"15位旧身份证号（1999年以前的编码），应为18位：{to_18(number)}")
    if len(number) != LENGTH:
        raise InvalidLength(f"身份证号应为18位，不是{len(number)}位")
    if not _SHAPE.fullmatch(number):
        raise InvalidFormat("身份证号应为17位数字加1位数字或X")
    expected = check_digit(number)
    if number[17] != expected:
        if number.endswith("000"):
            raise SpreadsheetDamaged(
                "身份证号末三位变成了000（电子表格按数字保存只留15位有效数字），请在源文件中"
                "将该列设为文本后重新录入"
            )
        raise InvalidChecksum(f"身份证号校验码应为 {expected}，不是 {number[17]}")
    if number[:2] not in gb2260.province_codes() and number[:6] not in PERMIT_ADDRESS_CODES:
        raise InvalidComponent(f"身份证号前两位 {number[:2]} 不是省级行政区划代码")
    birth_date(number)
    return number


def is_valid(number: str) -> bool:
    """Whether ``validate`` accepts the number."""
    return accepts(validate, number)


def format(number: str) -> str:
    """The number as printed on the card: 18 characters, no separators, X upper-case."""
    return compact(number)


# --- columns -----------------------------------------------------------------------------------


def digit_matrix(numbers: Column) -> tuple[np.ndarray, np.ndarray]:
    """(n, 18) uint8 digit values (X = 10) of the values of ID shape (17 ASCII digits, then a
    digit or X), zeros elsewhere; and the mask of those values."""
    fits, raw = fixed_width_bytes(arrow_text(numbers), LENGTH)
    digits = raw - np.uint8(48)  # bytes below '0' wrap round to large values
    is_x = raw[:, 17] == _X
    highest = digits[:, 0].copy()  # column by column: faster than a reduction along rows of 18
    for k in range(1, 17):
        np.maximum(highest, digits[:, k], out=highest)
    shaped = fits & (highest <= 9) & ((digits[:, 17] <= 9) | is_x)
    digits[is_x, 17] = 10
    digits[~shaped] = 0
    return digits, shaped


@dataclass(frozen=True)
class Parts:
    """What the rules need to know about each number of a column."""

    shaped: np.ndarray  # 17 digits and a digit or X
    digits: np.ndarray  # (n, 18) uint8, X = 10; zero where not shaped
    check_ok: np.ndarray  # shaped and the check character is right
    scientific: np.ndarray  # E notation
    zeroed: np.ndarray  # shaped and ends in 000
    born: np.ndarray  # YYYYMMDD inside a shaped number, 0 if not a real date


def parts(numbers: Column) -> Parts:
    """Shape, digits, check, damage signs and birth date of each number."""
    array = arrow_text(numbers)
    digits, shaped = digit_matrix(array)
    check_ok = shaped & iso7064.check_ok_column(digits)
    zeroed = shaped & (digits[:, 15:18] == 0).all(axis=1)
    scientific = pc.match_substring_regex(array, f"^(?:{SCIENTIFIC})$").fill_null(False)
    born = np.where(shaped, dates.ymd_numbers(digits, 6, 10, 12), 0)
    return Parts(shaped, digits, check_ok, scientific.to_numpy(zero_copy_only=False), zeroed, born)


def address_numbers(digits: np.ndarray) -> np.ndarray:
    """The address codes of a digit matrix as int64."""
    return dates.number_at(digits, 0, 6)


@cache
def _province_numbers() -> np.ndarray:
    return np.array(sorted(int(code) for code in gb2260.province_codes()), dtype=np.int64)


def is_permit_column(p: Parts) -> np.ndarray:
    """Numbers of ID shape whose address code is 810000, 820000 or 830000."""
    permits = [int(code) for code in PERMIT_ADDRESS_CODES]
    return p.shaped & np.isin(address_numbers(p.digits), permits)


def province_known_column(p: Parts) -> np.ndarray:
    """The first two digits are a province-level code (or the number is a permit's)."""
    province = p.digits[:, 0].astype(np.int64) * 10 + p.digits[:, 1]
    return np.isin(province, _province_numbers()) | is_permit_column(p)


def is_spreadsheet_damaged_column(
    numbers: Column, student_no: Column | None = None, p: Parts | None = None
) -> np.ndarray:
    """``is_spreadsheet_damaged`` over a column (``p``: the numbers' ``parts`` if known)."""
    p = parts(numbers) if p is None else p
    evidence = ~p.check_ok
    if student_no is not None:
        inner, inner_shaped = digit_matrix(pc.utf8_slice_codeunits(arrow_text(student_no), 1))
        same_head = (inner[:, :15] == p.digits[:, :15]).all(axis=1)
        other_tail = (inner[:, 15:] != 0).any(axis=1)
        evidence = evidence | (inner_shaped & same_head & other_tail)
    return p.scientific | (p.zeroed & evidence)


def classify(
    numbers: Column, student_no: Column | None = None, p: Parts | None = None
) -> np.ndarray:
    """int8 class of each number: MISSING, DAMAGED, BAD_FORMAT, BAD_CHECKSUM, BAD_PROVINCE or
    VALID (a valid number's date, region and sex are judged by the rules that need them).

    With ``student_no`` the 学籍号 is evidence of damage too (see ``is_spreadsheet_damaged``).
    """
    array = arrow_text(numbers)
    p = parts(array) if p is None else p
    filled = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(array)), 0).fill_null(False)
    out = np.full(len(array), VALID, dtype=np.int8)
    out[p.check_ok & ~province_known_column(p)] = BAD_PROVINCE
    out[~p.check_ok] = BAD_CHECKSUM
    out[~p.shaped] = BAD_FORMAT
    out[is_spreadsheet_damaged_column(array, student_no, p)] = DAMAGED
    out[~filled.to_numpy(zero_copy_only=False)] = MISSING
    return out


def is_valid_column(numbers: Column) -> np.ndarray:
    """``is_valid`` over a column of compact values."""
    p = parts(numbers)
    return (classify(numbers, p=p) == VALID) & (p.born > 0)


def _legacy_as_18(numbers: Column) -> tuple[np.ndarray, np.ndarray]:
    """Digit matrix of 18-digit numbers, with 15-digit legacy ones written as their 18 digits."""
    array = arrow_text(numbers)
    digits, shaped = digit_matrix(array)
    fits, raw = fixed_width_bytes(array, LEGACY_LENGTH)
    legacy = fits & ((raw >= 48) & (raw <= 57)).all(axis=1)
    if legacy.any():
        old = raw[legacy] - np.uint8(48)
        new = np.zeros((len(old), LENGTH), dtype=np.uint8)
        new[:, :6], new[:, 6], new[:, 7], new[:, 8:17] = old[:, :6], 1, 9, old[:, 6:]
        new[:, 17] = iso7064.check_values(new)
        digits[legacy], shaped = new, shaped | legacy
    return digits, shaped


def check_digit_column(numbers: Column) -> np.ndarray:
    """``check_digit`` of each number of ID shape (U1; '' elsewhere)."""
    digits, shaped = digit_matrix(numbers)
    return np.where(shaped, iso7064.check_digit_column(digits), "")


def with_check_digit_column(bodies: Column) -> np.ndarray:
    """17-digit bodies with their check character appended (U18; '' where no 17 digits)."""
    fits, raw = fixed_width_bytes(arrow_text(bodies), LENGTH - 1)
    fits &= ((raw >= 48) & (raw <= 57)).all(axis=1)
    digits = np.zeros((len(raw), LENGTH), dtype=np.uint8)
    digits[:, :17] = raw - np.uint8(48)
    digits[:, 17] = iso7064.check_values(digits)
    return np.where(fits, _text(digits), "")


def birth_date_column(numbers: Column) -> np.ndarray:
    """``birth_date`` of each number as datetime64[D] (NaT where there is none)."""
    digits, shaped = _legacy_as_18(numbers)
    born = np.where(shaped, dates.ymd_numbers(digits, 6, 10, 12), 0)
    out = np.full(len(born), np.datetime64("NaT"), dtype="datetime64[D]")
    real = born[born > 0]
    months = ((real // 10000 - 1970) * 12 + real // 100 % 100 - 1).astype("datetime64[M]")
    out[born > 0] = months.astype("datetime64[D]") + (real % 100 - 1)
    return out


def sex_column(numbers: Column) -> np.ndarray:
    """``sex`` of each number (U1; '' where the number has no shape)."""
    digits, shaped = _legacy_as_18(numbers)
    return np.where(shaped, np.where(digits[:, 16] % 2 == 1, "1", "2"), "")


def address_code_column(numbers: Column) -> np.ndarray:
    """``address_code`` of each number (U6; '' where the number has no shape)."""
    digits, shaped = _legacy_as_18(numbers)
    return np.where(shaped, _text(digits[:, :6]), "")


def to_18_column(numbers: Column) -> np.ndarray:
    """``to_18`` of each number of either shape (U18; '' elsewhere)."""
    digits, shaped = _legacy_as_18(numbers)
    return np.where(shaped, _text(digits), "")


def _text(digits: np.ndarray) -> np.ndarray:
    """Rows of a digit-value matrix (X = 10) as a unicode array."""
    width = digits.shape[1]
    chars = np.where(digits == 10, _X, digits + 48).astype(np.uint8)
    return np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(f"U{width}")


# --- numbers as int64 values (PLACE) -----------------------------------------------------------


def digits_to_values(digits: np.ndarray) -> np.ndarray:
    """int64 value (``PLACE``) of each row of an (n, 18) digit matrix."""
    out = np.zeros(len(digits), dtype=np.int64)
    for k in range(17):
        out *= 10
        out += digits[:, k]
    out *= 11
    out += digits[:, 17]
    return out


def values_to_digits(values: np.ndarray) -> np.ndarray:
    """(n, 18) uint8 digit values of int64 values (``PLACE``); negative values give zeros."""
    values = np.asarray(values, dtype=np.int64)
    out = np.zeros((len(values), LENGTH), dtype=np.uint8)
    has = values >= 0
    v = values[has]
    found = np.empty((len(v), LENGTH), dtype=np.uint8)
    found[:, 17] = v % 11
    v = v // 11
    for k in range(16, -1, -1):
        found[:, k] = v % 10
        v = v // 10
    out[has] = found
    return out


def birth_numbers_from_values(values: np.ndarray) -> np.ndarray:
    """The YYYYMMDD digits inside each int64 value (not checked to be a date; -1 gives -1)."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values >= 0, values // BIRTH_PLACE % 10**8, -1)
