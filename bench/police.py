"""Benchmark of the police cross-check on a generated roster and registry extract.

    python bench/police.py --rows 1000000 [--seed S] [--keep DIR] [--results] [--run]

The sample (roster as Parquet, a registry extract of about 1.3 rows per roster row, the result
file and truth_police.csv) is made by ``xueji-quality sample --police`` in a child process, in
pieces of a million rows, so a 20-million-row roster and its 26-million-row extract are written
in bounded memory; with ``--keep DIR`` it is kept there and reused for the same rows and seed.
Generation is not timed.

Without ``--run`` the stage is timed as the flow runs it: the roster is staged once by ingest
(in a child process, not timed; kept in ``DIR/staged`` and reused), then ``runs.check_staged``
(the body of the flow's police task: the extract read a batch at a time, the roster a million
records at a time, the police suite through Great Expectations with its Data Docs) runs in
this process, with Great Expectations imported before, as a run has it. ``--results`` times the
result-file form as well. Printed per form: wall and CPU seconds, rows per second, RSS before,
the peak RSS of this process and its children while the stage runs (sampled every 0.2 s) and
the process's own peak (getrusage), problem rows per rule, recall per planted class against the
truth file (records ingest quarantined left out), and the load average.

With ``--run`` the whole run is timed instead: ``xueji-quality run ROSTER --police-registry``
(or ``--police-results``) in a child process; printed: every stage's wall seconds and peak RSS of
the process tree in the stage (from the flow's "阶段 … 完成" lines), the whole run's wall
seconds and peak RSS of the tree, and the manifest's police facts.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from province import STAGE_LINE, TreeSampler

PROVINCE = "44"
AS_OF = "2026-11-28"
CHUNK_ROWS = 1_000_000


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def _sample(folder: Path, rows: int, seed: int) -> None:
    """The sample in ``folder``, made in a child process unless made there for the same rows."""
    marker = folder / "bench-police.json"
    wanted = {"rows": rows, "seed": seed, "province": PROVINCE, "chunk_rows": CHUNK_ROWS}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"sample reused from {folder}")
        return
    started = time.perf_counter()
    command = _cli("sample", "--rows", str(rows), "--seed", str(seed), "--province", PROVINCE)
    command += ["--out", str(folder), "--format", "parquet", "--police"]
    command += ["--chunk-rows", str(CHUNK_ROWS)]
    sampler = TreeSampler(os.getpid())
    sampler.start()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    sampler.stop()
    marker.write_text(json.dumps(wanted))
    peak = max(s[1] for s in sampler.samples) / 2**20
    print(
        f"generated {rows:,} roster rows with the police files in "
        f"{time.perf_counter() - started:.1f} s, peak RSS {peak:,.0f} MB (not timed)"
    )


def _staged(folder: Path) -> object:
    """The roster staged by ingest (in a child process the first time), as a StagedStore."""
    pickled = folder / "staged" / "store.pickle"
    if pickled.exists():
        print(f"staged roster reused from {pickled.parent}")
    else:
        started = time.perf_counter()
        code = (
            "import pickle, sys; from pathlib import Path; from xueji_quality import staging; "
            "store = staging.stage_exports([Path(sys.argv[1])], sys.argv[2], Path(sys.argv[3])); "
            "Path(sys.argv[4]).write_bytes(pickle.dumps(store))"
        )
        staged_dir = folder / "staged" / "roster"
        subprocess.run(
            [sys.executable, "-c", code, str(folder / "roster.parquet"), PROVINCE]
            + [str(staged_dir), str(pickled)],
            check=True,
        )
        print(f"roster staged by ingest in {time.perf_counter() - started:.1f} s (not timed)")
    return pickle.loads(pickled.read_bytes())


def _recall(outcome, truth: pd.DataFrame, pending: set[str]) -> None:
    found = set(zip(outcome.problems["record_id"], outcome.problems["rule"], strict=True))
    planted = truth[~truth["rule"].isin(["", "ID_CHECKSUM"]) & ~truth["record_id"].isin(pending)]
    hints = truth[truth["kind"] == "registry_hint"]
    given = outcome.checksum_suggestions.set_index("record_id")["suggestion"]
    if len(given):
        hit = sum(
            r in given.index and e in given[r]
            for r, e in zip(hints.record_id, hints.expected, strict=True)
        )
        print(f"    recall {'registry_hint':18s} {hit:8,d} / {len(hints):8,d}")
    for kind, rows in planted.groupby("kind"):
        hit = sum((r, u) in found for r, u in zip(rows["record_id"], rows["rule"], strict=True))
        print(f"    recall {kind:18s} {hit:8,d} / {len(rows):8,d}")
    expected = set(zip(truth["record_id"], truth["rule"], strict=True))
    false = sum((r, u) not in expected for r, u in found)
    print(f"    police problems not in the truth: {false}")


def _timed_stage(label: str, store, scratch: Path, **source):
    from xueji_quality.police import runs

    before_rss = _rss_mb()
    sampler = TreeSampler(os.getpid())
    sampler.start()
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = runs.check_staged(store, data_docs_dir=scratch / f"docs-{label}", **source)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sampler.stop()
    peak = max(s[1] for s in sampler.samples) / 2**20
    rows = store.rows_staged
    print(f"check_staged, {label}: {wall:.2f} s wall, {cpu:.2f} s CPU, {rows / wall:,.0f} rows/s")
    print(
        f"    RSS before {before_rss:,.0f} MB, peak RSS of the process tree during the stage "
        f"{peak:,.0f} MB (sampled), peak of the process {_peak_mb():,.0f} MB (getrusage)"
    )
    print(f"    {outcome.files[0]['name']}: {outcome.files[0]['rows']:,} rows, load {_load()}")
    return outcome


def _report(label: str, outcome, truth: pd.DataFrame) -> None:
    print(f"{label}: sent {outcome.sent:,}, pending {len(outcome.pending):,}, problems by rule:")
    for rule, count in outcome.problems["rule"].value_counts().items():
        print(f"      {rule:22s} {count:9,d}")
    print(f"    ID_CHECKSUM suggestions from the registry: {len(outcome.checksum_suggestions):,}")
    pending = (
        set(truth.loc[truth["kind"] == "pending", "record_id"]) if label == "results" else set()
    )
    _recall(outcome, truth, pending)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_only(folder: Path, results: bool) -> None:
    store = _staged(folder)
    # A run has imported these before this stage (validation, linkage).
    import great_expectations  # noqa: F401
    import pypinyin  # noqa: F401

    outcomes = {}
    with tempfile.TemporaryDirectory(prefix="xueji-police-docs-") as scratch:
        sources = {"registry": {"registry": folder / "registry.parquet"}}
        if results:
            sources["results"] = {"results": folder / "police_results.csv"}
        for label, source in sources.items():
            outcomes[label] = _timed_stage(label, store, Path(scratch), **source)
    truth = pd.read_csv(folder / "truth_police.csv", dtype="string", keep_default_na=False)
    # Rows ingest quarantined (a county it cannot tell) are not in the run.
    staged = store.records(truth["record_id"], ["record_id"])["record_id"]
    truth = truth[truth["record_id"].isin(staged)]
    for label, outcome in outcomes.items():
        _report(label, outcome, truth)


def whole_run(folder: Path, results: bool, out: Path) -> None:
    police = (
        ["--police-results", str(folder / "police_results.csv")]
        if results
        else ["--police-registry", str(folder / "registry.parquet")]
    )
    command = _cli("run", str(folder / "roster.parquet"), "--province", PROVINCE)
    command += ["--out", str(out), "--as-of", AS_OF, *police]
    env = dict(os.environ, PYTHONUNBUFFERED="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.setdefault("PREFECT_HOME", str(out / "prefect-home"))
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    sampler = TreeSampler(child.pid)
    sampler.start()
    tail: list[str] = []
    assert child.stdout is not None
    for line in child.stdout:
        now = time.perf_counter()
        tail = [*tail[-80:], line]
        match = STAGE_LINE.search(line)
        if match:
            seconds = float(match.group(3))
            peak, cpu = sampler.window(now - seconds, now)
            print(
                f"[{now - started:7.1f} s] {match.group(1):8s} {seconds:7.1f} s, CPU {cpu:7.1f} s, "
                f"peak tree RSS {peak:,.0f} MB, load {_load()}",
                flush=True,
            )
    code = child.wait()
    wall = time.perf_counter() - started
    sampler.stop()
    if code != 0:
        sys.stdout.write("".join(tail))
        raise SystemExit(f"xueji-quality run exited with {code}")
    peak = max(s[1] for s in sampler.samples) / 2**20
    print(f"whole run: {wall:.1f} s wall, peak RSS of the process tree {peak:,.0f} MB")
    manifest = json.loads(
        (out / f"{PROVINCE}-{AS_OF.replace('-', '')}" / "manifest.json").read_text()
    )
    print(f"    timings_s: {manifest.get('timings_s')}")
    print(f"    police: {json.dumps(manifest.get('police'), ensure_ascii=False)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="folder for the sample (reused when there)")
    parser.add_argument("--results", action="store_true", help="the result-file form too")
    parser.add_argument("--run", action="store_true", help="time the whole run instead")
    args = parser.parse_args()
    print(f"load average before: {_load()}")
    with tempfile.TemporaryDirectory(prefix="xueji-police-bench-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        _sample(folder, args.rows, args.seed)
        if args.run:
            out = Path(tempfile.mkdtemp(prefix="run-", dir=folder))
            whole_run(folder, args.results, out)
        else:
            stage_only(folder, args.results)
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
