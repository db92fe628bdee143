"""County lists a clerk answered and saved with an office suite, read and imported as such.

tests/data/office_saved/ holds one county list (越秀区 440104 of run 44-20261102, written by the
report writer for ``python bench/answers.py --answers 240 --counties 2 --prepare-only``) as a
clerk could send it back: answered, its error list sorted the other way round, a column of the
clerk's own inserted before 处理方式, the sheet renamed, 备注 with ``&``, ``<``, ``>``, a line
break and blanks around the words, a number typed into 更正后的值, two rows left unanswered
(one with a 备注). ``clerk_openpyxl.xlsx`` is that workbook as openpyxl saved it (inline strings);
``clerk_libreoffice.xlsx`` is the same file opened and saved again by LibreOffice Calc 7.4
(``soffice --headless --convert-to xlsx``: shared strings with rich text runs, its own styles and
sheet XML), as a clerk working in an office suite returns it. ``ledger.sqlite`` is the ledger of
the run that wrote the list, before any answer.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from xueji_quality import answers
from xueji_quality.answers import read_answer_file

FOLDER = Path(__file__).parent / "data" / "office_saved"
SAVED_BY = {
    "openpyxl": FOLDER / "clerk_openpyxl.xlsx",
    "LibreOffice": FOLDER / "clerk_libreoffice.xlsx",
}
RENAMED = "错误学籍（已核）"


@pytest.mark.parametrize("suite", sorted(SAVED_BY))
def test_a_list_saved_by_an_office_suite_reads_as_the_clerk_left_it(suite):
    returned = read_answer_file(SAVED_BY[suite])
    assert (returned.run_id, returned.county_code) == ("44-20261102", "440104")
    assert returned.issues == []
    table = returned.table
    assert len(table) == 131
    assert returned.unanswered == 2
    assert set(table["sheet"]) == {RENAMED, "重复学籍"}
    by_key = table.set_index("key")
    assert by_key.loc["Pa8866aeced9bcbb5", ["action", "note"]].tolist() == [
        "佐证",
        "户口簿 & 出生证明 <已核>",
    ]
    assert by_key.loc["P63d59e299223798b", "note"] == "第一行\n第二行"
    assert by_key.loc["P86dc8d3b4f708caa", ["action", "note"]].tolist() == ["删除", "已转学"]
    assert by_key.loc["P774e3921c5062518", ["action", "new_value"]].tolist() == ["变更", "3"]
    # The list was sorted the other way round: row numbers are the sheet's as the clerk left it.
    assert by_key.loc["Pa8866aeced9bcbb5", "row"] == 2
    assert table["action"].value_counts().to_dict() == {"变更": 57, "佐证": 45, "删除": 29}


def test_libreoffice_changes_nothing_the_import_reads():
    before, after = (read_answer_file(SAVED_BY[suite]) for suite in ("openpyxl", "LibreOffice"))
    assert after.table.equals(before.table)
    assert after.unanswered == before.unanswered


def test_a_list_saved_by_libreoffice_imports_into_its_runs_ledger(tmp_path):
    out_root = tmp_path / "out"
    out_root.mkdir()
    shutil.copy(FOLDER / "ledger.sqlite", out_root / answers.LEDGER_NAME)
    imported, rejected = answers.import_answers(out_root, [SAVED_BY["LibreOffice"]])
    assert rejected == []
    assert [(r.county_code, r.answers, r.unanswered) for r in imported] == [("440104", 131, 2)]
    connection = sqlite3.connect(out_root / answers.LEDGER_NAME)
    try:
        stored = connection.execute(
            "SELECT count(*), count(fingerprint), count(DISTINCT county_code) FROM answers"
        ).fetchone()
    finally:
        connection.close()
    assert stored == (131, 131, 1)
