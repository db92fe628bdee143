"""Benchmark of duplicate detection (查重) on a generated roster.

    python bench/link.py --rows 1000000 [--seed 7] [--province 44] [--keep DIR]
                         [--sample DIR] [--order file|county] [--profile FILE] [--as-of DATE]

The roster is generated, written as Parquet and read back through ingest (untimed, in this
process); the canonical roster is then handed to a fresh process that runs find_duplicates alone,
so the wall time and peak RSS printed are those of the linkage stage. The child holds only the
roster columns linkage reads (linkage.COLUMNS_USED), as ingest stages them (pyarrow-backed
strings); the process size with them loaded is printed as the baseline, and the RSS sampled every
20 ms is split by linkage step (prepare, index, compare, classify, cluster).

``--keep DIR`` keeps the generated sample and the canonical roster in DIR and reuses them when
they are there (a roster already in DIR is used whatever --rows says). ``--sample DIR`` takes a
generator output folder (roster and truth files, e.g. one written by ``xueji-quality sample``)
instead of generating, and stages it as the provincial run does (Parquet by county, so the roster
arrives in county order). ``--order county`` hands the roster over sorted by county, as the
provincial run does. ``--profile x.txt`` / ``x.html`` records the child with pyinstrument.
``--as-of`` is the run date whose school year the age check of the IDs uses (default: late
November of the generator's school year, as bench/province.py runs).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """(seconds since start, RSS MB) every ``every`` seconds until stopped."""

    def __init__(self, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self.start_time = time.perf_counter()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.samples.append((time.perf_counter() - self.start_time, _rss_mb()))
            self._done.wait(self.every)

    def stop(self) -> list[tuple[float, float]]:
        self._done.set()
        self.join()
        return self.samples


def _step_peaks(samples: list[tuple[float, float]], timings: dict) -> dict[str, float]:
    """Peak sampled RSS within each step's window (steps run in the order of ``timings``)."""
    peaks: dict[str, float] = {}
    start = 0.0
    for step, seconds in timings.items():
        window = [rss for t, rss in samples if start <= t <= start + seconds]
        if not window:  # a step shorter than the sampling interval: the next sample
            window = [rss for t, rss in samples if t >= start][:1] or [float("nan")]
        peaks[step] = max(window)
        start += seconds
    return peaks


def run_linkage(folder: Path, order: str, profile: Path | None, as_of: str) -> None:
    """Child side: load the canonical roster, time find_duplicates, write pairs and figures."""
    from xueji_quality.linkage import COLUMNS_USED, find_duplicates

    as_staged = {
        pa.string(): pd.StringDtype("pyarrow"),
        pa.large_string(): pd.StringDtype("pyarrow"),
    }
    present = set(pq.ParquetFile(folder / "canonical.parquet").schema_arrow.names)
    columns = [c for c in COLUMNS_USED if c in present]
    table = pq.read_table(folder / "canonical.parquet", columns=columns)
    if order == "county":
        table = table.sort_by("county_code")
    roster = table.to_pandas(types_mapper=as_staged.get, self_destruct=True)
    del table
    gc.collect()
    pa.default_memory_pool().release_unused()
    baseline = _rss_mb()
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.01)
        profiler.start()
    sampler = RssSampler()
    sampler.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    load_before = os.getloadavg()[0]
    result = find_duplicates(roster, as_of=as_of)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    samples = sampler.stop()
    if profiler is not None:
        profiler.stop()
        if profile.suffix == ".html":
            profile.write_text(profiler.output_html(), encoding="utf-8")
        else:
            profile.write_text(profiler.output_text(unicode=True, show_all=False), encoding="utf-8")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    offset = start - sampler.start_time
    samples = [(t - offset, rss) for t, rss in samples]
    result.pairs.to_parquet(folder / "pairs.parquet")
    figures = {
        "wall_s": wall,
        "cpu_s": cpu,
        "load": [load_before, os.getloadavg()[0]],
        "peak_rss_mb": peak,
        "baseline_rss_mb": baseline,
        "step_peak_rss_mb": _step_peaks(samples, result.stats["timings"]),
        "stats": result.stats,
    }
    (folder / "figures.json").write_text(json.dumps(figures, ensure_ascii=False, default=str))


def _stage_sample(folder: Path, sample: Path, province: str) -> None:
    """A generator's output folder staged as the provincial run stages it (Parquet by county,
    memory bounded by a flush), and linkage's columns written in store order to
    folder/canonical.parquet, one part file at a time."""
    from xueji_quality import staging
    from xueji_quality.linkage import COLUMNS_USED

    t0 = time.perf_counter()
    exports = sorted(
        p for p in sample.glob("roster.*") if p.suffix in (".csv", ".parquet", ".xlsx")
    )
    store = staging.stage_exports(exports, province, folder / "staged")
    columns = [c for c in COLUMNS_USED if c in store.columns]
    writer = None
    for part in store.parts:
        table = pq.read_table(part.path, columns=columns).cast(
            pa.schema([pa.field(c, pa.large_string()) for c in columns])
        )
        writer = writer or pq.ParquetWriter(folder / "canonical.parquet", table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    store.remove()
    (folder / "sample_dir.txt").write_text(str(sample.resolve()), encoding="utf-8")
    print(
        f"staged {store.rows_staged:,} rows of {sample} in {time.perf_counter() - t0:.1f} s (untimed)"
    )


def _prepare(folder: Path, rows: int, seed: int, province: str, sample: Path | None) -> None:
    """Generated sample in folder/sample and its canonical roster in folder/canonical.parquet."""
    if (folder / "canonical.parquet").exists():
        rows_there = pq.ParquetFile(folder / "canonical.parquet").metadata.num_rows
        print(f"reusing the roster in {folder} ({rows_there:,} rows)")
        return
    if sample is not None:
        _stage_sample(folder, sample, province)
        return
    from xueji_quality.generator import write_sample
    from xueji_quality.ingest import read_exports

    t0 = time.perf_counter()
    write_sample(folder / "sample", rows, seed, province, "parquet")
    staged = read_exports([folder / "sample" / "roster.parquet"], province)
    staged.roster.to_parquet(folder / "canonical.parquet")
    print(
        f"generated and ingested {len(staged.roster):,} rows in {time.perf_counter() - t0:.1f} s (untimed)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--province", default="44")
    parser.add_argument(
        "--keep", type=Path, default=None, help="folder to keep and reuse the roster"
    )
    parser.add_argument("--order", choices=("file", "county"), default="file")
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument .txt or .html")
    parser.add_argument(
        "--sample", type=Path, default=None, help="a generator output folder to stage instead"
    )
    parser.add_argument(
        "--as-of", default=None, help="run date YYYY-MM-DD (default: the generator's school year)"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare is not None:
        _prepare(args.prepare, args.rows, args.seed, args.province, args.sample)
        return
    if args.child is not None:
        run_linkage(args.child, args.order, args.profile, args.as_of)
        return
    if args.as_of is None:
        from xueji_quality.generator import SCHOOL_YEAR

        args.as_of = f"{SCHOOL_YEAR}-11-28"

    from xueji_quality.linkage import evaluate, format_evaluation

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep if args.keep is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        # A fresh interpreter generates, so this process is small while the child runs.
        prepare = [sys.executable, __file__, "--prepare", str(folder), "--rows", str(args.rows)]
        prepare += ["--seed", str(args.seed), "--province", args.province]
        if args.sample is not None:
            prepare += ["--sample", str(args.sample)]
        subprocess.run(prepare, check=True)
        command = [sys.executable, __file__, "--child", str(folder), "--order", args.order]
        command += ["--as-of", args.as_of]
        if args.profile is not None:
            command += ["--profile", str(args.profile.resolve())]
        subprocess.run(command, check=True)
        figures = json.loads((folder / "figures.json").read_text())
        pairs = pd.read_parquet(folder / "pairs.parquet")
        marker = folder / "sample_dir.txt"
        sample = Path(marker.read_text(encoding="utf-8")) if marker.exists() else folder / "sample"
        truth = pd.read_csv(sample / "truth_duplicates.csv", dtype=str)
        hard_path = sample / "truth_hard_negatives.csv"
        hard = pd.read_csv(hard_path, dtype=str) if hard_path.exists() else None

    stats = figures["stats"]
    candidates = stats["candidate_pairs"]
    staged = " (staged: by county)" if args.sample is not None else ""
    print(f"rows                {stats['records']:,}  (order: {args.order}{staged})")
    print(
        f"inconsistent IDs    {stats.get('inconsistent_valid_ids', 0):,}  (valid, but contradicting"
        f" their record; run date {args.as_of})"
    )
    print(f"candidate pairs     {candidates:,}  per pass {stats['pass_pairs']}")
    if "sub_blocked" in stats:
        print(f"sub-blocked blocks  {stats['sub_blocked']}")
    print(f"oversized blocks    {len(stats['oversized_blocks'])} {stats['oversized_blocks'][:5]}")
    print(
        f"linked pairs        {stats['linked_pairs']:,}  groups {stats['groups']:,}  oversized groups {stats['oversized_groups']}"
    )
    print(
        f"wall time           {figures['wall_s']:.2f} s  ({candidates / figures['wall_s']:,.0f} candidate pairs/s)"
        f"  CPU {figures['cpu_s']:.2f} s  load average {figures['load'][0]:.2f} -> {figures['load'][1]:.2f}"
    )
    print("stage timings       " + ", ".join(f"{k} {v:.2f} s" for k, v in stats["timings"].items()))
    during = max(figures["step_peak_rss_mb"].values())
    print(
        f"peak RSS            {figures['peak_rss_mb']:,.0f} MB over the child's life, {during:,.0f} MB"
        f" sampled during linkage (roster loaded: {figures['baseline_rss_mb']:,.0f} MB)"
    )
    print(
        "peak RSS per step   "
        + ", ".join(f"{k} {v:,.0f} MB" for k, v in figures["step_peak_rss_mb"].items())
    )
    print(format_evaluation(evaluate(pairs, truth, hard)))


if __name__ == "__main__":
    main()
