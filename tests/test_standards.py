"""standards/: each column form agrees with its scalar form, and the scalar forms with stdnum."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength
from stdnum.iso7064 import mod_11_2

from xueji_quality.standards import dates, foreign_pr, iso7064, resident_id, student_no

CJK = re.compile(r"[\u4e00-\u9fff]")
ADDRESSES = ["440106", "110105", "340524", "810000", "830000", "990106", "000106", "449999"]


@st.composite
def bodies(draw) -> str:
    """17 digits: an address code, a date (sometimes impossible), a sequence."""
    address = draw(st.sampled_from(ADDRESSES))
    if draw(st.booleans()):
        day = draw(st.dates(date(1900, 1, 1), date(2030, 12, 31))).strftime("%Y%m%d")
    else:
        day = draw(st.from_regex(r"[0-9]{8}", fullmatch=True))
    return address + day + f"{draw(st.integers(0, 999)):03d}"


@st.composite
def id_like(draw) -> str:
    """Valid numbers and what rosters make of them: typos, swaps, spreadsheet damage, legacy
    15-digit numbers, other lengths, odd characters."""
    body = draw(bodies())
    number = body + iso7064.check_digit(body)
    how = draw(
        st.sampled_from(
            ["valid", "digit", "swap", "check", "zeroed", "e17", "legacy", "short", "junk"]
        )
    )
    at = draw(st.integers(0, 16))
    if how == "digit":
        number = number[:at] + draw(st.sampled_from("0123456789")) + number[at + 1 :]
    elif how == "swap":
        number = number[:at] + number[at + 1] + number[at] + number[at + 2 :]
    elif how == "check":
        number = number[:17] + draw(st.sampled_from("0123456789X"))
    elif how == "zeroed":
        number = number[:15] + "000"
    elif how == "e17":
        number = resident_id.spreadsheet_forms(number)[0]
    elif how == "legacy":
        number = number[:6] + number[8:17]
    elif how == "short":
        number = number[: draw(st.integers(0, 17))]
    elif how == "junk":
        number = number[:at] + draw(st.sampled_from("xX*-.a中")) + number[at + 1 :]
    return number


def column_forms(values: list[str]) -> list:
    """The same values as a pandas Series and as pyarrow arrays of both string types."""
    return [
        pd.Series(values, dtype="string[pyarrow]"),
        pd.Series(values, dtype=object),
        pa.array(values, pa.string()),
        pa.chunked_array([pa.array(values, pa.large_string())]),
    ]


# --- ISO 7064 MOD 11-2 ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.from_regex(r"[0-9]{17}", fullmatch=True), min_size=1, max_size=20))
def test_check_digit_agrees_with_stdnum_and_its_column_form(bodies17):
    expected = [mod_11_2.calc_check_digit(b) for b in bodies17]
    assert [iso7064.check_digit(b) for b in bodies17] == expected
    digits = np.array([[int(c) for c in b] + [0] for b in bodies17], dtype=np.uint8)
    assert iso7064.check_digit_column(digits).tolist() == expected


def _one_edit(number: str) -> set[str]:
    """Every valid number one substitution or adjacent swap away, by brute force."""
    found = set()
    for at in range(18):
        for c in iso7064.CHECK_CHARS:
            found.add(number[:at] + c + number[at + 1 :])
    for at in range(17):
        found.add(number[:at] + number[at + 1] + number[at] + number[at + 2 :])
    return {n for n in found if n != number and iso7064.is_valid(n)}


@settings(max_examples=60, deadline=None)
@given(st.lists(id_like(), min_size=1, max_size=10))
def test_one_edit_valid_neighbours_are_exactly_those_found_by_brute_force(numbers):
    failing = [
        n for n in numbers if re.fullmatch(r"[0-9]{17}[0-9X]", n) and not iso7064.is_valid(n)
    ]
    if not failing:
        return
    rows, made = iso7064.one_edit_valid_neighbours(iso7064.digit_rows(failing))
    found: list[set[str]] = [set() for _ in failing]
    for row, digits in zip(rows, made, strict=True):
        found[row].add("".join(iso7064.CHECK_CHARS[d] for d in digits))
    assert found == [_one_edit(n) for n in failing]


# --- resident ID ---------------------------------------------------------------------------

_CLASS_OF_ERROR = {
    resident_id.SpreadsheetDamaged: resident_id.DAMAGED,
    InvalidLength: resident_id.BAD_FORMAT,
    InvalidFormat: resident_id.BAD_FORMAT,
    InvalidChecksum: resident_id.BAD_CHECKSUM,
}


def _scalar_class(number: str) -> int:
    """classify's class from what validate says (a bad date is VALID there: a rule's business)."""
    if not number:
        return resident_id.MISSING
    try:
        resident_id.validate(number)
    except InvalidComponent as error:
        return resident_id.BAD_PROVINCE if "前两位" in str(error) else resident_id.VALID
    except ValueError as error:
        assert CJK.search(str(error)), str(error)
        return _CLASS_OF_ERROR[type(error)]
    return resident_id.VALID


@settings(max_examples=150, deadline=None)
@given(st.lists(id_like(), min_size=1, max_size=30))
def test_resident_id_column_forms_agree_with_the_scalar_forms(numbers):
    classes = [_scalar_class(n) for n in numbers]
    valid = [resident_id.is_valid(n) for n in numbers]
    for column in column_forms(numbers):
        assert resident_id.classify(column).tolist() == classes
        assert resident_id.is_valid_column(column).tolist() == valid
        assert resident_id.is_spreadsheet_damaged_column(column).tolist() == [
            resident_id.is_spreadsheet_damaged(n) for n in numbers
        ]

    def scalar(function, number, missing):
        try:
            return function(number)
        except ValueError:
            return missing

    assert resident_id.birth_date_column(numbers).tolist() == [
        scalar(resident_id.birth_date, n, None) for n in numbers
    ]
    assert resident_id.sex_column(numbers).tolist() == [
        scalar(resident_id.sex, n, "") for n in numbers
    ]
    assert resident_id.address_code_column(numbers).tolist() == [
        scalar(resident_id.address_code, n, "") for n in numbers
    ]
    assert resident_id.to_18_column(numbers).tolist() == [
        scalar(resident_id.to_18, n, "") for n in numbers
    ]
    shaped = [n for n in numbers if re.fullmatch(r"[0-9]{17}[0-9X]", n)]
    assert resident_id.check_digit_column(shaped).tolist() == [
        resident_id.check_digit(n) for n in shaped
    ]


@settings(max_examples=100, deadline=None)
@given(st.lists(id_like(), min_size=1, max_size=20), st.data())
def test_spreadsheet_damage_with_the_student_no_is_one_definition(numbers, data):
    """The 学籍号 G + the intact number: the rule's view and the classification agree."""
    intact = [data.draw(bodies()) for _ in numbers]
    intact = ["G" + b + iso7064.check_digit(b) for b in intact]
    # Half the rows carry the 学籍号 of their own number's first 15 digits.
    numbers = [n[:15] + "000" if i % 2 and len(n) == 18 else n for i, n in enumerate(numbers)]
    intact = [
        "G" + n[:15] + s[16:] if i % 2 and len(n) == 18 else s
        for i, (n, s) in enumerate(zip(numbers, intact, strict=True))
    ]
    scalar = [
        resident_id.is_spreadsheet_damaged(n, s) for n, s in zip(numbers, intact, strict=True)
    ]
    column = resident_id.is_spreadsheet_damaged_column(numbers, intact)
    assert column.tolist() == scalar
    classes = resident_id.classify(numbers, intact)
    assert ((classes == resident_id.DAMAGED) == column).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(id_like(), min_size=1, max_size=20))
def test_resident_id_agrees_with_stdnum(numbers):
    for number in numbers:
        if re.fullmatch(r"[0-9]{17}[0-9X]", number):
            assert resident_id.check_digit(number) == ric.calc_check_digit(number)
            if resident_id.is_valid(number):
                assert resident_id.birth_date(number) == ric.get_birth_date(number)
        try:
            theirs = ric.is_valid(number)
        except KeyError:  # stdnum: a known province with an unknown county
            continue
        # stdnum also wants the county in force in the birth year; it takes any year from 1,
        # where a year before 1900 is no birth date here.
        if theirs and ric.get_birth_date(number).year >= dates.EARLIEST_YEAR:
            assert resident_id.is_valid(number), number


def test_compact_and_format_fold_what_a_keyboard_types():
    assert (
        resident_id.compact(" １１０１０５１９４９１２３１００２ｘ\u3000") == "11010519491231002X"
    )
    assert resident_id.format("11010519491231002x") == "11010519491231002X"
    assert resident_id.is_valid(" 11010519491231002x ")


def test_int64_values_round_trip_and_carry_the_birth_date():
    numbers = ["11010519491231002X", "34052419800101001X", "440106201503011234"]
    digits, shaped = resident_id.digit_matrix(numbers)
    values = resident_id.digits_to_values(digits)
    assert values.tolist() == [resident_id.value(n) for n in numbers]
    assert (resident_id.values_to_digits(values) == digits).all()
    assert resident_id.birth_numbers_from_values(values).tolist() == [19491231, 19800101, 20150301]
    assert resident_id.values_to_digits(np.array([-1])).tolist() == [[0] * 18]


def test_digit_matrix_reads_only_ascii_digits_and_a_final_x():
    values = ["11010519491231002X", "11010519491231002:", "1101051949123100x2", None, ""]
    digits, shaped = resident_id.digit_matrix(pa.array(values, pa.large_string()))
    assert shaped.tolist() == [True, False, False, False, False]
    assert digits[0, 17] == 10 and not digits[1:].any()


def test_the_rules_classes_name_the_standard_examples():
    numbers = ["11010519491231002X", "34052419800101001X", "340524800101001", "4.40106E+17"]
    assert resident_id.classify(numbers).tolist() == [
        resident_id.VALID,
        resident_id.VALID,
        resident_id.BAD_FORMAT,
        resident_id.DAMAGED,
    ]
    with pytest.raises(InvalidLength, match="15位旧身份证号"):
        resident_id.validate("340524800101001")


# --- foreign permanent residence numbers, 学籍号, dates --------------------------------------


@st.composite
def foreign_like(draw) -> str:
    body = "9" + draw(st.sampled_from(["11", "44", "81", "99"])) + "840"
    body += draw(bodies())[6:14] + f"{draw(st.integers(0, 999)):03d}"
    number = body + iso7064.check_digit(body)
    if draw(st.booleans()):
        at = draw(st.integers(0, 17))
        number = number[:at] + draw(st.sampled_from("0123456789X")) + number[at + 1 :]
    return number


@settings(max_examples=50, deadline=None)
@given(st.lists(foreign_like() | id_like(), min_size=1, max_size=20), st.dates())
def test_foreign_pr_column_agrees_with_the_scalar_form(numbers, as_of):
    expected = [foreign_pr.is_valid(n, as_of) for n in numbers]
    assert foreign_pr.is_valid_column(numbers, as_of).tolist() == expected
    assert foreign_pr.is_valid_column(numbers).tolist() == [foreign_pr.is_valid(n) for n in numbers]


@st.composite
def student_numbers(draw) -> str:
    letter = draw(st.sampled_from("GJLX"))
    tail = draw(id_like())
    if letter == "L" and len(tail) == 18:
        tail = tail[:14] + f"{draw(st.integers(0, 9999)):04d}"
    return letter + tail


@settings(max_examples=50, deadline=None)
@given(st.lists(student_numbers(), min_size=1, max_size=20))
def test_student_no_column_forms_agree_with_the_scalar_forms(numbers):
    def born(number: str) -> int:
        try:
            return dates.yyyymmdd(student_no.birth_date(number))
        except ValueError:
            return 0

    def kind(number: str) -> str:
        try:
            return student_no.kind(number)
        except ValueError:
            return ""

    assert student_no.kind_column(numbers).tolist() == [kind(n) for n in numbers]
    shape = student_no.shape_column(numbers)
    of_kind = student_no.of_kind(shape)
    column = student_no.birth_number_column(shape)
    assert np.where(of_kind, column, 0).tolist() == [born(n) for n in numbers]
    for number in numbers:
        if student_no.is_valid(number) and number[0] == student_no.FORMAL:
            assert resident_id.is_valid(student_no.id_number(number))


ymd_texts = st.builds(
    "{:04d}-{:02d}-{:02d}".format,
    st.integers(0, 9999),
    st.integers(0, 13) | st.integers(0, 99),
    st.integers(0, 32) | st.integers(0, 99),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(ymd_texts, max_size=20))
def test_iso_dates_are_the_calendar_dates(texts):
    def number(text: str) -> int:
        try:
            d = date.fromisoformat(text)
        except ValueError:
            return 0
        return dates.yyyymmdd(d) if d.year >= dates.EARLIEST_YEAR else 0

    assert dates.iso_date_numbers(texts).tolist() == [number(t) for t in texts]
    assert dates.iso_month_numbers([t[:7] for t in texts]).tolist() == [
        number(t[:7] + "-01") // 100 for t in texts
    ]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 99_999_999) | st.integers(18_991_225, 22_000_105), max_size=30))
def test_real_date_numbers_are_the_calendar_dates(numbers):
    def real(n: int) -> bool:
        try:
            return date(n // 10000, n // 100 % 100, n % 100).year >= dates.EARLIEST_YEAR
        except ValueError:
            return False

    assert dates.real_numbers(np.array(numbers, dtype=np.int64)).tolist() == [
        real(n) for n in numbers
    ]
