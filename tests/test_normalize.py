"""Normalisation of roster values (full-width, blanks, x, dates, names, code words, grades,
counties), and the validity of what normalisation keeps as typed (出生日期无效)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xueji_quality import ingest, normalize
from xueji_quality.rules import checks
from xueji_quality.text_sets import is_in
from xueji_quality.validate import validate_roster


def text(values: list[object]) -> pd.Series:
    return pd.Series(values, dtype=normalize.STRING)


def run(field: str, values: list[object]) -> tuple[list[object], dict[str, list[bool]]]:
    out, changed = normalize.normalize_column(text(values), normalize.field_steps(field))
    assert out.dtype == "string"
    return out.tolist(), {kind: mask.tolist() for kind, mask in changed.items()}


def test_halfwidth_folds_fullwidth_ascii_only():
    # U+FA11 is a CJK compatibility ideograph that NFKC would rewrite; it must stay.
    out = normalize.to_halfwidth(text(["４４０１Ｘ", "张\u3000三", "\ufa11", None]))
    assert out.tolist() == ["4401X", "张 三", "\ufa11", pd.NA]


def test_identifier_normalisation_and_kinds():
    values, changed = run(
        "id_number",
        ["４４０１０６２０１５０３０１１００ｘ", " 4401 06\u200b ", "'440106", "4.40103E+17", None],
    )
    assert values == ["44010620150301100X", "440106", "440106", "4.40103E+17", pd.NA]
    assert changed["fullwidth"] == [True, False, False, False, False]
    assert changed["blank"] == [False, True, False, False, False]
    assert changed["text_marker"] == [False, False, True, False, False]
    assert changed["lowercase_x"] == [True, False, False, False, False]


def test_student_number_letters_upper_cased():
    values, changed = run("student_no", ["g44010620150301100x", "G440106201503011002"])
    assert values == ["G44010620150301100X", "G440106201503011002"]
    assert changed["uppercase"] == [True, False]


@pytest.mark.parametrize(
    ("given", "expected", "kinds"),
    [
        ("张 伟", "张伟", {"blank"}),
        ("张\u3000伟", "张伟", {"fullwidth", "blank"}),
        ("张\u00a0伟", "张伟", {"blank"}),
        ("  张三 ", "张三", {"blank"}),
        ("张 三 丰", "张三丰", {"blank"}),
        ("欧阳 娜娜", "欧阳娜娜", {"blank"}),  # four characters: a Han name
        ("阿依古丽•买买提", "阿依古丽·买买提", {"middle_dot"}),
        ("阿依古丽・买买提", "阿依古丽·买买提", {"middle_dot"}),
        ("阿依古丽.买买提", "阿依古丽·买买提", {"middle_dot"}),
        ("阿依古丽。买买提", "阿依古丽·买买提", {"middle_dot"}),
        ("阿依古丽‧买买提", "阿依古丽·买买提", {"middle_dot"}),
        ("阿依古丽･买买提", "阿依古丽·买买提", {"middle_dot"}),
        ("阿依古丽﹒买买提", "阿依古丽·买买提", {"middle_dot"}),
        ("阿依古丽．买买提", "阿依古丽·买买提", {"fullwidth", "middle_dot"}),
        ("阿依古丽 · 买买提", "阿依古丽·买买提", {"blank"}),
        ("阿依古丽 买买提", "阿依古丽·买买提", {"blank_as_dot"}),
        ("买买提 艾力", "买买提·艾力", {"blank_as_dot"}),
        ("阿依古丽 买买提·艾力", "阿依古丽·买买提·艾力", {"blank_as_dot"}),
        ("阿.依.古", "阿·依·古", {"middle_dot"}),  # one-character parts between two dots
        ("阿依古丽·买买提", "阿依古丽·买买提", set()),
        ("Ｌｉ\u200b四", "Li四", {"fullwidth", "invisible"}),
        # Left for NAME_CHARS: blanks and dots beside anything but Han characters.
        ("张3", "张3", set()),
        ("张 3", "张 3", set()),
        ("Li Ming", "Li Ming", set()),
        ("张伟.", "张伟.", set()),
        ("3.5", "3.5", set()),
    ],
)
def test_name_blanks_and_middle_dots(given, expected, kinds):
    values, changed = run("name", [given])
    assert values == [expected]
    assert {kind for kind, mask in changed.items() if mask[0]} == kinds


def test_names_by_candidate_rows_like_by_distinct_values():
    names = [
        "张 伟",
        "王芳",
        "阿依古丽•买买提",
        "阿依古丽 买买提",
        "张3",
        " 李四",
        None,
        "李 四 五",
    ]
    steps = normalize.field_steps("name")
    by_value, kinds_by_value = normalize.normalize_column(text(names), steps)
    by_row, kinds_by_row = normalize.normalize_column(
        text(names), steps, distinct=False, candidates=normalize.MOSTLY_DISTINCT["name"]
    )
    assert by_row.tolist() == by_value.tolist()
    assert by_row.tolist()[:4] == ["张伟", "王芳", "阿依古丽·买买提", "阿依古丽·买买提"]
    assert {k: m.tolist() for k, m in kinds_by_row.items()} == {
        k: m.tolist() for k, m in kinds_by_value.items()
    }


def test_other_names_keep_inner_blanks():
    # A guardian field may hold two people; a school name may hold a blank.
    assert run("guardian_name", [" 张三 李四 "])[0] == ["张三 李四"]
    assert run("school_name", ["第一 小学"])[0] == ["第一 小学"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2015-03-01", "2015-03-01"),
        ("2015/3/1", "2015-03-01"),
        ("2015.3.1", "2015-03-01"),
        ("20150301", "2015-03-01"),
        ("42064", "2015-03-01"),
        ("42064.0", "2015-03-01"),
        ("2015年3月1日", "2015-03-01"),
        ("2015-03-01 00:00:00", "2015-03-01"),
        ("１９９９／１２／３１", "1999-12-31"),
        ("2015-02-30", "2015-02-30"),  # no such day: kept for validation
        ("2015.03.01.", "2015-03-01"),
        ("2015年03月01号", "2015-03-01"),
        ("2015 年 3 月 1 日", "2015-03-01"),
        ("2015—03—01", "2015-03-01"),
        ("2015/3/1 0:00", "2015-03-01"),
        ("2015/3/1 12:30", "2015-03-01"),  # not day 11 at 2:30
        ("2015-3-1T00:00:00Z", "2015-03-01"),
        ("２０１５年３月１日", "2015-03-01"),
        ("13/3/2015", "2015-03-13"),  # day first: 13 is no month
        ("3/13/2015", "2015-03-13"),  # month first (Excel's US locale)
        ("3/3/2015", "2015-03-03"),
        ("04/03/2015", "04/03/2015"),  # 4 March or 3 April: kept as typed
        ("4/3/2015 0:00:00", "4/3/2015 0:00:00"),
        ("15-3-1", "15-3-1"),  # two-digit year: the century is a guess
        ("150301", "150301"),
        ("2015-3", "2015-3"),  # no day
        ("0000-00-00", "0000-00-00"),
        ("00000000", "00000000"),
        ("0000/00/00", "0000/00/00"),
        ("1900-01-01", "1900-01-01"),
        ("1900/1/1", "1900-01-01"),
        ("19000101", "1900-01-01"),
        ("0001-01-01", "0001-01-01"),
        ("99999", "99999"),  # beyond the serial range
        ("0", "0"),
        ("1", "1"),  # Excel's 1900-01-01 as a bare number: a placeholder, kept as typed
        ("2015.03", "2015.03"),  # not serial 2015
        ("不详", "不详"),
        ("", ""),
    ],
)
def test_birth_dates(given, expected):
    values, changed = run("birth_date", [given])
    assert values == [expected]
    typed = normalize.remove_date_blanks(normalize.to_halfwidth(text([given])))[0]
    assert changed.get("date_format", [False]) == [typed != expected]


def test_excel_serials_from_1950():
    values, _ = run("birth_date", ["18263", "18264", "43831", "60000", "60001"])
    assert values == ["18263", "1950-01-01", "2020-01-01", "2064-04-08", "60001"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2021-09", "2021-09"),
        ("2021/9", "2021-09"),
        ("202109", "2021-09"),
        ("2021-09-01", "2021-09"),
        ("44440", "2021-09"),
        ("2021-13", "2021-13"),
        ("2021年9月", "2021-09"),
        ("2021.09", "2021-09"),
        ("0000-00", "0000-00"),
        ("000000", "000000"),
    ],
)
def test_enroll_months(given, expected):
    values, _ = run("enroll_date", [given])
    assert values == [expected]


def test_code_words():
    assert run("sex", ["男", "女", "1", " 2", "未知"])[0] == ["1", "2", "1", "2", "未知"]
    assert run("ethnicity", ["汉族", "汉", "1", "01", "蒙古", "外国血统中国籍人士", "火星族"])[
        0
    ] == [
        "01",
        "01",
        "01",
        "01",
        "02",
        "98",
        "火星族",
    ]
    assert run("ethnicity", ["基诺族", "56", "其他"])[0] == ["56", "56", "97"]
    values = run(
        "id_type", ["居民身份证", "户口簿", "香港特区护照/身份证明", "护照", "a", "其他", "X"]
    )[0]
    assert values == ["1", "2", "6", "A", "A", "Z", "X"]


def test_grade_levels():
    levels = normalize.grade_levels(
        text(["一年级", "六年级", "初一", "初三", " 高三", "１２年级", "学前班", None])
    )
    assert levels.dtype == "Int8"
    assert levels.tolist() == [1, 6, 7, 9, 12, 12, pd.NA, pd.NA]


def test_county_codes():
    codes, reasons = normalize.county_codes(
        text(["440106", "天河区", "广州市天河区", "某某区", "", "110105", None]), "44"
    )
    assert codes.tolist() == ["440106", "440106", "440106", pd.NA, pd.NA, "110105", pd.NA]
    assert reasons[[0, 1, 2, 5]].isna().all()
    assert "'某某区' 不是本省区县名称" in reasons[3]
    assert "为空" in reasons[4] and "为空" in reasons[6]


def test_normalize_roster_records_changes():
    frame = pd.DataFrame(
        {"name": text(["张三 ", "李四"]), "sex": text(["男", "2"]), "extra": text(["ａ", "b"])}
    ).set_axis([10, 11])
    out, changes = normalize.normalize_roster(frame)
    assert out["name"].tolist() == ["张三", "李四"]
    assert out["sex"].tolist() == ["1", "2"]
    assert out["extra"].tolist() == ["ａ", "b"]  # unknown columns are left as read
    assert changes.to_dict("records") == [
        {"row": 10, "field": "name", "kind": "blank", "original": "张三 "},
        {"row": 10, "field": "sex", "kind": "code_word", "original": "男"},
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0123456789xX ＸＸ０１\u3000\u200b'ab", max_size=20), max_size=10))
def test_identifier_normalisation_is_idempotent(values):
    steps = normalize.field_steps("id_number")
    once, _ = normalize.normalize_column(text(values), steps)
    twice, changed = normalize.normalize_column(once, steps)
    assert twice.tolist() == once.tolist()
    assert not any(mask.any() for mask in changed.values())
    assert not once.str.contains("[\\s\u200b\uff10-\uff5a]", regex=True).any()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(alphabet="0123456789xX ＸＡ０\u3000\u200b'ag.E+-", max_size=20), max_size=12),
    st.sampled_from(sorted(normalize.MOSTLY_DISTINCT)),
)
def test_candidate_rows_give_the_same_result_as_distinct_values(values, field):
    steps = normalize.field_steps(field)
    by_value, changed_by_value = normalize.normalize_column(text(values), steps)
    by_row, changed_by_row = normalize.normalize_column(
        text(values), steps, distinct=False, candidates=normalize.MOSTLY_DISTINCT[field]
    )
    assert by_row.tolist() == by_value.tolist()
    assert {k: m.tolist() for k, m in changed_by_row.items()} == {
        k: m.tolist() for k, m in changed_by_value.items()
    }


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.text(alphabet="张伟阿依古丽 .•・。·．3a\u3000\u00a0\u200b", max_size=12), max_size=10
    )
)
def test_name_normalisation_is_idempotent_and_the_same_by_candidate_rows(values):
    steps = normalize.field_steps("name")
    once, _ = normalize.normalize_column(text(values), steps)
    by_row, _ = normalize.normalize_column(
        text(values), steps, distinct=False, candidates=normalize.MOSTLY_DISTINCT["name"]
    )
    assert by_row.tolist() == once.tolist()
    twice, changed = normalize.normalize_column(once, steps)
    assert twice.tolist() == once.tolist()
    assert not any(mask.any() for mask in changed.values())


def test_birth_date_validity_rule():
    values = text(
        ["2015-03-01", "0000-00-00", "00000000", "1900-01-01", "1949-12-31", "1950-01-01"]
        + ["2015-02-30", "2016-02-29", "2026-11-29", "04/03/2015", "不详", None, " "]
    )
    valid = checks.birth_date_valid(values, "2026-11-28")
    assert valid.tolist() == [True, False, False, False, False, True] + [
        False,
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    assert not checks.birth_date_valid(text(["1955-01-01"]), "2026-11-28", "1960-01-01")[0]


def test_placeholder_dates_and_typed_names_through_ingest_and_validation(tmp_path):
    header = "记录号,姓名,性别,出生日期,身份证件号,所在区县,学校名称,年级"
    rows = [
        ("R1", "张 伟", "2015-03-01"),
        ("R2", "张\u3000伟", "0000-00-00"),
        ("R3", "阿依古丽•买买提", "00000000"),
        ("R4", "阿依古丽・买买提", "1900-01-01"),
        ("R5", "阿依古丽.买买提", "2015/3/1 0:00"),
        ("R6", "张3", "0"),
    ]
    lines = [header] + [
        f"{key},{name},男,{born},,440106,第一小学,三年级" for key, name, born in rows
    ]
    path = tmp_path / "roster.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    staged = ingest.read_exports([path], "44")
    roster = staged.roster
    assert roster["name"].tolist() == ["张伟", "张伟"] + ["阿依古丽·买买提"] * 3 + ["张3"]
    # Placeholders reach validation as typed, not as missing values.
    assert roster["birth_date"].tolist()[1:4] == ["0000-00-00", "00000000", "1900-01-01"]
    changes = staged.normalizations
    name_changes = changes[changes["field"] == "name"]
    assert set(zip(name_changes["record_id"], name_changes["kind"], strict=True)) >= {
        ("R1", "blank"),
        ("R2", "blank"),
        ("R3", "middle_dot"),
        ("R4", "middle_dot"),
        ("R5", "middle_dot"),
    }
    assert name_changes.loc[name_changes["record_id"] == "R1", "original"].tolist() == ["张 伟"]

    problems = validate_roster(roster, "44", as_of=date(2026, 11, 28))
    invalid = problems[problems["rule"] == "BIRTHDATE_INVALID"]
    assert dict(zip(invalid["record_id"], invalid["value"], strict=True)) == {
        "R2": "0000-00-00",
        "R3": "00000000",
        "R4": "1900-01-01",
        "R6": "0",
    }
    assert set(invalid["message"].str.slice(0, 6)) == {"出生日期无效"}
    missing = problems[
        (problems["rule"] == "REQUIRED_MISSING") & (problems["field"] == "birth_date")
    ]
    assert missing.empty
    assert problems.loc[problems["rule"] == "NAME_CHARS", "record_id"].tolist() == ["R6"]


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "large_string[pyarrow]", object])
def test_is_in_answers_as_pandas_isin_does_for_text(dtype):
    rng = np.random.default_rng(5)
    pool = np.array([f"{n:06d}" for n in range(50)], dtype=object)
    values = pd.Series(pool[rng.integers(0, 50, 500)], dtype=object)
    values[rng.random(500) < 0.1] = None
    column = values.astype(dtype)
    wanted = pd.Series(pool[rng.integers(0, 50, 20)], dtype="string[pyarrow]")
    found = is_in(column, wanted)
    expected = values.isin(set(wanted)) & values.notna()
    assert found.dtype == bool and found.index.equals(column.index)
    assert found.tolist() == expected.tolist()
    assert found.any() and not found.all()
    assert is_in(column, []).sum() == 0
    assert is_in(column, frozenset(wanted)).tolist() == expected.tolist()
