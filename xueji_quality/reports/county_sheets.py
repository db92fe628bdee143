"""The list sheets of a county workbook (错误学籍, 重复学籍, 提醒): cell formats, how a long list
is cut into sheets, column widths, row heights and the writing of the rows, laid out from the
workbook contract (:mod:`xueji_quality.workbook`).

A sheet holds at most ``SHEET_MAX_ROWS`` rows (Excel's limit, header included); longer lists
continue on 错误学籍(2), 错误学籍(3) … and a duplicate group is never split unless it alone
exceeds a sheet.

What a clerk sees:

- each column is as wide as its longest value up to the contract's width, and wraps beyond it,
  so nothing is cut off on screen or paper;
- the columns the clerk fills in (处理方式, 更正后的值, 备注) have a fill of their own and are
  unlocked; 严重程度 is red for an error and amber for a warning; a duplicate group's rows share
  a fill that alternates from group to group, and another county's (or school's) records are
  grey.
"""

from __future__ import annotations

import numpy as np
import xlsxwriter

from xueji_quality import workbook
from xueji_quality.reports import sheet_xml
from xueji_quality.reports.sheet_layout import (
    LINE_HEIGHT,
    column_display_widths,
    line_count,
    text_width,
    wrapped_lines,
)
from xueji_quality.reports.sheet_xml import ListSheet
from xueji_quality.workbook import Column

# Rows per worksheet, header included (Excel's own limit). Tests lower it to check continuation.
SHEET_MAX_ROWS = 1_048_576
SEVERITY_LABELS: dict[str, str] = {"E": "错误", "W": "警告"}

HEADER_FILL = "#DDEBF7"
CLERK_HEADER_FILL = "#FFD966"
CLERK_FILL = "#FFF2CC"
ERROR_FILL, ERROR_FONT = "#FFC7CE", "#9C0006"
WARNING_FILL, WARNING_FONT = "#FFEB9C", "#9C5700"
GROUP_FILLS = ("#FFFFFF", "#E2EFDA")
COUNTERPART_FILL, COUNTERPART_FONT = "#EDEDED", "#595959"
TAB_COLOURS = {
    workbook.PROBLEM_SHEET: "#C00000",
    workbook.DUPLICATE_SHEET: "#ED7D31",
    workbook.WARNING_SHEET: "#BF8F00",
}
MIN_WIDTH = 4
# Rows whose cells are laid out as arrays at once: bounds the memory of a long list's writing.
CHUNK_ROWS = 20_000


def problem_pieces(rows: int) -> list[tuple[int, int]]:
    """(start, stop) row ranges, one per sheet."""
    per_sheet = SHEET_MAX_ROWS - 1
    if rows == 0:
        return [(0, 0)]
    return [(start, min(rows, start + per_sheet)) for start in range(0, rows, per_sheet)]


def duplicate_pieces(group_ids: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges per sheet that never split a group, unless one group alone exceeds a sheet."""
    per_sheet = SHEET_MAX_ROWS - 1
    rows = len(group_ids)
    if rows == 0:
        return [(0, 0)]
    starts = np.flatnonzero(np.r_[True, group_ids[1:] != group_ids[:-1]])
    bounds = np.r_[starts, rows]
    pieces: list[tuple[int, int]] = []
    start = 0
    for stop in bounds[1:]:
        stop = int(stop)
        if stop - start <= per_sheet:
            continue
        # The group ending at ``stop`` does not fit: close the sheet before it.
        previous = int(bounds[np.searchsorted(bounds, stop) - 1])
        if previous > start:
            pieces.append((start, previous))
            start = previous
        while stop - start > per_sheet:
            pieces.append((start, start + per_sheet))
            start += per_sheet
    pieces.append((start, rows))
    return pieces


def measured(layout: tuple[Column, ...], columns: list[np.ndarray]) -> list[np.ndarray | None]:
    """Display width of every text cell, column by column (None for a number column): measured
    once for the column widths and the row heights both."""
    text_at = [p for p, column in enumerate(layout) if column.kind != "number"]
    sizes: list[np.ndarray | None] = [None] * len(layout)
    for position, widths in zip(
        text_at, column_display_widths([columns[p] for p in text_at]), strict=True
    ):
        sizes[position] = widths
    return sizes


def column_widths(
    layout: tuple[Column, ...],
    columns: list[np.ndarray],
    cell_widths: list[np.ndarray | None] | None = None,
) -> list[int]:
    """Each column as wide as its longest value (and half its header, which wraps) up to the
    contract's width; a column the clerk fills in gets its full width to write in.
    ``cell_widths``: :func:`measured` of the columns, if at hand."""
    cell_widths = cell_widths or measured(layout, columns)
    widths = []
    for column, values, sizes in zip(layout, columns, cell_widths, strict=True):
        header = text_width(column.header)
        if column.filled_by_clerk:
            widths.append(column.width)
            continue
        content = 6 if column.kind == "number" or len(values) == 0 else sizes.max()
        widths.append(int(min(column.width, max(MIN_WIDTH, content + 1, (header + 1) // 2 + 1))))
    return widths


def row_lines(
    layout: tuple[Column, ...],
    columns: list[np.ndarray],
    widths: list[int],
    cell_widths: list[np.ndarray | None] | None = None,
) -> np.ndarray:
    """Lines each row takes: its most wrapped cell (hidden and number columns aside)."""
    rows = len(columns[0]) if columns else 0
    lines = np.ones(rows, dtype=int)
    if rows == 0:
        return lines
    cell_widths = cell_widths or measured(layout, columns)
    for column, sizes, width in zip(layout, cell_widths, widths, strict=True):
        if column.hidden or column.kind == "number":
            continue
        lines = np.maximum(lines, wrapped_lines(sizes, width))
    return lines


def _header_height(layout: tuple[Column, ...], widths: list[int]) -> float:
    lines = max(line_count(c.header, w) for c, w in zip(layout, widths, strict=True))
    return LINE_HEIGHT * lines


class CellFormats:
    """Cell formats by their properties, made once per workbook."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.book = book
        self.made: dict[tuple, object] = {}
        self.bold = book.add_format({"bold": True})
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.wrap = book.add_format({"text_wrap": True, "valign": "top"})
        self.bold_wrap = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.header = self.get(bold=True, bg_color=HEADER_FILL, border=1)
        self.clerk_header = self.get(bold=True, bg_color=CLERK_HEADER_FILL, border=1)

    def get(self, **properties) -> object:
        key = tuple(sorted(properties.items()))
        found = self.made.get(key)
        if found is None:
            found = self.book.add_format({"text_wrap": True, "valign": "top", **properties})
            self.made[key] = found
        return found

    def cell(
        self,
        column: Column,
        *,
        fill: str | None = None,
        top: bool = False,
        other: bool = False,
        severity: str | None = None,
    ) -> object:
        """The format of a list cell: by its column, the row's fill and kind."""
        properties: dict = {}
        if column.kind == "text":
            properties["num_format"] = "@"
        elif column.kind == "number":
            properties["num_format"] = "0.00"
        if fill and fill != "#FFFFFF":
            properties["bg_color"] = fill
        if top:
            properties["top"] = 1
        if other:
            properties["font_color"] = COUNTERPART_FONT
        if column.filled_by_clerk:
            properties["locked"] = False
            properties["border"] = 1
            properties["border_color"] = "#BFBFBF"
            properties["bg_color"] = COUNTERPART_FILL if other else CLERK_FILL
            if top:
                properties["top"] = 1
                properties["top_color"] = "#000000"
        if column.field == "severity" and severity in ("错误", "警告"):
            error = severity == "错误"
            properties["bg_color"] = ERROR_FILL if error else WARNING_FILL
            properties["font_color"] = ERROR_FONT if error else WARNING_FONT
        return self.get(**properties)


def start_list_sheet(
    sheet,
    layout: tuple[Column, ...],
    widths: list[int],
    formats: CellFormats,
    rows: int,
    actions: tuple[str, ...] | None,
    action_help: str = "",
) -> None:
    for position, (column, width) in enumerate(zip(layout, widths, strict=True)):
        options = {"hidden": True} if column.hidden else None
        sheet.set_column(position, position, width, formats.cell(column), options)
    sheet.set_row(0, _header_height(layout, widths))
    for position, column in enumerate(layout):
        header = formats.clerk_header if column.filled_by_clerk else formats.header
        sheet.write_string(0, position, column.header, header)
    sheet.freeze_panes(1, 0)
    last_row = max(rows, 1)
    sheet.autofilter(0, 0, last_row, len(layout) - 1)
    if actions is None:
        return
    action = workbook.position(layout, "action")
    sheet.data_validation(
        1,
        action,
        last_row,
        action,
        {
            "validate": "list",
            "source": list(actions),
            "input_title": workbook.ACTION_HEADER,
            "input_message": action_help,
            "error_title": workbook.ACTION_HEADER,
            "error_message": f"请选择：{'、'.join(actions[:-1])}或{actions[-1]}",
        },
    )


def _chunks(start: int, stop: int) -> list[tuple[int, int]]:
    return [(a, min(stop, a + CHUNK_ROWS)) for a in range(start, stop, CHUNK_ROWS)]


def write_problem_rows(
    sheet: ListSheet,
    layout: tuple[Column, ...],
    columns: list[np.ndarray],
    lines: np.ndarray,
    formats: CellFormats,
    start: int,
    stop: int,
) -> None:
    """Rows ``start``..``stop`` of a 错误学籍 / 提醒 list on ``sheet`` from its second row: a text
    in its column's format (严重程度 red or amber by its value), an empty cell left out unless
    the clerk fills it in (then blank, in the clerk's fill)."""
    at = workbook.position(layout, "severity")
    plain = np.array([formats.cell(column)._get_xf_index() for column in layout])
    labels = list(SEVERITY_LABELS.values())
    # One table of formats for the sheet: each column's plain one, then 严重程度's by label.
    xf_table = np.r_[
        plain, [formats.cell(layout[at], severity=label)._get_xf_index() for label in labels]
    ]
    positions = list(range(len(layout)))
    clerk = np.array([column.filled_by_clerk for column in layout])
    for first, last in _chunks(start, stop):
        rows = last - first
        numbers = sheet_xml.row_numbers(first - start + 1, rows)
        text = [columns[position][first:last] for position in positions]
        codes = np.repeat(np.arange(len(layout))[:, None], rows, axis=1)
        codes[at] = np.select(
            [text[at] == label for label in labels],
            [len(layout) + n for n in range(len(labels))],
            at,
        )
        # An empty cell is left out, unless the clerk fills it in.
        written = np.concatenate([clerk[p] | (text[p] != "") for p in positions])
        styles = sheet_xml.style_attributes(xf_table, codes.ravel())
        cells = sheet_xml.text_block_cells(positions, numbers, text, styles, written)
        _add_rows(sheet, numbers, cells, lines[first:last], first - start + 1, len(layout))


def write_duplicate_rows(
    sheet: ListSheet,
    layout: tuple[Column, ...],
    columns: list[np.ndarray],
    lines: np.ndarray,
    parity: np.ndarray,
    first_of_group: np.ndarray,
    other: np.ndarray,
    formats: CellFormats,
    start: int,
    stop: int,
) -> None:
    """Rows ``start``..``stop`` of a 重复学籍 list: every cell written (a blank one too, for the
    group's fill), formatted by the group's fill, its first row's top border and whether the
    record is another county's (or school's)."""
    # Each column's cell format per (fill, first row of its group, another's record).
    styles = np.empty((len(layout), 8), dtype=np.int64)
    for odd in (0, 1):
        for top in (0, 1):
            for foreign in (0, 1):
                styles[:, odd * 4 + top * 2 + foreign] = [
                    formats.cell(
                        column, fill=GROUP_FILLS[odd], top=bool(top), other=bool(foreign)
                    )._get_xf_index()
                    for column in layout
                ]
    style = parity * 4 + first_of_group * 2 + other.astype(int)
    text_at = [p for p, column in enumerate(layout) if column.kind != "number"]
    number_at = [p for p, column in enumerate(layout) if column.kind == "number"]
    # The text columns' formats as one table, column after column (8 per column).
    text_styles = styles[text_at].ravel()
    for first, last in _chunks(start, stop):
        rows = last - first
        numbers = sheet_xml.row_numbers(first - start + 1, rows)
        codes = style[first:last]
        everywhere = np.ones(rows, dtype=bool)
        block_codes = (np.arange(len(text_at))[:, None] * 8 + codes[None, :]).ravel()
        text_cells = sheet_xml.text_block_cells(
            text_at,
            numbers,
            [columns[position][first:last] for position in text_at],
            sheet_xml.style_attributes(text_styles, block_codes),
            np.ones(len(block_codes), dtype=bool),
        )
        cells: list = [None] * len(layout)
        for position, built in zip(text_at, text_cells, strict=True):
            cells[position] = built
        for position in number_at:
            cells[position] = sheet_xml.number_cells(
                position,
                numbers,
                columns[position][first:last],
                sheet_xml.style_attributes(styles[position], codes),
                everywhere,
            )
        _add_rows(sheet, numbers, cells, lines[first:last], first - start + 1, len(layout))


def _add_rows(sheet: ListSheet, numbers, cells, lines: np.ndarray, first_row: int, width: int):
    """The rows as high as their ``lines`` (a one-line row keeps the default)."""
    heights = np.where(lines > 1, LINE_HEIGHT * lines, 0.0)
    xml = sheet_xml.rows_xml(numbers, cells, heights)
    sheet.add_rows(xml, first_row, first_row + len(numbers) - 1, width)
