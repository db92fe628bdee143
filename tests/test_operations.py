"""What a nightly run leaves for the people and programs watching it, without running one: the
status file, old runs pruned, run ids never given twice, the fingerprint of an unchanged input,
and the words of a failure notification."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

from xueji_quality import run_fingerprint, run_status
from xueji_quality.reports import retention
from xueji_quality.reports.publish import new_run_id, update_latest


def _published(out: Path, run_id: str, finished_at: str) -> Path:
    folder = out / run_id
    (folder / "counties").mkdir(parents=True)
    (folder / "manifest.json").write_text(
        json.dumps({"run_id": run_id, "finished_at": finished_at}), encoding="utf-8"
    )
    return folder


# ---------------------------------------------------------------- old runs


def test_prune_keeps_the_newest_published_runs_and_never_latest(tmp_path):
    # Published in this order; the re-run of an earlier date (44-20261101-2) is the newest.
    for day, run_id in enumerate(["44-20261101", "44-20261102", "44-20261103", "44-20261101-2"]):
        _published(tmp_path, run_id, f"2026-11-2{day}T02:00:00+08:00")
    (tmp_path / "44-20261104").mkdir()  # no manifest: not a run, never touched
    (tmp_path / "notes").mkdir()
    update_latest(tmp_path, "44-20261101")  # an officer pointed latest back at the oldest

    removed = retention.prune_runs(tmp_path, 2, protect="44-20261101-2")

    assert removed == ["44-20261102"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "44-20261101",
        "44-20261101-2",
        "44-20261103",
        "44-20261104",
        "latest",
        "latest.txt",
        "notes",
    ]
    assert retention.prune_runs(tmp_path, 0) == []
    assert retention.prune_runs(tmp_path, 1, protect="44-20261101-2") == ["44-20261103"]


def test_a_prune_cut_short_is_finished_by_the_next_run(tmp_path):
    """The trash folder of a process killed while deleting is removed like staging folders of
    dead processes: the pruned run was renamed there whole, so no half run is ever visible."""
    trash = tmp_path / ".tmp-trash-999999999"
    (trash / "44-20261101" / "counties").mkdir(parents=True)
    _published(tmp_path, "44-20261102", "2026-11-02T02:00:00+08:00")
    assert new_run_id(tmp_path, "44", date(2026, 11, 2)) == "44-20261102-2"
    assert not trash.exists()


def test_a_run_id_is_never_given_twice_even_after_its_folder_is_gone(tmp_path):
    ledger = sqlite3.connect(tmp_path / "ledger.sqlite")
    ledger.execute("CREATE TABLE runs (seq INTEGER PRIMARY KEY, run_id TEXT)")
    ledger.executemany(
        "INSERT INTO runs (run_id) VALUES (?)", [("44-20261128",), ("44-20261128-2",)]
    )
    ledger.commit()
    ledger.close()
    assert new_run_id(tmp_path, "44", date(2026, 11, 28)) == "44-20261128-3"
    assert new_run_id(tmp_path, "44", date(2026, 11, 29)) == "44-20261129"


# ---------------------------------------------------------------- the status file


def test_status_records_the_flows_stage_and_the_commands_line(tmp_path):
    run_status.forget(tmp_path)
    _published(tmp_path, "44-20261127", "2026-11-27T02:00:00+08:00")
    update_latest(tmp_path, "44-20261127")
    started = run_status.begin(tmp_path, "44-20261128", province="44")
    assert run_status.read_status(tmp_path)["state"] == "运行中"
    run_status.at_stage(tmp_path, "link")
    run_status.fail(tmp_path, "运行失败：查重 的工作进程异常退出\n（多为内存不足）")
    # The command line adds its own line and exit status to the record the flow wrote.
    run_status.fail(tmp_path, "运行失败：查重 的工作进程异常退出（多为内存不足）", exit_status=5)
    status = run_status.read_status(tmp_path)
    assert status["state"] == "失败" and status["exit_status"] == 5
    assert status["run_id"] == "44-20261128" and status["started_at"] == started["started_at"]
    assert status["stage"] == "link" and status["stage_label"] == "查重"
    assert "\n" not in status["reason"] and status["published"] is None
    assert status["last_published"] == {
        "run_id": "44-20261127",
        "path": str((tmp_path / "44-20261127").resolve()),
    }
    assert oct((tmp_path / "status.json").stat().st_mode & 0o777) == "0o640"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".status")] == []

    # A new command that fails before any flow starts writes a record of its own.
    run_status.forget(tmp_path)
    run_status.fail(tmp_path, "输入错误：文件 a.csv：路径不存在", exit_status=2, province="44")
    status = run_status.read_status(tmp_path)
    assert status["stage"] == "preflight" and status["run_id"] is None
    assert run_status.settle(tmp_path, 0)["exit_status"] == 0


# ---------------------------------------------------------------- unchanged input


def _options(**changed) -> dict:
    options = {"province": "44", "run_date": date(2026, 11, 28)} | changed
    return run_fingerprint.options_fingerprint(**options)


def test_fingerprint_differences_name_what_changed(tmp_path):
    base = run_fingerprint.fingerprint(["b", "a"], _options(), "")
    same = json.loads(json.dumps(base))  # as read back from a manifest
    again = run_fingerprint.fingerprint(["a", "b"], _options(), "")
    assert run_fingerprint.differences(same, again) == []
    assert run_fingerprint.unchanged_since({"run_id": "44-1", "fingerprint": same}, base) == "44-1"
    later = _options(run_date=date(2026, 11, 30))
    assert later == _options()  # the same month: the checks say the same
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "roster.json").write_text("{}")
    changed = run_fingerprint.fingerprint(
        ["a", "c"], _options(counties=["440106"], suites_dir=rules), "x"
    )
    assert run_fingerprint.differences(same, changed) == [
        "导出文件",
        "--counties",
        "规则套件",
        "新导入的答复",
    ]
    assert run_fingerprint.differences(None, base) == ["上次运行没有记录其输入与选项"]
    assert run_fingerprint.DEFAULT_LINKAGE_CONFIG.is_file()


def test_answers_fingerprint_changes_with_each_imported_file(tmp_path):
    assert run_fingerprint.answers_fingerprint(tmp_path) == ""
    ledger = sqlite3.connect(tmp_path / "ledger.sqlite")
    ledger.execute("CREATE TABLE imports (id INTEGER PRIMARY KEY, sha256 TEXT)")
    ledger.execute("INSERT INTO imports (sha256) VALUES ('a1')")
    ledger.commit()
    one = run_fingerprint.answers_fingerprint(tmp_path)
    ledger.execute("INSERT INTO imports (sha256) VALUES ('b2')")
    ledger.commit()
    ledger.close()
    assert one and run_fingerprint.answers_fingerprint(tmp_path) not in ("", one)


# ---------------------------------------------------------------- notification


def test_failure_notification_says_run_stage_reason_and_last_published(tmp_path, monkeypatch):
    from pipelines import notify

    status = {
        "run_id": "44-20261128-2",
        "stage_label": "校验",
        "reason": "输入错误：文件 a.csv 第 3 行：字段数不对",
        "last_published": {"run_id": "44-20261128", "path": "/data/out/44-20261128"},
    }
    subject, body = notify.failure_message(status, "flow-name", str(tmp_path))
    assert subject == "学籍查重查错运行失败：44-20261128-2"
    assert body.splitlines() == [
        "运行 44-20261128-2 失败",
        "阶段：校验",
        "原因：输入错误：文件 a.csv 第 3 行：字段数不对",
        "上次已发布的运行：44-20261128（/data/out/44-20261128）",
        f"状态文件：{tmp_path.resolve() / 'status.json'}",
    ]
    monkeypatch.delenv(notify.NOTIFY_ENV, raising=False)
    assert notify.notification_block(None) is None
    monkeypatch.setenv(notify.NOTIFY_ENV, "slack-webhook/ops")
    assert notify.notification_block(None) == "slack-webhook/ops"
    assert notify.notification_block("email/officer") == "email/officer"


def test_pruned_runs_leave_no_trash_behind(tmp_path):
    for day in range(1, 5):
        _published(tmp_path, f"44-2026110{day}", f"2026-11-0{day}T02:00:00+08:00")
    assert retention.prune_runs(tmp_path, 1) == ["44-20261103", "44-20261102", "44-20261101"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["44-20261104"]
