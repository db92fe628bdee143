"""The county workbook contract: the writer lays a workbook out by it and the importer reads a
returned one by it, finding columns by header wherever a clerk moved them.

A small run (the hand-made tables of test_reports) goes through the answer ledger, the county
lists and publishing, as the flow does; a returned list is then edited with openpyxl.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from test_reports import LIWAN, RUN_DATE, catalogue, make_duplicates, make_problems, make_roster

from xueji_quality import answers, reports, workbook
from xueji_quality.reports.list_files import iter_county_workbooks

PROVINCE = "44"


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict:
    out_root = tmp_path_factory.mktemp("out")
    roster = make_roster()
    problems, duplicates = make_problems(), make_duplicates(roster)
    run_id = reports.new_run_id(out_root, PROVINCE, RUN_DATE)
    staging = reports.staging_dir(out_root, run_id)
    result = answers.apply_ledger(
        out_root, run_id, RUN_DATE, problems, duplicates, roster, province=PROVINCE
    )
    reports.write_county_reports(
        staging,
        roster,
        result.problems,
        result.duplicates,
        province=PROVINCE,
        run_date=RUN_DATE,
        rule_catalogue=catalogue(),
        statuses=result.statuses,
    )
    run_dir = reports.publish(staging, out_root, run_id)
    answers.record_run(result)
    books = {path.parent.name: path for path in iter_county_workbooks(run_dir)}
    return {"out_root": out_root, "run_id": run_id, "books": books}


def _hidden(sheet, position: int) -> bool:
    """Whether the column at 0-based ``position`` is hidden (openpyxl groups equal columns)."""
    return any(d.hidden for d in sheet.column_dimensions.values() if d.min <= position + 1 <= d.max)


def test_writer_headers_equal_the_contract(published):
    lists = (
        (workbook.PROBLEM_SHEET, workbook.problem_columns(show_status=True), workbook.ACTIONS),
        (
            workbook.DUPLICATE_SHEET,
            workbook.duplicate_columns(show_status=True),
            workbook.DUPLICATE_ACTIONS,
        ),
    )
    for code, path in published["books"].items():
        book = openpyxl.load_workbook(path)
        assert book.sheetnames == [
            workbook.ABOUT_SHEET,
            workbook.SUMMARY_SHEET,
            workbook.PROBLEM_SHEET,
            workbook.DUPLICATE_SHEET,
            workbook.WARNING_SHEET,
            workbook.MARKER_SHEET,
        ]
        for name, columns, actions in lists:
            sheet = book[name]
            assert [c.value for c in sheet[1]] == list(workbook.headers(columns))
            assert [_hidden(sheet, i) for i in range(len(columns))] == [c.hidden for c in columns]
            (validation,) = sheet.data_validations.dataValidation
            action = get_column_letter(workbook.position(columns, "action") + 1)
            assert str(validation.sqref).split(":")[0] == f"{action}2"
            assert validation.formula1 == '"' + ",".join(actions) + '"'
        warnings = book[workbook.WARNING_SHEET]
        assert [c.value for c in warnings[1]] == list(workbook.headers(workbook.WARNING_COLUMNS))
        marker = book[workbook.MARKER_SHEET]
        assert marker.sheet_state == "hidden"
        rows = [tuple(r) for r in marker.iter_rows(values_only=True)]
        values = {"run_id": published["run_id"], "county_code": code}
        values["format"] = workbook.FORMAT_NAME
        assert rows == [(label, values[field]) for field, label in workbook.MARKER_FIELDS]


def _answer(sheet, given: dict[str, tuple[str, str]], how_many: int) -> None:
    """Answer the first ``how_many`` keys of the sheet's own rows (a group on all its rows)."""
    header = [c.value for c in sheet[1]]
    key_at, action_at = header.index(workbook.KEY_HEADER), header.index(workbook.ACTION_HEADER)
    note_at, record_at = header.index(workbook.NOTE_HEADER), header.index("记录号")
    chosen: dict[str, tuple[str, str]] = {}
    for row in sheet.iter_rows(min_row=2):
        key = row[key_at].value
        if not row[record_at].value or (key not in chosen and len(chosen) == how_many):
            continue
        action = workbook.ACTIONS[len(given) % len(workbook.ACTIONS)]
        chosen.setdefault(key, (action, f"经核实：{action}"))
        given.setdefault(key, chosen[key])
        row[action_at].value, row[note_at].value = chosen[key]


def _move_columns(sheet) -> None:
    """Reverse the columns, then insert a clerk's column where 处理方式 stood; its cells hold
    an action word, so a reader going by position would take it for the answers."""
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    before = rows[0][:]
    action_at = before.index(workbook.ACTION_HEADER)
    for r, values in enumerate(rows):
        values.reverse()
        values.insert(action_at, "学校反馈" if r == 0 else "删除")
        for c, value in enumerate(values, start=1):
            sheet.cell(row=r + 1, column=c).value = value  # None clears too
    after = [c.value for c in sheet[1]]
    for header in (workbook.KEY_HEADER, workbook.ACTION_HEADER, workbook.NOTE_HEADER):
        assert after.index(header) != before.index(header)


def test_importer_reads_answers_by_header_after_columns_move(published, tmp_path):
    original = published["books"][LIWAN]
    answered = tmp_path / "answered" / original.name
    moved = tmp_path / "moved" / original.name
    answered.parent.mkdir()
    moved.parent.mkdir()
    book = openpyxl.load_workbook(original)
    given: dict[str, tuple[str, str]] = {}
    _answer(book[workbook.PROBLEM_SHEET], given, how_many=3)
    _answer(book[workbook.DUPLICATE_SHEET], given, how_many=1)
    book.save(answered)
    assert len(given) == 4 and {a for a, _ in given.values()} == set(workbook.ACTIONS)

    book = openpyxl.load_workbook(answered)
    for name in (workbook.PROBLEM_SHEET, workbook.DUPLICATE_SHEET):
        _move_columns(book[name])
    book[workbook.PROBLEM_SHEET].title = "已核实"
    book.save(moved)

    def read(path: Path) -> dict[str, tuple[str, str]]:
        returned = answers.read_answer_file(path)
        assert returned.issues == []
        return {
            workbook.row_key(a.key, a.member) if a.member else a.key: (a.action, a.note)
            for a in returned.answers
        }

    assert read(answered) == given
    assert read(moved) == given

    imported = answers.import_file(published["out_root"], moved)
    assert imported.answers == len(given) and imported.county_code == LIWAN
    connection = sqlite3.connect(published["out_root"] / "ledger.sqlite")
    stored = connection.execute(
        "SELECT key || IFNULL('-' || member, ''), action, note FROM answers"
    ).fetchall()
    connection.close()
    assert {key: (action, note) for key, action, note in stored} == given
