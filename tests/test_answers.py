"""County answers: problem keys, the ledger, importing returned lists, and the next runs.

A generated roster goes through ingest, validation and linkage once; each "run" below applies
the ledger, writes the county lists, publishes and records the run, as the flow does.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from xueji_quality import answers, generator, ingest, linkage, reports, runinfo, validate
from xueji_quality.answers import importer, ledger
from xueji_quality.reports import list_files
from xueji_quality.reports.summary import problem_items, roster_context, write_summary

PROVINCE = "44"
DAY_ONE = date(2026, 11, 2)


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("export")
    generator.write_sample(folder, 2000, 11, PROVINCE, "csv", counties=3)
    staged = ingest.read_exports([folder / "roster.csv"], PROVINCE)
    return {
        "staged": staged,
        "catalogue": validate.rule_catalogue(),
        **check(staged.roster, DAY_ONE),
    }


def check(roster: pd.DataFrame, run_date: date) -> dict:
    problems = validate.validate_roster(roster, PROVINCE, run_date)
    duplicates = linkage.find_duplicates(roster).duplicates
    return {"roster": roster, "problems": problems, "duplicates": duplicates}


def run(out_root: Path, tables: dict, run_date: date, catalogue) -> dict:
    """What the flow does between link and publish, with the ledger wired in."""
    roster, problems, duplicates = tables["roster"], tables["problems"], tables["duplicates"]
    run_id = reports.new_run_id(out_root, PROVINCE, run_date)
    staging = reports.staging_dir(out_root, run_id)
    result = answers.apply_ledger(
        out_root, run_id, run_date, problems, duplicates, roster, province=PROVINCE
    )
    county_files = reports.write_county_reports(
        staging,
        roster,
        result.problems,
        result.duplicates,
        province=PROVINCE,
        run_date=run_date,
        rule_catalogue=catalogue,
        statuses=result.statuses,
    )
    items = problem_items(roster_context(roster), result.problems, result.duplicates)
    (staging / "province").mkdir()
    write_summary(
        staging / "province" / "summary.xlsx",
        roster,
        result.problems,
        items,
        tables.get("quarantine", pd.DataFrame(columns=["source_file", "reason"])),
        province=PROVINCE,
        run_date=run_date,
        progress=result.progress,
    )
    figures = runinfo.conservation(
        len(roster),
        roster,
        pd.DataFrame(),
        result.problems,
        result.duplicates,
        county_files,
    )
    assert figures["holds"]
    run_dir = reports.publish(staging, out_root, run_id)
    answers.record_run(result)
    return {"run_id": run_id, "run_dir": run_dir, "result": result, "counties": county_files}


def list_rows(path: Path) -> dict[str, list[dict]]:
    """Rows of every list sheet by header (the hidden key column included)."""
    book = openpyxl.load_workbook(path)
    found = {}
    for sheet in book.worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        if rows and "问题编号" in rows[0]:
            found[sheet.title] = [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]
    return found


def workbooks(run_dir: Path) -> dict[str, Path]:
    return {p.parent.name: p for p in list_files.iter_county_workbooks(run_dir)}


def answer_like_a_clerk(path: Path, choose) -> dict[str, str]:
    """Fill 处理方式 where ``choose(row)`` says so; re-sort rows, add a column, rename a sheet.

    Returns key -> action of what was answered.
    """
    book = openpyxl.load_workbook(path)
    given: dict[str, str] = {}
    for sheet in list(book.worksheets):
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        if not rows or "问题编号" not in rows[0]:
            continue
        header = rows[0]
        action_at, note_at = header.index("处理方式"), header.index("备注")
        key_at = header.index("问题编号")
        body = rows[1:]
        for row in body:
            action = choose(dict(zip(header, row, strict=True)))
            if action and given.get(row[key_at], action) == action:
                row[action_at] = action
                row[note_at] = f"经核实：{action}"
                given[row[key_at]] = action
        # A clerk sorts by name, descending, and puts a column of their own in front.
        body.sort(key=lambda r: str(r[header.index("姓名")] or ""), reverse=True)
        for r, values in enumerate([header, *body], start=1):
            for c, value in enumerate(values, start=1):
                sheet.cell(row=r, column=c, value=value)
        sheet.insert_cols(1)
        sheet.cell(row=1, column=1, value="学校反馈")
        # Filtered (rows hidden) and a column hidden.
        sheet.auto_filter.ref = sheet.dimensions
        sheet.row_dimensions[2].hidden = True
        sheet.column_dimensions["C"].hidden = True
        sheet.title = sheet.title + "-已核"
    # A sheet of the clerk's own whose labels look like the hidden markers.
    notes = book.create_sheet("备忘", 0)
    notes.append(["区县代码", "999999"])
    notes.append(["运行编号", "随手记"])
    book.save(path)
    return given


def returned_copy(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(path, folder / path.name))


@pytest.fixture(scope="module")
def rounds(export, tmp_path_factory) -> dict:
    """Run, answer, import, run again, then run on an export with one changed record."""
    out_root = tmp_path_factory.mktemp("out")
    catalogue = export["catalogue"]
    first = run(out_root, export, DAY_ONE, catalogue)
    status = first["result"].statuses
    assert set(status["status"]) == {ledger.NEW}
    warnings = status.loc[(status["kind"] == "P") & (status["severity"] == "W"), "problem_key"]
    errors = status.loc[(status["kind"] == "P") & (status["severity"] == "E"), "problem_key"]
    groups = status.loc[status["kind"] == "D", "problem_key"].drop_duplicates()
    assert len(warnings) >= 3 and len(errors) >= 6 and len(groups) >= 4
    # Warnings need no answer (their sheet has no answer column): groups and errors are answered.
    confirm = set(groups.iloc[:2])
    confirm_error = errors.iloc[0]
    corrected = set(errors.iloc[1:4])
    chosen = {**dict.fromkeys(confirm, "佐证"), confirm_error: "佐证"}
    chosen.update(dict.fromkeys(corrected, "变更"))

    returned = tmp_path_factory.mktemp("returned")
    given: dict[str, str] = {}
    paths = []
    for code, path in workbooks(first["run_dir"]).items():
        copy = returned_copy(path, returned / code)
        # Each of the county's own records of a group is answered (counterparts stay blank).
        given.update(
            answer_like_a_clerk(
                copy, lambda row: chosen.get(row["问题编号"][:17]) if row.get("记录号") else None
            )
        )
        paths.append(copy)
    assert {key[:17] for key in given} == set(chosen)
    assert any(len(key) > 17 for key in given)  # records of groups answered one by one
    imported, rejected = answers.import_answers(out_root, paths)
    assert rejected == []

    second = run(out_root, export, DAY_ONE + timedelta(days=1), catalogue)

    # The next export: rows in another order, new record keys, and one record of a confirmed
    # duplicate group moved to another class.
    roster = export["roster"].sample(frac=1, random_state=5).reset_index(drop=True)
    roster["record_id"] = "N" + roster["record_id"].astype("string")
    roster["export_key"] = roster["record_id"]
    first_group = groups.iloc[0]
    members = first["result"].duplicates
    member = members.loc[members["problem_key"] == first_group, "record_id"].iloc[0]
    changed = roster["record_id"] == "N" + member
    roster.loc[changed, "class_name"] = "99班"
    third = run(
        out_root, check(roster, DAY_ONE + timedelta(days=2)), DAY_ONE + timedelta(days=2), catalogue
    )
    return {
        "out_root": out_root,
        "first": first,
        "second": second,
        "third": third,
        "confirm": confirm,
        "confirm_error": confirm_error,
        "corrected": corrected,
        "warnings": set(warnings.iloc[:2]),
        "groups": set(groups.iloc[:2]),
        "changed_group": first_group,
        "imported": imported,
        "returned": returned,
        "paths": paths,
    }


def test_keys_do_not_depend_on_row_order_or_record_keys(export):
    roster, problems = export["roster"], export["problems"]
    keys = answers.problem_keys(problems, roster)["problem_key"]
    assert keys.is_unique
    assert keys.str.fullmatch(r"P[0-9a-f]{16}").all()
    shuffled = roster.sample(frac=1, random_state=3).reset_index(drop=True)
    shuffled["record_id"] = "X" + shuffled["record_id"]
    moved = problems.sample(frac=1, random_state=4).assign(record_id=lambda f: "X" + f["record_id"])
    again = answers.problem_keys(moved, shuffled)["problem_key"]
    assert set(again) == set(keys)
    groups = answers.group_keys(export["duplicates"], roster)["problem_key"]
    assert groups.nunique() == export["duplicates"]["group_id"].nunique()


def test_two_registrations_of_one_id_get_two_keys():
    roster = pd.DataFrame(
        {
            "record_id": ["a", "b"],
            "id_number": ["11010519491231002X"] * 2,
            "student_no": pd.array([pd.NA, pd.NA], dtype="string"),
            "name": ["张伟", "张玮"],
            "birth_date": ["1949-12-31"] * 2,
            "school_code": ["2144000001", "2144000002"],
        },
        dtype="string",
    )
    problems = pd.DataFrame(
        {"record_id": ["a", "b"], "rule": ["AGE_GRADE"] * 2, "field": ["birth_date"] * 2},
        dtype="string",
    )
    keys = answers.problem_keys(problems, roster)
    assert keys["problem_key"].nunique() == 2
    assert (answers.record_identity(roster) == "ID:11010519491231002X").all()
    # A change to the record changes the fingerprint, not the key.
    edited = roster.assign(name=["张伟", "张炜"])
    again = answers.problem_keys(problems, edited)
    assert list(again["problem_key"]) == list(keys["problem_key"])
    assert again["fingerprint"].iloc[1] != keys["fingerprint"].iloc[1]
    assert again["fingerprint"].iloc[0] == keys["fingerprint"].iloc[0]


def test_copies_of_one_record_in_a_group_keep_their_key_and_members():
    roster = pd.DataFrame(
        {
            "record_id": ["r2", "r1", "r3"],
            "id_number": ["11010519491231002X"] * 3,
            "name": ["张伟"] * 3,
            "birth_date": ["1949-12-31"] * 3,
            "school_code": ["2144000001", "2144000001", "2144000002"],
        },
        dtype="string",
    )
    duplicates = pd.DataFrame(
        {"group_id": ["G"] * 3, "record_id": ["r2", "r3", "r1"], "dup_class": ["DUP_ID"] * 3},
        dtype="string",
    )
    # The ledger keeps keys from run to run: these are the values earlier versions wrote.
    for rows in (duplicates, duplicates.iloc[::-1].reset_index(drop=True)):
        keys = answers.group_keys(rows, roster)
        assert set(keys["problem_key"]) == {"D863fa93bf4385164"}
        assert set(keys["fingerprint"]) == {"3fc9f6a765fd6a50"}
        # Two copies of the whole record are told apart by record_id, whatever the rows' order.
        members = dict(zip(rows["record_id"], keys["member"], strict=True))
        assert members == {"r1": "1", "r2": "2", "r3": "3"}


def test_workbooks_carry_hidden_keys_and_markers(rounds):
    run_dir = rounds["first"]["run_dir"]
    for code, path in workbooks(run_dir).items():
        book = openpyxl.load_workbook(path)
        marker = book["清单标识"]
        assert marker.sheet_state == "hidden"
        assert marker["B1"].value == rounds["first"]["run_id"]
        assert marker["B2"].value == code
        sheet = book["错误学籍"]
        header = [c.value for c in sheet[1]]
        assert header[-1] == "问题编号" and "状态" in header
        letter = openpyxl.utils.get_column_letter(len(header))
        assert sheet.column_dimensions[letter].hidden


def test_import_reports_what_it_read(rounds):
    imported = rounds["imported"]
    assert all(not r.already_imported for r in imported)
    assert sum(r.answers for r in imported) >= len(rounds["confirm"]) + 1 + len(rounds["corrected"])
    connection = sqlite3.connect(rounds["out_root"] / "ledger.sqlite")
    stored = connection.execute(
        "SELECT a.key, a.action, a.note, i.sha256, i.file_name FROM answers a"
        " JOIN imports i ON i.id = a.import_id"
    ).fetchall()
    connection.close()
    expected = {**dict.fromkeys(rounds["confirm"], "佐证"), rounds["confirm_error"]: "佐证"}
    expected.update(dict.fromkeys(rounds["corrected"], "变更"))
    assert {key: action for key, action, *_ in stored} == expected
    assert all(note.startswith("经核实") and len(sha) == 64 for _, _, note, sha, _ in stored)
    again, rejected = answers.import_answers(rounds["out_root"], rounds["paths"][:1])
    assert rejected == [] and again[0].already_imported


def test_confirmed_groups_and_warnings_are_suppressed_next_run(rounds):
    second = rounds["second"]["result"]
    listed = set(second.problems["problem_key"]) | set(second.duplicates["problem_key"])
    assert not (rounds["confirm"] & listed)
    status = second.statuses.drop_duplicates("problem_key").set_index("problem_key")["status"]
    assert set(status[list(rounds["confirm"])]) == {ledger.CONFIRMED}
    assert second.counts["suppressed"] == len(rounds["confirm"])
    assert second.counts["suppressed_duplicate_groups"] == len(rounds["groups"])
    assert second.counts["suppressed_warnings"] == 0
    # Warnings stay listed on 提醒, unanswered and not homework.
    assert set(rounds["warnings"]) <= set(second.problems["problem_key"])
    # An error a clerk "proved" stays listed, marked as such.
    assert status[rounds["confirm_error"]] == ledger.CONFIRMED
    assert rounds["confirm_error"] in set(second.problems["problem_key"])
    # Corrections the export does not show yet.
    assert set(status[list(rounds["corrected"])]) == {ledger.ANSWERED_NOT_FIXED}
    untouched = set(status.index) - rounds["confirm"] - rounds["corrected"]
    assert set(status[list(untouched - {rounds["confirm_error"]})]) == {ledger.OPEN}


def test_second_run_workbooks_show_status(rounds):
    second = rounds["second"]
    shown: dict[str, str] = {}
    for path in workbooks(second["run_dir"]).values():
        for rows in list_rows(path).values():
            shown.update({r["问题编号"]: r["状态"] for r in rows})
    assert not (rounds["confirm"] & {key[:17] for key in shown})
    assert {shown[k] for k in rounds["corrected"]} == {ledger.ANSWERED_NOT_FIXED}
    assert shown[rounds["confirm_error"]] == ledger.CONFIRMED
    book = openpyxl.load_workbook(second["run_dir"] / "province" / "summary.xlsx")
    rows = list(book["处理进度"].iter_rows(values_only=True))
    header = rows[0]
    figures = [dict(zip(header, r, strict=True)) for r in rows[1:-1]]
    assert sum(f["本次已答复"] for f in figures) >= len(rounds["confirm"]) + len(
        rounds["corrected"]
    )
    assert sum(f["不再列出"] for f in figures) >= len(rounds["confirm"])
    assert max(f["最久未处理天数"] for f in figures) == 1
    assert sum(f["新增"] for f in figures) == 0


def test_changed_record_reopens_its_confirmed_group(rounds):
    third = rounds["third"]["result"]
    status = third.statuses.drop_duplicates("problem_key").set_index("problem_key")["status"]
    assert status[rounds["changed_group"]] == ledger.REOPENED
    assert rounds["changed_group"] in set(third.duplicates["problem_key"])
    # Everything else keeps its status although rows and record keys all changed.
    others = rounds["confirm"] - {rounds["changed_group"]}
    assert set(status[list(others)]) == {ledger.CONFIRMED}
    assert set(status[list(rounds["corrected"])]) == {ledger.ANSWERED_NOT_FIXED}
    assert third.counts["by_status"][ledger.NEW] == 0
    assert third.counts["suppressed"] == len(others)


def _edit(path: Path, edit) -> None:
    book = openpyxl.load_workbook(path)
    edit(book)
    book.save(path)


def _first_list_sheet(book, rows: int = 1):
    for sheet in book.worksheets:
        header = [c.value for c in sheet[1]]
        if "问题编号" in header and sheet.max_row > rows:
            return sheet, header
    raise AssertionError("no list sheet with rows")


@pytest.fixture
def fresh(rounds, tmp_path) -> dict:
    """Untouched copies of two counties' first-run workbooks and the ledger's state."""
    books = workbooks(rounds["first"]["run_dir"])
    # The two longest lists (a sample also has one-record counties).
    codes = sorted(books, key=lambda c: -books[c].stat().st_size)[:2]
    copies = {c: returned_copy(books[c], tmp_path / c) for c in codes}
    path = rounds["out_root"] / "ledger.sqlite"
    return {"copies": copies, "ledger": path, "state": ledger.snapshot(path)}


def test_answer_to_another_countys_problem_rejects_the_file(rounds, fresh):
    (mine, other) = list(fresh["copies"])
    book = openpyxl.load_workbook(fresh["copies"][other])
    sheet, header = _first_list_sheet(book)
    foreign = sheet.cell(row=2, column=header.index("问题编号") + 1).value

    def edit(book):
        sheet, header = _first_list_sheet(book)
        sheet.cell(row=2, column=header.index("处理方式") + 1, value="变更")
        sheet.cell(row=3, column=header.index("处理方式") + 1, value="删除")
        sheet.cell(row=3, column=header.index("问题编号") + 1, value=foreign)

    _edit(fresh["copies"][mine], edit)
    with pytest.raises(answers.AnswerFileError) as caught:
        answers.import_file(rounds["out_root"], fresh["copies"][mine])
    text = str(caught.value)
    assert fresh["copies"][mine].name in text and "第 3 行" in text and f"不属于区县 {mine}" in text
    assert ledger.snapshot(fresh["ledger"]) == fresh["state"]


def test_bad_values_and_altered_keys_are_reported_by_row(rounds, fresh):
    path = fresh["copies"][next(iter(fresh["copies"]))]

    def edit(book):
        sheet, header = _first_list_sheet(book, rows=3)
        action = header.index("处理方式") + 1
        key = header.index("问题编号") + 1
        sheet.cell(row=2, column=action, value="同意")
        sheet.cell(row=3, column=action, value="佐证")
        sheet.cell(row=3, column=key, value="")
        altered = sheet.cell(row=4, column=key).value
        sheet.cell(row=4, column=action, value="变更")
        sheet.cell(row=4, column=key, value=altered[:-1] + ("0" if altered[-1] != "0" else "1"))
        sheet.title = "改过名的清单"

    _edit(path, edit)
    with pytest.raises(answers.AnswerFileError) as caught:
        answers.import_file(rounds["out_root"], path)
    text = str(caught.value)
    assert "工作表“改过名的清单”第 2 行：处理方式“同意”" in text
    assert "第 3 行：问题编号缺失" in text
    assert "第 4 行：问题编号" in text and "不存在（被改动？）" in text
    assert ledger.snapshot(fresh["ledger"]) == fresh["state"]


def test_truncated_or_foreign_workbooks_are_rejected(rounds, fresh, tmp_path):
    path = fresh["copies"][next(iter(fresh["copies"]))]
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(answers.AnswerFileError, match="无法读取工作簿"):
        answers.import_file(rounds["out_root"], truncated)
    # The same list imported into another output root: not a run it produced.
    with pytest.raises(answers.AnswerFileError, match="不是本输出目录产生的运行"):
        answers.import_file(tmp_path / "elsewhere", path)
    _edit(path, lambda book: book.remove(book["清单标识"]))
    with pytest.raises(answers.AnswerFileError, match="运行编号缺失"):
        answers.import_file(rounds["out_root"], path)
    assert ledger.snapshot(fresh["ledger"]) == fresh["state"]


def _answer_everything(path: Path) -> None:
    """删除 on every error; 变更 on every own record of a group (other counties' left blank)."""

    def edit(book):
        for sheet in book.worksheets:
            header = [c.value for c in sheet[1]]
            if "问题编号" in header:
                key_at = header.index("问题编号") + 1
                for row in range(2, sheet.max_row + 1):
                    key = sheet.cell(row=row, column=key_at).value or ""
                    if "~" in key:
                        continue
                    action = "变更" if key.startswith("D") else "删除"
                    sheet.cell(row=row, column=header.index("处理方式") + 1, value=action)

    _edit(path, edit)


def test_import_interrupted_before_commit_leaves_the_ledger_as_it_was(rounds, fresh, monkeypatch):
    path = fresh["copies"][next(iter(fresh["copies"]))]
    _answer_everything(path)
    original = importer._write_answers

    def write_then_fail(connection, import_id, rows):
        original(connection, import_id, rows)
        raise OSError("disk full")

    monkeypatch.setattr(importer, "_write_answers", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        answers.import_file(rounds["out_root"], path)
    assert ledger.snapshot(fresh["ledger"]) == fresh["state"]


def test_import_killed_mid_transaction_rolls_back(rounds, fresh):
    path = fresh["copies"][next(iter(fresh["copies"]))]
    _answer_everything(path)
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from xueji_quality.answers import importer
        original = importer._write_answers
        def write_then_die(connection, import_id, rows):
            original(connection, import_id, rows)
            os.kill(os.getpid(), signal.SIGKILL)
        importer._write_answers = write_then_die
        importer.import_file(Path({str(rounds["out_root"])!r}), Path({str(path)!r}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr
    assert ledger.snapshot(fresh["ledger"]) == fresh["state"]
    # The ledger is usable afterwards and the same file imports whole.
    report = answers.import_file(rounds["out_root"], path)
    assert report.answers > 0 and not report.already_imported
    assert os.path.exists(fresh["ledger"])


def test_command_line_imports_and_rejects(rounds, fresh, capsys):
    from pipelines import cli

    good, bad = list(fresh["copies"].values())
    _edit(bad, lambda book: _first_list_sheet(book)[0].cell(row=2, column=1, value="x"))
    bad.write_bytes(bad.read_bytes()[:1000])
    code = cli.main(["import-answers", str(good), str(bad), "--out", str(rounds["out_root"])])
    out = capsys.readouterr()
    assert code == cli.EXIT_INPUT_ERROR
    assert good.name in out.out and "导入答复 0 条" in out.out
    assert bad.name in out.err and "无法读取工作簿" in out.err


def test_a_run_of_some_counties_resolves_only_their_items(rounds, export):
    last = rounds["third"]["result"]
    code = last.statuses["county_code"].value_counts().index[0]
    empty = {k: export[k].iloc[0:0] for k in ("problems", "duplicates")}
    scoped = answers.apply_ledger(
        rounds["out_root"],
        "44-20261201",
        date(2026, 12, 1),
        empty["problems"],
        empty["duplicates"],
        export["roster"],
        counties=[code],
    )
    mine = set(last.statuses.loc[last.statuses["county_code"] == code, "problem_key"])
    assert set(scoped.resolved["problem_key"]) == mine
    everything = answers.apply_ledger(
        rounds["out_root"],
        "44-20261201",
        date(2026, 12, 1),
        empty["problems"],
        empty["duplicates"],
        export["roster"],
    )
    assert set(everything.resolved["problem_key"]) == set(last.statuses["problem_key"])
    assert everything.progress["本次已解决"].sum() >= len(everything.resolved)


# --- reading and writing in bulk ---------------------------------------------------------------


def test_keys_are_parsed_as_parse_key_parses_them():
    from xueji_quality import workbook
    from xueji_quality.answers import answer_file

    keys = [
        "P0123456789abcdef",
        "D0123456789abcdef",
        "D0123456789abcdef-2",
        "D0123456789abcdef~12",
        "D0123456789abcdef-0",
        "P0123456789abcdeF",
        "P0123456789abcdef-1",
        " P0123456789abcdef",
        "P0123456789abcdef\n",
        "",
    ]
    rows = pd.DataFrame(
        {
            "sheet": "错误学籍",
            "row": range(2, 2 + len(keys)),
            "problem_key": keys,
            "action": "变更",
            "note": "",
            "new_value": "",
            "group_id": "",
        }
    )
    read = answer_file.AnswerFile(path=Path("x.xlsx"), sha256="", run_id="r", county_code="c")
    answered, shown = answer_file._answers_of(rows, read)
    expected = [(k, workbook.parse_key(k)) for k in keys]
    taken = [(k, p) for k, p in expected if p is not None and p[2]]
    assert list(zip(answered["key"], answered["member"], strict=True)) == [
        (p[0], p[1]) for _, p in taken
    ]
    assert len(read.issues) == len(keys) - len(taken)
    assert set(zip(shown["key"], shown["member"], shown["own"], strict=True)) == {
        p for _, p in expected if p is not None and p[1] is not None
    }


def test_typed_cells_read_as_the_clerk_sees_them():
    from datetime import datetime

    from xueji_quality.answers import answer_file

    cells = [" 变更\u3000", None, 3.0, 3.5, 440103201205010012, True, datetime(2026, 1, 2)]
    column = np.array(cells, dtype=object)
    assert list(answer_file._texts(column)) == [answer_file._cell(c) for c in cells]
    text = np.array(["\x1c 佐证 \u2029", "", None], dtype=object)
    assert list(answer_file._texts(text)) == ["佐证", "", ""]
    assert list(answer_file._texts(np.array([1.0, None, 2.0], dtype=object))) == ["1", "", "2"]


def test_a_batch_read_by_worker_processes_imports_as_one_read_here(rounds, tmp_path, monkeypatch):
    books = workbooks(rounds["first"]["run_dir"])
    codes = sorted(books, key=lambda c: -books[c].stat().st_size)[:2]
    paths = [returned_copy(books[c], tmp_path / "returned" / c) for c in codes]
    for path in paths:
        _answer_everything(path)
    states = []
    for name, threshold in (("here", 1 << 60), ("workers", 0)):
        root = tmp_path / name
        root.mkdir()
        shutil.copy(rounds["out_root"] / "ledger.sqlite", root / "ledger.sqlite")
        monkeypatch.setattr(importer, "PARALLEL_BYTES", threshold)
        imported, rejected = answers.import_answers(root, paths)
        assert rejected == [] and all(r.answers > 0 for r in imported)
        state = ledger.snapshot(root / "ledger.sqlite")
        state["imports"] = [r[:5] + r[6:] for r in state["imports"]]  # not imported_at
        states.append(state)
    assert states[0] == states[1]
    assert len(states[0]["answers"]) > len(
        ledger.snapshot(rounds["out_root"] / "ledger.sqlite")["answers"]
    )


def test_a_ledger_with_the_old_answer_index_loses_it_when_opened(rounds, tmp_path):
    path = tmp_path / "ledger.sqlite"
    shutil.copy(rounds["out_root"] / "ledger.sqlite", path)
    connection = sqlite3.connect(path)
    connection.execute("CREATE INDEX answers_by_key ON answers (key, id)")
    connection.close()
    before = ledger.snapshot(path)
    ledger.connect(path).close()
    connection = sqlite3.connect(path)
    names = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert "answers_by_key" not in names and ledger.snapshot(path) == before


def test_the_deciding_answer_is_chosen_per_record_since_the_key_was_opened():
    from xueji_quality.answers.ledger_state import deciding_answers

    known = np.array(["K1", "K2", "K3", "K5", "K6", "K7"], dtype=object)
    opened = np.array([2, 1, 5, 1, 1, 1])
    # id, key, member, run seq, action (in id order, as the ledger holds them)
    given = [
        (1, "K1", None, 1, "删除"),  # before K1 was re-opened: no longer counts
        (2, "K1", "A", 2, "佐证"),
        (3, "K1", "B", 3, "保留"),
        (4, "K2", "A", 1, "佐证"),
        (5, "K2", "A", 2, "变更"),  # A's latest: acting beats B's proof
        (6, "K2", "B", 3, "佐证"),
        (7, "K3", None, 4, "佐证"),  # K3 opened at run 5: nothing decides
        (8, "K4", None, 1, "删除"),  # a key the ledger does not know
        (9, "K5", None, 1, "佐证"),
        (10, "K5", None, 1, "删除"),  # the group as a whole: the latest answer counts
        (11, "K6", "A", 1, "删除"),
        (12, "K6", "B", 1, "变更"),  # both act: the latest of them
        (13, "K7", "A", 1, "保留"),
    ]
    ids, keys, members, seqs, actions = zip(*given, strict=True)
    rows, chosen = deciding_answers(
        known,
        opened,
        np.array(ids),
        keys,
        members,
        np.array(seqs),
        np.array(actions, dtype=object),
    )
    decided = dict(zip(known[rows], np.array(ids)[chosen].tolist(), strict=True))
    assert decided == {"K1": 2, "K2": 5, "K5": 10, "K6": 12, "K7": 13}
