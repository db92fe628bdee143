"""Crash safety: a killed run leaves the last published run and ``latest`` as they were; two runs
on one output folder never interleave; the same inputs give the same tables.

The crash is real: the command line runs as a process of its own and is killed with SIGKILL
(its whole process group) while it is writing its staging folder. The runs before and after it
are the same flow run in this process under the session's Prefect harness; everything else works
at the library level.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xueji_quality import generator, ingest, linkage, reports, validate
from xueji_quality.reports.publish import LOCK_FILE, STAGING_PREFIX, RunLocked, run_lock

PROVINCE = "44"
AS_OF = "2026-11-28"
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- helpers


def tree_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder`` (links by their target), by relative path."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            hashes[relative] = "-> " + os.readlink(path)
        elif path.is_file():
            hashes[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def parquet_tables(run_dir: Path) -> dict[str, object]:
    return {
        path.relative_to(run_dir).as_posix(): pq.read_table(path)
        for path in sorted(run_dir.rglob("*.parquet"))
    }


def cli_env(prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def cli_command(inputs: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        str(inputs),
        "--province",
        PROVINCE,
        "--out",
        str(out),
        "--as-of",
        AS_OF,
        # The same input as the run before it: run it anyway, as an officer would.
        "--force",
    ]


def staging_folders(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]


# ---------------------------------------------------------------- killed in the middle


def flow_run(inputs: Path, out: Path) -> dict:
    from pipelines.provincial import provincial_run

    try:
        return {
            "result": provincial_run(
                inputs=[str(inputs)],
                province=PROVINCE,
                out=str(out),
                as_of=date.fromisoformat(AS_OF),
            ),
            "error": None,
        }
    except Exception as exc:  # reported by the test that needs the run
        return {"result": None, "error": repr(exc)}


@pytest.fixture(scope="module")
def crash(tmp_path_factory, prefect_harness) -> dict:
    """Run 1 completes; run 2 is killed while writing; run 3 completes after it."""
    sample = tmp_path_factory.mktemp("crash_sample")
    generator.write_sample(sample, 1200, 11, PROVINCE, "csv", counties=3)
    inputs = sample / "roster.csv"
    out = tmp_path_factory.mktemp("crash_out")
    env = cli_env(tmp_path_factory.mktemp("prefect_home"))
    command = cli_command(inputs, out)
    first = flow_run(inputs, out)
    assert first["error"] is None, first["error"]
    first_run = out / os.readlink(out / "latest")
    before = {"tree": tree_hashes(first_run), "latest": os.readlink(out / "latest")}
    before["latest_text"] = (out / "latest.txt").read_text()
    before["names"] = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))

    second = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    killed_in = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and second.poll() is None:
        found = staging_folders(out)
        if found and any(p.is_file() for p in found[0].rglob("*")):
            os.killpg(second.pid, signal.SIGKILL)
            killed_in = found[0]
            break
        time.sleep(0.02)
    second.wait(timeout=60)
    after_kill = {
        "tree": tree_hashes(first_run),
        "latest": os.readlink(out / "latest"),
        "latest_text": (out / "latest.txt").read_text(),
        "names": sorted(p.name for p in out.iterdir() if not p.name.startswith(".")),
        "staging_left": [p.name for p in staging_folders(out)],
    }

    third = flow_run(inputs, out)
    return {
        "out": out,
        "first_run": first_run,
        "before": before,
        "killed_in": killed_in,
        "second_returncode": second.returncode,
        "after_kill": after_kill,
        "third": third,
    }


def test_the_second_run_was_killed_while_writing(crash):
    assert crash["killed_in"] is not None, "the run finished before it could be killed"
    assert crash["second_returncode"] == -signal.SIGKILL
    assert crash["after_kill"]["staging_left"] == [crash["killed_in"].name]


def test_a_killed_run_leaves_the_published_run_and_latest_untouched(crash):
    before, after = crash["before"], crash["after_kill"]
    assert after["tree"] == before["tree"]  # every file of the published run, byte for byte
    assert after["latest"] == before["latest"]
    assert after["latest_text"] == before["latest_text"]
    assert after["names"] == before["names"]  # nothing half-published beside it


def test_the_next_run_cleans_up_and_reproduces_the_first(crash):
    third = crash["third"]
    assert third["error"] is None, third["error"]
    out = crash["out"]
    assert staging_folders(out) == []
    latest = out / os.readlink(out / "latest")
    assert latest.name != crash["first_run"].name
    assert (out / "latest.txt").read_text().strip() == latest.name
    assert tree_hashes(crash["first_run"]) == crash["before"]["tree"]
    first, again = parquet_tables(crash["first_run"]), parquet_tables(latest)
    assert sorted(first) == sorted(again) and "province/duplicates.parquet" in first
    for name, table in first.items():
        assert table.equals(again[name]), name
    groups = first["province/duplicates.parquet"].column("group_id").to_pylist()
    assert groups and groups == again["province/duplicates.parquet"].column("group_id").to_pylist()


# ---------------------------------------------------------------- one run at a time

HOLDER = """
import sys, time
from xueji_quality.reports.publish import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked) as refused:
            with run_lock(out):
                pytest.fail("the lock was taken twice")
        message = str(refused.value)
        assert str(out) in message and f"进程号 {holder.pid}" in message
        assert "另一次运行" in message
        assert not staging_folders(out)
    finally:
        holder.kill()
        holder.wait()
    # The holder's death releases the lock: the next run gets it.
    with run_lock(out) as path:
        assert path == out / LOCK_FILE
        assert path.read_text().strip() == str(os.getpid())


def test_the_lock_is_reentrant_within_a_process_and_released_after(tmp_path):
    with run_lock(tmp_path) as outer:
        with run_lock(tmp_path) as inner:
            assert inner == outer
        probe = subprocess.run(
            [sys.executable, "-c", HOLDER.replace("time.sleep(60)", "pass"), str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert probe.returncode != 0 and "RunLocked" in probe.stderr  # still held after inner
    with run_lock(tmp_path):
        pass


def test_the_command_line_refuses_a_locked_folder(tmp_path, capsys, monkeypatch):
    from pipelines.cli import EXIT_BUSY, main

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))

    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        sample = tmp_path / "roster.csv"
        sample.write_text("姓名,身份证件号,所在区县\n张三,1,440106\n", encoding="utf-8")
        code = main(["run", str(sample), "--province", PROVINCE, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == EXIT_BUSY
        assert str(out) in err and str(holder.pid) in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]
    finally:
        holder.kill()
        holder.wait()


def _killed_like_out_of_memory() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_step_killed_by_the_system_fails_the_run_and_publishes_nothing(
    tmp_path, capsys, monkeypatch, prefect_harness
):
    from pipelines.cli import EXIT_WORKER_DIED, main
    from xueji_quality import workers

    sample = tmp_path / "sample"
    generator.write_sample(sample, 600, 5, PROVINCE, "csv", counties=2)
    out = tmp_path / "out"
    assert flow_run(sample / "roster.csv", out)["error"] is None
    published = out / os.readlink(out / "latest")
    before = tree_hashes(published)

    real = workers.call_alone

    def linkage_killed(function, *args, **kwargs):
        if function.__name__ == "find_duplicates":
            return real(_killed_like_out_of_memory)  # a real process, really killed
        return real(function, *args, **kwargs)

    monkeypatch.setattr(workers, "call_alone", linkage_killed)
    argv = ["run", str(sample / "roster.csv"), "--province", PROVINCE, "--out", str(out)]
    # --no-reuse: the same input would otherwise reuse the first run's linkage.
    code = main([*argv, "--force", "--no-reuse"])
    err = capsys.readouterr().err
    assert code == EXIT_WORKER_DIED
    assert "内存不足" in err.strip().splitlines()[-1]
    assert out / os.readlink(out / "latest") == published
    assert tree_hashes(published) == before
    assert [p.name for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)] == []


# ---------------------------------------------------------------- same inputs, same tables


def run_library(sample: Path, run_dir: Path) -> dict:
    staged = ingest.read_exports(ingest.find_exports([sample]), PROVINCE)
    problems = validate.validate_roster(staged.roster, PROVINCE, date.fromisoformat(AS_OF))
    linked = linkage.find_duplicates(staged.roster)
    run_dir.mkdir()
    reports.write_county_reports(
        run_dir,
        staged.roster,
        problems,
        linked.duplicates,
        province=PROVINCE,
        run_date=date.fromisoformat(AS_OF),
        rule_catalogue=validate.rule_catalogue(),
    )
    reports.write_province_outputs(
        run_dir,
        staged.roster,
        problems,
        linked.duplicates,
        staged.quarantine,
        province=PROVINCE,
        run_date=date.fromisoformat(AS_OF),
    )
    return parquet_tables(run_dir)


def test_rerunning_the_same_inputs_gives_the_same_tables(tmp_path):
    sample = tmp_path / "sample"
    generator.write_sample(sample, 2000, 5, PROVINCE, "csv", counties=3)
    first = run_library(sample / "roster.csv", tmp_path / "one")
    again = run_library(sample / "roster.csv", tmp_path / "two")
    assert sorted(first) == sorted(again)
    assert len([n for n in first if n.startswith("counties/")]) >= 6
    for name, table in first.items():
        assert table.equals(again[name]), name
    duplicates = first["province/duplicates.parquet"]
    assert duplicates.num_rows > 0
    assert duplicates.column("group_id") == again["province/duplicates.parquet"].column("group_id")
