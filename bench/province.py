"""End-to-end benchmark of a provincial run: the command line as a data officer runs it.

    python bench/province.py --rows 1000000 [--seed 7] [--keep DIR] [--prefect-home DIR]
        [--profile FILE.svg|FILE.txt] [--county-rerun]

A roster of ``--rows`` rows is generated with its truth files (``write_sample`` through
``xueji-quality sample``, CSV, province 44; not timed), then ``xueji-quality run`` runs in a child
process exactly as the command line does (Prefect's embedded server in a temporary
``PREFECT_HOME``, telemetry off). While it runs, the resident memory and CPU time of the child
and all its descendants are sampled every 0.2 s.

Printed: one line per stage (ingest, validate, link, report, publish) and a total, each with wall
seconds, CPU seconds of the process tree, rows per second and peak RSS of the process tree; the
fixed cost (total wall minus the stages: interpreter and library imports, the embedded Prefect
server's start and stop, and the flow's work outside the timed stages, shown apart); the linkage
figures from the manifest (candidate pairs per pass); precision, recall and F1 of the duplicate
groups against truth_duplicates.csv; recall of the injected field errors against truth_errors.csv
per rule and overall; the load average before and after (the machine may be shared).

Stage wall times come from the run's manifest (``timings_s``); publish is timed after the manifest
is written, so it and every stage's position on the clock come from the flow's log line
"阶段 <stage> 完成：… 用时 … 秒", read from the child's output as it arrives (and echoed to
stderr with the stage's CPU time and peak RSS, so a long run shows its progress). ``--keep DIR``
keeps the sample and the run's output in DIR, and reuses a sample already there for the same rows
and seed. ``--prefect-home DIR`` reuses a Prefect home (its database already migrated, as on a
server that runs every night) instead of a fresh one. ``--profile`` records the child with py-spy
(``--subprocesses --nonblocking``, so the run is not paused at each sample): an SVG flame graph,
or collapsed stacks when the name ends in .txt; py-spy's own CPU time is then part of the tree's.

``--county-rerun``: after the full run, the command line runs again on the same roster and output
folder with ``--counties <the county with the most records>`` (an officer re-checking one county
at noon), reusing the state the full run kept (``xueji_quality.run_state``), and the same figures
are printed for that run, with the run whose state it reused.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

PROVINCE = "44"
AS_OF = "2026-11-28"
STAGES = ("ingest", "validate", "link", "answers", "report", "publish")
SAMPLE_EVERY_S = 0.2
STAGE_LINE = re.compile(r"阶段 (\w+) 完成：(\d+) 行，用时 ([\d.]+) 秒")
FLOW_START_LINE = "Beginning flow run"


class TreeSampler:
    """Samples RSS and CPU time of a process and its descendants on a background thread.

    CPU time of a descendant that exits between two samples is kept at its last sampled value, so
    the tree's CPU time never goes backwards.
    """

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.samples: list[tuple[float, int, float]] = []  # (perf_counter, rss bytes, cpu s)
        self._cpu_by_pid: dict[tuple[int, float], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    self._cpu_by_pid[(proc.pid, proc.create_time())] = times.user + times.system
            except psutil.NoSuchProcess:
                continue
        self.samples.append((time.perf_counter(), rss, sum(self._cpu_by_pid.values())))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(SAMPLE_EVERY_S)

    def window(self, start: float, end: float) -> tuple[float, float]:
        """(peak RSS in MB, CPU seconds) of the tree between two perf_counter instants."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:  # shorter than the sampling interval: the next sample (or the last)
            inside = [s for s in self.samples if s[0] >= start][:1] or self.samples[-1:]
        before = [s for s in self.samples if s[0] <= start]
        after = [s for s in self.samples if s[0] >= end]
        peak = max((s[1] for s in inside), default=0) / 2**20
        cpu_start = before[-1][2] if before else 0.0
        cpu_end = after[0][2] if after else (self.samples[-1][2] if self.samples else 0.0)
        return peak, cpu_end - cpu_start


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _generated_sample(folder: Path, rows: int, seed: int) -> tuple[Path, float]:
    """The generated sample in ``folder`` (reused when made for the same rows, seed and pieces).

    Generated by ``xueji-quality sample`` in a child process, in pieces of 1,000,000 rows (peak
    under 2 GB whatever the number of rows), so its memory is returned before the timed run.
    """
    chunk_rows = 1_000_000
    marker = folder / "bench-sample.json"
    wanted = {"rows": rows, "seed": seed, "province": PROVINCE, "chunk_rows": chunk_rows}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return folder / "roster.csv", 0.0
    started = time.perf_counter()
    command = [sys.executable, "-m", "pipelines.cli", "sample", "--rows", str(rows)]
    command += ["--seed", str(seed), "--province", PROVINCE, "--out", str(folder)]
    command += ["--chunk-rows", str(chunk_rows)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    marker.write_text(json.dumps(wanted))
    return folder / "roster.csv", time.perf_counter() - started


def _command(roster: Path, out: Path, profile: Path | None, extra: tuple[str, ...]) -> list[str]:
    run = ["-m", "pipelines.cli", "run", str(roster), "--province", PROVINCE]
    # --force: a kept output folder already holds a run of the same roster, which would be skipped.
    run += ["--out", str(out), "--as-of", AS_OF, "--force", *extra]
    if profile is None:
        return [sys.executable, *run]
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    fmt = "raw" if profile.suffix == ".txt" else "flamegraph"
    record = [py_spy, "record", "--subprocesses", "--nonblocking", "--rate", "50"]
    record += ["--format", fmt]
    return [*record, "-o", str(profile), "--", sys.executable, *run]


def run_cli(
    roster: Path, out: Path, profile: Path | None, home: Path | None, extra: tuple[str, ...] = ()
) -> dict:
    """Run the command line (with ``extra`` options) in a child process; return its timeline
    and the sampler."""
    prefect_home = home or Path(tempfile.mkdtemp(prefix="bench-prefect-"))
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    env.pop("PREFECT_API_URL", None)
    stage_ends: dict[str, float] = {}
    logged: dict[str, float] = {}
    flow_started = None
    output: list[str] = []
    started = time.perf_counter()
    cpu_before = os.times()
    child = subprocess.Popen(
        _command(roster, out, profile, extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    sampler = TreeSampler(child.pid)
    sampler.start()
    assert child.stdout is not None
    for line in child.stdout:
        now = time.perf_counter()
        output.append(line)
        if flow_started is None and FLOW_START_LINE in line:
            flow_started = now
        match = STAGE_LINE.search(line)
        if match:
            stage_ends[match.group(1)] = now
            logged[match.group(1)] = float(match.group(3))
            peak, cpu = sampler.window(now - float(match.group(3)), now)
            print(
                f"[{now - started:7.1f} s] {match.group(1)} done in {match.group(3)} s, "
                f"CPU {cpu:.1f} s, peak tree RSS {peak:,.0f} MB, load {_load()}",
                file=sys.stderr,
                flush=True,
            )
    code = child.wait()
    wall = time.perf_counter() - started
    sampler.stop()
    cpu_after = os.times()
    if home is None:
        shutil.rmtree(prefect_home, ignore_errors=True)
    if code != 0:
        sys.stdout.write("".join(output[-60:]))
        raise SystemExit(f"xueji-quality run exited with {code}")
    # The command's own CPU and that of the descendants it waited for; it ends with os._exit
    # and does not wait for its forkserver, whose workers the sampled tree counts instead.
    waited = (cpu_after.children_user - cpu_before.children_user) + (
        cpu_after.children_system - cpu_before.children_system
    )
    cpu = max(waited, sampler.samples[-1][2] if sampler.samples else 0.0)
    return {
        "started": started,
        "wall": wall,
        "cpu": cpu,
        "flow_started": flow_started,
        "stage_ends": stage_ends,
        "logged": logged,
        "sampler": sampler,
        "output": output,
    }


def _duplicate_figures(run_dir: Path, truth_dir: Path) -> str:
    from xueji_quality import linkage

    duplicates = pd.read_parquet(run_dir / "province" / "duplicates.parquet")
    truth = pd.read_csv(truth_dir / "truth_duplicates.csv", dtype=str, keep_default_na=False)
    hard_path = truth_dir / "truth_hard_negatives.csv"
    hard = pd.read_csv(hard_path, dtype=str, keep_default_na=False) if hard_path.exists() else None
    figures = linkage.evaluate(linkage.pairs_from_groups(duplicates), truth, hard)
    return linkage.format_evaluation(figures)


def _error_recall(run_dir: Path, truth_dir: Path) -> pd.DataFrame:
    """Per injected rule: planted cells, cells reported with that rule on that record, recall."""
    problems = pd.read_parquet(
        run_dir / "province" / "problems.parquet", columns=["record_id", "rule"]
    )
    truth = pd.read_csv(truth_dir / "truth_errors.csv", dtype=str, keep_default_na=False)
    found = pd.MultiIndex.from_frame(problems.astype(str).drop_duplicates())
    truth["found"] = pd.MultiIndex.from_arrays([truth["record_id"], truth["kind"]]).isin(found)
    table = truth.groupby("kind")["found"].agg(planted="size", found="sum")
    table.loc["(all)"] = [int(table["planted"].sum()), int(table["found"].sum())]
    table["recall"] = table["found"] / table["planted"]
    return table


def report(rows: int, run: dict, manifest: dict, generated_s: float, load_before: str) -> None:
    sampler: TreeSampler = run["sampler"]
    timings = dict(manifest.get("timings_s", {}))
    for stage, seconds in run["logged"].items():
        timings.setdefault(stage, seconds)
    print(
        f"rows {rows:,}  (generation {generated_s:.1f} s, untimed)  "
        f"load average before: {load_before}  cores {os.cpu_count()}"
    )
    print(f"{'stage':<10}{'wall s':>9}{'CPU s':>9}{'rows/s':>12}{'peak RSS MB':>13}")
    for stage in STAGES:
        if stage not in timings:
            print(f"{stage:<10}{'(not reported)':>30}")
            continue
        seconds = timings[stage]
        end = run["stage_ends"].get(stage)
        peak, cpu = sampler.window(end - seconds, end) if end else (float("nan"),) * 2
        print(f"{stage:<10}{seconds:9.2f}{cpu:9.2f}{rows / seconds:12,.0f}{peak:13,.0f}")
    stage_sum = sum(timings.get(s, 0.0) for s in STAGES)
    peak_all, _ = sampler.window(run["started"], run["started"] + run["wall"])
    print(
        f"{'total':<10}{run['wall']:9.2f}{run['cpu']:9.2f}{rows / run['wall']:12,.0f}{peak_all:13,.0f}"
    )
    fixed = run["wall"] - stage_sum
    to_flow = (run["flow_started"] - run["started"]) if run["flow_started"] else float("nan")
    last_end = max(run["stage_ends"].values(), default=run["started"])
    after = run["started"] + run["wall"] - last_end
    ends = run["stage_ends"]
    # Work the flow does outside any timed stage (answers, conservation, manifest), on the clock.
    between = sum(
        max(0.0, ends[later] - timings[later] - ends[earlier])
        for earlier, later in zip(STAGES, STAGES[1:], strict=False)
        if earlier in ends and later in ends and later in timings
    )
    first = next((s for s in STAGES if s in ends and s in timings), None)
    to_first = (
        ends[first] - timings[first] - run["flow_started"] if first and run["flow_started"] else 0.0
    )
    print(
        f"fixed cost {fixed:.2f} s = total wall - sum of stages {stage_sum:.2f} s "
        f"(start to flow run {to_flow:.2f} s, flow run to first stage {to_first:.2f} s, "
        f"between stages {between:.2f} s, after publish to exit {after:.2f} s)"
    )
    link = manifest.get("linkage", {})
    print(
        f"candidate pairs {link.get('candidate_pairs', 0):,}  per pass {link.get('pass_pairs')}  "
        f"linked pairs {link.get('linked_pairs', 0):,}  groups {link.get('groups', 0):,}  "
        f"oversized blocks {len(link.get('oversized_blocks', []))}"
    )
    if link.get("timings"):
        print(
            "link steps "
            + ", ".join(
                f"{k} {v:.2f} s" for k, v in link["timings"].items() if isinstance(v, float)
            )
        )
    print(f"load average after: {_load()}")


def _county_rerun(roster: Path, out: Path, full: dict, rows_read: int, args) -> None:
    """Run the command line again for the county with the most records; print its figures."""
    largest = max(full["counties"], key=lambda entry: entry["records"])
    county = largest["county_code"]
    print(
        f"\ncounty re-run: --counties {county} ({largest['county_name']}, "
        f"{largest['records']:,} records)"
    )
    load_before = _load()
    run = run_cli(roster, out, None, args.prefect_home, ("--counties", county))
    manifest = json.loads(((out / "latest").resolve() / "manifest.json").read_text("utf-8"))
    reused = manifest.get("reused_state")
    print(f"reused state of run {reused['run_id']}" if reused else "state not reused: full run")
    report(rows_read, run, manifest, 0.0, load_before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="keep sample and output here")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy profile (.svg or .txt)")
    parser.add_argument(
        "--prefect-home", type=Path, default=None, help="reuse this PREFECT_HOME (default: fresh)"
    )
    parser.add_argument(
        "--county-rerun",
        action="store_true",
        help="after the full run, run again with --counties <largest county> and print it too",
    )
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-province-"))
    try:
        roster, generated_s = _generated_sample(folder / "sample", args.rows, args.seed)
        out = folder / "out"
        shutil.rmtree(out, ignore_errors=True)
        load_before = _load()
        run = run_cli(roster, out, args.profile, args.prefect_home)
        run_dir = (out / "latest").resolve()
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        rows_read = int(manifest["rows"]["rows_read"])
        report(rows_read, run, manifest, generated_s, load_before)
        if args.county_rerun:
            _county_rerun(roster, out, manifest, rows_read, args)
        print("duplicates against truth_duplicates.csv:")
        print(_duplicate_figures(run_dir, roster.parent))
        print("injected errors against truth_errors.csv (record and rule reported):")
        table = _error_recall(run_dir, roster.parent)
        for kind, line in table.iterrows():
            print(
                f"  {kind:<24} recall {line['recall']:.4f}  ({int(line['found'])}/{int(line['planted'])})"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
