"""The province summary's trend reads earlier runs from the answer ledger, whatever form the
output folder was given in (the README's quick start names it relative to the working folder)."""

from __future__ import annotations

import json
import sqlite3

from xueji_quality.reports.summary_progress import run_history


def test_history_is_read_from_a_ledger_under_a_relative_output_folder(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    with sqlite3.connect(out / "ledger.sqlite") as ledger:
        ledger.execute("CREATE TABLE runs (run_id TEXT, run_date TEXT, counts TEXT)")
        figures = {"progress": {"未处理": 7, "本次已答复": 2, "本次已解决": 1}}
        ledger.execute(
            "INSERT INTO runs VALUES (?, ?, ?)", ("44-20261101", "2026-11-01", json.dumps(figures))
        )
    monkeypatch.chdir(tmp_path)
    history = run_history(out.relative_to(tmp_path))
    assert history.to_dict("records") == [
        {
            "运行编号": "44-20261101",
            "运行日期": "2026-11-01",
            "未处理": 7,
            "本次已答复": 2,
            "本次已解决": 1,
        }
    ]
