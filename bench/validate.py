"""Benchmark of validate_roster: rows per second and peak memory on a generated roster.

    python bench/validate.py --rows 1000000 [--workers 2] [--data-docs DIR] [--profile out.html]
        [--start-method forkserver|fork|spawn]

The roster comes from the sample generator (through ingest, as a run sees it) when both exist,
else from ``xueji_quality.rules.synthetic.clean_roster`` with a few percent of cells corrupted.
Only validate_roster is timed. Peak memory is reported three ways: the largest RSS of this process
and of any one worker (getrusage), and the peak of the process tree's summed RSS and PSS (sampled
every 200 ms from /proc; RSS counts pages shared between processes once per process, PSS splits
them, so the tree's real peak is nearer the PSS figure).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xueji_quality import validate
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


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return out


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in kB, zeros once it has gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    fields = dict(line.split(":", 1) for line in text.splitlines()[1:])
    return int(fields["Rss"].split()[0]), int(fields["Pss"].split()[0])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TreeMemory:
    """Peak summed RSS and PSS of this process and its descendants while running, and their CPU
    time (getrusage misses a forkserver's workers: they are not this process's children)."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak_rss, self.peak_pss = every, 0, 0
        self.start_rss, self.start_pss = _memory_kb(os.getpid())
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample_once(self) -> None:
        pids = _tree(os.getpid())
        sizes = [_memory_kb(pid) for pid in pids]
        self.peak_rss = max(self.peak_rss, sum(r for r, _ in sizes))
        self.peak_pss = max(self.peak_pss, sum(p for _, p in sizes))
        for pid in pids:
            self.cpu[pid] = max(self.cpu.get(pid, 0.0), _cpu_seconds(pid))

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._sample_once()
            self._stop.wait(self.every)

    def __enter__(self) -> TreeMemory:
        self.cpu_before = _cpu_seconds(os.getpid())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample_once()

    @property
    def cpu_seconds(self) -> float:
        """CPU of the tree while running (workers' last sample; they may end between samples)."""
        return sum(self.cpu.values()) - self.cpu_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--province", default="44")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="roster parquet to reuse")
    parser.add_argument("--data-docs", type=Path, default=None, help="also build Data Docs here")
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument HTML report")
    parser.add_argument(
        "--start-method", default=None, help="worker start method (default: validate's own)"
    )
    args = parser.parse_args()

    if args.cache and args.cache.exists():
        # As ingest stages it: pyarrow-backed strings, never Python string objects.
        as_staged = {
            pa.string(): pd.StringDtype("pyarrow"),
            pa.large_string(): pd.StringDtype("pyarrow"),
        }
        roster = pq.read_table(args.cache).to_pandas(types_mapper=as_staged.get)
        origin = f"cached in {args.cache}"
    else:
        roster, origin = generated_roster(args.rows, args.seed, args.province)
        if args.cache:
            roster.to_parquet(args.cache)
    if args.start_method:
        validate.START_METHOD = args.start_method
    print(f"roster: {len(roster):,} rows ({origin}); load average {os.getloadavg()}")
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
    with TreeMemory() as tree:
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
    print(
        f"process tree while validating: peak RSS sum {tree.peak_rss / 1024:,.0f} MB, "
        f"peak PSS sum {tree.peak_pss / 1024:,.0f} MB (this process before: RSS "
        f"{tree.start_rss / 1024:,.0f} MB, PSS {tree.start_pss / 1024:,.0f} MB), "
        f"CPU {tree.cpu_seconds:.1f} s"
    )
    if args.data_docs:
        pages = sorted(args.data_docs.joinpath("validations").rglob("*.html"))
        print(f"Data Docs: {args.data_docs / 'index.html'}, {len(pages)} validation pages")


if __name__ == "__main__":
    main()
