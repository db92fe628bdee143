"""Benchmark of duplicate detection (查重) on a generated roster.

    python bench/link.py --rows 1000000 [--seed 7] [--province 44]

The roster is generated, written as Parquet and read back through ingest (untimed, in this
process); the canonical roster is then handed to a fresh process that runs find_duplicates alone,
so the wall time and peak RSS printed are those of the linkage stage (the child holds only the
roster columns linkage reads, linkage.COLUMNS_USED; the process size with them loaded is printed
as the baseline).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_linkage(folder: Path) -> None:
    """Child side: load the canonical roster, time find_duplicates, write pairs and figures."""
    from xueji_quality.linkage import COLUMNS_USED, find_duplicates

    roster = pd.read_parquet(folder / "canonical.parquet", columns=list(COLUMNS_USED))
    roster = roster.astype("string")
    baseline = _rss_mb()
    start = time.perf_counter()
    result = find_duplicates(roster)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.pairs.to_parquet(folder / "pairs.parquet")
    figures = {
        "wall_s": wall,
        "peak_rss_mb": peak,
        "baseline_rss_mb": baseline,
        "stats": result.stats,
    }
    (folder / "figures.json").write_text(json.dumps(figures, ensure_ascii=False, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--province", default="44")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        run_linkage(args.child)
        return

    from xueji_quality.generator import write_sample
    from xueji_quality.ingest import read_exports
    from xueji_quality.linkage import evaluate, format_evaluation

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write_sample(folder / "sample", args.rows, args.seed, args.province, "parquet")
        staged = read_exports([folder / "sample" / "roster.parquet"], args.province)
        staged.roster.to_parquet(folder / "canonical.parquet")
        print(
            f"generated and ingested {len(staged.roster):,} rows in {time.perf_counter() - t0:.1f} s (untimed)"
        )
        subprocess.run([sys.executable, __file__, "--child", str(folder)], check=True)
        figures = json.loads((folder / "figures.json").read_text())
        pairs = pd.read_parquet(folder / "pairs.parquet")
        truth = pd.read_csv(folder / "sample" / "truth_duplicates.csv", dtype=str)
        hard_path = folder / "sample" / "truth_hard_negatives.csv"
        hard = pd.read_csv(hard_path, dtype=str) if hard_path.exists() else None

    stats = figures["stats"]
    candidates = stats["candidate_pairs"]
    print(f"rows                {stats['records']:,}")
    print(f"candidate pairs     {candidates:,}  per pass {stats['pass_pairs']}")
    print(f"oversized blocks    {len(stats['oversized_blocks'])} {stats['oversized_blocks'][:5]}")
    print(
        f"linked pairs        {stats['linked_pairs']:,}  groups {stats['groups']:,}  oversized groups {stats['oversized_groups']}"
    )
    print(
        f"wall time           {figures['wall_s']:.2f} s  ({candidates / figures['wall_s']:,.0f} candidate pairs/s)"
    )
    print("stage timings       " + ", ".join(f"{k} {v:.2f} s" for k, v in stats["timings"].items()))
    print(
        f"peak RSS            {figures['peak_rss_mb']:,.0f} MB (roster loaded: {figures['baseline_rss_mb']:,.0f} MB)"
    )
    print(format_evaluation(evaluate(pairs, truth, hard)))


if __name__ == "__main__":
    main()
