"""The national linkage (全国查重) on dask.distributed: exchange files in, returns per province out.

Every step runs on the cluster's workers; the client holds file metadata, counts and the summary,
never tokens or records. Stages:

1. **tokens**: each exchange file is read in pieces of row groups (``dd.from_map``, so workers
   read the files themselves; ``records_per_piece`` records each) and each record becomes one
   row per token: the 128-bit token as two uint64 (``hi``, ``lo``), the token's kind, the
   record's ``rid`` (file index << 40 | row) and its ``id_state``. 26 bytes a row; about 6 rows
   per record.
2. **candidate pairs**: token rows shuffled by token (``shuffle_method="p2p"``: every worker
   sends and receives parts of every partition, each partition sits on one worker) into as many
   partitions as the files' footers announce token rows divided by ``token_rows_per_partition``,
   so what a worker sorts and pairs at a time does not grow with the records. All holders of a
   token meet in one partition. There the rows are sorted by token and each run of equal tokens
   gives its pairs of records from different provinces (``pairs_in_partition``), each with the
   bit of the kind that met and the run's length (how many records nationally hold the token):

   - ``id``: two ID tokens (the same ID number, 身份证号重复);
   - ``id_near``: a typo neighbour of an ID failing its check met the other record's ID, or a
     neighbour of its own (two typos of one number);
   - ``name`` / ``reading`` / ``family`` / ``family_county``: name + sex + birth date, a
     reading of the name + sex + birth date, the common readings of name and guardian + sex +
     birth date + the province, or the county, of 户口所在地. These runs are large (a common
     name on a common birthday is shared by dozens of children nationally), and two valid IDs
     mean two people, so only pairs in which at least one record lacks a valid ID are formed.

   A run longer than ``block_cap`` (a placeholder number or a test record typed in many schools)
   is not expanded; it is counted in the summary for a person to look at.
3. **decisions**: candidate pairs are shuffled by their first record, so every row of one pair
   meets; the bits are ORed, the run lengths reduced to the smallest, and a pair is a duplicate
   when the ID tokens met (class ``id``), or when a reading of the name met (the name, reading
   or family tokens) and the typo neighbours met, or when one record has no usable ID and
   ``MissingIdRule`` (config/national.json ``missing_id``) says so (class ``name``): the family
   token at the household's county, or at its province while the name and the family token are
   held by no more than two records nationally. Equal name + sex + birth date on two valid,
   different IDs is never a duplicate. Measured on generated provinces: name or reading, sex and
   birth date alone linked different children where one had no ID (3 × 20,000 records: 2 false
   pairs of 302, 李子/黎子 read alike, 任 also reads lin so 任芳/林芳); with the guardian's
   reading, 4 × 250,000 records still gave 6 false pairs of 5,006 (王芳 with guardian 王春梅),
   households in two provinces; with the household's province, 0 of 5,000 at 4 × 250,000 but
   195 false of 100,195 at 4 × 5,000,000 (王伟 with guardian 王明, households in one province,
   191 of them in two counties). docs/national.md has the figures of the county rule.
4. **returns**: the records of decided pairs are looked up by a broadcast join of their ids
   against the record columns of the exchange files; each pair gives one row to each side's
   province, shuffled by province and written by the workers as ``returns/<province>.parquet``
   (so ``out`` must be storage the workers share). ``suggested_keeper`` names the province of
   the registration to keep (学生在哪学籍在哪): the later 入学年月, then a graduating grade
   (六年级, 九年级, 高三), then the higher grade; empty when the two cannot be told apart.

The summary (``summary.json``) holds pairs by province pair and class, by the kinds that met,
token rows by kind, the size of every token partition, the capped runs, the time of each stage
and, per worker, its busy time and peak memory (a sampling thread on each worker reads the
process's resident memory every 50 ms while the linkage runs).

The stages live in ``link_tokens`` (planning, token and record rows), ``link_pairs`` (candidate
pairs and decisions per partition), ``link_returns`` (the returns files) and ``link_workers``
(memory and busy time per worker); this module runs them and writes the summary.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xueji_quality.national.link_pairs import (
    BLOCK_CAP,
    CLASS_NAMES,
    DECIDED_META,
    PAIR_META,
    MissingIdRule,
    decide,
    match_keys,
    pairs_in_partition,
)
from xueji_quality.national.link_returns import RETURN_COLUMNS, RETURNS, write_all_returns
from xueji_quality.national.link_tokens import KIND_NAMES, TOKEN_META, plan, token_rows
from xueji_quality.national.link_workers import (
    busy_seconds,
    start_memory_sampler,
    stop_memory_sampler,
)
from xueji_quality.national.settings import LinkSettings, load_settings

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "BLOCK_CAP",
    "RETURNS",
    "RETURN_COLUMNS",
    "SUMMARY_NAME",
    "LinkSettings",
    "MissingIdRule",
    "load_settings",
    "national_link",
    "plan",
]

SUMMARY_NAME = "summary.json"


def national_link(
    files: list[Path | str],
    out_dir: Path | str,
    client: Client,
    settings: LinkSettings | None = None,
) -> dict:
    """Link the exchange files of all provinces on the cluster of ``client``; write
    ``out_dir/returns/<province>.parquet`` (one per province, empty when it has no pairs) and
    ``out_dir/summary.json``; return the summary. ``settings``: config/national.json's when
    None."""
    import dask
    import dask.dataframe as dd
    from distributed import get_task_stream

    settings = settings or load_settings()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    returns_dir = out_dir / RETURNS
    returns_dir.mkdir(parents=True, exist_ok=True)
    files = [Path(f) for f in files]
    infos, pieces = plan(files, settings.rows_per_piece)
    provinces = [info["province"] for info in infos]
    token_estimate = sum(info["token_rows"] for info in infos)
    workers = max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
    partitions = settings.partitions or max(
        2 * workers, -(-token_estimate // settings.token_rows_per_partition)
    )
    label = f"national-{os.getpid()}-{time.time_ns()}"
    client.run(start_memory_sampler, label)
    timings: dict[str, float] = {}
    try:
        with get_task_stream(client=client) as stream:
            mark = time.perf_counter()
            tokens = dd.from_map(token_rows, pieces, meta=TOKEN_META, label="tokens")
            shuffled = tokens.shuffle(on="hi", npartitions=partitions, shuffle_method="p2p")
            results = [
                dask.delayed(pairs_in_partition, nout=2)(part, settings.block_cap)
                for part in shuffled.to_delayed()
            ]
            persisted = dask.persist(*[r[0] for r in results], *[r[1] for r in results])
            pair_parts = list(persisted[: len(results)])
            stats = client.gather(client.compute(list(persisted[len(results) :])))
            timings["tokens_and_pairs_s"] = time.perf_counter() - mark

            mark = time.perf_counter()
            candidates = sum(s["candidate_pairs"] for s in stats)
            pairs = dd.from_delayed(pair_parts, meta=PAIR_META, verify_meta=False)
            pair_partitions = max(workers, -(-candidates // settings.pairs_per_partition))
            decided = (
                pairs.shuffle(on="a", npartitions=pair_partitions, shuffle_method="p2p")
                .map_partitions(decide, settings.missing_id, meta=DECIDED_META)
                .persist()
            )
            by_pair = (
                decided.groupby(["file_a", "file_b", "match_class", "bits"])
                .size()
                .compute()
                .reset_index(name="pairs")
            )
            del pair_parts, persisted, pairs
            timings["decisions_s"] = time.perf_counter() - mark

            mark = time.perf_counter()
            written = write_all_returns(
                dd, decided, pieces, returns_dir, provinces, int(by_pair["pairs"].sum()), workers
            )
            timings["returns_s"] = time.perf_counter() - mark
            del decided
    finally:
        memory = client.run(stop_memory_sampler, label)
    busy = busy_seconds(stream.data)
    timings["total_s"] = time.perf_counter() - started
    summary = _summary(
        infos, stats, by_pair, written, timings, memory, busy, partitions, settings, client
    )
    text = json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True)
    temporary = out_dir / f".{SUMMARY_NAME}.{os.getpid()}.tmp"
    temporary.write_text(text + "\n", encoding="utf-8")
    os.replace(temporary, out_dir / SUMMARY_NAME)
    return summary


def _summary(infos, stats, by_pair, written, timings, memory, busy, partitions, settings, client):
    province_of = {info["index"]: info["province"] for info in infos}
    pairs = by_pair.assign(
        province_a=by_pair["file_a"].map(province_of),
        province_b=by_pair["file_b"].map(province_of),
        match_class=by_pair["match_class"].map(CLASS_NAMES),
        match_keys=match_keys(by_pair["bits"].to_numpy()),
    )
    by_provinces = (
        pairs.groupby(["province_a", "province_b", "match_class"])["pairs"].sum().reset_index()
    )
    by_keys = pairs.groupby("match_keys")["pairs"].sum().sort_index()
    sizes = [s["token_rows"] for s in stats]
    by_kind = (
        np.sum([s["rows_by_kind"] for s in stats], axis=0).tolist()
        if stats
        else [0] * len(KIND_NAMES)
    )
    capped = (
        np.sum([s["capped_rows_by_kind"] for s in stats], axis=0).tolist()
        if stats
        else [0] * len(KIND_NAMES)
    )
    return {
        "files": [
            {
                k: info[k]
                for k in ("province", "path", "rows", "key_fingerprint", "scheme", "sha256")
            }
            for info in infos
        ],
        "records": int(sum(info["rows"] for info in infos)),
        "token_rows": int(sum(sizes)),
        "token_rows_by_kind": dict(zip(KIND_NAMES, map(int, by_kind), strict=True)),
        "token_partitions": {
            "count": partitions,
            "rows_min": int(min(sizes)) if sizes else 0,
            "rows_median": float(np.median(sizes)) if sizes else 0.0,
            "rows_max": int(max(sizes)) if sizes else 0,
            "rows": sizes,
        },
        "shared_tokens": int(sum(s["runs_shared"] for s in stats)),
        "largest_run": int(max((s["largest_run"] for s in stats), default=0)),
        "capped_runs": int(sum(s["capped_runs"] for s in stats)),
        "capped_token_rows_by_kind": dict(zip(KIND_NAMES, map(int, capped), strict=True)),
        "candidate_pairs": int(sum(s["candidate_pairs"] for s in stats)),
        "duplicate_pairs": int(by_pair["pairs"].sum()),
        "pairs_by_class": {
            str(k): int(v) for k, v in pairs.groupby("match_class")["pairs"].sum().items()
        },
        "pairs_by_province_pair": [
            {
                "province_a": str(r.province_a),
                "province_b": str(r.province_b),
                "match_class": str(r.match_class),
                "pairs": int(r.pairs),
            }
            for r in by_provinces.itertuples(index=False)
        ],
        "pairs_by_match_keys": {str(k): int(v) for k, v in by_keys.items()},
        "returns_rows": written,
        "settings": asdict(settings),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "workers": {
            address: {"busy_s": round(busy.get(address, 0.0), 3), **figures}
            for address, figures in sorted(memory.items())
        },
        "scheduler": client.scheduler_info(n_workers=-1).get("address"),
    }
