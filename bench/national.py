"""Benchmark of the national duplicate check end to end: export, national run on Dask, returns.

    python bench/national.py --rows 250000 [--provinces 44,45,43,36] [--seed 7] [--out DIR]
                             [--workers 2] [--memory-limit 4GB] [--dask-address tcp://H:P]
                             [--partitions P] [--token-rows-per-partition R]
                             [--rows-per-piece R] [--config FILE] [--keep] [--reuse-exchange]

For each ``--rows`` (rows per province; a comma list runs several sizes, smallest first, and
ends with a table of per-worker peak memory by size):

1. rosters of the provinces with cross-province students and truth (``generator.national``;
   reused from ``--out`` when there with ``--keep``; not timed in the total);
2. each province's exchange file, each in a fresh process as a province would run it (staging
   the roster as the provincial run does, then tokens): wall time and peak RSS. With
   ``--reuse-exchange`` the files of an earlier run in the same folder are used again when
   they are of the current token scheme (their export figures come from that run's
   ``exchange/export.json``);
3. the national linkage on a LocalCluster of ``--workers`` single-threaded processes with
   ``--memory-limit`` each (or the cluster at ``--dask-address``) with the settings of
   config/national.json (``--config``): the partitions follow from the rows, a fixed number of
   token rows each (``token_rows_per_partition``), and each task reads a fixed number of
   records (``records_per_piece``), so what a worker holds at once does not grow with the
   provinces (``--token-rows-per-partition`` and ``--rows-per-piece`` override both). Wall
   time per stage, token rows by kind, partitions and their sizes, shuffle bytes (26 bytes per
   token row), pairs, and per worker its busy time and peak RSS;
4. each province's returns read back into problem rows (``national.returns``): wall time;
5. precision, recall, pairs by truth kind and by the tokens that met, and linked
   twins/namesakes against the generator's truth.

Prints a table per size and writes ``bench.json`` into the size's folder. The key is random per
run and is held only in memory and, for the export processes, in a file of mode 0600 that is
removed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import secrets
import shutil
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

TOKEN_ROW_BYTES = 26  # hi 8 + lo 8 + kind 1 + rid 8 + state 1


def _rss_bytes(children: bool = False) -> int:
    """Resident memory of this process (with ``children``: and of every process it started)."""
    import psutil

    process = psutil.Process()
    total = process.memory_info().rss
    if children:
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # ended meanwhile
                pass
    return total


class Peak:
    """Peak RSS of this process (``children``: with the processes it starts) while the block
    runs (sampled every 50 ms)."""

    def __init__(self, children: bool = False) -> None:
        self.children = children

    def __enter__(self) -> Peak:
        self.peak = _rss_bytes(self.children)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.started = time.perf_counter()
        return self

    def _run(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, _rss_bytes(self.children))

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.started
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes(self.children))


def _export(roster: str, province: str, key_file: str, out: str) -> dict:
    """In a fresh process: one province's exchange file; its manifest, time and peak RSS."""
    from xueji_quality.national import exchange, tokens

    with Peak(children=True) as tree:
        manifest = exchange.export_roster([roster], province, tokens.load_key(key_file), out)
    # Sampled, this process and the staging processes it starts together: its ru_maxrss would
    # be the bench's own size, which a spawned process inherits as its high-water mark.
    return {
        "seconds": tree.seconds,
        "peak_rss": tree.peak,
        "rows": manifest["rows"],
        "tokens": manifest["tokens"],
        "token_rows": manifest["token_rows"],
        "bytes": manifest["bytes"],
    }


def _gb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e9:.2f}"


def _exports(args, provinces, made, exchange_dir: Path, key_file: Path) -> tuple[dict, float]:
    """Each province's exchange file in a process of its own (or an earlier run's files)."""
    from xueji_quality.national import exchange, tokens

    record = exchange_dir / "export.json"
    files = [exchange_dir / f"{p}.parquet" for p in provinces]
    if args.reuse_exchange and record.exists() and all(f.exists() for f in files):
        try:
            schemes = {exchange.exchange_info(f)["scheme"] for f in files}
        except Exception:  # a file of an older layout: export again
            schemes = set()
        if schemes == {tokens.SCHEME}:
            earlier = json.loads(record.read_text("utf-8"))
            print(f"  导出：沿用 {exchange_dir} 中已有的交换文件（{tokens.SCHEME}）", flush=True)
            return earlier["export"], earlier["export_s"]
    shutil.rmtree(exchange_dir, ignore_errors=True)
    context = multiprocessing.get_context("spawn")
    figures = {}
    started = time.perf_counter()
    for province in provinces:
        # Not a multiprocessing.Pool: its processes are daemons, and staging starts processes.
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            figures[province] = pool.submit(
                _export,
                made["rosters"][province], province, str(key_file),
                str(exchange_dir / f"{province}.parquet"),
            ).result()  # fmt: skip
        print(
            f"  导出 {province}: {figures[province]['rows']} 行 "
            f"{figures[province]['seconds']:.1f} s，峰值 {_gb(figures[province]['peak_rss'])} GB",
            flush=True,
        )
    seconds = round(time.perf_counter() - started, 1)
    record.write_text(json.dumps({"export": figures, "export_s": seconds}), "utf-8")
    return figures, seconds


def run_size(args, rows: int, key_file: Path) -> dict:
    from xueji_quality.generator.national import generate_national
    from xueji_quality.national import evaluate, link, returns

    provinces = [p.strip() for p in args.provinces.split(",")]
    folder = Path(args.out) / f"{len(provinces)}x{rows}"
    rosters = folder / "rosters"
    figures: dict = {"rows_per_province": rows, "provinces": provinces}
    if not (args.keep and (rosters / "truth_cross_province.csv").exists()):
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        made = generate_national(rosters, provinces, rows, args.seed)
        figures["generate_s"] = round(time.perf_counter() - started, 1)
        (folder / "generated.json").write_text(json.dumps(made, ensure_ascii=False), "utf-8")
    made = json.loads((folder / "generated.json").read_text("utf-8"))

    # 2. exports, one fresh process each (as each province runs its own).
    exchange_dir = folder / "exchange"
    figures["export"], figures["export_s"] = _exports(args, provinces, made, exchange_dir, key_file)

    # 3. the national run.
    from distributed import Client, LocalCluster

    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    files = [exchange_dir / f"{p}.parquet" for p in provinces]
    national = folder / "national"
    shutil.rmtree(national, ignore_errors=True)
    settings = replace(link.load_settings(args.config), partitions=args.partitions)
    if args.token_rows_per_partition:
        settings = replace(settings, token_rows_per_partition=args.token_rows_per_partition)
    if args.rows_per_piece:
        settings = replace(settings, rows_per_piece=args.rows_per_piece)
    started = time.perf_counter()
    with Peak() as client_peak:
        if args.dask_address:
            with Client(args.dask_address) as client:
                summary = link.national_link(files, national, client, settings)
        else:
            with (
                LocalCluster(
                    n_workers=args.workers,
                    threads_per_worker=1,
                    memory_limit=args.memory_limit,
                    dashboard_address=None,
                ) as cluster,
                Client(cluster) as client,
            ):
                summary = link.national_link(files, national, client, settings)
    figures["national_s"] = round(time.perf_counter() - started, 1)
    figures["national_client_peak_rss"] = client_peak.peak
    figures["summary"] = {k: v for k, v in summary.items() if k != "files"}

    # 4. returns back in each province.
    figures["returns"] = {}
    started = time.perf_counter()
    with Peak() as returns_peak:
        for province in provinces:
            outcome = returns.national_problems(
                national / "returns" / f"{province}.parquet", province
            )
            figures["returns"][province] = len(outcome.problems)
    figures["returns_s"] = round(time.perf_counter() - started, 1)
    figures["returns_peak_rss"] = returns_peak.peak
    figures["total_s"] = round(
        figures["export_s"] + figures["national_s"] + figures["returns_s"], 1
    )

    # 5. quality.
    figures["score"] = evaluate.score(
        national, made["truth_cross_province"], made["truth_cross_negatives"]
    )
    figures["found_by_kind"] = evaluate.found_by_kind(
        national, made["truth_cross_province"], made["truth_cross_negatives"]
    )
    (folder / "bench.json").write_text(
        json.dumps(figures, ensure_ascii=False, indent=2, default=str), "utf-8"
    )
    return figures


def report(figures: dict) -> None:
    s = figures["summary"]
    parts = s["token_partitions"]
    records = s["records"]
    print(
        f"\n== {len(figures['provinces'])} 省 × {figures['rows_per_province']} 行（记录 {records}）"
    )
    print(f"导出（每省一个进程，依次）: {figures['export_s']} s")
    for province, e in figures["export"].items():
        print(
            f"  {province}: {e['seconds']:.1f} s，峰值（连同入库子进程）{_gb(e['peak_rss'])} GB，"
            f"令牌 {e['token_rows']}（每条 {e['token_rows'] / max(e['rows'], 1):.2f}），"
            f"文件 {e['bytes'] / 1e6:.1f} MB"
        )
    print(f"全国查重: {figures['national_s']} s（{s['timings_s']}）")
    print(
        f"  令牌行 {s['token_rows']}（{s['token_rows_by_kind']}），"
        f"约 {s['token_rows'] * TOKEN_ROW_BYTES / 1e9:.2f} GB 参与洗牌"
    )
    print(
        f"  分区 {parts['count']} 个，每个 {parts['rows_min']}–{parts['rows_max']} 行"
        f"（中位 {parts['rows_median']:.0f}）；共享令牌 {s['shared_tokens']}，最长 {s['largest_run']}，"
        f"封顶 {s['capped_runs']}"
    )
    print(
        f"  候选对 {s['candidate_pairs']}，跨省重复 {s['duplicate_pairs']}（{s['pairs_by_class']}）"
    )
    print(f"  按相遇的令牌: {s['pairs_by_match_keys']}")
    print(f"  客户端进程峰值 {_gb(figures['national_client_peak_rss'])} GB")
    total_peak = 0
    for address, w in s["workers"].items():
        total_peak += w["rss_peak"] or 0
        print(
            f"  工作进程 {address}: 忙 {w['busy_s']} s，内存 开始 {_gb(w['rss_start'])} GB，"
            f"峰值 {_gb(w['rss_peak'])} GB"
        )
    print(f"  工作进程峰值合计 {_gb(total_peak)} GB")
    print(
        f"回执转问题行: {figures['returns_s']} s，峰值 {_gb(figures['returns_peak_rss'])} GB，{figures['returns']}"
    )
    print(f"合计（导出 + 全国 + 回执）: {figures['total_s']} s")
    score = figures["score"]
    print(
        f"精确率 {score['precision']:.4f}，召回率 {score['recall']:.4f}"
        f"（{score['hits']}/{score['true']}，找到 {score['found']}），"
        f"双胞胎/同名同生日误连 {score['negatives_linked']}/{score['negatives']}；"
        f"按类别召回 {score['recall_by_kind']}"
    )
    print("找到的对（按真值类别 × 相遇的令牌）:")
    for kind, keys in figures["found_by_kind"].items():
        print(f"  {kind}: {keys}")


def series(results: list[dict]) -> None:
    """Per-worker peak memory by size, at the settings' fixed partition and piece sizes."""
    print("\n规模与每个工作进程的峰值内存（分区与读入块大小固定）:")
    print(
        "  记录 | 令牌行 | 分区（每个行数中位） | 读入块 | 全国 s | 工作进程峰值 GB | 客户端峰值 GB"
    )
    for figures in results:
        s = figures["summary"]
        parts = s["token_partitions"]
        peaks = [w["rss_peak"] for w in s["workers"].values()]
        print(
            f"  {s['records']} | {s['token_rows']} | {parts['count']}（{parts['rows_median']:.0f}）"
            f" | {s['settings']['rows_per_piece']} | {figures['national_s']} | "
            f"{', '.join(_gb(p) for p in peaks)} | {_gb(figures['national_client_peak_rss'])}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="250000", help="每省行数，可逗号分隔多个规模")
    parser.add_argument("--provinces", default="44,45,43,36")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--dask-address", default=None)
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument(
        "--token-rows-per-partition",
        type=int,
        default=None,
        help="令牌分区的目标行数（默认取全国查重参数文件的 token_rows_per_partition）",
    )
    parser.add_argument(
        "--rows-per-piece",
        type=int,
        default=None,
        help="每个读入任务读的交换文件记录数（默认取参数文件的 records_per_piece）",
    )
    parser.add_argument(
        "--config", default=None, help="全国查重参数文件（默认 config/national.json）"
    )
    parser.add_argument("--keep", action="store_true", help="保留并复用生成的花名册")
    parser.add_argument(
        "--reuse-exchange",
        action="store_true",
        help="沿用该规模目录中已有的交换文件（同一令牌方案）",
    )
    args = parser.parse_args()
    temporary = None
    if args.out is None:
        temporary = tempfile.mkdtemp(prefix="xueji-national-bench-")
        args.out = temporary
    print(f"负载 {os.getloadavg()}", flush=True)
    key_dir = Path(tempfile.mkdtemp(prefix="xueji-key-"))
    key_file = key_dir / "national.key"
    key_file.write_text(secrets.token_hex(32), encoding="ascii")
    os.chmod(key_file, 0o600)
    try:
        results = []
        for rows in sorted(int(r) for r in args.rows.split(",")):
            figures = run_size(args, rows, key_file)
            report(figures)
            results.append(figures)
        if len(results) > 1:
            series(results)
    finally:
        shutil.rmtree(key_dir, ignore_errors=True)
        if temporary and not args.keep:
            shutil.rmtree(temporary, ignore_errors=True)
    print(f"负载 {os.getloadavg()}")


if __name__ == "__main__":
    main()
