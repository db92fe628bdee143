"""The nightly deployment, its inbox handling, its record in the status file and the runs it
keeps."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from xueji_quality import inbox
from xueji_quality.files import sha256_file


def test_deployment_carries_the_cron_schedule_in_shanghai_time(tmp_path):
    from pipelines.nightly import nightly_deployment

    deployment = nightly_deployment("44", str(tmp_path), str(tmp_path / "out"), "30 1 * * *")
    assert deployment.name == "nightly-44"
    [schedule] = deployment.schedules
    assert schedule.schedule.cron == "30 1 * * *"
    assert schedule.schedule.timezone == "Asia/Shanghai"
    assert deployment.parameters["province"] == "44"
    assert deployment.parameters["suites_dir"] is None
    with_rules = nightly_deployment("44", str(tmp_path), "out", suites_dir="rules")
    assert with_rules.parameters["suites_dir"] == str((Path.cwd() / "rules").resolve())


def _status(out: Path) -> dict:
    return json.loads((out / "status.json").read_text(encoding="utf-8"))


def test_empty_inbox_is_a_clean_no_op(tmp_path, prefect_harness):
    from pipelines.nightly import nightly_run

    (tmp_path / "notes.txt").write_text("not an export")
    result = nightly_run(inbox_dir=str(tmp_path), province="44", out=str(tmp_path / "out"))
    assert result["status"] == "empty-inbox"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".lock", "status.json"]
    status = _status(tmp_path / "out")
    assert status["state"] == "成功" and status["published"] is None
    assert "没有学籍导出文件" in status["reason"]


def test_newest_batch_and_already_processed(tmp_path):
    old, new_a, new_b = (tmp_path / n for n in ("old.csv", "a.csv", "b.xlsx"))
    for path in (old, new_a, new_b):
        path.write_bytes(path.name.encode())
    now = time.time()
    os.utime(old, (now - 86400, now - 86400))
    assert inbox.newest_exports(tmp_path) == [new_a, new_b]

    out = tmp_path / "out"
    run = out / "44-20261128"
    run.mkdir(parents=True)
    inputs = [{"sha256": sha256_file(p)} for p in (new_b, new_a)]
    (run / "manifest.json").write_text(json.dumps({"run_id": run.name, "inputs": inputs}))
    (out / "latest").symlink_to(run.name)
    assert inbox.processed_by([new_a, new_b], out) == "44-20261128"
    assert inbox.processed_by([new_a], out) is None


def _published_run(out: Path, run_id: str, finished_at: str) -> None:
    (out / run_id).mkdir(parents=True)
    manifest = {"run_id": run_id, "finished_at": finished_at}
    (out / run_id / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_batch_already_processed_is_a_no_op(tmp_path, prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from pipelines.nightly import nightly_run
    from xueji_quality import generator

    inbox_dir, out = tmp_path / "inbox", tmp_path / "out"
    generator.write_sample(inbox_dir, 400, 3, "44", "csv", counties=2)
    for truth in inbox_dir.glob("truth_*.csv"):
        truth.unlink()
    # Two runs of last month: with two runs kept, the older goes once tonight's is published.
    _published_run(out, "44-20261001", "2026-10-01T02:10:00+08:00")
    _published_run(out, "44-20261002", "2026-10-02T02:10:00+08:00")
    first = nightly_run(inbox_dir=str(inbox_dir), province="44", out=str(out), keep_runs=2)
    assert first["status"] == "completed"
    published = sorted(p.name for p in out.iterdir())
    assert "44-20261001" not in published and "44-20261002" in published
    assert first["run_id"] in published and _status(out)["published"] == first["run_dir"]
    with get_client(sync_client=True) as client:
        named = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[first["run_id"]]))
        )
    # The provincial run inside the nightly one is named after the run id it published.
    assert [r.parameters["out"] for r in named].count(str(out)) == 1

    again = nightly_run(inbox_dir=str(inbox_dir), province="44", out=str(out))
    assert again["status"] == "already-processed"
    assert again["run_id"] == first["run_id"]
    assert sorted(p.name for p in out.iterdir()) == published
    status = _status(out)
    assert status["state"] == "成功" and status["published"] is None
    assert first["run_id"] in status["reason"]
