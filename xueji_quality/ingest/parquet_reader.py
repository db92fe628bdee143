"""Reading Parquet exports in batches, every column turned into text (integral floats as integer
text, as a sheet displayed them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xueji_quality import normalize
from xueji_quality.errors import InputError
from xueji_quality.files import cached_sha256
from xueji_quality.ingest.layout import FileBlock, Layout
from xueji_quality.ingest.xlsx_reader import cell_text

STRING = normalize.STRING
PARQUET_BATCH_ROWS = 200_000


def _arrow_text(column: pa.ChunkedArray | pa.Array) -> pd.Series:
    """A Parquet column as text ('' for nulls); integral floats as integer text."""
    if pa.types.is_floating(column.type):
        values = pd.Series(column.to_numpy(zero_copy_only=False), dtype="float64")
        text = pd.Series(column.cast(pa.string()).to_pandas(), dtype=STRING)
        integral = values.notna() & np.isfinite(values) & (values == np.floor(values))
        small = integral & (values.abs() < 1e15)
        text[small] = values[small].astype("int64").astype(str).astype(STRING)
        big = integral & ~small
        if big.any():
            text[big] = [cell_text(float(v)) for v in values[big]]
        return text.fillna("")
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        cast = column
    else:
        try:
            cast = column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            cast = pa.array(
                [None if v is None else str(v) for v in column.to_pylist()], pa.string()
            )
    return pd.Series(cast.to_pandas(), dtype=STRING).fillna("")


def read_parquet(path: Path, layout_of, info: dict, quarantine: list[dict]) -> Iterator[FileBlock]:
    file = info["name"]
    info["sha256"] = cached_sha256(path)
    info["encoding"] = None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for files that are not Parquet
        raise InputError(file, f"无法打开 Parquet 文件：{error}") from error
    layout: Layout = layout_of(list(parquet.schema_arrow.names))
    next_row = 2
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            frame = pd.DataFrame(
                {c: _arrow_text(batch.column(i)).to_numpy() for i, c in enumerate(layout.columns)}
            ).astype(STRING)
            rows = np.arange(next_row, next_row + batch.num_rows, dtype=np.int64)
            next_row += batch.num_rows
            yield FileBlock(frame, rows)
    except (OSError, pa.ArrowException) as error:
        raise InputError(file, f"Parquet 文件已损坏，无法读取：{error}", row=next_row) from error
