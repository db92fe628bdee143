"""A run keeps its staged roster, validation problems and linkage result in ``<out>/.state``; a
re-run of the same input (one county, or ``--force``) takes them from there instead of reading,
validating and linking again, and lists the same items as a full run. A changed input, a changed
run date or a damaged state is not reused; a failed run leaves the state it found."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from xueji_quality import generator, run_state

AS_OF = date(2026, 11, 28)
CHECKED = ("ingest", "validate", "link")


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("state_sample")
    generator.write_sample(folder, 1200, 5, "44", "csv", counties=3)
    return folder / "roster.csv"


@pytest.fixture(scope="module")
def first(sample, tmp_path_factory, prefect_harness) -> dict:
    """A full run; every test works on a copy of its output folder."""
    out = tmp_path_factory.mktemp("state_out") / "out"
    flow_run_id, result, state = _run(sample, out)
    assert state.is_completed(), state
    return {"out": out, "result": result, "id": flow_run_id}


def _run(sample: Path, out: Path, **options):
    from pipelines.provincial import provincial_run

    state = provincial_run(
        inputs=[str(sample)],
        province="44",
        out=str(out),
        as_of=AS_OF,
        return_state=True,
        **options,
    )
    return state.state_details.flow_run_id, state.result(raise_on_failure=False), state


def _copy(first: dict, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(first["out"], out, symlinks=True)
    return out


def _task_names(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
        )
    return [run.name.rsplit("-", 1)[0] for run in runs]


def _current(out: Path) -> dict:
    return json.loads((out / ".state" / "current.json").read_text(encoding="utf-8"))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _county_table(run_dir: Path, county: str, name: str) -> pd.DataFrame:
    table = pd.read_parquet(run_dir / "counties" / county / f"{name}.parquet")
    return table.sort_values(list(table.columns)).reset_index(drop=True)


def _cli(sample: Path, out: Path, *extra: str) -> dict:
    from pipelines import cli

    argv = ["run", str(sample), "--province", "44", "--out", str(out), "--as-of", "2026-11-28"]
    assert cli.main([*argv, *extra]) == 0
    status = json.loads((out / "status.json").read_text(encoding="utf-8"))
    manifest = json.loads((Path(status["published"]) / "manifest.json").read_text("utf-8"))
    return {"status": status, "manifest": manifest, "run_dir": Path(status["published"])}


def _other_counties_items(out: Path, county: str) -> dict[str, tuple]:
    """Ledger items that touch no record of ``county``: key → (last run seen, status)."""
    import sqlite3

    connection = sqlite3.connect(out / "ledger.sqlite")
    try:
        rows = connection.execute(
            "SELECT p.key, p.last_seen_seq, p.status FROM problems p WHERE NOT EXISTS"
            " (SELECT 1 FROM problem_counties c WHERE c.key = p.key AND c.county_code = ?)",
            (county,),
        ).fetchall()
    finally:
        connection.close()
    return {key: (seq, status) for key, seq, status in rows}


def test_the_state_is_kept_for_the_run_owner_only(first):
    states = first["out"] / ".state"
    current = _current(first["out"])
    assert current["run_id"] == first["result"]["run_id"]
    assert [p.name for p in states.iterdir() if p.is_dir()] == [current["folder"]]
    names = {p.name for p in (states / current["folder"]).iterdir()}
    assert {"roster", "store.json", "problems.parquet", "duplicates.parquet"} <= names
    for path in [states, *states.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    assert not list(first["out"].glob(".tmp-*"))
    assert first["result"]["manifest"]["reused_state"] is None


def test_a_county_rerun_reuses_the_state_and_lists_what_a_full_run_lists(
    first, sample, tmp_path, monkeypatch
):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    out = _copy(first, tmp_path)
    counties = first["result"]["problems"]["county_code"].value_counts()
    county = str(counties.index[0])

    others_before = _other_counties_items(out, county)
    reused = _cli(sample, out, "--counties", county)
    # The ledger hears of this county's items only: the others keep their last full run.
    assert _other_counties_items(out, county) == others_before and len(others_before) > 0
    names = _task_names(reused["status"]["flow_run"]["id"])
    assert not set(CHECKED) & set(names), names
    assert "county-reports" in names and "publish" in names
    assert reused["manifest"]["reused_state"]["run_id"] == first["result"]["run_id"]
    rows = reused["manifest"]["rows"]
    assert rows["holds"] and rows["rows_read"] == first["result"]["rows"]["rows_read"]
    assert _current(out)["run_id"] == first["result"]["run_id"]  # a reused state stays as it was

    full = _cli(sample, out, "--counties", county, "--force", "--no-reuse")
    names = _task_names(full["status"]["flow_run"]["id"])
    assert set(CHECKED) <= set(names), names
    assert full["manifest"]["reused_state"] is None
    for name in ("problems", "duplicates"):
        expected = _county_table(full["run_dir"], county, name)
        assert len(expected) > 0
        pd.testing.assert_frame_equal(_county_table(reused["run_dir"], county, name), expected)
    assert (reused["run_dir"] / "data_docs" / "index.html").is_file()
    # The full run's state replaces the one it did not use.
    states = [p.name for p in (out / ".state").iterdir() if p.is_dir()]
    assert _current(out)["run_id"] == full["manifest"]["run_id"] and states == [
        full["manifest"]["run_id"]
    ]


def test_a_changed_input_is_not_reused_and_a_failed_run_keeps_the_state(
    first, sample, tmp_path, monkeypatch
):
    from pipelines import provincial

    out = _copy(first, tmp_path)
    before = {"current": _current(out), "tree": _tree(out / ".state")}
    changed = tmp_path / sample.name
    text = sample.read_text(encoding="utf-8").splitlines(keepends=True)
    text[5] = text[5].replace("1", "2", 1)
    changed.write_text("".join(text), encoding="utf-8")

    def disk_full(*args, **kwargs):
        raise OSError("磁盘已满")

    monkeypatch.setattr(provincial, "publish_run", disk_full)
    logged: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: logged.append(record.getMessage())
    logging.getLogger("prefect.flow_runs").addHandler(handler)
    try:
        for inputs in (changed, sample):  # not reused, then reused: both fail at publish
            flow_run_id, error, state = _run(inputs, out)
            assert state.is_failed() and "磁盘已满" in str(error)
            checked = set(CHECKED) & set(_task_names(flow_run_id))
            assert checked == (set(CHECKED) if inputs == changed else set())
    finally:
        logging.getLogger("prefect.flow_runs").removeHandler(handler)
    assert any("不复用上次运行的状态" in m and "导出文件" in m for m in logged), logged
    assert any(f"复用上次运行 {first['result']['run_id']}" in m for m in logged), logged
    assert _current(out) == before["current"]
    assert _tree(out / ".state") == before["tree"]
    assert not list(out.glob(".tmp-*"))
    kept, _ = run_state.reusable(out, [sample], "44", AS_OF)
    assert kept is not None and kept.store.rows_read == first["result"]["rows"]["rows_read"]


def test_another_run_date_or_a_damaged_state_is_not_reused(first, sample, tmp_path):
    out = _copy(first, tmp_path)
    kept, said = run_state.reusable(out, [sample], "44", date(2026, 11, 29))
    assert kept is None and "运行日期" in said
    kept, said = run_state.reusable(out, [sample], "44", AS_OF)
    assert kept is not None and "复用上次运行" in said
    part = Path(kept.store.parts[0].path)
    table = pq.read_table(part)
    pq.write_table(table.slice(0, len(table) - 1), part)
    kept, said = run_state.reusable(out, [sample], "44", AS_OF)
    assert kept is None and "不完整" in said
    os.remove(out / ".state" / "current.json")
    assert run_state.reusable(out, [sample], "44", AS_OF)[0] is None
