"""The vectorised rule functions, value by value (no GX here: see test_validate.py)."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric

from xueji_quality.rules import checks
from xueji_quality.standards import resident_id
from xueji_quality.validate import DEFAULT_SUITES_DIR

AS_OF = date(2026, 11, 28)
GB_EXAMPLES = ["11010519491231002X", "34052419800101001X"]


def s(*values) -> pd.Series:
    return pd.Series(list(values), dtype="string")


def make_id(address: str, yyyymmdd: str, sequence: int) -> str:
    body = f"{address}{yyyymmdd}{sequence:03d}"
    return body + resident_id.check_digit(body)


def spreadsheet_damaged(ids: pd.Series, student_no: pd.Series | None = None) -> list[bool]:
    return resident_id.is_spreadsheet_damaged_column(ids, student_no).tolist()


def failing(mask: pd.Series) -> list[int]:
    return [i for i, ok in enumerate(mask.tolist()) if not ok]


def suite_pattern(rule: str) -> str:
    for path in DEFAULT_SUITES_DIR.glob("*.json"):
        for expectation in json.loads(path.read_text(encoding="utf-8"))["expectations"]:
            if expectation["meta"]["rule"] == rule:
                return expectation["kwargs"]["pattern"]
    raise KeyError(rule)


# --- resident ID numbers ---------------------------------------------------------------------


def test_standard_examples_are_valid():
    types = s("1", "1")
    ids = s(*GB_EXAMPLES)
    assert (checks.id_status(types, ids) == checks.ID_VALID).all()
    assert checks.id_checksum_ok(types, ids).all()
    assert checks.id_format_ok(types, ids).all()


def test_checksum_catches_a_wrong_check_character():
    ids = s("11010519491231002X", "110105194912310021", "340524198001010010")
    assert failing(checks.id_checksum_ok(s("1", "1", "1"), ids)) == [1, 2]


def test_format_rejects_legacy_placeholder_and_short_numbers():
    ids = s("110105491231002", "11010519491231***X", "1101051949123100", "11010519491231002X")
    ok = checks.id_format_ok(s("1", "1", "1", "1"), ids)
    assert failing(ok) == [0, 1, 2]
    # a number that fails its shape is not also a checksum problem
    assert checks.id_checksum_ok(s("1", "1", "1", "1"), ids).all()


def test_format_is_checked_for_resident_ids_only():
    ids = s("H1234567", "H1234567")
    assert failing(checks.id_format_ok(s("6", "1"), ids)) == [1]


def test_missing_number_only_for_resident_id_type():
    ok = checks.id_present(s("1", "6", "1", None), s(None, None, "11010519491231002X", None))
    assert failing(ok) == [0]


def test_spreadsheet_damage_replaces_format_and_checksum():
    good = "440106201501011236"
    good = good[:17] + resident_id.check_digit(good)
    zeroed = good[:15] + "000"
    assert not resident_id.is_valid(zeroed)
    ids = s("4.40106E+17", "4.40106201501011e17", zeroed, good)
    assert spreadsheet_damaged(ids) == [True, True, True, False]
    types = s("1", "1", "1", "1")
    assert checks.id_format_ok(types, ids).all()
    assert checks.id_checksum_ok(types, ids).all()


def test_a_valid_number_ending_in_000_is_damaged_only_when_the_student_no_says_so():
    base = next(
        n
        for seq in range(0, 1000, 100)
        for n in [make_id("440106", "20150101", seq)]
        if n.endswith("000")
    )
    assert spreadsheet_damaged(s(base)) == [False]
    assert spreadsheet_damaged(s(base), s("G" + base)) == [False]
    assert spreadsheet_damaged(s(base), s("G" + base[:15] + "123")) == [True]
    # the rule reads the same definition
    assert checks.id_not_damaged(s(base), s("G" + base[:15] + "123")).tolist() == [False]


def test_id_date_impossible_or_future():
    impossible = make_id("440106", "20150230", 123)
    future = make_id("440106", "20270101", 123)
    fine = make_id("440106", "20150228", 123)
    ok = checks.id_date_ok(s("1", "1", "1"), s(impossible, future, fine), AS_OF)
    assert failing(ok) == [0, 1]


def test_birth_date_and_sex_must_agree_with_a_valid_number():
    male = make_id("440106", "20150301", 123)  # 17th digit 3: odd, male
    ids = s(male, male, male, male[:17] + "0")
    births = s("2015-03-01", "2015-03-02", None, "2015-03-02")
    assert failing(checks.birth_date_matches_id(s("1", "1", "1", "1"), ids, births)) == [1]
    sexes = s("1", "2", "3", "2")
    assert failing(checks.sex_matches_id(s("1", "1", "1", "1"), ids, sexes)) == [1]


def test_region_unknown_era_and_permits():
    unknown = make_id("449999", "20150301", 123)  # a real province, a county never issued
    dissolved = make_id("511422", "20160301", 123)  # 彭山县, 2000-2014
    in_force = make_id("511422", "20100301", 123)
    hong_kong = make_id("810000", "20150301", 123)
    ids = s(unknown, dissolved, in_force, hong_kong)
    types = s("1", "1", "1", "1")
    assert failing(checks.id_region_known(types, ids)) == [0]
    assert failing(checks.id_region_in_force(types, ids)) == [1]
    assert checks.id_province_known(types, ids).all()


def id_rules(types: pd.Series, ids: pd.Series) -> dict[str, list[int]]:
    """Failing rows of every rule about the ID number (empty lists left out)."""
    found = {
        "ID_FORMAT": checks.id_format_ok(types, ids),
        "ID_CHECKSUM": checks.id_checksum_ok(types, ids),
        "ID_PROVINCE_UNKNOWN": checks.id_province_known(types, ids),
        "ID_REGION_UNKNOWN": checks.id_region_known(types, ids),
        "ID_REGION_ERA": checks.id_region_in_force(types, ids),
        "ID_DATE": checks.id_date_ok(types, ids, AS_OF),
        "FOREIGN_PR_FORMAT": checks.foreign_pr_ok(types, ids, AS_OF),
    }
    return {rule: failing(ok) for rule, ok in found.items() if failing(ok)}


@pytest.mark.parametrize("province", ["99", "00", "20", "80", "83", "90"])
def test_an_address_code_of_no_province_is_its_own_error(province):
    number = make_id(f"{province}0106", "20150301", 123)
    assert resident_id.check_digit(number) == number[17]
    guangzhou = make_id("440106", "20150301", 123)
    ids = s(number, number, guangzhou)
    assert id_rules(s("1", None, "1"), ids) == {"ID_PROVINCE_UNKNOWN": [0, 1]}
    assert checks.id_status(s("1"), s(number))[0] == checks.ID_BAD_PROVINCE


def test_province_rule_splits_numbers_beginning_with_nine():
    nine = make_id("990106", "20150301", 123)
    zero = make_id("000106", "20150301", 123)
    types, ids = s("1", "1"), s(nine, zero)
    assert failing(checks.id_province_known(types, ids, foreign_form=True)) == [0]
    assert failing(checks.id_province_known(types, ids, foreign_form=False)) == [1]
    assert failing(checks.id_province_known(types, ids)) == [0, 1]


def test_every_province_level_code_is_a_province():
    expected = "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54"
    expected += " 61 62 63 64 65 71 81 82"
    ids = s(*(make_id(f"{p}0000", "20150301", 123) for p in expected.split()))
    types = s(*["1"] * len(ids))
    assert checks.id_province_known(types, ids).all()


@pytest.mark.parametrize("id_type", ["1", "6", "7", "8", None])
def test_residence_permits_of_hong_kong_macao_taiwan_pass(id_type):
    ids = s(*(make_id(code, "20150301", 123) for code in ("810000", "820000", "830000")))
    types = s(*[id_type] * 3)
    assert id_rules(types, ids) == {}
    assert (checks.id_status(types, ids) == checks.ID_VALID).all()
    assert checks.sex_matches_id(types, ids, s("1", "1", "1")).all()


def test_residence_permits_typed_6_7_8_are_checked_as_gb_11643_numbers():
    permit = make_id("810000", "20150301", 123)
    broken = permit[:17] + ("0" if permit[17] != "0" else "1")
    ids = s(broken, broken, "H12345678", "12345678", "E12345678")
    types = s("6", "8", "6", "8", "A")
    assert id_rules(types, ids) == {"ID_CHECKSUM": [0, 1]}


def foreign_pr(issuing: str, nationality: str, yyyymmdd: str, sequence: int) -> str:
    return make_id("9" + issuing + nationality, yyyymmdd, sequence)


def test_foreign_permanent_residence_numbers_are_judged_by_their_own_structure():
    good = foreign_pr("11", "840", "20150301", 123)  # 北京 issued, nationality 840
    bad_check = good[:17] + ("0" if good[17] != "0" else "1")
    bad_date = foreign_pr("44", "840", "20150230", 123)
    future = foreign_pr("44", "840", "20270101", 123)
    no_province = foreign_pr("99", "840", "20150301", 123)
    short = good[:17]
    old_form = "USA440815010012"
    ids = s(good, bad_check, bad_date, future, no_province, short, old_form, "4.40106E+17")
    types = s(*["9"] * len(ids))
    assert id_rules(types, ids) == {"FOREIGN_PR_FORMAT": [1, 2, 3, 4, 5]}
    assert not any(spreadsheet_damaged(ids)[:7])


def test_a_foreign_permanent_residence_number_typed_as_resident_id():
    number = foreign_pr("44", "840", "20150301", 123)
    assert id_rules(s("1"), s(number)) == {"ID_PROVINCE_UNKNOWN": [0]}
    assert failing(checks.id_province_known(s("1"), s(number), foreign_form=True)) == [0]
    assert checks.id_province_known(s("1"), s(number), foreign_form=False).all()


def test_an_untyped_number_is_judged_as_a_resident_id_when_it_looks_like_one():
    good = make_id("440106", "20150301", 123)
    broken = good[:17] + ("0" if good[17] != "0" else "1")
    ids = s(good, broken, good[:15], "H12345678", "12345678", None)
    types = s(*[None] * len(ids))
    assert id_rules(types, ids) == {"ID_CHECKSUM": [1], "ID_FORMAT": [2]}
    assert checks.id_present(types, ids).all()
    statuses = checks.id_status(types, ids).tolist()
    assert statuses[0] == checks.ID_VALID and statuses[3:] == [checks.ID_NOT_CHECKED] * 3


def test_a_valid_guangdong_number_fires_no_id_rule():
    ids = s(*(make_id(code, "20150301", 123) for code in ("440106", "441900", "442000")))
    assert id_rules(s("1", "1", "1"), ids) == {}


# --- student numbers, codes, names, dates ------------------------------------------------------


def test_student_no_g_layout():
    person = make_id("440106", "20150301", 123)
    other = make_id("440106", "20150301", 125)
    ok = checks.student_no_matches(
        s("G" + person, "G" + other, "G" + other, "L4401062015030112", "G" + other),
        s("1", "1", "6", "1", "1"),
        s(person, person, None, person, person[:17] + "0"),
        s("2015-03-01", "2015-03-01", "2015-03-02", "2015-03-01", "2015-03-09"),
    )
    # row 2: no resident ID to compare with, so the date inside counts; row 4: ID invalid, same
    assert failing(ok) == [1, 2, 4]


def test_student_no_l_layout_compares_dates_only():
    ok = checks.student_no_matches(
        s("L440106201503011234", "L440106201503021234", "G440106201503021234"),
        s("1", "1", "1"),
        s(None, None, None),
        s("2015-03-01", "2015-03-01", "2015-03-01"),
        letters=["L"],
        compare_id=False,
    )
    assert failing(ok) == [1]


@pytest.mark.parametrize(
    ("rule", "passing", "failing_values"),
    [
        (
            "STUDENT_NO_FORMAT",
            ["G11010519491231002X", "L440106201503011234"],
            ["G123", "K11010519491231002X", "11010519491231002X"],
        ),
        ("SCHOOL_CODE_FORMAT", ["2144000123"], ["214400012", "21440001234", "21440O0123"]),
        (
            "PHONE_FORMAT",
            ["13812345678", "020-12345678", "0755-1234567", "075512345678"],
            ["12345", "12812345678", "1381234567", "phone"],
        ),
        (
            "NAME_CHARS",
            ["张三", "欧阳娜娜", "艾力·买买提", "𠮷野"],
            [
                "张三2",
                "张A",
                "张?",
                "张 三",
                "张\u3000三",
                "艾力.买买提",
                "艾力•买买提",
                "·张",
                "John",
            ],
        ),
    ],
)
def test_patterns_from_the_suites(rule, passing, failing_values):
    pattern = suite_pattern(rule)
    assert checks.fullmatch(s(*passing), pattern).all()
    assert not checks.fullmatch(s(*failing_values), pattern).any()


def test_school_province_and_county():
    assert failing(checks.school_in_province(s("2144000123", "2143000123", "123"), "44")) == [1]
    ok = checks.county_of_province(s("440106", "430102", "449999", None), "44")
    assert failing(ok) == [1, 2]


def test_cities_without_districts_are_counties_of_their_province():
    # 东莞, 中山: prefecture-level cities whose xx00 code is the county; 440100 广州 is not one.
    ok = checks.county_of_province(s("441900", "442000", "440100", "440000", "440101"), "44")
    assert failing(ok) == [2, 3, 4]
    assert failing(checks.county_of_province(s("460400", "460300", "460302"), "46")) == [1]
    assert checks.county_of_province(s("620200"), "62").all()


def test_age_grade_window_edges():
    # School year 2026: grade 1 nominal window 2019-09-01 .. 2020-08-31, one year older allowed.
    births = s("2019-09-01", "2020-08-31", "2020-09-01", "2018-09-01", "2018-08-31", "bad", None)
    levels = pd.array([1, 1, 1, 1, 1, 1, 1], dtype="Int8")
    ok = checks.birth_date_fits_grade(births, pd.Series(levels), AS_OF)
    assert failing(ok) == [2, 4]
    assert checks.school_year(date(2026, 8, 31)) == 2025
    assert checks.school_year(date(2026, 9, 1)) == 2026


def test_enroll_date():
    enroll = s("2022-09", "2027-09", "2022-13", "2014-09", "202209", None, "2026-11")
    births = s("2015-03-01", "2015-03-01", "2015-03-01", "2015-03-01", "2015-03-01", None, None)
    assert failing(checks.enroll_date_ok(enroll, births, AS_OF)) == [1, 2, 3, 4]


def test_dates_are_read_strictly():
    got = checks.date_numbers(s("2015-03-01", "2015-02-29", "2016-02-29", "2015-3-1", "x", None))
    assert got.tolist() == [20150301, 0, 20160229, 0, 0, 0]


# --- properties --------------------------------------------------------------------------------

ADDRESSES = ["440106", "440305", "110105", "340524", "510107", "650102"]


@st.composite
def id_numbers(draw) -> str:
    """Valid numbers, and copies with one digit changed or two neighbours swapped."""
    day = draw(st.dates(date(1950, 1, 1), date(2024, 12, 31)))
    body = (
        draw(st.sampled_from(ADDRESSES))
        + day.strftime("%Y%m%d")
        + f"{draw(st.integers(0, 999)):03d}"
    )
    number = body + ric.calc_check_digit(body + "0")
    how = draw(st.sampled_from(["valid", "digit", "swap"]))
    position = draw(st.integers(0, 16))
    if how == "digit":
        number = number[:position] + draw(st.sampled_from("0123456789")) + number[position + 1 :]
    elif how == "swap":
        number = (
            number[:position] + number[position + 1] + number[position] + number[position + 2 :]
        )
    return number


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(id_numbers(), min_size=1, max_size=20))
def test_id_checks_agree_with_stdnum(numbers):
    ids = pd.Series(numbers, dtype="string")
    types = pd.Series(["1"] * len(numbers), dtype="string")
    status = checks.id_status(types, ids)
    ours = (
        (status == checks.ID_VALID)
        & checks.id_date_ok(types, ids, date(2100, 1, 1)).to_numpy()
        & checks.id_region_known(types, ids).to_numpy()
        & checks.id_region_in_force(types, ids).to_numpy()
    )
    check_ok = checks.id_parts(ids).check_ok
    for number, mine, check in zip(numbers, ours, check_ok, strict=True):
        if number[:17].isdigit():
            assert check == (ric.calc_check_digit(number) == number[-1])
        try:
            theirs = ric.is_valid(number)
        except Exception:  # KeyError for a known province with an unknown county
            continue
        assert mine == theirs, number


FIELDS = ["id_type", "id_number", "student_no", "birth_date", "sex", "enroll_date", "grade_level"]
wild = st.one_of(
    st.none(),
    st.text(max_size=25),
    st.sampled_from(
        ["", " ", "\u3000", "E+17", "1e99", "\ud800", "１２３", "٣٣", "9", "6"]
        + ["911840201503011234", "810000201503011234", "99010620150301123X"]
    ),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.fixed_dictionaries({f: wild for f in FIELDS}), min_size=1, max_size=30))
def test_every_rule_function_is_total(rows):
    frame = pd.DataFrame(rows, dtype=object)
    col = {f: frame[f] for f in FIELDS}
    results = [
        checks.id_present(col["id_type"], col["id_number"]),
        checks.id_not_damaged(col["id_number"], col["student_no"]),
        checks.id_format_ok(col["id_type"], col["id_number"]),
        checks.id_checksum_ok(col["id_type"], col["id_number"]),
        checks.id_date_ok(col["id_type"], col["id_number"], AS_OF),
        checks.birth_date_matches_id(col["id_type"], col["id_number"], col["birth_date"]),
        checks.sex_matches_id(col["id_type"], col["id_number"], col["sex"]),
        checks.id_region_known(col["id_type"], col["id_number"]),
        checks.id_region_in_force(col["id_type"], col["id_number"]),
        checks.id_province_known(col["id_type"], col["id_number"]),
        checks.id_province_known(col["id_type"], col["id_number"], foreign_form=True),
        checks.foreign_pr_ok(col["id_type"], col["id_number"], AS_OF),
        checks.student_no_matches(
            col["student_no"], col["id_type"], col["id_number"], col["birth_date"]
        ),
        checks.student_no_matches(
            col["student_no"], col["id_type"], col["id_number"], col["birth_date"], ["L"], False
        ),
        checks.school_in_province(col["id_number"], "44"),
        checks.county_of_province(col["id_number"], "44"),
        checks.birth_date_fits_grade(col["birth_date"], col["grade_level"], AS_OF),
        checks.enroll_date_ok(col["enroll_date"], col["birth_date"], AS_OF),
        checks.fullmatch(col["student_no"], suite_pattern("NAME_CHARS")),
        checks.present(col["sex"]),
    ]
    for result in results:
        assert result.dtype == bool
        assert len(result) == len(frame)


def test_a_birth_date_that_is_no_date_is_reported_once():
    """0000-00-00 and 1900-01-01 are BIRTHDATE_INVALID; they do not also disagree with the ID
    (BIRTHDATE_MISMATCH) or with the grade (AGE_GRADE). A real date off by a day does."""
    number = make_id("440106", "20100304", 123)
    ids = pd.Series([number] * 4)
    types = pd.Series(["1"] * 4)
    born = pd.Series(["0000-00-00", "1900-01-01", "2010-03-05", "2010-03-04"])
    as_of = "2026-11-28"
    assert checks.birth_date_valid(born, as_of).tolist() == [False, False, True, True]
    assert checks.birth_date_matches_id(types, ids, born).tolist() == [True, True, False, True]
    grade = pd.Series([10, 10, 3, 10])
    assert checks.birth_date_fits_grade(born, grade, as_of).tolist() == [True, True, False, True]
