"""Parquet files of a run: typed tables with a fixed column order, hashed as they are written.

Every identifier column is written as an Arrow ``string`` (never a number), ``source_row`` as
``int64`` and ``score`` as ``float64``, whatever pandas inferred; a missing column of the contract
is an error, not an empty guess. Each writer returns the file's entry for the manifest: its path
relative to the run folder, its SHA-256 and its row count. Files get mode 0o640, folders 0o750.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xueji_quality import schema
from xueji_quality.files import sha256_file

FILE_MODE = 0o640
DIR_MODE = 0o750

# Columns whose Arrow type is not string.
NON_STRING_TYPES: dict[str, pa.DataType] = {
    "source_row": pa.int64(),
    "score": pa.float64(),
    "grade_level": pa.int8(),
}


def make_dirs(path: Path) -> Path:
    """Create ``path`` and its missing parents with mode 0o750 (whatever the umask)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        os.chmod(folder, DIR_MODE)
    return path


def file_entry(run_dir: Path, path: Path, rows: int | None) -> dict:
    os.chmod(path, FILE_MODE)
    return {
        "path": path.relative_to(run_dir).as_posix(),
        "sha256": sha256_file(path),
        "rows": rows,
    }


def text_array(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A text column as Arrow strings, missing values null: Arrow-backed text as it is, Python
    strings in one pass; a column holding anything else (a number) as pandas writes it as text.
    (Through pandas' own string conversion every column cost two passes over Python strings, a
    tenth of the run's own process at 20 million rows.)"""
    dtype = values.dtype
    if pd.api.types.is_object_dtype(dtype):
        try:
            return pa.array(values.to_numpy(), type=pa.string(), from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            return _as_pandas_writes(values)  # a number among the text
    if isinstance(dtype, pd.StringDtype | pd.ArrowDtype):
        array = pa.chunked_array(pa.array(values.array))
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            return array.cast(pa.string())
    return _as_pandas_writes(values)


def _as_pandas_writes(values: pd.Series) -> pa.Array:
    return pa.array(values.astype("string"), type=pa.string(), from_pandas=True)


def arrow_table(frame: pd.DataFrame, columns: Sequence[str]) -> pa.Table:
    """The columns of ``frame`` in the given order, with the contract's Arrow types."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"表缺少列: {missing}")
    arrays = []
    fields = []
    for column in columns:
        kind = NON_STRING_TYPES.get(column, pa.string())
        values = frame[column]
        if kind == pa.string():
            arrays.append(text_array(values))
        else:
            arrays.append(pa.array(values, type=kind, from_pandas=True))
        fields.append(pa.field(column, kind))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write_table(run_dir: Path, relative: str, frame: pd.DataFrame, columns: Sequence[str]) -> dict:
    """Write ``frame[columns]`` to ``run_dir/relative`` as Parquet (zstd); return its file entry."""
    return write_arrow(run_dir, relative, arrow_table(frame, columns))


def write_arrow(run_dir: Path, relative: str, table: pa.Table) -> dict:
    """Write an Arrow table (:func:`arrow_table`) to ``run_dir/relative`` as Parquet (zstd);
    return its file entry."""
    path = run_dir / relative
    make_dirs(path.parent)
    pq.write_table(table, path, compression="zstd")
    return file_entry(run_dir, path, table.num_rows)


def write_problems(run_dir: Path, relative: str, problems: pd.DataFrame) -> dict:
    return write_table(run_dir, relative, problems, schema.PROBLEM_COLUMNS)


def write_duplicates(run_dir: Path, relative: str, duplicates: pd.DataFrame) -> dict:
    return write_table(run_dir, relative, duplicates, schema.DUPLICATE_COLUMNS)


def write_quarantine(run_dir: Path, relative: str, quarantine: pd.DataFrame) -> dict:
    return write_table(run_dir, relative, quarantine, schema.QUARANTINE_COLUMNS)
