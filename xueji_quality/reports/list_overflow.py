"""A list longer than a workbook should hold: the whole list as CSV and Parquet beside it.

A clerk's workbook has to open in a few seconds in Excel or WPS. A list (错误学籍, 重复学籍 or
提醒) of more than :data:`LIST_CAP_ROWS` rows shows its first rows on its sheet (graduating
grades first, as always; a duplicate group is never cut), and the whole list, shown as the sheet
shows it, goes beside the workbook as ``<workbook>_<sheet>_全部.csv`` (UTF-8 with a byte order
mark, so Excel and WPS read the Chinese; every text value quoted, identifiers never written as
numbers) and ``…_全部.parquet`` (the same columns, typed as text; the score as a number). The
workbook's 说明 says how long the list is, what its sheet shows and where the whole list is.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from xueji_quality.reports import tables
from xueji_quality.workbook import Column

# Rows of one list in a workbook: 100,000 rows of 20 columns open in seconds and print as a
# volume nobody prints; Excel's own limit (1,048,576 rows a sheet) is far beyond what a clerk
# can work through.
LIST_CAP_ROWS = 100_000
UTF8_BOM = b"\xef\xbb\xbf"


class FullList(NamedTuple):
    """A list that did not fit: its sheet, its rows, the rows its sheet shows, and the files
    beside the workbook that hold it whole (names in the same folder)."""

    sheet: str
    rows: int
    shown: int
    csv_name: str
    parquet_name: str


def shown_rows(rows: int, cap: int | None, group_ids: np.ndarray | None = None) -> int:
    """How many of a list's ``rows`` its sheet shows: all up to ``cap`` (None: no cap); with
    ``group_ids`` (a duplicate list in group blocks), up to the last whole group that fits,
    unless the first group alone is longer than ``cap``.

    >>> shown_rows(5, 3), shown_rows(5, None), shown_rows(3, 3)
    (3, 5, 3)
    >>> shown_rows(5, 3, np.array(["a", "a", "b", "b", "c"])), shown_rows(5, 3, np.array(["a"] * 5))
    (2, 3)
    """
    if cap is None or rows <= cap:
        return rows
    if group_ids is None:
        return cap
    starts = np.flatnonzero(np.r_[True, group_ids[1:] != group_ids[:-1]])
    boundary = int(starts[starts <= cap][-1])
    return boundary or cap


def list_table(layout: tuple[Column, ...], columns: list[np.ndarray]) -> pa.Table:
    """The list as its sheet shows it, without the columns a clerk fills in: one text column per
    header (the score a float)."""
    arrays, names = [], []
    for column, values in zip(layout, columns, strict=True):
        if column.filled_by_clerk:
            continue
        kind = pa.float64() if column.kind == "number" else pa.string()
        arrays.append(pa.array(values, type=kind, from_pandas=True))
        names.append(column.header)
    return pa.Table.from_arrays(arrays, names=names)


def write_full_list(
    run_dir: Path,
    workbook_path: Path,
    sheet: str,
    layout: tuple[Column, ...],
    columns: list[np.ndarray],
    shown: int,
) -> tuple[FullList, list[dict]]:
    """Write the whole list beside ``workbook_path``; its note for 说明 and the files' entries."""
    table = list_table(layout, columns)
    stem = f"{workbook_path.stem}_{sheet}_全部"
    csv_path = workbook_path.with_name(f"{stem}.csv")
    parquet_path = workbook_path.with_name(f"{stem}.parquet")
    with open(csv_path, "wb") as sink:
        sink.write(UTF8_BOM)
        pa_csv.write_csv(table, sink)
    pq.write_table(table, parquet_path, compression="zstd")
    note = FullList(sheet, table.num_rows, shown, csv_path.name, parquet_path.name)
    entries = [
        tables.file_entry(run_dir, path, table.num_rows) for path in (csv_path, parquet_path)
    ]
    return note, entries


def full_list_lines(notes: list[FullList], cap: int | None) -> list[str]:
    """The 说明 lines of the lists that did not fit (none when all did)."""
    if not notes:
        return []
    lines = ["■ 超长清单"]
    for note in notes:
        lines.append(
            f"“{note.sheet}”共 {note.rows} 行，超过每张清单 {cap} 行的上限：本工作簿只列出前 "
            f"{note.shown} 行（毕业年级在前），完整清单在本文件所在文件夹的 {note.csv_name}"
            f"（UTF-8 编码，用 Excel 或 WPS 打开时请把各列设为“文本”）和 {note.parquet_name}。"
        )
    lines.append(
        "请先答复本工作簿中列出的各行；只在完整清单中的条目同样需要核实处理（可直接在学籍系统中更正），"
        "下一次运行的清单会列出仍然存在的问题。"
    )
    return lines
