"""Writing one county workbook (问题学籍清单) with xlsxwriter: the 说明, 汇总, list and marker
sheets laid out from the workbook contract (:mod:`xueji_quality.workbook`).

The rows come shaped by :mod:`xueji_quality.reports.county_rows`: one object array of str per
list column, in the contract's column order (the similarity score as float64). A sheet holds at
most ``SHEET_MAX_ROWS`` rows (Excel's limit, header included); longer lists continue on
错误学籍(2), 错误学籍(3) … and a duplicate group is never split unless it alone exceeds a sheet.

What a clerk sees and prints:

- each column is as wide as its longest value up to the contract's width, and wraps beyond it,
  so nothing is cut off on screen or paper;
- the columns the clerk fills in (处理方式, 更正后的值, 备注) have a fill of their own and are
  unlocked; 严重程度 is red for an error and amber for a warning; a duplicate group's rows share
  a fill that alternates from group to group, and another county's (or school's) records are
  grey;
- every sheet prints landscape on A4, one page wide, the header row repeated on every page,
  with the county, the run and 第 N 页，共 M 页 in the footer;
- 说明 is protected (no password); the list sheets are not: Excel refuses to sort a protected
  sheet's rows that hold locked cells whatever the protection allows, and clerks sort.

The 说明 sheet is laid out by :mod:`xueji_quality.reports.about_sheet`, the list sheets by
:mod:`xueji_quality.reports.county_sheets`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from xueji_quality import workbook
from xueji_quality.reports.about_sheet import CodeTable, about_lines, write_about_sheet
from xueji_quality.reports.county_sheets import (
    TAB_COLOURS,
    CellFormats,
    column_widths,
    duplicate_pieces,
    measured,
    problem_pieces,
    row_lines,
    start_list_sheet,
    write_duplicate_rows,
    write_problem_rows,
)
from xueji_quality.reports.county_totals import ERRORS, ITEMS, class_counts
from xueji_quality.reports.list_overflow import FullList
from xueji_quality.reports.sheet_layout import print_setup, workbook_options, write_count_sheet
from xueji_quality.reports.sheet_xml import ListSheet, ListWorkbook
from xueji_quality.workbook import Column


def write_county_workbook(
    path: Path,
    error_columns: list[np.ndarray],
    duplicate_columns: list[np.ndarray],
    warning_columns: list[np.ndarray],
    list_items: pd.DataFrame,
    counts: dict,
    *,
    county_label: str,
    province: str,
    run_date: date,
    codes: CodeTable,
    show_status: bool = False,
    run_id: str = "",
    county_code: str = "",
    school: bool = False,
    duplicate_other: np.ndarray | None = None,
    full_lists: list[FullList] | tuple = (),
    list_cap: int | None = None,
) -> None:
    """One county's (or, with ``school``, one school's) workbook. ``error_columns`` /
    ``duplicate_columns`` / ``warning_columns``: the list sheets' columns in the contract's order
    (:func:`xueji_quality.workbook.problem_columns` and
    :func:`~xueji_quality.workbook.duplicate_columns` with ``show_status``, and
    :data:`~xueji_quality.workbook.WARNING_COLUMNS`), duplicate rows in group blocks.
    ``list_items``: the list's items (:func:`~xueji_quality.reports.county_totals.problem_items`),
    counted on 汇总; ``counts``: the figures 说明 states; ``codes``: its table of problem codes.
    ``duplicate_other`` marks the duplicate rows of another county (or school), shown grey
    (default: read from their 问题编号). ``full_lists``: the lists shown in part, whose whole is
    beside the workbook (:mod:`xueji_quality.reports.list_overflow`), said so in 说明."""
    list_rows = sum(
        len(c[0]) if c else 0 for c in (error_columns, duplicate_columns, warning_columns)
    )
    book = ListWorkbook(str(path), workbook_options(list_rows))
    formats = CellFormats(book)
    footer = county_label
    about = book.add_worksheet(workbook.ABOUT_SHEET)
    lines = about_lines(
        counts,
        county_label=county_label,
        province=province,
        run_date=run_date,
        run_id=run_id,
        show_status=show_status,
        school=school,
        full_lists=full_lists,
        list_cap=list_cap,
    )
    write_about_sheet(about, formats, lines, f"{county_label} 问题学籍清单", codes)
    print_setup(about, footer, run_id, title_rows=False)
    about.protect("", {"select_locked_cells": True, "select_unlocked_cells": True})

    by_school = class_counts(list_items, ["school_code", "school_name"])
    by_school = by_school.sort_values(
        [ERRORS, ITEMS, "school_code"], ascending=[False, False, True], kind="stable"
    ).rename(columns={"school_code": "学校标识码", "school_name": "学校名称"})
    summary = write_count_sheet(
        book, workbook.SUMMARY_SHEET, by_school, ["学校标识码", "学校名称"], ITEMS
    )
    print_setup(summary, footer, run_id)

    error_layout = workbook.problem_columns(show_status)
    _write_problem_list(
        book,
        workbook.PROBLEM_SHEET,
        error_layout,
        error_columns,
        formats,
        footer,
        run_id,
        workbook.ACTIONS,
        "佐证：信息无误，保留（备注写依据）；变更：已更正（写更正后的值）；删除：学生不在本校就读",
    )

    duplicate_layout = workbook.duplicate_columns(show_status)
    group_ids = duplicate_columns[workbook.position(duplicate_layout, "group_id")]
    if duplicate_other is None:
        keys = duplicate_columns[workbook.position(duplicate_layout, "problem_key")]
        duplicate_other = np.char.find(keys.astype(str), workbook.OTHER_MEMBER) >= 0
    other = np.asarray(duplicate_other, dtype=bool)
    rows = len(group_ids)
    new_group = np.r_[True, group_ids[1:] != group_ids[:-1]] if rows else np.array([], bool)
    parity = ((np.cumsum(new_group) - 1) % 2).astype(int) if rows else np.array([], int)
    sizes = measured(duplicate_layout, duplicate_columns)
    widths = column_widths(duplicate_layout, duplicate_columns, sizes)
    lines = row_lines(duplicate_layout, duplicate_columns, widths, sizes)
    pieces = duplicate_pieces(group_ids)
    for sheet_name, (start, stop) in zip(
        workbook.sheet_names(workbook.DUPLICATE_SHEET, len(pieces)), pieces, strict=True
    ):
        sheet = book.add_worksheet(sheet_name, worksheet_class=ListSheet)
        sheet.set_tab_color(TAB_COLOURS[workbook.DUPLICATE_SHEET])
        start_list_sheet(
            sheet,
            duplicate_layout,
            widths,
            formats,
            stop - start,
            workbook.DUPLICATE_ACTIONS,
            "每条学籍单独答复。保留：学生在此就读；删除：多余的一条；变更：信息已更正；"
            "佐证：不是同一学生（各条都选佐证，备注写依据）",
        )
        print_setup(sheet, footer, run_id)
        write_duplicate_rows(
            sheet,
            duplicate_layout,
            duplicate_columns,
            lines,
            parity,
            new_group.astype(int),
            other,
            formats,
            start,
            stop,
        )

    _write_problem_list(
        book,
        workbook.WARNING_SHEET,
        workbook.WARNING_COLUMNS,
        warning_columns,
        formats,
        footer,
        run_id,
        None,
    )

    marker = book.add_worksheet(workbook.MARKER_SHEET)
    values = {"run_id": run_id, "county_code": county_code, "format": workbook.FORMAT_NAME}
    for row, (field, label) in enumerate(workbook.MARKER_FIELDS):
        marker.write_string(row, 0, label)
        marker.write_string(row, 1, values[field])
    about.activate()
    marker.hide()
    book.close()


def _write_problem_list(
    book: xlsxwriter.Workbook,
    base: str,
    layout: tuple[Column, ...],
    columns: list[np.ndarray],
    formats: CellFormats,
    footer: str,
    run_id: str,
    actions: tuple[str, ...] | None,
    action_help: str = "",
) -> None:
    """错误学籍 (answered with ``actions``) or 提醒 (``actions`` None), continued on more sheets
    when longer than one."""
    sizes = measured(layout, columns)
    widths = column_widths(layout, columns, sizes)
    lines = row_lines(layout, columns, widths, sizes)
    pieces = problem_pieces(len(columns[0]))
    for sheet_name, (start, stop) in zip(
        workbook.sheet_names(base, len(pieces)), pieces, strict=True
    ):
        sheet = book.add_worksheet(sheet_name, worksheet_class=ListSheet)
        sheet.set_tab_color(TAB_COLOURS[base])
        start_list_sheet(sheet, layout, widths, formats, stop - start, actions, action_help)
        print_setup(sheet, footer, run_id)
        write_problem_rows(sheet, layout, columns, lines, formats, start, stop)
