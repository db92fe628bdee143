"""The national linkage (全国查重) on dask.distributed: exchange files in, returns per province out.

Every step runs on the cluster's workers; the client holds file metadata, counts and the summary,
never tokens or records. Stages:

1. **tokens**: each exchange file is read in pieces of row groups (``dd.from_map``, so workers
   read the files themselves) and each record becomes one row per token: the 128-bit token as two
   uint64 (``hi``, ``lo``), the token's kind, the record's ``rid`` (file index << 40 | row) and its
   ``id_state``. 26 bytes a row; about 3.9 rows per record.
2. **candidate pairs**: token rows shuffled by token (``shuffle_method="p2p"``: every worker
   sends and receives parts of every partition, each partition sits on one worker, memory per
   worker bounded by its partitions), so all holders of a token meet in one partition. There the
   rows are sorted by token and each run of equal tokens gives its pairs of records from
   different provinces (``pairs_in_partition``), each with the bit of the kind that met:

   - ``id``: two ID tokens (the same ID number, 身份证号重复);
   - ``id_near``: a typo neighbour of an ID failing its check met the other record's ID, or a
     neighbour of its own (two typos of one number);
   - ``name`` / ``reading`` / ``family``: name + sex + birth date, a reading of the name + sex
     + birth date, the common readings of name and guardian + sex + birth date + the province
     of 户口所在地. These runs are
     large (a common name on a common birthday is shared by dozens of children nationally),
     and two valid IDs mean two people, so only pairs in which at least one record lacks a
     valid ID are formed.

   A run longer than ``block_cap`` (a placeholder number or a test record typed in many schools)
   is not expanded; it is counted in the summary for a person to look at.
3. **decisions**: candidate pairs are shuffled by their first record, so every bit of one pair
   meets; the bits are ORed and a pair is a duplicate when the ID tokens met (class ``id``), or
   when name or reading tokens met and either the typo neighbours met or one record has no
   usable ID (class ``name``). Equal name + sex + birth date on two valid, different IDs is
   never a duplicate. A record without an ID needs the family token as well
   (``LinkSettings.missing_id_needs_guardian``, on by default: the readings of name and
   guardian, sex, birth date and the household's province). Measured on generated provinces:
   name or reading, sex and birth date alone linked different children where one had no ID
   (3 × 20,000 records: 2 false pairs of 302, 李子/黎子 read alike, 任 also reads lin so
   任芳/林芳); with the guardian's reading, 4 × 250,000 records still gave 6 false pairs of
   5,006 (common names, common guardian names: 王芳 with guardian 王春梅), each pair with its
   households in two provinces; with the household's province as well, 0 of 5,000, recall 1.0.
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
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xueji_quality.errors import InputError
from xueji_quality.national.exchange import exchange_info
from xueji_quality.national.tokens import ID_NONE, ID_VALID, TOKEN_BYTES
from xueji_quality.schema import GRADUATING_LEVELS

if TYPE_CHECKING:
    from distributed import Client

ROW_BITS = 40  # rid = file index << ROW_BITS | row within the file
KIND_ID, KIND_NEAR, KIND_NAME, KIND_READING, KIND_FAMILY = 0, 1, 2, 3, 4
KIND_NAMES = ("id", "id_near", "name", "reading", "family")
KIND_COLUMNS = ("id_token", "near_tokens", "name_tokens", "reading_tokens", "family_tokens")
BIT_ID, BIT_NEAR, BIT_NAME, BIT_READING, BIT_FAMILY = 1, 2, 4, 8, 16
BITS = (
    (BIT_ID, "id"),
    (BIT_NEAR, "id_near"),
    (BIT_NAME, "name"),
    (BIT_READING, "reading"),
    (BIT_FAMILY, "family"),
)
# The bit of a pair of token rows of one kind (the id space: id/id gives BIT_ID, else BIT_NEAR).
_KIND_BIT = np.array([BIT_ID, BIT_NEAR, BIT_NAME, BIT_READING, BIT_FAMILY], dtype=np.uint8)
CLASS_ID, CLASS_NAME = 1, 2
CLASS_NAMES = {CLASS_ID: "id", CLASS_NAME: "name"}
# A run of more equal tokens than this is a placeholder, not a student: not expanded.
BLOCK_CAP = 50
ROWS_PER_PIECE = 500_000
# Token rows per partition of the token shuffle (26 bytes each: about 100 MB, a few hundred MB
# while a partition is sorted and paired).
TOKEN_ROWS_PER_PARTITION = 4_000_000
PAIRS_PER_PARTITION = 2_000_000
RETURN_COLUMNS = (
    "record_key",
    "county_code",
    "other_province",
    "other_record_key",
    "other_county_code",
    "other_school_code",
    "other_grade",
    "other_enroll_date",
    "match_keys",
    "match_class",
    "suggested_keeper",
)
SUMMARY_NAME = "summary.json"
RETURNS = "returns"
_RECORD_COLUMNS = ("record_key", "province", "county_code", "school_code", "grade", "enroll_date")
_TOKEN_META = pd.DataFrame(
    {
        "hi": pd.Series(dtype=np.uint64),
        "lo": pd.Series(dtype=np.uint64),
        "kind": pd.Series(dtype=np.uint8),
        "rid": pd.Series(dtype=np.int64),
        "state": pd.Series(dtype=np.int8),
    }
)
_PAIR_META = pd.DataFrame(
    {
        "a": pd.Series(dtype=np.int64),
        "b": pd.Series(dtype=np.int64),
        "bits": pd.Series(dtype=np.uint8),
        "state_a": pd.Series(dtype=np.int8),
        "state_b": pd.Series(dtype=np.int8),
    }
)
_STRING = pd.StringDtype("pyarrow")


@dataclass(frozen=True)
class Piece:
    """Consecutive row groups of one exchange file: what one task reads."""

    path: str
    file_index: int
    row_groups: tuple[int, ...]
    first_row: int
    rows: int


# --- planning (client: metadata only) ----------------------------------------------------------


def plan(files: list[Path], rows_per_piece: int = ROWS_PER_PIECE) -> tuple[list[dict], list[Piece]]:
    """File descriptions (``exchange_info`` + index) and the pieces to read, checking that the
    files share a key and scheme and that no province comes twice."""
    infos, pieces = [], []
    for index, path in enumerate(files):
        info = exchange_info(Path(path)) | {"index": index, "path": str(path)}
        infos.append(info)
        metadata = pq.ParquetFile(path).metadata
        groups: list[int] = []
        first = rows = start = 0
        for g in range(metadata.num_row_groups):
            if groups and rows + metadata.row_group(g).num_rows > rows_per_piece:
                pieces.append(Piece(str(path), index, tuple(groups), first, rows))
                groups, first, rows = [], start, 0
            groups.append(g)
            rows += metadata.row_group(g).num_rows
            start += metadata.row_group(g).num_rows
        if groups:
            pieces.append(Piece(str(path), index, tuple(groups), first, rows))
    if not infos:
        raise InputError("交换文件", "没有给出任何交换文件")
    first = infos[0]
    for info in infos[1:]:
        if info["scheme"] != first["scheme"]:
            raise InputError(
                info["path"],
                f"令牌方案 {info['scheme']} 与 {first['path']} 的 {first['scheme']} 不同",
            )
        if info["key_fingerprint"] != first["key_fingerprint"]:
            raise InputError(
                info["path"],
                f"密钥指纹 {info['key_fingerprint']} 与 {first['path']} 的 "
                f"{first['key_fingerprint']} 不同：各省须用同一国家密钥导出",
            )
    seen: dict[str, str] = {}
    for info in infos:
        if info["province"] in seen:
            raise InputError(
                info["path"], f"省份 {info['province']} 已由 {seen[info['province']]} 给出"
            )
        seen[info["province"]] = info["path"]
    return infos, pieces


# --- per piece (workers) --------------------------------------------------------------------------


def _read_piece(piece: Piece, columns: list[str]) -> pa.Table:
    return pq.ParquetFile(piece.path).read_row_groups(list(piece.row_groups), columns=columns)


def _token_halves(tokens: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) uint64 of fixed_size_binary(16) tokens without nulls."""
    if len(tokens) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    raw = np.frombuffer(tokens.buffers()[1], dtype=np.uint8)
    raw = raw[tokens.offset * TOKEN_BYTES : (tokens.offset + len(tokens)) * TOKEN_BYTES]
    words = raw.reshape(-1, 2 * 8).view("<u8")
    return words[:, 0].copy(), words[:, 1].copy()


def token_rows(piece: Piece) -> pd.DataFrame:
    """One row per token of the piece's records: hi, lo, kind, rid, state."""
    table = _read_piece(piece, ["id_state", *KIND_COLUMNS])
    state = table["id_state"].to_numpy().astype(np.int8)
    rid = (np.int64(piece.file_index) << ROW_BITS) + piece.first_row + np.arange(len(state))
    parts = []
    id_token = table["id_token"].combine_chunks()
    has = np.flatnonzero(id_token.is_valid().to_numpy(zero_copy_only=False))
    parts.append((KIND_ID, has, id_token.take(pa.array(has))))
    for kind, column in enumerate(KIND_COLUMNS[1:], start=KIND_NEAR):
        lists = table[column].combine_chunks()
        parent = pa.compute.list_parent_indices(lists).to_numpy().astype(np.int64)
        parts.append((kind, parent, pa.compute.list_flatten(lists)))
    frames = []
    for kind, rows, tokens in parts:
        hi, lo = _token_halves(tokens)
        frames.append(
            pd.DataFrame(
                {
                    "hi": hi,
                    "lo": lo,
                    "kind": np.full(len(rows), kind, np.uint8),
                    "rid": rid[rows],
                    "state": state[rows],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def record_rows(piece: Piece) -> pd.DataFrame:
    """The piece's record columns (no tokens), with each record's rid."""
    table = _read_piece(piece, list(_RECORD_COLUMNS))
    frame = table.to_pandas(types_mapper={pa.string(): _STRING, pa.large_string(): _STRING}.get)
    frame.insert(
        0,
        "rid",
        (np.int64(piece.file_index) << ROW_BITS) + piece.first_row + np.arange(len(frame)),
    )
    return frame


# --- per token partition -------------------------------------------------------------------------


def _ranges(
    left: np.ndarray, first: np.ndarray, count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(l, r) for every l in ``left`` and r in [first, first + count) of it."""
    count = np.maximum(count, 0)
    total = int(count.sum())
    lefts = np.repeat(left, count)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    return lefts, np.repeat(first, count) + offsets


def _or_by_pair(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (a, b): bits ORed, states kept."""
    if frame.empty:
        return _PAIR_META.copy()
    a, b = frame["a"].to_numpy(), frame["b"].to_numpy()
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    first = np.flatnonzero(np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])])
    bits = np.bitwise_or.reduceat(frame["bits"].to_numpy()[order], first)
    return pd.DataFrame(
        {
            "a": a[first],
            "b": b[first],
            "bits": bits.astype(np.uint8),
            "state_a": frame["state_a"].to_numpy()[order][first],
            "state_b": frame["state_b"].to_numpy()[order][first],
        }
    )


def pairs_in_partition(
    tokens: pd.DataFrame, block_cap: int = BLOCK_CAP
) -> tuple[pd.DataFrame, dict]:
    """Candidate pairs (a < b, different provinces, with the bits that met) of one partition of
    token rows holding every row of each of its tokens, and the partition's figures."""
    n = len(tokens)
    stats = {
        "token_rows": n,
        "rows_by_kind": np.bincount(tokens["kind"].to_numpy(), minlength=len(KIND_NAMES)).tolist(),
        "runs_shared": 0,
        "largest_run": 0,
        "capped_runs": 0,
        "capped_rows_by_kind": [0] * len(KIND_NAMES),
        "candidate_pairs": 0,
    }
    if n == 0:
        return _PAIR_META.copy(), stats
    hi, lo = tokens["hi"].to_numpy(), tokens["lo"].to_numpy()
    order = np.lexsort((lo, hi))
    hi, lo = hi[order], lo[order]
    kind = tokens["kind"].to_numpy()[order]
    rid = tokens["rid"].to_numpy()[order]
    state = tokens["state"].to_numpy()[order]
    new_run = np.r_[True, (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])]
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], n]
    size = ends - starts
    run_of = np.cumsum(new_run) - 1
    capped = size > block_cap
    stats["runs_shared"] = int((size >= 2).sum())
    stats["largest_run"] = int(size.max())
    stats["capped_runs"] = int(capped.sum())
    stats["capped_rows_by_kind"] = np.bincount(
        kind[capped[run_of]], minlength=len(KIND_NAMES)
    ).tolist()
    member = ((size >= 2) & ~capped)[run_of]
    position = np.arange(n, dtype=np.int64)
    run_start, run_end = starts[run_of], ends[run_of]
    id_space = kind <= KIND_NEAR  # id and near tokens share one message space
    # ID space: every pair of the run.
    left = position[member & id_space]
    l1, r1 = _ranges(left, left + 1, run_end[left] - left - 1)
    # Name space: pairs with a record lacking a valid ID (a pair of two such records once).
    left = position[member & ~id_space & (state != ID_VALID)]
    l2, r2 = _ranges(left, run_start[left], run_end[left] - run_start[left])
    keep = (r2 != l2) & ((state[r2] == ID_VALID) | (r2 > l2))
    lp = np.concatenate([l1, l2[keep]])
    rp = np.concatenate([r1, r2[keep]])
    other = (rid[lp] >> ROW_BITS) != (rid[rp] >> ROW_BITS)
    lp, rp = lp[other], rp[other]
    both_id = (kind[lp] == KIND_ID) & (kind[rp] == KIND_ID)
    bits = np.where(kind[lp] <= KIND_NEAR, np.where(both_id, BIT_ID, BIT_NEAR), _KIND_BIT[kind[lp]])
    bits = bits.astype(np.uint8)
    swap = rid[lp] > rid[rp]
    a_at, b_at = np.where(swap, rp, lp), np.where(swap, lp, rp)
    pairs = _or_by_pair(
        pd.DataFrame(
            {
                "a": rid[a_at],
                "b": rid[b_at],
                "bits": bits,
                "state_a": state[a_at],
                "state_b": state[b_at],
            }
        )
    )
    stats["candidate_pairs"] = len(pairs)
    return pairs, stats


# --- decisions ------------------------------------------------------------------------------------


def decide(pairs: pd.DataFrame, missing_id_needs_guardian: bool = True) -> pd.DataFrame:
    """The duplicates among candidate pairs holding every bit of each of their pairs: a, b,
    bits, match_class (CLASS_ID / CLASS_NAME), file (province) indexes of a and b.

    A pair is a duplicate when the ID tokens met; or when name or reading tokens met and the
    typo neighbours met; or when one record has no usable ID and the name or reading met, with
    the family token (name and guardian readings, sex, birth date) as well when
    ``missing_id_needs_guardian``."""
    pairs = _or_by_pair(pairs)
    bits = pairs["bits"].to_numpy()
    missing = (pairs["state_a"].to_numpy() == ID_NONE) | (pairs["state_b"].to_numpy() == ID_NONE)
    named = (bits & (BIT_NAME | BIT_READING)) > 0
    if missing_id_needs_guardian:
        missing &= (bits & BIT_FAMILY) > 0
    by_id = (bits & BIT_ID) > 0
    by_name = named & (((bits & BIT_NEAR) > 0) | missing)
    chosen = pairs[by_id | by_name]
    return pd.DataFrame(
        {
            "a": chosen["a"].to_numpy(),
            "b": chosen["b"].to_numpy(),
            "bits": chosen["bits"].to_numpy(),
            "match_class": np.where(by_id[by_id | by_name], CLASS_ID, CLASS_NAME).astype(np.int8),
            "file_a": (chosen["a"].to_numpy() >> ROW_BITS).astype(np.int16),
            "file_b": (chosen["b"].to_numpy() >> ROW_BITS).astype(np.int16),
        }
    )


_DECIDED_META = decide(_PAIR_META)


def match_keys(bits: np.ndarray) -> np.ndarray:
    """The kinds that met, joined by '+' (id+name+reading)."""
    table = np.array(
        ["+".join(name for bit, name in BITS if mask & bit) for mask in range(32)], dtype=object
    )
    return table[np.asarray(bits, dtype=np.int64) & 31]


def sides(decided: pd.DataFrame) -> pd.DataFrame:
    """Two rows per pair: each record with the other."""
    twice = {
        c: np.r_[decided[c].to_numpy(), decided[c].to_numpy()] for c in ("bits", "match_class")
    }
    return pd.DataFrame(
        {
            "rid": np.r_[decided["a"].to_numpy(), decided["b"].to_numpy()],
            "other_rid": np.r_[decided["b"].to_numpy(), decided["a"].to_numpy()],
            **twice,
        }
    )


def _grade_numbers(grades: pd.Series) -> np.ndarray:
    return pd.to_numeric(grades, errors="coerce").fillna(0).to_numpy(dtype=np.int64)


def keeper_side(
    enroll: pd.Series, grade: pd.Series, other_enroll: pd.Series, other_grade: pd.Series
) -> np.ndarray:
    """1 where this registration is the one to keep, -1 where the other is, 0 undecided: the
    later 入学年月 (YYYY-MM), then a graduating grade, then the higher grade."""
    mine = enroll.fillna("").astype(str).to_numpy(dtype=object)
    theirs = other_enroll.fillna("").astype(str).to_numpy(dtype=object)
    g, og = _grade_numbers(grade), _grade_numbers(other_grade)
    graduating = np.isin(g, list(GRADUATING_LEVELS)).astype(np.int64)
    other_graduating = np.isin(og, list(GRADUATING_LEVELS)).astype(np.int64)
    out = np.sign(g - og)
    out = np.where(graduating != other_graduating, np.sign(graduating - other_graduating), out)
    later = (mine > theirs).astype(np.int64) - (mine < theirs).astype(np.int64)
    return np.where(later != 0, later, out)


def return_rows(joined: pd.DataFrame) -> pd.DataFrame:
    """Rows of the returns files (RETURN_COLUMNS plus province and grade for ordering) from side
    rows joined to both records' columns (``other_*`` for the other record)."""
    keep = keeper_side(
        joined["enroll_date"], joined["grade"], joined["other_enroll_date"], joined["other_grade"]
    )
    keeper = np.where(
        keep > 0,
        joined["province"].astype(str).to_numpy(dtype=object),
        np.where(keep < 0, joined["other_province"].astype(str).to_numpy(dtype=object), ""),
    )
    out = pd.DataFrame(
        {
            "province": joined["province"].astype(_STRING).to_numpy(),
            "grade": joined["grade"].astype(_STRING).to_numpy(),
            **{
                c: joined[c].astype(_STRING).to_numpy()
                for c in RETURN_COLUMNS
                if c in joined.columns and c not in ("match_keys", "match_class")
            },
            "match_keys": match_keys(joined["bits"].to_numpy()),
            "match_class": pd.Series(joined["match_class"].to_numpy()).map(CLASS_NAMES).to_numpy(),
            "suggested_keeper": keeper,
        }
    )
    return out.astype(_STRING)


_RETURN_META = return_rows(
    pd.DataFrame(
        {
            "bits": pd.Series(dtype=np.uint8),
            "match_class": pd.Series(dtype=np.int8),
            **{c: pd.Series(dtype=_STRING) for c in _RECORD_COLUMNS},
            **{f"other_{c}": pd.Series(dtype=_STRING) for c in _RECORD_COLUMNS},
        }
    )
)


def _graduating_first(frame: pd.DataFrame) -> pd.DataFrame:
    graduating = np.isin(_grade_numbers(frame["grade"]), list(GRADUATING_LEVELS))
    return (
        frame.assign(_first=~graduating)
        .sort_values(["_first", "county_code", "record_key", "other_province"], kind="stable")
        .drop(columns="_first")
    )


def write_returns(frame: pd.DataFrame, returns_dir: str) -> pd.DataFrame:
    """Write each province of a partition (every row of each) to ``<province>.parquet``;
    return (province, rows)."""
    written = []
    for province, rows in frame.groupby("province", sort=True, observed=True):
        write_return_file(Path(returns_dir), str(province), rows)
        written.append((str(province), len(rows)))
    return pd.DataFrame(written, columns=["province", "rows"]).astype({"rows": np.int64})


def write_return_file(returns_dir: Path, province: str, rows: pd.DataFrame) -> Path:
    """``returns_dir/<province>.parquet`` (RETURN_COLUMNS, graduating grades first), atomically."""
    rows = _graduating_first(rows) if len(rows) else rows
    table = pa.Table.from_pandas(
        rows.reindex(columns=list(RETURN_COLUMNS)).astype(_STRING), preserve_index=False
    )
    table = table.cast(pa.schema([(c, pa.string()) for c in RETURN_COLUMNS]))
    path = returns_dir / f"{province}.parquet"
    temporary = returns_dir / f".{province}.parquet.{os.getpid()}.tmp"
    pq.write_table(table, temporary)
    os.replace(temporary, path)
    return path


# --- worker figures -------------------------------------------------------------------------------

_SAMPLERS: dict[str, dict] = {}


def start_memory_sampler(label: str, interval_s: float = 0.05) -> int:
    """On a worker: sample this process's resident memory until ``stop_memory_sampler``."""
    import psutil

    process = psutil.Process()
    state = {"peak": process.memory_info().rss, "stop": threading.Event()}
    state["start"] = state["peak"]

    def sample() -> None:
        while not state["stop"].wait(interval_s):
            state["peak"] = max(state["peak"], process.memory_info().rss)

    thread = threading.Thread(target=sample, name="xueji-memory", daemon=True)
    thread.start()
    state["thread"] = thread
    _SAMPLERS[label] = state
    return int(state["start"])


def stop_memory_sampler(label: str) -> dict:
    """On a worker: stop the sampler; resident memory at start, peak and now (bytes)."""
    import psutil

    state = _SAMPLERS.pop(label, None)
    now = psutil.Process().memory_info().rss
    if state is None:
        return {"rss_start": None, "rss_peak": None, "rss_end": int(now)}
    state["stop"].set()
    state["thread"].join(timeout=1)
    peak = max(state["peak"], now)
    return {
        "rss_start": int(state["start"]),
        "rss_peak": int(peak),
        "rss_end": int(now),
        "max_rss_process": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
    }


def _busy_seconds(task_stream: list[dict]) -> dict[str, float]:
    busy: dict[str, float] = {}
    for task in task_stream:
        for span in task.get("startstops", ()):
            if span.get("action") == "compute":
                worker = task.get("worker", "?")
                busy[worker] = busy.get(worker, 0.0) + span["stop"] - span["start"]
    return busy


# --- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkSettings:
    block_cap: int = BLOCK_CAP
    rows_per_piece: int = ROWS_PER_PIECE
    token_rows_per_partition: int = TOKEN_ROWS_PER_PARTITION
    pairs_per_partition: int = PAIRS_PER_PARTITION
    partitions: int | None = None  # token partitions; by the estimated token rows when None
    # A record without a usable ID is a duplicate of one with the same name and birth date only
    # when their guardians' names read alike too (the family token).
    missing_id_needs_guardian: bool = True


def national_link(
    files: list[Path | str],
    out_dir: Path | str,
    client: Client,
    settings: LinkSettings | None = None,
) -> dict:
    """Link the exchange files of all provinces on the cluster of ``client``; write
    ``out_dir/returns/<province>.parquet`` (one per province, empty when it has no pairs) and
    ``out_dir/summary.json``; return the summary."""
    import dask
    import dask.dataframe as dd
    from distributed import get_task_stream

    settings = settings or LinkSettings()
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
            tokens = dd.from_map(token_rows, pieces, meta=_TOKEN_META, label="tokens")
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
            pairs = dd.from_delayed(pair_parts, meta=_PAIR_META, verify_meta=False)
            pair_partitions = max(workers, -(-candidates // settings.pairs_per_partition))
            decided = (
                pairs.shuffle(on="a", npartitions=pair_partitions, shuffle_method="p2p")
                .map_partitions(decide, settings.missing_id_needs_guardian, meta=_DECIDED_META)
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
            written = _write_all_returns(
                dd, decided, pieces, returns_dir, provinces, int(by_pair["pairs"].sum()), workers
            )
            timings["returns_s"] = time.perf_counter() - mark
            del decided
    finally:
        memory = client.run(stop_memory_sampler, label)
    busy = _busy_seconds(stream.data)
    timings["total_s"] = time.perf_counter() - started
    summary = _summary(
        infos, stats, by_pair, written, timings, memory, busy, partitions, settings, client
    )
    text = json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True)
    temporary = out_dir / f".{SUMMARY_NAME}.{os.getpid()}.tmp"
    temporary.write_text(text + "\n", encoding="utf-8")
    os.replace(temporary, out_dir / SUMMARY_NAME)
    return summary


def _write_all_returns(dd, decided, pieces, returns_dir, provinces, total_pairs, workers) -> dict:
    """Join decided pairs to their records and write the returns files; rows per province."""
    written: dict[str, int] = dict.fromkeys(provinces, 0)
    if total_pairs:
        records = dd.from_map(record_rows, pieces, meta=record_rows_meta(), label="records")
        ids = dd.concat(
            [
                decided[["a"]].rename(columns={"a": "rid"}),
                decided[["b"]].rename(columns={"b": "rid"}),
            ]
        ).drop_duplicates(split_out=1)
        needed = ids.repartition(npartitions=max(1, -(-2 * total_pairs // 2_000_000)))
        involved = records.merge(needed, on="rid", how="inner", broadcast=True)
        other = involved.rename(columns={c: f"other_{c}" for c in involved.columns})
        side_rows = decided.map_partitions(sides, meta=sides(_DECIDED_META))
        joined = side_rows.merge(involved, on="rid", how="inner", shuffle_method="p2p").merge(
            other, on="other_rid", how="inner", shuffle_method="p2p"
        )
        rows = joined.map_partitions(return_rows, meta=_RETURN_META)
        by_province = rows.shuffle(
            on="province",
            npartitions=max(1, min(len(provinces), workers * 2)),
            shuffle_method="p2p",
        ).map_partitions(
            write_returns,
            str(returns_dir),
            meta=pd.DataFrame(
                {"province": pd.Series(dtype=object), "rows": pd.Series(dtype=np.int64)}
            ),
        )
        for province, count in by_province.compute().itertuples(index=False):
            written[str(province)] = int(count)
    for province in provinces:
        if written[province] == 0:
            write_return_file(returns_dir, province, _RETURN_META)
    return written


def record_rows_meta() -> pd.DataFrame:
    return pd.DataFrame(
        {"rid": pd.Series(dtype=np.int64), **{c: pd.Series(dtype=_STRING) for c in _RECORD_COLUMNS}}
    )


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
    by_kind = np.sum([s["rows_by_kind"] for s in stats], axis=0).tolist() if stats else [0] * 4
    capped = (
        np.sum([s["capped_rows_by_kind"] for s in stats], axis=0).tolist() if stats else [0] * 4
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
