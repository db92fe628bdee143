"""Sheet layout shared by the province summary and the county lists (xlsxwriter): workbook
options that keep every value as text, text widths and wrapped line counts, print setup (A4
landscape, one page wide, footer), a table of counts with a totals row, wrapped text lines, and
the writing of a block of cells laid out as arrays (:func:`write_grid`).
"""

from __future__ import annotations

import operator
from collections import deque
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter

WORKBOOK_OPTIONS = {
    "constant_memory": False,
    "strings_to_numbers": False,
    "strings_to_formulas": False,
    "strings_to_urls": False,
}

# A workbook of fewer list rows than this is assembled in memory: xlsxwriter then makes no
# temporary file per sheet and part (creating and deleting some twenty files costs more than the
# cells of a school's or a small county's list); a larger one is assembled in temporary files.
# Its list rows are not held by xlsxwriter either way (:class:`sheet_xml.ListSheet`).
IN_MEMORY_ROWS = 10_000

LINE_HEIGHT = 15.0  # points per line of 11-point text
NUMBER_WIDTH = 9


def display_widths(values: np.ndarray | list) -> np.ndarray:
    """Width of each text in character cells (a CJK character takes two).

    Counted from UTF-8 lengths: a character of three or four bytes (CJK) adds one cell, one of
    two bytes (·, é) none, so no regular expression runs over the text.

    >>> display_widths(["张伟", "a·b", None]).tolist()
    [4.0, 3.0, 0.0]
    """
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object, na_value=None)
    text = pa.array(np.asarray(values, dtype=object), pa.string(), from_pandas=True).fill_null("")
    chars = pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(float)
    nbytes = pc.binary_length(text).to_numpy(zero_copy_only=False).astype(float)
    return chars + np.floor((nbytes - chars) / 2)


def column_display_widths(columns: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`display_widths` of each of several columns, measured over their texts laid end to
    end: a list sheet has some twenty columns of a few hundred rows, where each Arrow call costs
    more to set up than the rows take."""
    if not columns:
        return []
    joined = np.concatenate([np.asarray(values, dtype=object) for values in columns])
    widths = display_widths(joined)
    bounds = np.cumsum([len(values) for values in columns])[:-1]
    return np.split(widths, bounds)


def workbook_options(rows: int) -> dict:
    """xlsxwriter options of a workbook holding ``rows`` list rows (see :data:`IN_MEMORY_ROWS`);
    every value stays text either way."""
    return {**WORKBOOK_OPTIONS, "in_memory": rows < IN_MEMORY_ROWS}


@lru_cache(maxsize=4096)
def text_width(text: str) -> int:
    """:func:`display_widths` of one text (a header, a line of 说明), remembered: every workbook
    of a run has the same ones."""
    return int(display_widths([text])[0])


def line_count(text: str, width: float) -> int:
    """:func:`line_counts` of one text."""
    return max(1, int(np.ceil(text_width(text) / max(1.0, width - 1))))


def line_counts(values: np.ndarray | list, width: float) -> np.ndarray:
    """Lines each text takes when wrapped in a column ``width`` characters wide (one character
    spare for breaks at word ends)."""
    if len(values) == 0:
        return np.zeros(0, dtype=int)
    return wrapped_lines(display_widths(values), width)


def wrapped_lines(widths: np.ndarray, width: float) -> np.ndarray:
    """:func:`line_counts` of texts of these display ``widths``."""
    return np.maximum(1, np.ceil(widths / max(1.0, width - 1))).astype(int)


def write_grid(
    sheet,
    first_row: int,
    values: np.ndarray,
    writers: np.ndarray,
    formats: np.ndarray,
    keep: np.ndarray,
) -> None:
    """A block of cells from arrays of shape (rows, columns): each kept cell's value, the
    worksheet method that writes it (write_string, write_number, write_blank) and its format.

    For the small tables of counts: the calls are made by ``map``, so no Python code of ours
    runs per cell or row (a list's rows go through :mod:`sheet_xml` instead)."""
    rows, width = values.shape
    kept = keep.ravel()
    sheet_rows = np.repeat(np.arange(first_row, first_row + rows), width)[kept]
    sheet_columns = np.tile(np.arange(width), rows)[kept]
    calls = map(
        operator.call,
        writers.ravel()[kept].tolist(),
        sheet_rows.tolist(),
        sheet_columns.tolist(),
        values.ravel()[kept].tolist(),
        formats.ravel()[kept].tolist(),
    )
    deque(calls, maxlen=0)


def _footer_text(text: str) -> str:
    return text.replace("&", "&&")


def print_setup(sheet, footer: str, run_id: str, *, title_rows: bool = True) -> None:
    """Landscape A4, one page wide, the header row on every page, narrow margins, and a footer
    naming ``footer`` (the county), the run and the page."""
    sheet.set_landscape()
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    if title_rows:
        sheet.repeat_rows(0)
    sheet.set_footer(
        f"&L{_footer_text(footer)}&C运行编号 {_footer_text(run_id)}&R第 &P 页，共 &N 页",
        {"margin": 0.3},
    )


def write_count_sheet(
    workbook: xlsxwriter.Workbook,
    name: str,
    table: pd.DataFrame,
    text_columns: list[str],
    total_label: str,
    untotalled: tuple[str, ...] = (),
    decimals: tuple[str, ...] = (),
):
    """A table of counts: text key columns, number columns, a frozen header and a totals row.

    Returns the worksheet."""
    header = workbook.add_format(
        {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}
    )
    text = workbook.add_format({"num_format": "@", "text_wrap": True, "valign": "top"})
    one_decimal = workbook.add_format({"num_format": "0.0"})
    total = workbook.add_format({"bold": True, "top": 2})
    sheet = workbook.add_worksheet(name)
    widths = []
    for position, column in enumerate(table.columns):
        if column in text_columns:
            width = 30 if "名称" in column or "原因" in column or "文件" in column else 13
            sheet.set_column(position, position, width, text)
        else:
            cell_format = one_decimal if column in decimals else None
            width = NUMBER_WIDTH
            sheet.set_column(position, position, width, cell_format)
        widths.append(width)
    header_lines = max(line_count(c, w) for c, w in zip(table.columns, widths, strict=True))
    sheet.set_row(0, LINE_HEIGHT * header_lines)
    for position, column in enumerate(table.columns):
        sheet.write_string(0, position, column, header)
    is_text = [c in text_columns for c in table.columns]
    rows = len(table)
    values = np.empty((rows, len(table.columns)), dtype=object)
    writers = np.empty_like(values)
    keep = np.zeros(values.shape, dtype=bool)
    for position, column in enumerate(table.columns):
        if is_text[position]:
            text = table[column].fillna("").astype(str).to_numpy(dtype=object)
            values[:, position] = text
            writers[:, position] = sheet.write_string
            keep[:, position] = text != ""
        else:
            numbers = table[column].to_numpy(dtype=object)
            values[:, position] = numbers
            writers[:, position] = sheet.write_number
            keep[:, position] = pd.notna(numbers)  # NaN stays blank
    write_grid(sheet, 1, values, writers, np.full(values.shape, None, dtype=object), keep)
    row = rows
    last = row + 1
    sheet.write_string(last, 0, total_label, total)
    for position, column in enumerate(table.columns):
        if position == 0:
            continue
        if is_text[position] or column in untotalled or column in decimals:
            sheet.write_blank(last, position, None, total)
        else:
            sheet.write_number(last, position, int(table[column].sum()), total)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(row, 1), len(table.columns) - 1)
    return sheet


def write_lines(
    sheet,
    lines: list[str],
    plain,
    heading,
    *,
    start: int = 0,
    width: float = 120,
    last_column: int = 0,
) -> int:
    """Text lines, each across columns A..``last_column`` (``width`` characters together),
    wrapped, its row as high as its lines; a line starting with '■' is a heading. Returns the
    next free row."""
    row = start
    needed = line_counts(lines, width).tolist()
    for row, (line, lines_needed) in enumerate(zip(lines, needed, strict=True), start=start):
        if not line:
            continue
        if lines_needed > 1:
            sheet.set_row(row, LINE_HEIGHT * lines_needed)
        cell_format = heading if line.startswith("■") else plain
        if last_column:
            sheet.merge_range(row, 0, row, last_column, line, cell_format)
        else:
            sheet.write_string(row, 0, line, cell_format)
    return row + 1
