"""The provincial flow's orchestration under Prefect's test harness: task runs, their names,
artifacts linking the published files, the status file, filters, retries, notification of a
failure, the terminal progress lines and bars, an unchanged input not run again, and the Dask
runner giving the same results."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from xueji_quality import generator, ingest
from xueji_quality.errors import InputError

AS_OF = date(2026, 11, 28)
STAGES = ("ingest", "validate", "link", "answers", "report", "publish")


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    generator.write_sample(out, 3000, 11, "44", "csv", counties=4)
    return out / "roster.csv"


@pytest.fixture(scope="module")
def roster(sample) -> pd.DataFrame:
    return ingest.read_exports([sample], "44").roster


def _run(sample: Path, out: Path, **options):
    """Run the flow; returns (flow run id, the flow's result or None, the final state)."""
    from pipelines.provincial import provincial_run

    flow = provincial_run
    if "task_runner" in options:
        flow = provincial_run.with_options(task_runner=options.pop("task_runner"))
    state = flow(
        inputs=[str(sample)],
        province="44",
        out=str(out),
        as_of=AS_OF,
        return_state=True,
        **options,
    )
    result = state.result(raise_on_failure=False)
    return state.state_details.flow_run_id, result, state


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def full_run(sample, tmp_path_factory, prefect_harness) -> dict:
    from rich.console import Console

    from pipelines.progress import (
        RUN_LOGGERS,
        hide_stage_progress,
        show_stage_bars,
        show_stage_progress,
        stage_bars,
    )

    out = tmp_path_factory.mktemp("out")
    lines = io.StringIO()
    bars = stage_bars(Console(file=io.StringIO(), force_terminal=True, width=120))
    logged = _Messages()
    handlers = [show_stage_progress(lines), show_stage_bars(bars)]
    for name in RUN_LOGGERS:
        logging.getLogger(name).addHandler(logged)
    try:
        flow_run_id, result, state = _run(sample, out)
    finally:
        for handler in (*handlers, logged):
            hide_stage_progress(handler)
    assert state.is_completed(), state
    status = json.loads((out / "status.json").read_text(encoding="utf-8"))
    return {
        "id": flow_run_id,
        "result": result,
        "out": out,
        "progress": lines.getvalue(),
        "bars": bars,
        "logged": logged.messages,
        "status": status,
    }


@pytest.fixture(scope="module")
def county_run(full_run, sample, roster) -> dict:
    """A second run into the same output folder, one county only."""
    county = sorted(roster["county_code"].dropna().unique())[0]
    flow_run_id, result, state = _run(sample, full_run["out"], counties=[county])
    assert state.is_completed(), state
    return {"id": flow_run_id, "result": result, "county": county}


def _task_runs(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
        )


def _artifacts(flow_run_id) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key: artifact for artifact in found}


def _county_dirs(run_dir: str) -> list[str]:
    return sorted(p.name for p in (Path(run_dir) / "counties").iterdir())


def test_every_stage_is_a_completed_task_run(full_run, roster):
    runs = _task_runs(full_run["id"])
    names = [run.name.rsplit("-", 1)[0] for run in runs]
    for task in ("find-exports", "ingest", "validate", "link", "province-outputs", "publish"):
        assert names.count(task) == 1, names
    assert names.count("county-reports") == 1
    assert roster["county_code"].nunique() >= 4
    assert all(run.state.is_completed() for run in runs)
    assert all(run.run_count == 1 for run in runs)


def _flow_run_name(flow_run_id) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).name


def _linked_file(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme == "file", url
    return Path(unquote(parsed.path))


def test_artifacts_link_to_the_published_files(full_run):
    artifacts = _artifacts(full_run["id"])
    assert artifacts["xueji-progress"].data == 100.0
    summary = artifacts["xueji-run-summary"].data
    run_dir = Path(full_run["result"]["run_dir"])
    assert "没有上一次已发布的运行" in summary
    assert ".tmp-" not in summary
    links = {_linked_file(url) for url in re.findall(r"\]\((file://[^)]+)\)", summary)}
    expected = {
        run_dir,
        run_dir / "counties",
        run_dir / "province" / "summary.xlsx",
        run_dir / "data_docs" / "index.html",
    }
    assert links == expected and all(path.exists() for path in links)
    table = json.loads(artifacts["xueji-county-totals"].data)
    assert sorted(row["区县代码"] for row in table) == _county_dirs(run_dir)
    for row in table:
        workbook = _linked_file(row["清单文件"])
        assert workbook.is_file() and workbook.parent == run_dir / "counties" / row["区县代码"]


def test_logs_name_published_paths_never_staging_ones(full_run):
    logged = full_run["logged"]
    docs = str(Path(full_run["result"]["run_dir"]) / "data_docs")
    assert [m for m in logged if "Data Docs" in m] and all(
        docs in m for m in logged if "Data Docs" in m
    )
    assert not [m for m in logged if ".tmp-" in m]


def test_flow_runs_are_named_after_their_run_ids(full_run, county_run):
    assert _flow_run_name(full_run["id"]) == full_run["result"]["run_id"] == "44-20261128"
    assert _flow_run_name(county_run["id"]) == county_run["result"]["run_id"] == "44-20261128-2"


def test_status_file_says_what_the_run_published(full_run):
    status = full_run["status"]
    run_dir = str(Path(full_run["result"]["run_dir"]).resolve())
    assert status["state"] == "成功" and status["run_id"] == full_run["result"]["run_id"]
    assert status["published"] == run_dir == status["last_published"]["path"]
    assert status["stage"] is None and status["finished_at"] >= status["started_at"]
    assert status["flow_run"]["id"] == str(full_run["id"])
    assert "问题条目合计" in status["reason"]


def test_county_totals_count_items_as_the_summary_does_and_groups_apart(full_run):
    """问题条数 are the items of the province summary and of each county list; 重复组数 the
    groups touching the county: a group of three records in one county is 3 items, 1 group."""
    totals = pd.DataFrame(json.loads(_artifacts(full_run["id"])["xueji-county-totals"].data))
    totals = totals.set_index("区县代码").sort_index()
    run_dir = Path(full_run["result"]["run_dir"])
    sheet = pd.read_excel(
        run_dir / "province" / "summary.xlsx", sheet_name="区县汇总", dtype={"区县代码": str}
    )
    sheet = sheet[sheet["区县代码"] != "全省合计"].set_index("区县代码").sort_index()
    assert list(totals.index) == list(sheet.index)
    for column in ("身份证号错误", "身份证号重复", "疑似重复", "其他字段错误", "警告", "合计"):
        assert totals[f"问题条数·{column}"].tolist() == sheet[column].tolist(), column
    duplicates = full_run["result"]["duplicates"]
    groups = duplicates.drop_duplicates(["group_id", "county_code"])
    group_columns = ["重复组数·身份证号重复", "重复组数·疑似重复"]
    assert int(totals[group_columns].to_numpy().sum()) == len(groups) > 0
    assert int(totals["问题条数·身份证号重复"].sum()) == (duplicates["dup_class"] == "DUP_ID").sum()
    # Both are counted and they differ: a group has at least two records.
    assert totals["问题条数·身份证号重复"].sum() > totals["重复组数·身份证号重复"].sum()
    lists = {c["county_code"]: c for c in full_run["result"]["manifest"]["counties"]}
    for code, row in totals.iterrows():
        assert row["问题条数·合计"] == lists[code]["items"]
        assert row[group_columns].sum() == lists[code]["duplicate_groups"]


def test_progress_prints_one_line_per_stage(full_run):
    lines = full_run["progress"].splitlines()
    assert len(lines) == len(STAGES)
    for line, stage in zip(lines, STAGES, strict=True):
        assert line.startswith("[进度]") and f"（{stage}）" in line
    rows_read = full_run["result"]["rows"]["rows_read"]
    assert f"{rows_read} 行" in lines[0]


def test_progress_shows_one_bar_per_stage_filled_when_it_ends(full_run):
    tasks = full_run["bars"].tasks
    assert [t.description for t in tasks] == ["读入", "校验", "查重", "答复", "报告", "发布"]
    assert all(t.finished for t in tasks)
    report = tasks[4]
    # The report bar counts the county lists as they are written.
    assert report.total == len(full_run["result"]["manifest"]["counties"]) >= 4
    rows_read = full_run["result"]["rows"]["rows_read"]
    assert tasks[0].fields["note"].startswith(f"{rows_read} 行")


def test_county_filter_writes_only_that_county(county_run, full_run):
    result = county_run["result"]
    assert _county_dirs(result["run_dir"]) == [county_run["county"]]
    assert set(result["problems"]["county_code"]) == {county_run["county"]}
    everything = full_run["result"]["problems"]
    assert len(result["problems"]) == (everything["county_code"] == county_run["county"]).sum()
    assert result["rows"]["holds"] is True


def test_summary_says_what_changed_since_the_previous_run(county_run, full_run):
    summary = _artifacts(county_run["id"])["xueji-run-summary"].data
    previous_id = full_run["result"]["run_id"]
    assert f"上一次运行：{previous_id}" in summary
    gone = sorted(set(_county_dirs(full_run["result"]["run_dir"])) - {county_run["county"]})
    assert f"不再出现的区县：{'、'.join(gone)}" in summary
    before = (full_run["result"]["problems"]["severity"] == "E").sum()
    now = (county_run["result"]["problems"]["severity"] == "E").sum()
    assert f"| 问题（级别） E | {before} | {now} | {now - before:+d} |" in summary


def test_cli_schools_filter_narrows_to_those_schools(
    full_run, sample, roster, tmp_path, capsys, monkeypatch
):
    from pipelines import cli

    # The command sets these for itself when unset; keep them out of the rest of the session.
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    county = roster["county_code"].value_counts().index[0]
    schools = sorted(roster.loc[roster["county_code"] == county, "school_code"].dropna().unique())
    chosen = schools[:2]
    their_counties = sorted(roster.loc[roster["school_code"].isin(chosen), "county_code"].unique())
    out = str(tmp_path / "out")
    argv = ["run", str(sample), "--province", "44", "--out", out, "--as-of", "2026-11-28"]
    assert cli.main([*argv, "--schools", *chosen, "--progress"]) == 0
    stderr = capsys.readouterr().err
    assert [line for line in stderr.splitlines() if line.startswith("[进度]")][-1].count("publish")

    run_dir = tmp_path / "out" / "latest"
    problems = pd.read_parquet(run_dir / "province" / "problems.parquet")
    duplicates = pd.read_parquet(run_dir / "province" / "duplicates.parquet")
    in_schools = set(roster.loc[roster["school_code"].isin(chosen), "record_id"])
    assert set(problems["record_id"]) <= in_schools
    everything = full_run["result"]["problems"]
    assert len(problems) == everything["record_id"].isin(in_schools).sum() > 0
    for _, group in duplicates.groupby("group_id"):
        assert group["record_id"].isin(in_schools).any()
    assert _county_dirs(run_dir) == their_counties
    assert county in their_counties
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["parameters"]["schools"] == chosen
    rows = manifest["rows"]
    assert rows["holds"] is True
    assert rows["rows_read"] == rows["rows_staged"] + rows["rows_quarantined"]
    assert rows["rows_staged"] == len(roster)
    assert rows["rows_in_scope"] >= len(in_schools)

    # The same command again: nothing changed, so nothing is run or published.
    published = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert cli.main([*argv, "--schools", *chosen]) == 0
    said = capsys.readouterr().out
    assert "输入未变化" in said and manifest["run_id"] in said and "--force" in said
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == published
    status = json.loads((tmp_path / "out" / "status.json").read_text(encoding="utf-8"))
    assert status["state"] == "成功" and status["published"] is None
    assert status["exit_status"] == 0
    assert status["last_published"]["run_id"] == manifest["run_id"]
    # Another option is a change; --force runs an unchanged one anyway. Both reach the flow,
    # whose first task here fails at once: the status file then names the stage and the line.
    from pipelines import provincial

    def unreadable(inputs):
        raise InputError(inputs[0], "读取失败")

    monkeypatch.setattr(provincial, "find_exports", unreadable)
    for extra in (["--schools", *chosen, "--mask-ids"], ["--schools", *chosen, "--force"]):
        assert cli.main([*argv, *extra]) == cli.EXIT_INPUT_ERROR
        line = capsys.readouterr().err.strip().splitlines()[-1]
        status = json.loads((tmp_path / "out" / "status.json").read_text(encoding="utf-8"))
        assert status["state"] == "失败" and status["exit_status"] == cli.EXIT_INPUT_ERROR
        assert status["stage"] == "ingest" and status["stage_label"] == "读入"
        assert status["reason"] == line and "读取失败" in line
        assert status["run_id"] == status["flow_run"]["name"] != manifest["run_id"]
        assert status["last_published"]["run_id"] == manifest["run_id"]


def _notice_block(tmp_path: Path) -> tuple[str, Path]:
    """A notification block of the test's own, which writes what it is sent to a file."""
    from prefect.blocks.abstract import NotificationBlock

    class RecordedNotice(NotificationBlock):
        _block_type_slug = "xueji-recorded-notice"
        path: str

        def notify(self, body: str, subject: str | None = None) -> None:
            Path(self.path).write_text(f"{subject}\n{body}", encoding="utf-8")

    sent = tmp_path / "notice.txt"
    RecordedNotice(path=str(sent)).save("ops", overwrite=True)
    return "xueji-recorded-notice/ops", sent


def test_input_error_fails_at_once_without_retries(tmp_path, prefect_harness):
    slug, sent = _notice_block(tmp_path)
    out = tmp_path / "out"
    flow_run_id, error, state = _run(tmp_path / "missing.csv", out, notify_block=slug)
    assert state.is_failed()
    assert isinstance(error, InputError)
    [find] = _task_runs(flow_run_id)
    assert find.name.startswith("find-exports")
    assert find.run_count == 1
    assert not (out / "latest").exists()
    # The markers a monitoring system reads: the status file, and the notification.
    status = json.loads((out / "status.json").read_text(encoding="utf-8"))
    assert status["state"] == "失败" and status["run_id"] == "44-20261128"
    assert status["stage"] == "ingest" and status["published"] is None
    assert status["reason"].startswith("输入错误：") and "missing.csv" in status["reason"]
    assert status["last_published"] is None
    assert not list(out.glob(".status.json*"))
    subject, *body = sent.read_text(encoding="utf-8").splitlines()
    assert subject == "学籍查重查错运行失败：44-20261128"
    assert "阶段：读入" in body and f"原因：{status['reason']}" in body


def test_retry_condition_retries_all_but_input_errors():
    from prefect.states import Failed

    from pipelines.provincial import retry_unless_input_error

    assert retry_unless_input_error(None, None, Failed(data=OSError("网络盘暂时不可用")))
    assert not retry_unless_input_error(None, None, Failed(data=InputError("a.csv", "路径不存在")))


def test_dask_runner_gives_the_same_problems_and_groups(full_run, sample, tmp_path):
    from pipelines.runners import task_runner

    _, result, state = _run(
        sample,
        tmp_path,
        task_runner=task_runner("dask", workers=2),
        report_processes=1,
        report_tasks=3,
    )
    assert state.is_completed(), state
    names = [run.name.rsplit("-", 1)[0] for run in _task_runs(state.state_details.flow_run_id)]
    assert names.count("county-reports") == 3
    threads_dir, dask_dir = Path(full_run["result"]["run_dir"]), Path(result["run_dir"])
    for name, keys in (
        ("problems", ["record_id", "rule", "field"]),
        ("duplicates", ["group_id", "record_id"]),
    ):
        threads = pd.read_parquet(threads_dir / "province" / f"{name}.parquet")
        dask = pd.read_parquet(dask_dir / "province" / f"{name}.parquet")
        assert len(threads) > 0
        pd.testing.assert_frame_equal(
            threads.sort_values(keys).reset_index(drop=True),
            dask.sort_values(keys).reset_index(drop=True),
        )
    assert _county_dirs(result["run_dir"]) == _county_dirs(full_run["result"]["run_dir"])
