"""Benchmark of the police cross-check: police_check on a generated roster and registry extract.

    python bench/police.py --rows 1000000 [--seed S] [--keep DIR] [--results] [--profile out.html]

The roster comes from the sample generator (Parquet), read as a run reads it (ingest), and the
registry extract (about 1.3 rows per roster row) from ``generator.police.write_police``;
generation and reading the roster are not timed. Timed: ``police_check`` with the extract's
path (reading the extract, the joins, the name kinds, the check-character neighbours, the police
suite through Great Expectations), once warm (Great Expectations is imported before, as a run has
it). ``--results`` times the result-file form as well. Printed: wall and CPU seconds, rows per
second, problem rows per rule, peak RSS of the process (getrusage) and RSS before the stage,
recall per planted class against the truth file (records ingest quarantined left out), and the
load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from xueji_quality import generator, ingest
from xueji_quality.generator import police as generated_police
from xueji_quality.police import check


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sample(folder: Path, rows: int, seed: int) -> None:
    if (folder / "registry.parquet").is_file() and (folder / "roster.parquet").is_file():
        print(f"sample reused from {folder}")
        return
    start = time.perf_counter()
    generator.write_sample(folder, rows, seed, "44", "parquet")
    info = generated_police.write_police(folder, seed, "44")
    print(
        f"generated {rows:,} roster rows and {info['registry_rows']:,} registry rows "
        f"in {time.perf_counter() - start:.1f} s (not timed)"
    )


def _recall(outcome: check.PoliceOutcome, truth: pd.DataFrame, pending: set[str]) -> None:
    found = set(zip(outcome.problems["record_id"], outcome.problems["rule"], strict=True))
    planted = truth[~truth["rule"].isin(["", "ID_CHECKSUM"]) & ~truth["record_id"].isin(pending)]
    hints = truth[truth["kind"] == "registry_hint"]
    given = outcome.checksum_suggestions.set_index("record_id")["suggestion"]
    if len(given):
        hit = sum(
            r in given.index and e in given[r]
            for r, e in zip(hints.record_id, hints.expected, strict=True)
        )
        print(f"    recall {'registry_hint':18s} {hit:6d} / {len(hints):6d}")
    for kind, rows in planted.groupby("kind"):
        hit = sum((r, u) in found for r, u in zip(rows["record_id"], rows["rule"], strict=True))
        print(f"    recall {kind:18s} {hit:6d} / {len(rows):6d}")
    expected = set(zip(truth["record_id"], truth["rule"], strict=True))
    false = sum((r, u) not in expected for r, u in found)
    print(f"    police problems not in the truth: {false}")


def _timed(label: str, roster: pd.DataFrame, truth: pd.DataFrame, **source) -> None:
    before_rss = _rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = check.police_check(roster, **source)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: {wall:.2f} s wall, {cpu:.2f} s CPU, {len(roster) / wall:,.0f} rows/s")
    print(f"    RSS before {before_rss:,.0f} MB, peak RSS of the process {_peak_mb():,.0f} MB")
    print(f"    sent {outcome.sent:,}, pending {len(outcome.pending):,}, problems by rule:")
    for rule, count in outcome.problems["rule"].value_counts().items():
        print(f"      {rule:22s} {count:7,d}")
    print(f"    ID_CHECKSUM suggestions from the registry: {len(outcome.checksum_suggestions):,}")
    pending = (
        set(truth.loc[truth["kind"] == "pending", "record_id"]) if "results" in source else set()
    )
    _recall(outcome, truth, pending)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="folder for the sample (reused when there)")
    parser.add_argument("--results", action="store_true", help="also time the result-file form")
    parser.add_argument("--profile", type=Path, help="pyinstrument HTML report of the stage")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="xueji-police-bench-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        _sample(folder, args.rows, args.seed)
        start = time.perf_counter()
        roster = ingest.read_exports([folder / "roster.parquet"], "44").roster
        roster = roster[list(check.ROSTER_COLUMNS)]
        print(f"roster read through ingest in {time.perf_counter() - start:.1f} s (not timed)")
        truth = pd.read_csv(folder / "truth_police.csv", dtype="string", keep_default_na=False)
        # Rows ingest quarantined (a county it cannot tell) are not in the run.
        truth = truth[truth["record_id"].isin(roster["record_id"])]
        # A run has imported these before this stage (validation, linkage).
        import great_expectations  # noqa: F401
        import pypinyin  # noqa: F401

        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
        _timed(
            "police_check, registry extract", roster, truth, registry=folder / "registry.parquet"
        )
        if args.results:
            _timed(
                "police_check, result file", roster, truth, results=folder / "police_results.csv"
            )
        if profiler is not None:
            profiler.stop()
            args.profile.write_text(profiler.output_html(), encoding="utf-8")
            print(profiler.output_text(unicode=True, color=False)[:4000], file=sys.stderr)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
