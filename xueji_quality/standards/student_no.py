"""全国学籍号, the national student number: a letter and 18 characters.

- ``G`` + the student's resident ID number (formal);
- ``J`` + an ID-style self code for a student without a usable ID (formal): a 6-digit area code,
  the birth date YYYYMMDD, a 3-digit sequence and a check character;
- ``L`` + the school's area code, the birth date YYYYMMDD and 4 digits (temporary, no check
  character; it becomes ``G`` once the national duplicate check has passed).

The J and L layouts are *unconfirmed* (no public specification): what is judged of them is only
the common shape ``[GJL]`` + 17 digits + a digit or X, and the birth date at positions 8-15,
where all three layouts put it. A ``G`` number's 18 characters are a resident ID number and are
judged as one (``resident_id``).

>>> validate("G34052419800101001X")
'G34052419800101001X'
>>> kind("L440106201503011234"), birth_date("L440106201503011234")
('L', datetime.date(2015, 3, 1))
>>> validate("G340524198001010010")
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidChecksum: 学籍号G后的身份证号：身份证号校验码应为 X，不是 0
>>> validate("L440106201502301234")
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidComponent: 学籍号中的出生日期 20150230 不存在
>>> birth_number_column(["G34052419800101001X", "L440106201503011234", "G3405241980"]).tolist()
[19800101, 20150301, 0]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from stdnum.exceptions import InvalidComponent, InvalidFormat, InvalidLength

from xueji_quality.standards import accepts, dates, resident_id
from xueji_quality.standards.fixed_width import (
    Column,
    arrow_text,
    digit_values,
    fixed_width_bytes,
)

LENGTH = 19
FORMAL, SELF_CODE, TEMPORARY = "G", "J", "L"
LETTERS = (FORMAL, SELF_CODE, TEMPORARY)
PATTERN = r"[GJL][0-9]{17}[0-9X]"
DATE_AT = 7  # position of YYYYMMDD in every layout (after the letter and a 6-digit area code)
_X = ord("X")


# --- one number --------------------------------------------------------------------------------


def compact(number: str) -> str:
    """The number without blanks, full-width characters turned ASCII, letters upper-cased."""
    return resident_id.compact(number)


def format(number: str) -> str:
    """The number as written: letter and 18 characters, no separators."""
    return compact(number)


def _shaped(number: str) -> str:
    number = compact(number)
    if len(number) != LENGTH:
        raise InvalidLength(f"学籍号应为19位（字母加18位），不是{len(number)}位")
    if number[0] not in LETTERS:
        raise InvalidFormat(f"学籍号应以 G、J 或 L 开头，不是 {number[0]!r}")
    tail = number[1:]
    if not (tail[:17].isascii() and tail[:17].isdigit()) or tail[17] not in "0123456789X":
        raise InvalidFormat("学籍号字母后应为17位数字加1位数字或X")
    return number


def kind(number: str) -> str:
    """The letter: G (ID number), J (self code) or L (temporary)."""
    return _shaped(number)[0]


def id_number(number: str) -> str:
    """The resident ID number a G 学籍号 carries."""
    number = _shaped(number)
    if number[0] != FORMAL:
        raise InvalidFormat(f"只有 G 开头的学籍号含身份证号，不是 {number[0]}")
    return number[1:]


def area_code(number: str) -> str:
    """The 6-digit area code after the letter (the ID's address code for G)."""
    return _shaped(number)[1:7]


def birth_date(number: str) -> date:
    """The birth date at positions 8-15."""
    text = _shaped(number)[DATE_AT : DATE_AT + 8]
    try:
        return dates.from_number(int(text))
    except ValueError:
        raise InvalidComponent(f"学籍号中的出生日期 {text} 不存在") from None


def validate(number: str) -> str:
    """The compact number if it is well formed (a G number's ID valid, the birth date of the
    others real), else a ``ValueError`` subclass saying what is wrong."""
    number = _shaped(number)
    if number[0] == FORMAL:
        try:
            resident_id.validate(number[1:])
        except ValueError as error:
            raise type(error)(f"学籍号G后的身份证号：{error}") from None
    else:
        birth_date(number)
    return number


def is_valid(number: str) -> bool:
    """Whether ``validate`` accepts the number."""
    return accepts(validate, number)


# --- columns -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """Each 学籍号 of a column as bytes."""

    shaped: np.ndarray  # 19 ASCII characters: any first, then 17 digits and a digit or X
    letters: np.ndarray  # uint8 byte of the first character (0 where not 19 ASCII characters)
    digits: np.ndarray  # (n, 19) int64 digit values (0 where no digit: the letter, an X)


def shape_column(numbers: Column) -> Shape:
    """The bytes of each value read once from the Arrow buffers (the letter is not judged)."""
    mask, raw = fixed_width_bytes(arrow_text(numbers), LENGTH)
    digits, is_digit = digit_values(raw)
    shaped = mask & is_digit[:, 1:18].all(axis=1) & (is_digit[:, 18] | (raw[:, 18] == _X))
    return Shape(shaped, raw[:, 0].copy(), digits)


def of_kind(shape: Shape, letters: tuple[str, ...] | list[str] = LETTERS) -> np.ndarray:
    """Well-formed numbers whose letter is one of ``letters``."""
    codes = [ord(c) for c in letters if len(c) == 1 and c.isascii()]
    return shape.shaped & np.isin(shape.letters, codes)


def birth_number_column(numbers: Column | Shape, start: int = DATE_AT) -> np.ndarray:
    """YYYYMMDD at ``start`` (clamped to the number) of each value of 学籍号 shape (the letter
    is not judged: see ``of_kind``); 0 where there is none or it is not a real date."""
    shape = numbers if isinstance(numbers, Shape) else shape_column(numbers)
    start = max(0, min(int(start), LENGTH - 8))
    inside = dates.ymd_numbers(shape.digits, start, start + 4, start + 6)
    return np.where(shape.shaped, inside, 0)


def kind_column(numbers: Column) -> np.ndarray:
    """``kind`` of each value (U1; '' where not well formed)."""
    shape = shape_column(numbers)
    letters = np.array([""] * 256, dtype="U1")
    for letter in LETTERS:
        letters[ord(letter)] = letter
    return np.where(shape.shaped, letters[shape.letters], "")
