"""Writing a generated roster the way provinces deliver exports, with its truth files beside it.

Formats: ``csv`` (UTF-8, no BOM), ``csv-gb18030`` (the same text in GB 18030, as Windows tools
write it), ``xlsx`` (every cell a text cell, so no number is ever turned into a float) and
``parquet`` (every column a string column). The roster's name is ``roster.csv`` / ``roster.xlsx``
/ ``roster.parquet``; the truth files are always UTF-8 CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xlsxwriter

from xueji_quality import regions, schema
from xueji_quality.generator.build import GeneratedRoster, generate

FORMATS = ("csv", "csv-gb18030", "xlsx", "parquet")
XLSX_MAX_ROWS = 1_048_575  # one sheet, header row excluded
_CHUNK = 200_000


def write_roster(built: GeneratedRoster, out_dir: Path, fmt: str = "csv") -> Path:
    """Write the roster of ``built`` into ``out_dir``; return the file's path."""
    if fmt not in FORMATS:
        raise ValueError(f"未知的格式 {fmt!r}，可选: {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(built.roster, preserve_index=False)
    table = table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))
    if fmt == "parquet":
        path = out_dir / "roster.parquet"
        pq.write_table(table, path)
    elif fmt == "xlsx":
        path = out_dir / "roster.xlsx"
        _write_xlsx(table, path)
    else:
        path = out_dir / "roster.csv"
        _write_csv(table, path, "gb18030" if fmt == "csv-gb18030" else "utf-8")
    return path


def _write_csv(table: pa.Table, path: Path, encoding: str) -> None:
    # No generated value holds a comma, quote or line break, so lines are plain joins.
    bad = [
        name
        for name in table.column_names
        if pc.any(pc.match_substring_regex(table[name], r'[",\r\n]')).as_py()
    ]
    if bad:
        raise ValueError(f"列 {bad} 含有逗号、引号或换行")
    with path.open("wb") as out:
        out.write((",".join(table.column_names) + "\n").encode(encoding))
        for start in range(0, table.num_rows, _CHUNK):
            part = table.slice(start, _CHUNK).combine_chunks()
            lines = pc.binary_join_element_wise(*part.columns, ",")
            lines = pc.binary_join_element_wise(lines, "", "\n").combine_chunks()
            # The UTF-8 bytes of all lines sit back to back in the array's data buffer.
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
            offsets = offsets[lines.offset : lines.offset + len(lines) + 1]
            data = lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
            out.write(data if encoding == "utf-8" else data.decode("utf-8").encode(encoding))


def _write_xlsx(table: pa.Table, path: Path) -> None:
    if table.num_rows > XLSX_MAX_ROWS:
        raise ValueError(f"xlsx 一个工作表最多 {XLSX_MAX_ROWS} 行数据，请改用 csv 或 parquet")
    options = {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    with xlsxwriter.Workbook(str(path), options) as book:
        sheet = book.add_worksheet("学籍")
        text_format = book.add_format({"num_format": "@"})
        for col, name in enumerate(table.column_names):
            sheet.write_string(0, col, name)
        columns = [table[name].to_pylist() for name in table.column_names]
        for row in range(table.num_rows):
            for col, values in enumerate(columns):
                sheet.write_string(row + 1, col, values[row], text_format)


def write_truth(built: GeneratedRoster, out_dir: Path) -> dict[str, Path]:
    """Write the four truth tables as UTF-8 CSV; return their paths by table name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "truth_duplicates": built.truth_duplicates,
        "truth_errors": built.truth_errors,
        "truth_normalisable": built.truth_normalisable,
        "truth_hard_negatives": built.truth_hard_negatives,
    }
    paths = {}
    for name, frame in tables.items():
        paths[name] = out_dir / f"{name}.csv"
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
) -> dict:
    """Generate a roster and write it with its truth files; return paths and counts."""
    out_dir = Path(out_dir)
    if fmt not in FORMATS:
        raise ValueError(f"未知的格式 {fmt!r}，可选: {', '.join(FORMATS)}")
    if fmt == "xlsx" and rows > XLSX_MAX_ROWS:
        raise ValueError(f"xlsx 一个工作表最多 {XLSX_MAX_ROWS} 行数据，请改用 csv 或 parquet")
    built = generate(rows, seed, province, rates=rates, counties=counties)
    roster_path = write_roster(built, out_dir, fmt)
    truth_paths = write_truth(built, out_dir)
    kinds = built.truth_errors["kind"].value_counts()
    return {
        "roster": str(roster_path),
        **{name: str(path) for name, path in truth_paths.items()},
        "format": fmt,
        "rows": int(len(built.roster)),
        "counties": _county_count(built, province),
        "duplicate_pairs": int(len(built.truth_duplicates)),
        "error_cells": int(len(built.truth_errors)),
        "error_kinds": {str(k): int(v) for k, v in kinds.items()},
        "normalisable_cells": int(len(built.truth_normalisable)),
        "hard_negative_pairs": int(len(built.truth_hard_negatives)),
    }


def _county_count(built: GeneratedRoster, province: str) -> int:
    """Counties of the province the roster's schools sit in (codes and names both counted)."""
    by_name = regions.county_name_to_code(province)
    shown = built.roster[schema.FIELDS["school_county"]].astype(str)
    codes = {by_name.get(v, v) for v in shown.unique()}
    return len(codes & set(regions.counties(province)["code"]))
