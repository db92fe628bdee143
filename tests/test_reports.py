"""County problem lists, province summary, manifest and atomic publishing."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xueji_quality import schema, workbook
from xueji_quality.reports import (
    county_file_stem,
    county_files,
    county_sheets,
    mask_id_numbers,
    new_run_id,
    problem_class,
    publish,
    read_manifest,
    sheet_layout,
    split_by_counties,
    split_by_county,
    staging_dir,
    verify_files,
    write_county_reports,
    write_manifest,
    write_province_outputs,
)
from xueji_quality.reports.publish import clean_stale_staging

RUN_DATE = date(2026, 11, 28)
LIWAN, YUEXIU, TIANHE = "440103", "440104", "440106"
FORMULA_LIKE = ('=HYPERLINK("http://x","y")', "+1", "@SUM(A1)", "-2+3")

# record_id, county, school_code, grade, level, class, name, id_number
RECORDS = [
    ("r01", LIWAN, "2144010301", "六年级", 6, "1班", "张三", "440103201201010011"),
    ("r02", LIWAN, "2144010302", "三年级", 3, "2班", "李四", "44010320150202002X"),
    ("r03", LIWAN, "2144010301", "九年级", 9, "3班", "王五", "440103200903030033"),
    ("r04", LIWAN, "2144010302", "一年级", 1, "1班", "赵六", "440103201904040044"),
    ("r05", YUEXIU, "2144010401", "高三", 12, "1班", "李肆", "44010320150202002X"),
    ("r06", YUEXIU, "2144010401", "二年级", 2, "1班", "钱七", "440104201806060066"),
    ("r07", TIANHE, "2144010601", "五年级", 5, "4班", "孙八", "440106201407070077"),
    ("r08", TIANHE, "2144010601", "高一", 10, "1班", "孙捌", "440106200807070077"),
    ("r09", TIANHE, "2144010602", "四年级", 4, "1班", "周九", "440106201509090099"),
]


def make_roster() -> pd.DataFrame:
    frame = pd.DataFrame(
        RECORDS,
        columns=[
            "record_id",
            "county_code",
            "school_code",
            "grade",
            "grade_level",
            "class_name",
            "name",
            "id_number",
        ],
    )
    frame["school_name"] = "学校" + frame["school_code"].str[-2:]
    frame["student_no"] = "G" + frame["id_number"]
    frame["source_file"] = "roster.csv"
    frame["source_row"] = range(2, 2 + len(frame))
    roster = frame.astype("string")
    roster["source_row"] = roster["source_row"].astype("int64")
    roster["grade_level"] = frame["grade_level"].astype("Int8")
    return roster


def make_problems() -> pd.DataFrame:
    rows = [
        ("r02", LIWAN, "ID_CHECKSUM", "E", "id_number", "44010320150202002X"),
        ("r04", LIWAN, "NAME_CHARS", "E", "name", FORMULA_LIKE[0]),
        ("r04", LIWAN, "ID_CHECKSUM", "E", "id_number", "440103201904040044"),
        ("r01", LIWAN, "AGE_GRADE", "W", "birth_date", FORMULA_LIKE[1]),
        ("r03", LIWAN, "PHONE_FORMAT", "W", "phone", FORMULA_LIKE[2]),
        ("r05", YUEXIU, "ID_CHECKSUM", "E", "id_number", "44010320150202002X"),
        ("r07", TIANHE, "REQUIRED_MISSING", "E", "guardian_name", None),
        ("r09", TIANHE, "PHONE_FORMAT", "W", "phone", "bad\x01value"),
    ]
    frame = pd.DataFrame(
        rows, columns=["record_id", "county_code", "rule", "severity", "field", "value"]
    )
    frame["message"] = "问题" + frame["rule"]
    frame["suggestion"] = FORMULA_LIKE[3]
    return frame[list(schema.PROBLEM_COLUMNS)].astype("string")


def make_duplicates(roster: pd.DataFrame) -> pd.DataFrame:
    members = [
        ("G000000000001", "r02", "DUP_ID", 1.0),
        ("G000000000001", "r05", "DUP_ID", 1.0),
        ("G000000000002", "r03", "DUP_FUZZY", 0.9),
        ("G000000000002", "r04", "DUP_FUZZY", 0.9),
        ("G000000000003", "r07", "DUP_FUZZY", 0.8),
        ("G000000000003", "r08", "DUP_FUZZY", 0.8),
    ]
    frame = pd.DataFrame(members, columns=["group_id", "record_id", "dup_class", "score"])
    lookup = roster.set_index("record_id")
    for column in ("county_code", "school_code", "school_name"):
        frame[column] = lookup.loc[frame["record_id"], column].to_numpy()
    frame["reason"] = "身份证件号相同"
    frame = frame[list(schema.DUPLICATE_COLUMNS)]
    return frame.astype({c: "string" for c in frame.columns if c != "score"})


def make_quarantine() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "source_file": ["roster.csv"],
            "source_row": [20],
            "field": [None],
            "reason": ["列数与表头不符"],
            "raw": ["a,b"],
        }
    )
    return frame.astype({c: "string" for c in frame.columns if c != "source_row"})


def catalogue() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("ID_CHECKSUM", "E", "id_number", "身份证件号校验码错误", "核对证件号"),
            ("NAME_CHARS", "E", "name", "姓名含非法字符", "去掉非法字符"),
            ("AGE_GRADE", "W", "birth_date", "年龄与年级不符", "核实"),
            ("PHONE_FORMAT", "W", "phone", "电话格式不对", "核对电话"),
            ("REQUIRED_MISSING", "E", None, "必填项为空", "补填"),
        ],
        columns=["rule", "severity", "field", "message", "suggestion"],
    ).astype("string")


def write_all(run_dir: Path, *, mask_ids: bool = False, counties=None, **options) -> list[dict]:
    roster = make_roster()
    return write_county_reports(
        run_dir,
        roster,
        make_problems(),
        make_duplicates(roster),
        province="44",
        run_date=RUN_DATE,
        rule_catalogue=catalogue(),
        mask_ids=mask_ids,
        counties=counties,
        **options,
    )


def workbook_of(run_dir: Path, code: str) -> openpyxl.Workbook:
    (path,) = (run_dir / "counties" / code).glob("*_问题学籍清单.xlsx")
    return openpyxl.load_workbook(path)


def sheet_rows(sheet) -> list[dict]:
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]


@pytest.fixture(scope="module")
def report_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    run_dir = tmp_path_factory.mktemp("run")
    return run_dir, write_all(run_dir)


def test_county_files_and_names(report_run):
    run_dir, counties = report_run
    assert [c["county_code"] for c in counties] == [LIWAN, YUEXIU, TIANHE]
    liwan = counties[0]
    assert liwan["county_name"] == "荔湾区"
    paths = [f["path"] for f in liwan["files"]]
    assert paths == [
        "counties/440103/440103_荔湾区_问题学籍清单.xlsx",
        "counties/440103/problems.parquet",
        "counties/440103/duplicates.parquet",
    ]
    assert liwan["problem_rows"] == 5
    assert liwan["duplicate_groups"] == 2
    assert liwan["duplicate_rows"] == 3
    assert liwan["counterpart_rows"] == 1
    assert liwan["records"] == 4
    assert liwan["records_with_problems"] == 4
    assert liwan["records_clean"] == 0
    assert counties[1]["records_clean"] == 1  # r06 has nothing


def test_workbook_sheets_headers_and_dropdown(report_run):
    run_dir, _ = report_run
    book = workbook_of(run_dir, LIWAN)
    assert book.sheetnames == ["说明", "汇总", "错误学籍", "重复学籍", "提醒", "清单标识"]
    assert book["清单标识"].sheet_state == "hidden"
    assert book["清单标识"]["B2"].value == LIWAN
    problems = book["错误学籍"]
    headers = [c.value for c in problems[1]]
    assert headers == list(workbook.headers(workbook.problem_columns()))
    assert problems.freeze_panes == "A2"
    assert problems.auto_filter.ref is not None
    duplicates = book["重复学籍"]
    assert [c.value for c in duplicates[1]] == list(workbook.headers(workbook.duplicate_columns()))
    for sheet, column, actions in (
        (problems, "P", "佐证,变更,删除"),
        (duplicates, "N", "保留,删除,变更,佐证"),
    ):
        assert [c.value for c in sheet[1]].index("处理方式") == ord(column) - ord("A")
        (validation,) = sheet.data_validations.dataValidation
        assert validation.type == "list"
        assert validation.formula1 == f'"{actions}"'
        assert str(validation.sqref).startswith(f"{column}2:{column}")
    # Warnings are not answered: no answer column, no drop-down.
    warnings = book["提醒"]
    assert [c.value for c in warnings[1]] == list(workbook.headers(workbook.WARNING_COLUMNS))
    assert "处理方式" not in [c.value for c in warnings[1]]
    assert not warnings.data_validations.dataValidation
    about = [c for row in book["说明"].iter_rows(values_only=True) for c in row if c]
    text = "\n".join(map(str, about))
    for word in (
        "佐证",
        "变更",
        "删除",
        "2026-11-28",
        "荔湾区",
        "ID_CHECKSUM",
        "DUP_ID",
        "DUP_FUZZY",
    ):
        assert word in text


def test_problem_rows_of_the_county_only_in_order(report_run):
    run_dir, _ = report_run
    book = workbook_of(run_dir, LIWAN)
    rows = sheet_rows(book["错误学籍"])
    # Errors on 错误学籍, by school, grade and class; warnings apart on 提醒, graduating grades
    # (六年级 r01, 九年级 r03) first.
    assert [(r["记录号"], r["问题代码"], r["问题名称"]) for r in rows] == [
        ("r04", "ID_CHECKSUM", "身份证号校验码错误"),
        ("r04", "NAME_CHARS", "姓名含非法字符"),
        ("r02", "ID_CHECKSUM", "身份证号校验码错误"),
    ]
    assert {r["严重程度"] for r in rows} == {"错误"}
    warnings = sheet_rows(book["提醒"])
    assert [(r["记录号"], r["问题代码"]) for r in warnings] == [
        ("r01", "AGE_GRADE"),
        ("r03", "PHONE_FORMAT"),
    ]
    first = warnings[0]
    assert first["学校标识码"] == "2144010301"
    assert first["年级"] == "六年级"
    assert first["严重程度"] == "警告"
    assert first["问题名称"] == "年龄与年级不符"
    assert first["字段"] == "出生日期"
    assert first["身份证件号"] == "440103201201010011"
    assert first["学籍号"] == "G440103201201010011"
    parquet = pq.read_table(run_dir / "counties" / LIWAN / "problems.parquet").to_pandas()
    assert list(parquet.columns) == list(schema.PROBLEM_COLUMNS)
    assert sorted(parquet["record_id"]) == ["r01", "r02", "r03", "r04", "r04"]
    tianhe = workbook_of(run_dir, TIANHE)
    assert [r["记录号"] for r in sheet_rows(tianhe["错误学籍"])] == ["r07"]
    assert [r["记录号"] for r in sheet_rows(tianhe["提醒"])] == ["r09"]


def test_identifiers_and_formula_like_values_are_text(report_run):
    run_dir, _ = report_run
    book = workbook_of(run_dir, LIWAN)
    cells = {
        c.value: c
        for name in ("错误学籍", "提醒")
        for row in book[name].iter_rows(min_row=2)
        for c in row
        if c.value is not None
    }
    for value in (*FORMULA_LIKE, "2144010301", "440103201201010011", "r01"):
        assert value in cells, value
        assert cells[value].data_type == "s", value
    tianhe = workbook_of(run_dir, TIANHE)["提醒"]
    values = [c.value for row in tianhe.iter_rows(min_row=2) for c in row]
    # A control character is kept, in the escaped form the file format uses (_xHHHH_).
    assert "bad_x0001_value" in values


def test_duplicate_blocks_with_cross_county_counterparts(report_run):
    run_dir, _ = report_run
    book = workbook_of(run_dir, LIWAN)
    rows = sheet_rows(book["重复学籍"])
    # The group holding a graduating student (r03, 九年级) comes first; own records before others.
    assert [(r["组号"], r["记录号"]) for r in rows] == [
        ("G000000000002", "r03"),
        ("G000000000002", "r04"),
        ("G000000000001", "r02"),
        ("G000000000001", None),
    ]
    counterpart = rows[3]
    assert counterpart["所在区县"] == "越秀区（440104）"
    assert counterpart["学校名称"] == "学校01"
    assert counterpart["姓名"] == "李肆"
    assert counterpart["身份证件号"] == "440103********002X"
    assert counterpart["学籍号"] is None and counterpart["年级"] is None
    assert rows[2]["身份证件号"] == "44010320150202002X"
    assert rows[0]["问题名称"] == "疑似重复" and rows[2]["问题名称"] == "身份证号重复"
    sheet = book["重复学籍"]
    fills = [sheet.cell(row=r, column=1).fill.fgColor.rgb for r in range(2, 6)]
    assert fills[0] == fills[1] != fills[2] == fills[3]
    yuexiu = sheet_rows(workbook_of(run_dir, YUEXIU)["重复学籍"])
    assert [r["记录号"] for r in yuexiu] == ["r05", None]
    assert yuexiu[1]["所在区县"] == "荔湾区（440103）"
    # No Tianhe group reaches Liwan's list, and Liwan's parquet holds the same rows.
    assert not {"r07", "r08"} & {r["记录号"] for r in rows}
    parquet = pq.read_table(run_dir / "counties" / LIWAN / "duplicates.parquet").to_pandas()
    assert list(parquet.columns) == list(schema.DUPLICATE_COLUMNS)
    assert sorted(parquet["record_id"]) == ["r02", "r03", "r04", "r05"]
    assert parquet["score"].dtype == "float64"


def test_masked_ids_in_excel_full_in_parquet(tmp_path):
    write_all(tmp_path, mask_ids=True)
    book = workbook_of(tmp_path, LIWAN)
    pattern = re.compile(r"^\d{6}\*{8}[\dX]{4}$")
    problems = sheet_rows(book["错误学籍"])
    assert all(pattern.match(r["身份证件号"]) for r in problems)
    assert all(re.match(r"^G\d{6}\*{8}[\dX]{4}$", r["学籍号"]) for r in problems)
    id_values = [r["原值"] for r in problems if r["字段"] == "身份证件号"]
    assert id_values and all(pattern.match(v) for v in id_values)
    duplicates = sheet_rows(book["重复学籍"])
    assert all(pattern.match(r["身份证件号"]) for r in duplicates)
    every = [str(c) for s in book.worksheets for row in s.iter_rows(values_only=True) for c in row]
    assert not any("201201010011" in v for v in every)
    parquet = pq.read_table(tmp_path / "counties" / LIWAN / "problems.parquet").to_pandas()
    assert "44010320150202002X" in set(parquet["value"])


def test_problem_classes():
    problems = pd.DataFrame(
        [
            ("ID_CHECKSUM", "E", "id_number", "身份证号错误"),
            ("SEX_MISMATCH", "E", "sex", "身份证号错误"),
            ("ID_REGION_ERA", "W", "id_number", "警告"),
            ("ID_TYPE_CODE", "E", "id_type", "其他字段错误"),
            ("NAME_CHARS", "E", "name", "其他字段错误"),
            ("STUDENT_NO_MISMATCH", "E", "student_no", "其他字段错误"),
        ],
        columns=["rule", "severity", "field", "expected"],
    )
    classes = problem_class(problems["rule"], problems["severity"], problems["field"])
    assert classes.tolist() == problems["expected"].tolist()


def test_mask_id_numbers():
    given = ["440103201201010011", "12345", None, "", "5.20321234567E+17", "44010320120101001"]
    masked = mask_id_numbers(pd.Series(given, dtype="string"))
    assert masked.tolist()[:2] == ["440103********0011", "*****"]
    assert masked.isna().tolist() == [False, False, True, False, False, False]
    assert masked.iloc[3] == ""  # a missing number is shown missing, not as stars
    # Spreadsheet damage and a digit missing: no digit of the number shows, whatever its form.
    assert masked.iloc[4] == "*.***********E+**"
    assert masked.iloc[5] == "*" * 17


def test_sheet_overflow_continues_without_truncating(tmp_path, monkeypatch):
    monkeypatch.setattr(county_sheets, "SHEET_MAX_ROWS", 3)  # header + 2 rows per sheet
    write_all(tmp_path)
    book = workbook_of(tmp_path, LIWAN)
    assert book.sheetnames == [
        "说明",
        "汇总",
        "错误学籍",
        "错误学籍(2)",
        "重复学籍",
        "重复学籍(2)",
        "提醒",
        "清单标识",
    ]
    rows = [r for name in ("错误学籍", "错误学籍(2)") for r in sheet_rows(book[name])]
    assert [r["记录号"] for r in rows] == ["r04", "r04", "r02"]
    for name in book.sheetnames[2:-1]:
        assert book[name].max_row <= 3
        assert book[name]["A1"].value in ("学校标识码", "组号")
    groups = [[r["组号"] for r in sheet_rows(book[n])] for n in ("重复学籍", "重复学籍(2)")]
    assert groups == [["G000000000002"] * 2, ["G000000000001"] * 2]  # a group is never split


def test_a_list_longer_than_the_cap_goes_whole_beside_the_workbook(tmp_path):
    counties = write_all(tmp_path, list_cap=2)
    folder = tmp_path / "counties" / LIWAN
    book = workbook_of(tmp_path, LIWAN)
    # 3 errors: the sheet shows the first 2; the duplicates stop before the group that does
    # not fit; the 2 warnings fit and stay whole.
    assert [r["记录号"] for r in sheet_rows(book["错误学籍"])] == ["r04", "r04"]
    assert [r["组号"] for r in sheet_rows(book["重复学籍"])] == ["G000000000002"] * 2
    assert len(sheet_rows(book["提醒"])) == 2
    stem = "440103_荔湾区_问题学籍清单"
    beside = sorted(p.name for p in folder.glob("*_全部.*"))
    assert beside == [
        f"{stem}_{s}_全部.{e}" for s in ("重复学籍", "错误学籍") for e in ("csv", "parquet")
    ]
    raw = (folder / f"{stem}_错误学籍_全部.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b'"44010320150202002X"' in raw  # an ID is a quoted text, never a number
    full = pd.read_csv(folder / f"{stem}_错误学籍_全部.csv", dtype=str, encoding="utf-8-sig")
    assert full["记录号"].tolist() == ["r04", "r04", "r02"]
    assert full["身份证件号"].tolist()[-1] == "44010320150202002X"
    assert "处理方式" not in full.columns and "问题编号" in full.columns
    table = pq.read_table(folder / f"{stem}_错误学籍_全部.parquet")
    assert all(str(t) == "string" for t in table.schema.types)
    assert table.to_pandas().fillna("").equals(full.fillna(""))
    duplicates = pq.read_table(folder / f"{stem}_重复学籍_全部.parquet").to_pandas()
    assert duplicates["组号"].tolist() == ["G000000000002"] * 2 + ["G000000000001"] * 2
    about = "\n".join(str(c) for row in book["说明"].iter_rows(values_only=True) for c in row if c)
    for name in beside:
        assert name in about
    assert "超过每张清单 2 行的上限" in about
    (liwan,) = [c for c in counties if c["county_code"] == LIWAN]
    listed = {f["path"]: f["rows"] for f in liwan["files"]}
    assert listed[f"counties/{LIWAN}/{stem}_错误学籍_全部.csv"] == 3
    assert liwan["error_rows"] == 3 and liwan["school_workbooks"] == 0
    # A county whose lists fit has nothing beside its workbook and nothing about it in 说明.
    yuexiu = workbook_of(tmp_path, YUEXIU)
    assert not list((tmp_path / "counties" / YUEXIU).glob("*.csv"))
    assert not any("超长清单" in str(r) for r in yuexiu["说明"].iter_rows(values_only=True))


def test_workbooks_written_by_worker_processes_equal_those_written_here(tmp_path, monkeypatch):
    monkeypatch.setattr(county_files, "ROWS_FOR_PROCESSES", 0)
    here = write_all(tmp_path / "here", run_id="44-20261128-1")
    workers = write_all(tmp_path / "workers", run_id="44-20261128-1", processes=2)
    assert [{k: v for k, v in c.items() if k != "files"} for c in here] == [
        {k: v for k, v in c.items() if k != "files"} for c in workers
    ]
    for county in here:
        book = workbook_of(tmp_path / "here", county["county_code"])
        other = workbook_of(tmp_path / "workers", county["county_code"])
        assert book.sheetnames == other.sheetnames
        for name in book.sheetnames:
            assert list(book[name].values) == list(other[name].values)


def _cells_and_formats(book) -> dict:
    def shown(cell):
        fill = cell.fill.fgColor.rgb if cell.fill.fill_type else None
        return (cell.value, cell.number_format, fill, cell.font.b, cell.protection.locked)

    return {
        name: (
            [[shown(c) for c in row] for row in book[name].iter_rows()],
            {k: v.height for k, v in book[name].row_dimensions.items() if v.height},
        )
        for name in book.sheetnames
    }


def test_a_large_list_assembled_in_files_equals_one_assembled_in_memory(tmp_path, monkeypatch):
    write_all(tmp_path / "memory", run_id="44-20261128-1")
    # A list this long is assembled in temporary files: lower the bar so a small one is too.
    monkeypatch.setattr(sheet_layout, "IN_MEMORY_ROWS", 0)
    write_all(tmp_path / "streamed", run_id="44-20261128-1")
    for code in (LIWAN, YUEXIU, TIANHE):
        memory = workbook_of(tmp_path / "memory", code)
        streamed = workbook_of(tmp_path / "streamed", code)
        assert _cells_and_formats(memory) == _cells_and_formats(streamed)


def test_duplicate_pieces_split_only_oversized_groups(monkeypatch):
    import numpy as np

    monkeypatch.setattr(county_sheets, "SHEET_MAX_ROWS", 4)
    ids = np.array(["a", "a", "b", "b", "b", "b", "b", "c"], dtype=object)
    assert county_sheets.duplicate_pieces(ids) == [(0, 2), (2, 5), (5, 8)]


def test_only_requested_counties(tmp_path):
    counties = write_all(tmp_path, counties=[YUEXIU])
    assert [c["county_code"] for c in counties] == [YUEXIU]
    assert [p.name for p in (tmp_path / "counties").iterdir()] == [YUEXIU]


def test_county_file_names_are_sanitised():
    assert county_file_stem("440103", "荔湾区") == "440103_荔湾区"
    stem = county_file_stem("440103", "../../etc/pass\x00wd")
    assert "/" not in stem and "\\" not in stem and ".." not in stem and "\x00" not in stem
    assert county_file_stem("440103", "") == "440103_未知区县"
    for bad in ("4401", "44010a", "../440103", "4401030"):
        with pytest.raises(ValueError):
            county_file_stem(bad, "荔湾区")


def test_bad_county_code_refused_before_writing(tmp_path):
    roster = make_roster()
    roster.loc[0, "county_code"] = "../x"
    with pytest.raises(ValueError):
        write_county_reports(
            tmp_path,
            roster,
            make_problems(),
            make_duplicates(make_roster()),
            province="44",
            run_date=RUN_DATE,
            rule_catalogue=catalogue(),
        )
    assert not (tmp_path / "counties").exists()


def test_province_outputs_and_totals_match_county_files(tmp_path):
    roster = make_roster()
    counties = write_all(tmp_path)
    files = write_province_outputs(
        tmp_path,
        roster,
        make_problems(),
        make_duplicates(roster),
        make_quarantine(),
        province="44",
        run_date=RUN_DATE,
    )
    assert [f["path"] for f in files] == [
        "province/problems.parquet",
        "province/duplicates.parquet",
        "province/quarantine.parquet",
        "province/summary.xlsx",
    ]
    quarantine = pq.read_table(tmp_path / "province" / "quarantine.parquet")
    assert str(quarantine.schema.field("source_row").type) == "int64"
    assert pq.read_table(tmp_path / "province" / "problems.parquet").num_rows == 8

    book = openpyxl.load_workbook(tmp_path / "province" / "summary.xlsx")
    assert book.sheetnames == [
        "说明",
        "图表",
        "区县汇总",
        "区县排名",
        "地市汇总",
        "规则统计",
        "隔离行",
    ]
    rows = sheet_rows(book["区县汇总"])
    total = rows[-1]
    assert total["区县代码"] == "全省合计"
    by_code = {r["区县代码"]: r for r in rows[:-1]}
    # Liwan has the most errors, so comes first.
    assert rows[0]["区县代码"] == LIWAN
    assert by_code[LIWAN]["身份证号错误"] == 2
    assert by_code[LIWAN]["身份证号重复"] == 1
    assert by_code[LIWAN]["疑似重复"] == 2
    assert by_code[LIWAN]["警告"] == 2
    assert by_code[LIWAN]["毕业年级·合计"] == 3  # r01 warning, r03 warning, r03 in a group
    assert by_code[YUEXIU]["毕业年级·身份证号错误"] == 1  # r05 is 高三
    for column in ("合计", "错误合计", "涉及学生数", "毕业年级·合计"):
        assert total[column] == sum(r[column] for r in rows[:-1])
    for county in counties:
        county_total = sheet_rows(workbook_of(tmp_path, county["county_code"])["汇总"])[-1]
        summary_row = by_code[county["county_code"]]
        assert county_total["合计"] == summary_row["合计"] == county["items"]
        assert county_total["涉及学生数"] == summary_row["涉及学生数"]
    assert total["合计"] == 8 + 6  # problem rows + one row per record in a group


def test_manifest_hashes_every_file(tmp_path):
    counties = write_all(tmp_path)
    (tmp_path / "data_docs").mkdir()
    (tmp_path / "data_docs" / "index.html").write_text("<html/>", encoding="utf-8")
    path = write_manifest(
        tmp_path, {"run_id": "44-20261128", "run_date": RUN_DATE, "counties": counties}
    )
    text = path.read_text(encoding="utf-8")
    assert "荔湾区" in text  # Chinese kept readable
    manifest = json.loads(text)
    assert manifest["run_date"] == "2026-11-28"
    assert "manifest.json" not in manifest["files"]
    assert "data_docs/index.html" in manifest["files"]
    listed = {f["path"]: f["sha256"] for c in counties for f in c["files"]}
    for relative, sha in listed.items():
        assert manifest["files"][relative]["sha256"] == sha
    assert verify_files(tmp_path) == []
    (tmp_path / "counties" / LIWAN / "problems.parquet").write_bytes(b"changed")
    assert verify_files(tmp_path) == ["counties/440103/problems.parquet"]


def _publish_run(out_root: Path, marker: str) -> str:
    run_id = new_run_id(out_root, "44", RUN_DATE)
    staging = staging_dir(out_root, run_id)
    (staging / "marker.txt").write_text(marker, encoding="utf-8")
    write_manifest(staging, {"run_id": run_id})
    publish(staging, out_root, run_id)
    return run_id


def test_publish_is_atomic_and_numbers_runs_of_a_day(tmp_path):
    first = _publish_run(tmp_path, "one")
    assert first == "44-20261128"
    assert os.readlink(tmp_path / "latest") == first
    assert (tmp_path / "latest.txt").read_text(encoding="utf-8").strip() == first
    assert read_manifest(tmp_path / "latest")["run_id"] == first

    # A run that fails after staging: nothing published, previous run and latest unchanged.
    failed = new_run_id(tmp_path, "44", RUN_DATE)
    assert failed == "44-20261128-2"
    staging = staging_dir(tmp_path, failed)
    (staging / "marker.txt").write_text("half", encoding="utf-8")
    assert not (tmp_path / failed).exists()
    assert os.readlink(tmp_path / "latest") == first
    assert (tmp_path / "latest" / "marker.txt").read_text(encoding="utf-8") == "one"
    # The staging folder of a live process still holds its id.
    assert new_run_id(tmp_path, "44", RUN_DATE) == "44-20261128-3"

    second = _publish_run(tmp_path, "two")
    assert second == "44-20261128-3"
    assert (tmp_path / "latest" / "marker.txt").read_text(encoding="utf-8") == "two"
    assert (tmp_path / first / "marker.txt").read_text(encoding="utf-8") == "one"
    with pytest.raises(FileExistsError):
        publish(staging_dir(tmp_path, first), tmp_path, first)
    assert (tmp_path / first / "marker.txt").read_text(encoding="utf-8") == "one"


def test_published_modes(tmp_path):
    run_id = _publish_run(tmp_path, "x")
    run = tmp_path / run_id
    assert stat.S_IMODE(run.stat().st_mode) == 0o750
    for path in run.rglob("*"):
        expected = 0o750 if path.is_dir() else 0o640
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_stale_staging_of_dead_process_is_cleaned(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".tmp-44-20261128-{pid}"
    stale.mkdir()
    (stale / "half.xlsx").write_bytes(b"x")
    live = tmp_path / f".tmp-44-20261127-{os.getpid()}"
    live.mkdir()
    assert new_run_id(tmp_path, "44", RUN_DATE) == "44-20261128"
    assert not stale.exists()
    assert live.exists()
    assert clean_stale_staging(tmp_path) == []


def test_a_clean_province_still_gets_its_lists(tmp_path):
    roster = make_roster()
    problems = make_problems().iloc[0:0]
    duplicates = make_duplicates(roster).iloc[0:0]
    counties = write_county_reports(
        tmp_path,
        roster,
        problems,
        duplicates,
        province="44",
        run_date=RUN_DATE,
        rule_catalogue=catalogue(),
    )
    assert [c["records_clean"] for c in counties] == [4, 2, 3]
    book = workbook_of(tmp_path, LIWAN)
    assert book.sheetnames == ["说明", "汇总", "错误学籍", "重复学籍", "提醒", "清单标识"]
    assert book["错误学籍"].max_row == 1
    write_province_outputs(
        tmp_path,
        roster,
        problems,
        duplicates,
        make_quarantine().iloc[0:0],
        province="44",
        run_date=RUN_DATE,
    )
    rows = sheet_rows(openpyxl.load_workbook(tmp_path / "province" / "summary.xlsx")["区县汇总"])
    assert [r["合计"] for r in rows] == [0, 0, 0, 0]
    assert pq.read_table(tmp_path / "province" / "problems.parquet").num_rows == 0


def test_lists_from_county_slices_equal_lists_from_the_whole_province(tmp_path):
    roster, problems = make_roster(), make_problems()
    duplicates = make_duplicates(roster)
    whole = write_county_reports(
        tmp_path / "whole",
        roster,
        problems,
        duplicates,
        province="44",
        run_date=RUN_DATE,
        rule_catalogue=catalogue(),
    )
    codes = [entry["county_code"] for entry in whole]
    assert len(codes) >= 2
    sliced = []
    for code, tables in zip(
        codes, split_by_county(roster, problems, duplicates, codes), strict=True
    ):
        sliced += write_county_reports(
            tmp_path / "sliced",
            *tables,
            province="44",
            run_date=RUN_DATE,
            rule_catalogue=catalogue(),
            counties=[code],
        )
    # Groups of counties, as the flow's report tasks get them: a group whose counties share
    # a duplicate group must hold its rows once.
    grouped = []
    groups = [codes[:1], codes[1:]]
    for group, tables in zip(
        groups, split_by_counties(roster, problems, duplicates, groups), strict=True
    ):
        grouped += write_county_reports(
            tmp_path / "grouped",
            *tables,
            province="44",
            run_date=RUN_DATE,
            rule_catalogue=catalogue(),
            counties=group,
        )
    for folder, written in (("sliced", sliced), ("grouped", grouped)):
        for a, b in zip(whole, written, strict=True):
            assert {k: v for k, v in a.items() if k != "files"} == {
                k: v for k, v in b.items() if k != "files"
            }
            for name in ("problems.parquet", "duplicates.parquet"):
                left = pd.read_parquet(tmp_path / "whole" / "counties" / a["county_code"] / name)
                right = pd.read_parquet(tmp_path / folder / "counties" / a["county_code"] / name)
                pd.testing.assert_frame_equal(left, right)


def test_county_groups_share_the_counties_out_evenly():
    from xueji_quality.reports import county_groups

    counties = [f"4401{i:02d}" for i in range(1, 12)]
    records = {code: 1000 * (i + 1) for i, code in enumerate(counties)}
    groups = county_groups(counties, records, 3)
    assert len(groups) == 3
    assert sorted(c for g in groups for c in g) == counties  # each county once
    assert all(g == sorted(g) for g in groups)  # in the order given
    sizes = [sum(records[c] for c in g) for g in groups]
    assert max(sizes) - min(sizes) <= max(records.values())
    # Counties of no records still spread out; never more groups than counties.
    assert [len(g) for g in county_groups(counties[:4], {}, 2)] == [2, 2]
    assert county_groups(counties[:2], records, 8) == [[counties[0]], [counties[1]]]
    assert county_groups(counties, records, 1) == [counties]


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(["a", None, float("nan"), pd.NA, "汉"], dtype=object),
        pd.Series([1, "a", None], dtype=object),
        pd.Series(["x", None], dtype="string"),
        pd.Series(["x", None], dtype="string[pyarrow]"),
        pd.Series(["x", None], dtype=pd.ArrowDtype(pa.large_string())),
        pd.Series([1, 2], dtype="int64"),
        pd.Series([1.5, float("nan")]),
        pd.Series(pd.Categorical(["a", None, "b"])),
        pd.Series([], dtype=object),
    ],
)
def test_text_columns_written_as_pandas_writes_them(values):
    from xueji_quality.reports.tables import text_array

    made = text_array(values)
    made = made if isinstance(made, pa.ChunkedArray) else pa.chunked_array([made])
    through_pandas = pa.array(values.astype("string"), type=pa.string(), from_pandas=True)
    assert made.type == pa.string()
    assert made.equals(pa.chunked_array([through_pandas]))


@pytest.mark.parametrize("text", [object, "string[pyarrow]"])
def test_duplicate_block_order_with_missing_schools_and_counties(text):
    from xueji_quality.reports.county_rows import county_duplicate_block

    rows = pd.DataFrame(
        {
            "group_id": ["G2", "G2", "G1", "G1", "G1", "G3", "G3", "G4", "G4"],
            "record_id": ["a", "b", "c", "d", "e", "f", "g", "h", "i"],
            "county_code": ["440103", "440104", "440103", None, "440103"]
            + ["440104"] * 2
            + ["440103", "440103"],
            "school_code": [None, "2", "9", None, None, "1", "1", "3", None],
            "grade_level": ["1", "2", "3", "4", "5", "1", "1", "2", "2"],
            "class_name": ["x"] * 9,
            "graduating": [False, True, False, False, True, True, False, False, False],
        }
    )
    rows = rows.astype({c: text for c in ("group_id", "record_id", "county_code", "school_code")})
    block = county_duplicate_block(rows, "440103", {"440103": "本县"})
    # G1 holds a graduating own record; G2 and G4 do not, and G4's own school (3) sorts before
    # G2's, which has none; G3 does not touch the county. Own records first, graduating first.
    assert block["record_id"].tolist() == ["e", "c", "d", "h", "i", "a", "b"]
    assert block["_own"].tolist() == [True, True, False, True, True, True, False]
    assert block["_county_label"].fillna("").tolist()[:3] == ["本县", "本县", ""]


def test_class_counts_groups_in_key_order_with_missing_keys_as_empty():
    from xueji_quality.reports.county_totals import class_counts

    items = pd.DataFrame(
        {
            "school_code": ["b", None, "a", "b", "a", "b"],
            "school_name": ["乙", "无", "甲", "乙", "甲", None],
            "record_id": ["r1", "r2", "r3", "r1", None, "r4"],
            "problem_class": ["警告", "疑似重复", "身份证号错误", "其他字段错误", "警告", "别的"],
        },
        dtype="string",
    ).assign(graduating=[True, False, False, True, False, False])
    counts = class_counts(items, ["school_code", "school_name"])
    assert counts[["school_code", "school_name"]].values.tolist() == [
        ["", "无"],
        ["a", "甲"],
        ["b", ""],
        ["b", "乙"],
    ]
    assert counts["合计"].tolist() == [1, 2, 0, 2]  # a class of no known name counts nowhere
    assert counts["错误合计"].tolist() == [1, 1, 0, 1]
    assert counts["毕业年级·合计"].tolist() == [0, 0, 0, 2]
    assert counts["涉及学生数"].tolist() == [1, 1, 1, 1]  # r1 twice is one student
    assert (counts.dtypes.drop(["school_code", "school_name"]) == "int64").all()
