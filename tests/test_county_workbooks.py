"""What a county clerk and a provincial officer see: county workbooks read back with openpyxl as
a user's spreadsheet program would (print setup, wrapping, fills, drop-downs, protection, rule
names, per-school lists), duplicate groups answered record by record, one set of numbers across
the manifest, the province summary and every county's 说明 and 汇总, the summary's charts, and
the answer ledger's file mode and contents.

The hand-made tables of test_reports go through the answer ledger, the county lists (with a
workbook per school), the province outputs, the manifest and publishing, as the flow does.
"""

from __future__ import annotations

import re
import sqlite3
import stat
import zipfile
from datetime import timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from test_reports import (
    LIWAN,
    RUN_DATE,
    TIANHE,
    YUEXIU,
    catalogue,
    make_duplicates,
    make_problems,
    make_quarantine,
    make_roster,
    sheet_rows,
)

from xueji_quality import answers, reports, runinfo, workbook
from xueji_quality.answers import ledger
from xueji_quality.reports import about_sheet, county_sheets, sheet_layout, summary
from xueji_quality.reports.county_rows import COUNTERPART_NOTE, OTHER_SCHOOL_NOTE
from xueji_quality.reports.list_files import iter_county_workbooks, iter_school_workbooks

PROVINCE = "44"


def run_once(out_root: Path, run_date, roster, problems, duplicates) -> dict:
    """One run as the flow makes it: ledger, county lists (and school lists), province outputs,
    manifest, publish, record."""
    run_id = reports.new_run_id(out_root, PROVINCE, run_date)
    staging = reports.staging_dir(out_root, run_id)
    result = answers.apply_ledger(
        out_root, run_id, run_date, problems, duplicates, roster, province=PROVINCE
    )
    counties = reports.write_county_reports(
        staging,
        roster,
        result.problems,
        result.duplicates,
        province=PROVINCE,
        run_date=run_date,
        rule_catalogue=catalogue(),
        statuses=result.statuses,
        per_school=True,
    )
    reports.write_province_outputs(
        staging,
        roster,
        result.problems,
        result.duplicates,
        make_quarantine(),
        province=PROVINCE,
        run_date=run_date,
        progress=result.progress,
    )
    manifest = {
        "run_id": run_id,
        "run_date": run_date,
        "counties": counties,
        "totals": runinfo.totals(result.problems, result.duplicates),
        "answers": result.counts,
    }
    reports.write_manifest(staging, manifest)
    run_dir = reports.publish(staging, out_root, run_id)
    answers.record_run(result)
    books = {path.parent.name: path for path in iter_county_workbooks(run_dir)}
    return {"run_id": run_id, "run_dir": run_dir, "result": result, "books": books}


@pytest.fixture(scope="module")
def small_counties_ranked():
    """The hand-made counties have a few students each: rank them all the same."""
    patch = pytest.MonkeyPatch()
    patch.setattr(summary, "MIN_STUDENTS_FOR_RATE", 1)
    yield
    patch.undo()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, small_counties_ranked) -> dict:
    out_root = tmp_path_factory.mktemp("out")
    roster = make_roster()
    found = run_once(out_root, RUN_DATE, roster, make_problems(), make_duplicates(roster))
    return {"out_root": out_root, "roster": roster, **found}


def header_of(sheet) -> list:
    return [cell.value for cell in sheet[1]]


def column_letter(sheet, header: str) -> str:
    return openpyxl.utils.get_column_letter(header_of(sheet).index(header) + 1)


# --- the workbook as a clerk opens and prints it ------------------------------------------------


def test_every_sheet_prints_landscape_one_page_wide_with_header_and_footer(first_run):
    book = openpyxl.load_workbook(first_run["books"][LIWAN])
    for name in ("说明", "汇总", "错误学籍", "重复学籍", "提醒"):
        sheet = book[name]
        assert sheet.page_setup.orientation == "landscape", name
        assert sheet.page_setup.paperSize == 9, name  # A4
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, name
        # fitToWidth 1 is the file format's default, left out of the file.
        fit = (sheet.page_setup.fitToWidth or 1, sheet.page_setup.fitToHeight)
        assert fit == (1, 0), name
        assert sheet.page_margins.left <= 0.5 and sheet.page_margins.bottom <= 0.75, name
        footer = sheet.oddFooter
        assert "荔湾区（440103）" in footer.left.text, name
        assert first_run["run_id"] in footer.center.text, name
        assert "&P" in footer.right.text and "&N" in footer.right.text, name
        if name != "说明":
            assert sheet.print_title_rows == "$1:$1", name
            assert sheet.freeze_panes == "A2", name


def test_long_text_wraps_and_rows_are_tall_enough(first_run):
    book = openpyxl.load_workbook(first_run["books"][LIWAN])
    for name, headers in (
        ("错误学籍", ("问题说明", "修改建议")),
        ("提醒", ("问题说明", "修改建议")),
        ("重复学籍", ("原因",)),
    ):
        sheet = book[name]
        for header in headers:
            at = header_of(sheet).index(header) + 1
            for row in range(2, sheet.max_row + 1):
                assert sheet.cell(row=row, column=at).alignment.wrap_text, (name, header, row)
    # A text longer than its column makes its row taller: nothing is cut off.
    sheet = book["说明"]
    long_rows = [
        cell.row
        for cell in sheet["A"]
        if isinstance(cell.value, str) and len(cell.value) > sum(about_sheet.ABOUT_WIDTHS) // 2 + 10
    ]
    assert long_rows
    for row in long_rows:
        assert (sheet.row_dimensions[row].height or 0) >= 2 * sheet_layout.LINE_HEIGHT, row
    assert "A3:F3" in {str(r) for r in sheet.merged_cells.ranges}
    # Each list column is at least as wide as its values, or wraps them.
    problems = book["错误学籍"]
    for at, header in enumerate(header_of(problems), start=1):
        letter = openpyxl.utils.get_column_letter(at)
        width = problems.column_dimensions[letter].width
        values = [problems.cell(row=r, column=at).value or "" for r in range(1, problems.max_row)]
        longest = max(len(v) for v in values[1:]) if len(values) > 1 else 0
        wraps = all(problems.cell(row=r, column=at).alignment.wrap_text for r in (2, 3))
        assert width >= longest or wraps, header


def test_clerk_columns_stand_out_unlocked_and_severities_differ(first_run):
    book = openpyxl.load_workbook(first_run["books"][LIWAN])
    for name in ("错误学籍", "重复学籍"):
        sheet = book[name]
        header = header_of(sheet)
        for label in workbook.clerk_columns(workbook.problem_columns()):
            at = header.index(label) + 1
            assert sheet.cell(row=1, column=at).fill.fgColor.rgb.endswith(
                county_sheets.CLERK_HEADER_FILL[1:]
            ), (name, label)
            own_row = 2
            cell = sheet.cell(row=own_row, column=at)
            assert cell.protection.locked is False, (name, label)
            assert cell.fill.fgColor.rgb.endswith(county_sheets.CLERK_FILL[1:]), (name, label)
        # Cells the clerk does not fill in stay locked.
        assert sheet.cell(row=2, column=header.index("姓名") + 1).protection.locked
    errors, warnings = book["错误学籍"], book["提醒"]
    error_cell = errors.cell(row=2, column=header_of(errors).index("严重程度") + 1)
    warning_cell = warnings.cell(row=2, column=header_of(warnings).index("严重程度") + 1)
    assert (error_cell.value, warning_cell.value) == ("错误", "警告")
    assert error_cell.fill.fgColor.rgb.endswith(county_sheets.ERROR_FILL[1:])
    assert warning_cell.fill.fgColor.rgb.endswith(county_sheets.WARNING_FILL[1:])
    # Another county's record of a group is grey, its answer cell too.
    duplicates = book["重复学籍"]
    rows = sheet_rows(duplicates)
    other = 2 + next(i for i, r in enumerate(rows) if r["备注"] == COUNTERPART_NOTE)
    action = duplicates.cell(row=other, column=header_of(duplicates).index("处理方式") + 1)
    assert action.fill.fgColor.rgb.endswith(county_sheets.COUNTERPART_FILL[1:])
    # 说明 is protected (no password); the lists are not, so that rows can be sorted.
    assert book["说明"].protection.sheet and not book["说明"].protection.password
    for name in ("汇总", "错误学籍", "重复学籍", "提醒"):
        assert not book[name].protection.sheet, name


def test_drop_downs_per_list_and_none_for_warnings(first_run):
    book = openpyxl.load_workbook(first_run["books"][LIWAN])
    for name, actions in (
        ("错误学籍", workbook.ACTIONS),
        ("重复学籍", workbook.DUPLICATE_ACTIONS),
    ):
        sheet = book[name]
        (validation,) = sheet.data_validations.dataValidation
        letter = column_letter(sheet, "处理方式")
        assert validation.formula1 == '"' + ",".join(actions) + '"'
        assert str(validation.sqref) == f"{letter}2:{letter}{max(sheet.max_row - 1, 1) + 1}"
        assert validation.promptTitle == "处理方式" and validation.prompt
    assert book["提醒"].data_validations.dataValidation == []
    assert "处理方式" not in header_of(book["提醒"])


def test_every_item_carries_its_rule_name_and_filters_cover_it(first_run):
    book = openpyxl.load_workbook(first_run["books"][LIWAN])
    names = {
        r["问题代码"]: r["问题名称"] for n in ("错误学籍", "提醒") for r in sheet_rows(book[n])
    }
    assert names == {
        "ID_CHECKSUM": "身份证号校验码错误",
        "NAME_CHARS": "姓名含非法字符",
        "AGE_GRADE": "年龄与年级不符",
        "PHONE_FORMAT": "联系电话格式不对",
    }
    assert {r["问题名称"] for r in sheet_rows(book["重复学籍"])} == {"身份证号重复", "疑似重复"}
    for name in ("错误学籍", "重复学籍", "提醒"):
        sheet = book[name]
        letter = column_letter(sheet, "问题名称")
        first, last = sheet.auto_filter.ref.split(":")
        assert first.startswith("A") and last.rstrip("0123456789") >= letter
    about = "\n".join(str(c) for row in book["说明"].iter_rows(values_only=True) for c in row if c)
    assert "身份证号校验码错误" in about and "保留" in about and "例：" in about


def test_a_damaged_id_is_masked_without_any_digit(tmp_path):
    roster = make_roster()
    roster.loc[roster["record_id"] == "r06", "id_number"] = "4.40104201806E+17"
    problems = pd.concat(
        [
            make_problems(),
            pd.DataFrame(
                [("r06", YUEXIU, "ID_SPREADSHEET_DAMAGE", "E", "id_number", "4.40104201806E+17")],
                columns=["record_id", "county_code", "rule", "severity", "field", "value"],
            ).assign(message="表格软件损坏", suggestion="从源文件重新导出"),
        ],
        ignore_index=True,
    ).astype("string")
    reports.write_county_reports(
        tmp_path,
        roster,
        problems,
        make_duplicates(roster),
        province=PROVINCE,
        run_date=RUN_DATE,
        rule_catalogue=catalogue(),
        mask_ids=True,
    )
    (path,) = (tmp_path / "counties" / YUEXIU).glob("*_问题学籍清单.xlsx")
    rows = sheet_rows(openpyxl.load_workbook(path)["错误学籍"])
    damaged = next(r for r in rows if r["问题代码"] == "ID_SPREADSHEET_DAMAGE")
    assert damaged["身份证件号"] == damaged["原值"] == "*.***********E+**"
    assert damaged["问题名称"] == "身份证号被表格损坏"  # the reason stands beside it
    assert re.fullmatch(r"\d{6}\*{8}[\dX]{4}", rows[0]["身份证件号"])


# --- one workbook per school ----------------------------------------------------------------------


def test_per_school_workbooks_hold_the_schools_own_rows(first_run):
    run_dir = first_run["run_dir"]
    found = {p.name: p for p in iter_school_workbooks(run_dir, LIWAN)}
    assert sorted(found) == ["2144010301_学校01.xlsx", "2144010302_学校02.xlsx"]
    book = openpyxl.load_workbook(found["2144010302_学校02.xlsx"])
    assert book.sheetnames == ["说明", "汇总", "错误学籍", "重复学籍", "提醒", "清单标识"]
    assert {r["学校标识码"] for r in sheet_rows(book["错误学籍"])} == {"2144010302"}
    assert [r["记录号"] for r in sheet_rows(book["错误学籍"])] == ["r04", "r04", "r02"]
    duplicates = sheet_rows(book["重复学籍"])
    # r04's group: r03 of school 01 is a counterpart; r02's group: r05 of 越秀区.
    own = [r["记录号"] for r in duplicates if r["记录号"]]
    assert sorted(own) == ["r02", "r04"]
    notes = {r["姓名"]: r["备注"] for r in duplicates if not r["记录号"]}
    assert notes == {"王五": OTHER_SCHOOL_NOTE, "李肆": COUNTERPART_NOTE}
    other = next(r for r in duplicates if r["姓名"] == "王五")
    assert re.fullmatch(r"\d{6}\*{8}[\dX]{4}", other["身份证件号"])
    assert book["清单标识"]["B2"].value == LIWAN
    (total,) = sheet_rows(book["汇总"])[-1:]
    assert total["合计"] == 3 + 2  # three errors, two of its records in groups
    entries = next(
        c for c in reports.read_manifest(run_dir)["counties"] if c["county_code"] == LIWAN
    )
    assert entries["school_workbooks"] == 2
    assert {f["path"] for f in entries["files"]} >= {
        f"counties/{LIWAN}/schools/2144010302_学校02.xlsx"
    }


def test_a_school_workbook_imports_as_its_countys_answers(first_run, tmp_path):
    (path,) = [
        p for p in iter_school_workbooks(first_run["run_dir"], TIANHE) if "2144010601" in p.name
    ]
    copy = tmp_path / path.name
    book = openpyxl.load_workbook(path)
    sheet = book["错误学籍"]
    sheet[f"{column_letter(sheet, '处理方式')}2"] = "变更"
    sheet[f"{column_letter(sheet, '更正后的值')}2"] = "张监护"
    book.save(copy)
    read = answers.read_answer_file(copy)
    assert read.issues == [] and read.county_code == TIANHE
    assert [(a.action, a.new_value) for a in read.answers] == [("变更", "张监护")]


# --- duplicate groups answered record by record ----------------------------------------------------


def answer_groups(path: Path, out: Path, given: dict[str, tuple[str, str]]) -> Path:
    """Answer 重复学籍 rows by name (姓名 → (处理方式, 备注)); return the saved copy."""
    book = openpyxl.load_workbook(path)
    sheet = book["重复学籍"]
    header = header_of(sheet)
    for row in range(2, sheet.max_row + 1):
        name = sheet.cell(row=row, column=header.index("姓名") + 1).value
        if name in given:
            action, note = given[name]
            sheet.cell(row=row, column=header.index("处理方式") + 1, value=action)
            sheet.cell(row=row, column=header.index("备注") + 1, value=note or None)
    out.mkdir(parents=True, exist_ok=True)
    book.save(out / path.name)
    return out / path.name


@pytest.mark.parametrize(
    ("given", "says"),
    [
        (
            {"王五": ("佐证", "不是同一人"), "赵六": ("删除", "")},
            "第 2 行答复“佐证”（不是同一学生），工作表“重复学籍”第 3 行答复“删除”",
        ),
        ({"王五": ("保留", ""), "赵六": ("保留", "")}, "第 2、3 行都答复“保留”"),
        ({"王五": ("删除", ""), "赵六": ("删除", "")}, "每条学籍都答复“删除”且备注为空"),
        ({"李肆": ("删除", "")}, "第 5 行：这是外区县（或外校）的学籍"),
        ({"王五": ("保留", ""), "李四": ("保留", "")}, None),
    ],
)
def test_contradictory_group_answers_are_refused_naming_the_rows(first_run, tmp_path, given, says):
    copy = answer_groups(first_run["books"][LIWAN], tmp_path, given)
    if says is None:  # 保留 in two different groups is no contradiction
        assert answers.read_answer_file(copy).issues == []
        return
    state = ledger.snapshot(first_run["out_root"] / "ledger.sqlite")
    with pytest.raises(answers.AnswerFileError) as caught:
        answers.import_file(first_run["out_root"], copy)
    assert says in str(caught.value), str(caught.value)
    assert copy.name in str(caught.value)
    assert ledger.snapshot(first_run["out_root"] / "ledger.sqlite") == state


def test_deleting_every_record_with_a_reason_is_accepted(first_run, tmp_path):
    copy = answer_groups(
        first_run["books"][LIWAN],
        tmp_path,
        {"王五": ("删除", "学生已出国，两条都删除"), "赵六": ("删除", "")},
    )
    read = answers.read_answer_file(copy)
    assert read.issues == []
    assert sorted((a.member, a.action) for a in read.answers) == [("1", "删除"), ("2", "删除")]


@pytest.fixture(scope="module")
def answered_runs(first_run, tmp_path_factory) -> dict:
    """荔湾区 answers its groups record by record, 天河区 keeps one record only; a second run."""
    returned = tmp_path_factory.mktemp("returned")
    liwan = answer_groups(
        first_run["books"][LIWAN],
        returned / LIWAN,
        {"王五": ("保留", ""), "赵六": ("删除", "重复登记"), "李四": ("删除", "在越秀区就读")},
    )
    tianhe = answer_groups(first_run["books"][TIANHE], returned / TIANHE, {"孙八": ("保留", "")})
    imported, rejected = answers.import_answers(first_run["out_root"], [liwan, tianhe])
    assert rejected == []
    roster = first_run["roster"]
    second = run_once(
        first_run["out_root"],
        RUN_DATE + timedelta(days=7),
        roster,
        make_problems(),
        make_duplicates(roster),
    )
    return {"imported": imported, "second": second}


def test_group_answers_are_stored_per_record(answered_runs, first_run):
    liwan = answered_runs["imported"][0]
    assert liwan.by_action == {"佐证": 0, "变更": 0, "删除": 2, "保留": 1}
    connection = sqlite3.connect(first_run["out_root"] / "ledger.sqlite")
    stored = connection.execute(
        "SELECT county_code, key, member, action, note FROM answers ORDER BY id"
    ).fetchall()
    connection.close()
    assert [(c, k[0], m, a) for c, k, m, a, _ in stored] == [
        (LIWAN, "D", "1", "保留"),
        (LIWAN, "D", "2", "删除"),
        (LIWAN, "D", "1", "删除"),
        (TIANHE, "D", "2", "保留"),  # 孙八's number sorts after 孙捌's
    ]


def test_statuses_follow_the_records_answers(answered_runs):
    result = answered_runs["second"]["result"]
    duplicates = result.duplicates
    status = duplicates.set_index("record_id")["status"]
    # One record kept and one deleted, or one deleted by its county: the county acted.
    assert status[["r03", "r04", "r02", "r05"]].tolist() == ["已答复待修正"] * 4
    # Keeping one record settles nothing until the other goes: still open.
    assert status[["r07", "r08"]].tolist() == ["未处理"] * 2
    book = openpyxl.load_workbook(answered_runs["second"]["books"][YUEXIU])
    rows = sheet_rows(book["重复学籍"])
    assert {r["状态"] for r in rows} == {"已答复待修正"}


# --- one set of numbers ---------------------------------------------------------------------------


def about_figures(book) -> dict[str, int]:
    text = "\n".join(str(c) for row in book["说明"].iter_rows(values_only=True) for c in row if c)
    found = re.search(
        r"问题条目合计 (\d+) 条：错误合计 (\d+) 条（须逐条答复），警告 (\d+) 条.*?涉及学生数 (\d+) 人",
        text,
    )
    assert found, text
    items, errors, warnings, students = map(int, found.groups())
    groups = int(re.search(r"重复组数 (\d+)", text).group(1))
    return {
        "合计": items,
        "错误合计": errors,
        "警告": warnings,
        "涉及学生数": students,
        "重复组数": groups,
    }


@pytest.mark.parametrize("which", ["first", "second"])
def test_manifest_summary_progress_and_county_sheets_agree(first_run, answered_runs, which):
    run_dir = first_run["run_dir"] if which == "first" else answered_runs["second"]["run_dir"]
    manifest = reports.read_manifest(run_dir)
    summary_book = openpyxl.load_workbook(run_dir / "province" / "summary.xlsx")
    county_rows = sheet_rows(summary_book["区县汇总"])
    by_code = {r["区县代码"]: r for r in county_rows[:-1]}
    progress = {r["区县代码"]: r for r in sheet_rows(summary_book["处理进度"])[:-1]}
    for entry in manifest["counties"]:
        code = entry["county_code"]
        (path,) = (run_dir / "counties" / code).glob("*_问题学籍清单.xlsx")
        book = openpyxl.load_workbook(path)
        about = about_figures(book)
        total = sheet_rows(book["汇总"])[-1]
        listed = {
            "合计": entry["items"],
            "错误合计": entry["error_items"],
            "警告": entry["warning_items"],
            "涉及学生数": entry["records_with_problems"],
        }
        for label, figure in listed.items():
            assert about[label] == total[label] == by_code[code][label] == figure, (code, label)
        for label in ("合计", "错误合计", "警告"):
            assert progress[code][label] == listed[label], (code, label)
        assert about["重复组数"] == by_code[code]["重复组数"] == entry["duplicate_groups"]
        # The rows of the sheets are the items.
        rows = {n: len(sheet_rows(book[n])) for n in ("错误学籍", "重复学籍", "提醒")}
        counterparts = sum(r["备注"] == COUNTERPART_NOTE for r in sheet_rows(book["重复学籍"]))
        assert rows["错误学籍"] + rows["重复学籍"] - counterparts == entry["error_items"]
        assert rows["提醒"] == entry["warning_items"]
    # The province: the summary's totals row, 处理进度's and what the command line prints.
    totals = reports.manifest_totals(manifest)
    province = county_rows[-1]
    assert province["区县代码"] == "全省合计"
    assert (province["合计"], province["错误合计"], province["警告"]) == (
        totals["items"],
        totals["error_items"],
        totals["warning_items"],
    )
    assert province["涉及学生数"] == totals["records_with_problems"]
    assert sum(r["合计"] for r in progress.values()) == totals["items"]
    assert totals["items"] == 8 + 6  # eight problem rows, six records in groups
    assert totals["duplicate_groups"] == 3
    printed = reports.totals_lines(manifest)[0]
    assert printed.startswith(
        f"问题条目合计 {totals['items']} 条：错误合计 {totals['error_items']} 条"
    )
    about = "\n".join(
        str(c) for row in summary_book["说明"].iter_rows(values_only=True) for c in row if c
    )
    assert f"问题条目合计 {totals['items']} 条：错误合计 {totals['error_items']} 条" in about


# --- the province summary ------------------------------------------------------------------------


def chart_parts(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as archive:
        return {
            name: archive.read(name).decode("utf-8")
            for name in archive.namelist()
            if re.fullmatch(r"xl/charts/chart\d+\.xml", name)
        }


def test_summary_has_native_charts_reading_its_tables(first_run, answered_runs):
    first = chart_parts(first_run["run_dir"] / "province" / "summary.xlsx")
    assert len(first) == 3  # one run: no trend yet
    charts = chart_parts(answered_runs["second"]["run_dir"] / "province" / "summary.xlsx")
    assert len(charts) == 4
    text = "\n".join(charts.values())
    assert '<c:barDir val="col"/>' in text and '<c:barDir val="bar"/>' in text
    assert '<c:grouping val="stacked"/>' in text and "<c:lineChart>" in text
    for sheet in ("区县汇总", "区县排名", "地市汇总", "历次运行"):
        assert f"{sheet}!$" in text, sheet
    book = openpyxl.load_workbook(answered_runs["second"]["run_dir"] / "province" / "summary.xlsx")
    assert book.sheetnames == [
        "说明",
        "图表",
        "区县汇总",
        "区县排名",
        "地市汇总",
        "规则统计",
        "隔离行",
        "处理进度",
        "历次运行",
    ]
    history = sheet_rows(book["历次运行"])
    assert [r["运行编号"] for r in history[:-1]] == [
        first_run["run_id"],
        answered_runs["second"]["run_id"],
    ]
    progress = sheet_rows(book["处理进度"])[-1]
    assert history[-2]["本次已答复"] == progress["本次已答复"] == 4  # four records answered
    prefectures = sheet_rows(book["地市汇总"])
    assert [r["地市"] for r in prefectures[:-1]] == ["广州市"]
    assert prefectures[-1]["合计"] == sheet_rows(book["区县汇总"])[-1]["合计"]


def test_counties_are_ranked_by_rate_not_by_size(monkeypatch):
    monkeypatch.setattr(summary, "MIN_STUDENTS_FOR_RATE", 100)
    table = pd.DataFrame(
        {
            "区县代码": ["440103", "440104", "440106"],
            "区县名称": ["荔湾区", "越秀区", "天河区"],
            "地市": ["广州市"] * 3,
            "在籍学生数": [10_000, 1_000, 50],
            "错误合计": [100, 20, 10],
            "合计": [120, 25, 10],
        }
    )
    ranked = summary.ranked_counties(table)
    assert ranked["区县名称"].tolist() == ["越秀区", "荔湾区", "天河区"]
    assert ranked[summary.RATE].tolist()[:2] == [20.0, 10.0]
    assert pd.isna(ranked[summary.RATE].iloc[2])  # 50 students: too few for a rate


# --- the ledger ----------------------------------------------------------------------------------


def test_ledger_is_private_and_holds_no_identifiers(first_run, answered_runs):
    path = first_run["out_root"] / "ledger.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    roster = first_run["roster"]
    values = {v for c in ("id_number", "student_no", "name") for v in roster[c].dropna()}
    values |= {v[6:14] for v in roster["id_number"].dropna()}  # birth dates inside the IDs
    stored = ledger.snapshot(path)
    cells = [str(c) for rows in stored.values() for row in rows for c in row]
    assert not [(v, c) for c in cells for v in values if v in c]
    columns = {
        row[1]
        for row in sqlite3.connect(path).execute("SELECT * FROM pragma_table_info('problems')")
    }
    assert "identity" not in columns


def test_a_schema_1_ledger_loses_its_identities(tmp_path):
    path = tmp_path / "ledger.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE,
            province TEXT, run_date TEXT NOT NULL, recorded_at TEXT NOT NULL, counts TEXT);
        CREATE TABLE problems (key TEXT PRIMARY KEY, kind TEXT NOT NULL, rule TEXT, field TEXT,
            severity TEXT, identity TEXT, first_seen_seq INTEGER NOT NULL,
            first_seen_date TEXT NOT NULL, last_seen_seq INTEGER NOT NULL,
            last_seen_date TEXT NOT NULL, opened_seq INTEGER NOT NULL, status TEXT NOT NULL,
            status_seq INTEGER NOT NULL);
        CREATE TABLE problem_counties (key TEXT NOT NULL, county_code TEXT NOT NULL,
            PRIMARY KEY (key, county_code)) WITHOUT ROWID;
        CREATE TABLE versions (key TEXT NOT NULL, fingerprint TEXT NOT NULL,
            first_seen_seq INTEGER NOT NULL, last_seen_seq INTEGER NOT NULL,
            PRIMARY KEY (key, first_seen_seq)) WITHOUT ROWID;
        CREATE TABLE imports (id INTEGER PRIMARY KEY AUTOINCREMENT, file_name TEXT NOT NULL,
            sha256 TEXT NOT NULL UNIQUE, run_seq INTEGER NOT NULL, county_code TEXT NOT NULL,
            imported_at TEXT NOT NULL, answers INTEGER NOT NULL);
        CREATE TABLE answers (id INTEGER PRIMARY KEY AUTOINCREMENT, import_id INTEGER NOT NULL,
            key TEXT NOT NULL, county_code TEXT NOT NULL, run_seq INTEGER NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('佐证', '变更', '删除')), note TEXT,
            fingerprint TEXT, sheet TEXT, row INTEGER);
        INSERT INTO runs VALUES (1, '44-20261101', '44', '2026-11-01', 't', '{}');
        INSERT INTO problems VALUES ('P0123456789abcdef', 'P', 'ID_CHECKSUM', 'id_number', 'E',
            'ID:11010519491231002X', 1, '2026-11-01', 1, '2026-11-01', 1, '未处理', 1);
        INSERT INTO problem_counties VALUES ('P0123456789abcdef', '440103');
        INSERT INTO imports VALUES (1, 'a.xlsx', 'x', 1, '440103', 't', 1);
        INSERT INTO answers VALUES (1, 1, 'P0123456789abcdef', '440103', 1, '变更', '已改',
            'f', '错误学籍', 2);
        """
    )
    old.close()
    path.chmod(0o644)
    connection = ledger.connect(path)
    try:
        columns = [r[1] for r in connection.execute("SELECT * FROM pragma_table_info('problems')")]
        assert "identity" not in columns
        assert connection.execute("SELECT key, member, action, note FROM answers").fetchall() == [
            ("P0123456789abcdef", None, "变更", "已改")
        ]
        assert connection.execute("SELECT items FROM problem_counties").fetchall() == [(1,)]
    finally:
        connection.close()
    assert b"11010519491231002X" not in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_schema_2_ledger_keeps_its_answers_ids_and_counter(tmp_path):
    path = tmp_path / "ledger.sqlite"
    old = sqlite3.connect(path)
    old.executescript(ledger.SCHEMA)
    old.executescript(
        """
        DROP TABLE answers;
        CREATE TABLE answers (id INTEGER PRIMARY KEY AUTOINCREMENT,
            import_id INTEGER NOT NULL REFERENCES imports(id), key TEXT NOT NULL, member TEXT,
            county_code TEXT NOT NULL, run_seq INTEGER NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('佐证', '变更', '删除', '保留')),
            new_value TEXT, note TEXT, fingerprint TEXT, sheet TEXT, row INTEGER);
        INSERT INTO meta VALUES ('schema_version', '2');
        INSERT INTO runs VALUES (1, '44-20261101', '44', '2026-11-01', 't', '{}');
        INSERT INTO imports VALUES (1, 'a.xlsx', 'x', 1, '440103', 't', 2);
        INSERT INTO answers VALUES (3, 1, 'Dabc', '2', '440103', 1, '保留', NULL, '', 'f', 's', 4);
        INSERT INTO answers VALUES (7, 1, 'Pabc', NULL, '440103', 1, '变更', 'x', '已改', 'f',
            's', 2);
        INSERT INTO answers VALUES (9, 1, 'Pdef', NULL, '440103', 1, '佐证', NULL, '', 'f', 's', 3);
        DELETE FROM answers WHERE id = 9;
        """
    )
    old.close()
    connection = ledger.connect(path)
    try:
        version = connection.execute("SELECT value FROM meta WHERE name = 'schema_version'")
        assert version.fetchone() == (str(ledger.SCHEMA_VERSION),)
        assert connection.execute("SELECT id, key, member, action FROM answers").fetchall() == [
            (3, "Dabc", "2", "保留"),
            (7, "Pabc", None, "变更"),
        ]
        insert = (
            "INSERT INTO answers (import_id, key, county_code, run_seq, action)"
            " VALUES (1, 'Pxyz', '440103', 1, ?)"
        )
        # The counter goes on from the deleted answer's id, as before the migration.
        assert connection.execute(insert, ("删除",)).lastrowid == 10
        with pytest.raises(sqlite3.IntegrityError):
            connection.execute(insert, ("同意",))
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
        assert "answers_v2" not in tables
    finally:
        connection.close()
