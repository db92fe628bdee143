"""Normalisation of roster values (full-width, blanks, x, dates, code words, grades, counties)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xueji_quality import normalize


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


def test_names_keep_inner_blanks():
    values, changed = run("name", ["  张 三 ", "Ｌｉ\u200b四", "欧阳\u3000娜娜", "王五"])
    assert values == ["张 三", "Li四", "欧阳 娜娜", "王五"]
    assert changed["blank"] == [True, False, False, False]
    assert changed["invisible"] == [False, True, False, False]
    assert changed["fullwidth"] == [False, True, True, False]


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
        ("99999", "99999"),  # beyond the serial range
        ("0", "0"),
        ("不详", "不详"),
        ("", ""),
    ],
)
def test_birth_dates(given, expected):
    values, changed = run("birth_date", [given])
    assert values == [expected]
    halfwidth = normalize.to_halfwidth(text([given])).str.strip()[0]
    assert changed.get("date_format", [False]) == [halfwidth != expected]


def test_excel_serial_origin():
    # Serial 1 is 1900-01-01 in Excel; 60 is Excel's phantom 1900-02-29, 61 is 1900-03-01.
    values, _ = run("birth_date", ["1", "61", "43831"])
    assert values == ["1899-12-31", "1900-03-01", "2020-01-01"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2021-09", "2021-09"),
        ("2021/9", "2021-09"),
        ("202109", "2021-09"),
        ("2021-09-01", "2021-09"),
        ("44440", "2021-09"),
        ("2021-13", "2021-13"),
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
