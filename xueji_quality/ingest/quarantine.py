"""The quarantine: why a row read cannot be staged (undecodable bytes, NUL bytes, a repeated
header row), the raw text kept for it, and the run's quarantine in its dtypes and order."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import normalize, schema
from xueji_quality.ingest.layout import Layout, normalize_header

STRING = normalize.STRING
RAW_LIMIT = 2000


def joined_values(frame: pd.DataFrame) -> pd.Series:
    """Each row's values joined with commas (the quarantine's raw text)."""
    if frame.shape[1] == 0:
        return pd.Series("", index=frame.index, dtype=STRING)
    text = frame.iloc[:, 0].fillna("")
    for column in frame.columns[1:]:
        text = text + "," + frame[column].fillna("")
    return text.str.slice(0, RAW_LIMIT)


def _bytes_hold(values: pa.Array | pa.ChunkedArray, needle: bytes) -> bool:
    """Whether the character data behind ``values`` holds ``needle`` anywhere: one scan of the
    bytes, where a search per value costs a regex call each; a hit is then looked for per row."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    for chunk in chunks:
        if chunk.type not in (pa.string(), pa.large_string()):
            return True  # not text: the search per value decides
        data = chunk.buffers()[2]
        if data is not None and _holds(np.frombuffer(data, dtype=np.uint8), needle):
            return True
    return False


def _holds(data: np.ndarray, needle: bytes) -> bool:
    """Whether ``needle`` occurs in ``data``, read where Arrow holds it: copying each column's
    bytes out to search them cost more than the search."""
    at = np.flatnonzero(data[: len(data) - len(needle) + 1] == needle[0])
    for offset, byte in enumerate(needle[1:], 1):
        at = at[data[at + offset] == byte]
    return len(at) > 0


def row_problems(frame: pd.DataFrame, layout: Layout) -> pd.Series:
    """Why each row cannot be staged as read (<NA> where it can)."""
    reason = pd.Series(pd.NA, index=frame.index, dtype=STRING)
    if frame.empty:
        return reason
    undecodable = np.zeros(len(frame), dtype=bool)
    nul = np.zeros(len(frame), dtype=bool)
    header_hits = np.zeros(len(frame), dtype=np.int64)
    for column in frame.columns:
        values = frame[column]
        arrow = pa.array(values.array)
        if _bytes_hold(arrow, "\ufffd".encode()):
            undecodable |= normalize.contains(values, "\ufffd")
        if _bytes_hold(arrow, b"\x00"):
            nul |= normalize.contains(values, "\x00")
        header = re.sub(r"#\d+$", "", column)
        same = pc.or_(pc.equal(arrow, header), pc.equal(arrow, normalize_header(header)))
        header_hits += pc.fill_null(same, False).to_numpy(zero_copy_only=False)
    repeated = header_hits >= max(2, (len(frame.columns) + 1) // 2)
    reason[repeated] = "重复的表头行"
    reason[nul] = "行内含 NUL 字节（\\0），文件可能已损坏"
    reason[undecodable] = "无法解码的字节（文件编码混杂或已损坏）"
    return reason


def empty_quarantine() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=STRING) for c in schema.QUARANTINE_COLUMNS})
    return frame.astype({"source_row": "int64"})


def typed_quarantine(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[list(schema.QUARANTINE_COLUMNS)]
    return frame.astype({c: "int64" if c == "source_row" else STRING for c in frame.columns})


def sort_quarantine(quarantine_parts: list[pd.DataFrame], files: list[dict]) -> pd.DataFrame:
    """The run's quarantine in run order: files as given, rows in file order."""
    quarantine = (
        pd.concat(quarantine_parts, ignore_index=True) if quarantine_parts else empty_quarantine()
    )
    file_order = {info["name"]: i for i, info in enumerate(files)}
    return quarantine.sort_values(
        ["source_file", "source_row"],
        key=lambda c: c.map(file_order) if c.name == "source_file" else c,
        kind="stable",
    ).reset_index(drop=True)
