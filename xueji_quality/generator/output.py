"""Writing a generated roster the way provinces deliver exports, with its truth files beside it.

Formats: ``csv`` (UTF-8, no BOM), ``csv-gb18030`` (the same text in GB 18030, as Windows tools
write it), ``xlsx`` (every cell a text cell, so no number is ever turned into a float) and
``parquet`` (every column a string column). The roster's name is ``roster.csv`` / ``roster.xlsx``
/ ``roster.parquet``; the truth files are always UTF-8 CSV.

``write_sample`` generates a large roster in pieces of ``chunk_rows`` rows (``generate_chunks``)
and appends each piece to the same roster file and truth files before the next one is built, so
memory stays that of one piece whatever the number of rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xlsxwriter

from xueji_quality import schema
from xueji_quality.generator.build import CHUNK_ROWS, GeneratedRoster, generate_chunks
from xueji_quality.generator.numbers import Issued
from xueji_quality.standards import gb2260

FORMATS = ("csv", "csv-gb18030", "xlsx", "parquet")
XLSX_MAX_ROWS = 1_048_575  # one sheet, header row excluded
TRUTH_TABLES = ("truth_duplicates", "truth_errors", "truth_normalisable", "truth_hard_negatives")
_CHUNK = 200_000


class _RosterWriter:
    """One roster file in ``fmt``, written piece after piece (the header once)."""

    def __init__(self, out_dir: Path, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"未知的格式 {fmt!r}，可选: {', '.join(FORMATS)}")
        out_dir.mkdir(parents=True, exist_ok=True)
        self.fmt = fmt
        name = {"parquet": "roster.parquet", "xlsx": "roster.xlsx"}.get(fmt, "roster.csv")
        self.path = out_dir / name
        self.encoding = "gb18030" if fmt == "csv-gb18030" else "utf-8"
        self.rows = 0
        self._csv: BinaryIO | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._book: xlsxwriter.Workbook | None = None

    def write(self, roster: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(roster, preserve_index=False)
        table = table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))
        if self.fmt == "parquet":
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table)
        elif self.fmt == "xlsx":
            if self.rows + table.num_rows > XLSX_MAX_ROWS:
                raise ValueError(
                    f"xlsx 一个工作表最多 {XLSX_MAX_ROWS} 行数据，请改用 csv 或 parquet"
                )
            self._xlsx_rows(table)
        else:
            if self._csv is None:
                self._csv = self.path.open("wb")
                self._csv.write((",".join(table.column_names) + "\n").encode(self.encoding))
            _csv_lines(table, self._csv, self.encoding)
        self.rows += table.num_rows

    def _xlsx_rows(self, table: pa.Table) -> None:
        if self._book is None:
            options = {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
            }
            self._book = xlsxwriter.Workbook(str(self.path), options)
            self._sheet = self._book.add_worksheet("学籍")
            self._text = self._book.add_format({"num_format": "@"})
            for col, name in enumerate(table.column_names):
                self._sheet.write_string(0, col, name)
        columns = [table[name].to_pylist() for name in table.column_names]
        for row in range(table.num_rows):
            for col, values in enumerate(columns):
                self._sheet.write_string(self.rows + row + 1, col, values[row], self._text)

    def close(self) -> None:
        if self._csv is not None:
            self._csv.close()
        if self._parquet is not None:
            self._parquet.close()
        if self._book is not None:
            self._book.close()


def _csv_lines(table: pa.Table, out: BinaryIO, encoding: str) -> None:
    # No generated value holds a comma, quote or line break, so lines are plain joins.
    bad = [
        name
        for name in table.column_names
        if pc.any(pc.match_substring_regex(table[name], r'[",\r\n]')).as_py()
    ]
    if bad:
        raise ValueError(f"列 {bad} 含有逗号、引号或换行")
    for start in range(0, table.num_rows, _CHUNK):
        part = table.slice(start, _CHUNK).combine_chunks()
        lines = pc.binary_join_element_wise(*part.columns, ",")
        lines = pc.binary_join_element_wise(lines, "", "\n").combine_chunks()
        # The UTF-8 bytes of all lines sit back to back in the array's data buffer.
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        offsets = offsets[lines.offset : lines.offset + len(lines) + 1]
        data = lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
        out.write(data if encoding == "utf-8" else data.decode("utf-8").encode(encoding))


def write_roster(built: GeneratedRoster, out_dir: Path, fmt: str = "csv") -> Path:
    """Write the roster of ``built`` into ``out_dir``; return the file's path."""
    writer = _RosterWriter(Path(out_dir), fmt)
    try:
        writer.write(built.roster)
    finally:
        writer.close()
    return writer.path


def _truth_tables(built: GeneratedRoster) -> dict[str, pd.DataFrame]:
    return {name: getattr(built, name) for name in TRUTH_TABLES}


def write_truth(built: GeneratedRoster, out_dir: Path, append: bool = False) -> dict[str, Path]:
    """Write the four truth tables as UTF-8 CSV; return their paths by table name.

    With ``append`` the rows go after those already in the files, without a header.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in _truth_tables(built).items():
        paths[name] = out_dir / f"{name}.csv"
        if append:
            frame.to_csv(paths[name], index=False, header=False, mode="a", encoding="utf-8")
        else:
            frame.to_csv(paths[name], index=False, encoding="utf-8")
    return paths


def write_sample(
    out_dir: Path,
    rows: int,
    seed: int,
    province: str,
    fmt: str = "csv",
    rates: dict[str, float] | None = None,
    counties: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    issued: Issued | None = None,
) -> dict:
    """Generate a roster and write it with its truth files; return paths and counts.

    ``issued``: numbers given out by rosters written before (``generate``).

    Up to ``chunk_rows`` rows the roster is built in one piece (``generate``); a larger one is
    built and written piece by piece (``generate_chunks``), each piece appended to the same files.
    """
    out_dir = Path(out_dir)
    if fmt not in FORMATS:
        raise ValueError(f"未知的格式 {fmt!r}，可选: {', '.join(FORMATS)}")
    if fmt == "xlsx" and rows > XLSX_MAX_ROWS:
        raise ValueError(f"xlsx 一个工作表最多 {XLSX_MAX_ROWS} 行数据，请改用 csv 或 parquet")
    pieces = generate_chunks(
        rows,
        seed,
        province,
        rates=rates,
        counties=counties,
        chunk_rows=chunk_rows,
        issued=issued,
    )
    writer = _RosterWriter(out_dir, fmt)
    sizes = dict.fromkeys(TRUTH_TABLES, 0)
    kinds: dict[str, int] = {}
    shown: set[str] = set()
    truth_paths: dict[str, Path] = {}
    try:
        # Not enumerate(): its cached result tuple would keep the last piece alive while the
        # next one is built.
        for built in pieces:
            truth_paths = write_truth(built, out_dir, append=writer.rows > 0)
            writer.write(built.roster)
            for name, frame in _truth_tables(built).items():
                sizes[name] += len(frame)
            for kind, k in built.truth_errors["kind"].value_counts().items():
                kinds[str(kind)] = kinds.get(str(kind), 0) + int(k)
            shown.update(built.roster[schema.FIELDS["school_county"]].astype(str).unique())
            del built  # the next piece is built without this one in memory
    finally:
        writer.close()
    return {
        "roster": str(writer.path),
        **{name: str(path) for name, path in truth_paths.items()},
        "format": fmt,
        "rows": writer.rows,
        "counties": _county_count(shown, province),
        "duplicate_pairs": sizes["truth_duplicates"],
        "error_cells": sizes["truth_errors"],
        "error_kinds": dict(sorted(kinds.items(), key=lambda item: -item[1])),
        "normalisable_cells": sizes["truth_normalisable"],
        "hard_negative_pairs": sizes["truth_hard_negatives"],
    }


def _county_count(shown: set[str], province: str) -> int:
    """Counties of the province the roster's schools sit in (codes and names both counted)."""
    province = str(province).zfill(2)
    by_name = gb2260.county_name_to_code(province)
    codes = {by_name.get(v, v) for v in shown}
    return len(codes & set(gb2260.counties(province)["code"]))
