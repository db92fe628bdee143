"""The token table of the national linkage: exchange files planned into pieces and read by the
workers into token rows and record rows.

A piece is consecutive row groups of one exchange file. Each record becomes one token row per
token: the 128-bit token as two uint64 (``hi``, ``lo``), the token's kind, the record's ``rid``
(file index << ``ROW_BITS`` | row) and its ``id_state``; ``record_rows`` gives the record columns
of the same records under the same ``rid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xueji_quality.errors import InputError
from xueji_quality.national.exchange import exchange_info
from xueji_quality.national.tokens import TOKEN_BYTES

ROW_BITS = 40  # rid = file index << ROW_BITS | row within the file
KIND_ID, KIND_NEAR, KIND_NAME, KIND_READING, KIND_FAMILY, KIND_FAMILY_COUNTY = range(6)
KIND_NAMES = ("id", "id_near", "name", "reading", "family", "family_county")
KIND_COLUMNS = (
    "id_token",
    "near_tokens",
    "name_tokens",
    "reading_tokens",
    "family_tokens",
    "family_county_tokens",
)
ROWS_PER_PIECE = 100_000
RECORD_COLUMNS = ("record_key", "province", "county_code", "school_code", "grade", "enroll_date")
TOKEN_META = pd.DataFrame(
    {
        "hi": pd.Series(dtype=np.uint64),
        "lo": pd.Series(dtype=np.uint64),
        "kind": pd.Series(dtype=np.uint8),
        "rid": pd.Series(dtype=np.int64),
        "state": pd.Series(dtype=np.int8),
    }
)
STRING_DTYPE = pd.StringDtype("pyarrow")


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
    table = _read_piece(piece, list(RECORD_COLUMNS))
    frame = table.to_pandas(
        types_mapper={pa.string(): STRING_DTYPE, pa.large_string(): STRING_DTYPE}.get
    )
    frame.insert(
        0,
        "rid",
        (np.int64(piece.file_index) << ROW_BITS) + piece.first_row + np.arange(len(frame)),
    )
    return frame


def record_rows_meta() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rid": pd.Series(dtype=np.int64),
            **{c: pd.Series(dtype=STRING_DTYPE) for c in RECORD_COLUMNS},
        }
    )
