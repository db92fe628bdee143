"""Benchmark of validate_roster: rows per second and peak memory on a generated roster.

    python bench/validate.py --rows 1000000 [--workers 2] [--profile out.html]

The roster comes from the sample generator (through ingest, as a run sees it) when both exist,
else from ``xueji_quality.rules.synthetic.clean_roster`` with a few percent of cells corrupted.
Only validate_roster is timed.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from xueji_quality.validate import validate_roster

AS_OF = date(2026, 11, 28)


def generated_roster(rows: int, seed: int, province: str) -> tuple[pd.DataFrame, str]:
    try:
        from xueji_quality import generator, ingest

        with tempfile.TemporaryDirectory() as folder:
            generator.write_sample(Path(folder), rows, seed, province, "parquet")
            staged = ingest.read_exports([Path(folder) / "roster.parquet"], province=province)
        return staged.roster, "generator + ingest"
    except Exception as error:  # not there yet, or a different signature
        print(
            f"(generator/ingest not usable: {error!r}; using the synthetic roster)", file=sys.stderr
        )
    from xueji_quality.rules.synthetic import clean_roster

    roster = clean_roster(rows, seed, province, AS_OF)
    rng = np.random.default_rng(seed)
    for column, bad in [
        ("id_number", "11010519491231002Y"),
        ("sex", "男"),
        ("phone", "12345"),
        ("name", "张 三"),
        ("birth_date", "2001-02-30"),
    ]:
        hit = rng.random(rows) < 0.01
        roster.loc[hit, column] = bad
    return roster, "synthetic, 1% corrupted per column for 5 columns"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--province", default="44")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="roster parquet to reuse")
    parser.add_argument("--data-docs", type=Path, default=None, help="also build Data Docs here")
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument HTML report")
    args = parser.parse_args()

    if args.cache and args.cache.exists():
        roster, origin = pd.read_parquet(args.cache), f"cached in {args.cache}"
    else:
        roster, origin = generated_roster(args.rows, args.seed, args.province)
        if args.cache:
            roster.to_parquet(args.cache)
    print(f"roster: {len(roster):,} rows ({origin})")
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS with the roster loaded, before validating: {loaded:,.0f} MB")
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu_before = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    started = time.perf_counter()
    problems = validate_roster(
        roster, args.province, AS_OF, workers=args.workers, data_docs_dir=args.data_docs
    )
    elapsed = time.perf_counter() - started
    if profiler:
        profiler.stop()
        args.profile.write_text(profiler.output_html(), encoding="utf-8")
        print(profiler.output_text(unicode=True, color=False, show_all=False)[:6000])
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime - cpu_before
    print(f"validate_roster: {elapsed:.2f} s, {len(roster) / elapsed:,.0f} rows/s, CPU {cpu:.1f} s")
    print(f"problems: {len(problems):,}")
    print(problems["rule"].value_counts().to_string())
    print(f"peak RSS: main {peak_self:,.0f} MB, largest worker {peak_children:,.0f} MB")


if __name__ == "__main__":
    main()
