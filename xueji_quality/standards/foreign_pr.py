"""外国人永久居留身份证号码: the number of the foreign permanent resident ID card of 2023.

Eighteen characters, laid out like a resident ID number so that the same systems read it: ``9``,
the two digits of the issuing province (a mainland province-level code of GB/T 2260), a 3-digit
nationality code, the birth date YYYYMMDD, a 3-digit sequence and an ISO 7064 MOD 11-2 check
character over the first 17 (see ``iso7064``). The cards issued before 2023 carry 15 characters
(three letters of the nationality and 12 digits): they are not judged here.

>>> validate("91184020150301123X")
'91184020150301123X'
>>> province("91184020150301123X"), nationality("91184020150301123X")
('11', '840')
>>> birth_date("91184020150301123X")
datetime.date(2015, 3, 1)
>>> validate("981840201503011232")
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidComponent: 永久居留身份证号第2-3位 81 不是内地省级行政区划代码

In a roster the number sits under 身份证件类型 9 (境外永久居住证). Typed as a resident ID, its
first two digits (9x) are no province: ``resident_id`` classifies it BAD_PROVINCE.

>>> is_valid_column(["91184020150301123X", "911840201503011234", "USA440815010012"]).tolist()
[True, False, False]
"""

from __future__ import annotations

from datetime import date
from functools import cache

import numpy as np
import pyarrow.compute as pc
from stdnum.exceptions import InvalidComponent, InvalidFormat, InvalidLength

from xueji_quality.standards import accepts, dates, gb2260, iso7064, resident_id
from xueji_quality.standards.fixed_width import Column, arrow_text

LENGTH = 18
FIRST = "9"
# Province-level codes that are not the mainland's: 71 台湾, 81 香港, 82 澳门.
NOT_MAINLAND: frozenset[str] = frozenset({"71", "81", "82"})


@cache
def mainland_provinces() -> frozenset[str]:
    """The two-digit codes an issuing province may have."""
    return gb2260.province_codes() - NOT_MAINLAND


# --- one number --------------------------------------------------------------------------------


def compact(number: str) -> str:
    """The number without blanks, full-width characters turned ASCII, x upper-cased."""
    return resident_id.compact(number)


def format(number: str) -> str:
    """The number as printed on the card."""
    return compact(number)


def check_digit(number: str) -> str:
    """The check character the first 17 digits call for."""
    return resident_id.check_digit(number)


def province(number: str) -> str:
    """The two digits of the issuing province."""
    return _shaped(number)[1:3]


def nationality(number: str) -> str:
    """The 3-digit nationality code."""
    return _shaped(number)[3:6]


def birth_date(number: str) -> date:
    """The birth date inside the number."""
    text = _shaped(number)[6:14]
    try:
        return dates.from_number(int(text))
    except ValueError:
        raise InvalidComponent(f"永久居留身份证号中的出生日期 {text} 不存在") from None


def _shaped(number: str) -> str:
    number = compact(number)
    if len(number) != LENGTH:
        raise InvalidLength(f"永久居留身份证号应为18位，不是{len(number)}位")
    if not number.startswith(FIRST):
        raise InvalidFormat("2023年版永久居留身份证号以9开头")
    if not (number[:17].isascii() and number[:17].isdigit()) or number[17] not in "0123456789X":
        raise InvalidFormat("永久居留身份证号应为17位数字加1位数字或X")
    return number


def validate(number: str, as_of: date | None = None) -> str:
    """The compact number if it has the structure of the 2023 card (birth date not after
    ``as_of`` when given), else a ``ValueError`` subclass saying what is wrong."""
    number = _shaped(number)
    try:
        iso7064.validate(number)
    except ValueError as error:
        raise type(error)(f"永久居留身份证号{error}") from None
    if number[1:3] not in mainland_provinces():
        raise InvalidComponent(f"永久居留身份证号第2-3位 {number[1:3]} 不是内地省级行政区划代码")
    born = birth_date(number)
    if as_of is not None and born > as_of:
        raise InvalidComponent(f"永久居留身份证号中的出生日期 {born} 晚于 {as_of}")
    return number


def is_valid(number: str, as_of: date | None = None) -> bool:
    """Whether ``validate`` accepts the number."""
    return accepts(validate, number, as_of)


# --- columns -----------------------------------------------------------------------------------


def has_form_column(numbers: Column) -> np.ndarray:
    """Values beginning with 9: the form of the 2023 card."""
    starts = pc.starts_with(arrow_text(numbers), FIRST).fill_null(False)
    return starts.to_numpy(zero_copy_only=False)


def is_valid_column(
    numbers: Column, as_of: date | str | None = None, p: resident_id.Parts | None = None
) -> np.ndarray:
    """``is_valid`` over a column (``p``: the values' ``resident_id.parts``, the same frame)."""
    p = resident_id.parts(numbers) if p is None else p
    issuing = p.digits[:, 1].astype(np.int64) * 10 + p.digits[:, 2]
    mainland = [int(code) for code in mainland_provinces()]
    ok = p.check_ok & (p.digits[:, 0] == int(FIRST)) & np.isin(issuing, mainland) & (p.born > 0)
    if as_of is not None:
        ok &= p.born <= dates.yyyymmdd(as_of)
    return ok
