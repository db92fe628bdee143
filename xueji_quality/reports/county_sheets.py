"""Writing one county workbook (问题学籍清单) with xlsxwriter: the 说明, 汇总, list and marker
sheets laid out from the workbook contract (:mod:`xueji_quality.workbook`).

The rows come shaped by :mod:`xueji_quality.reports.county_report`: one object array of str per
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
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from xueji_quality import schema, workbook
from xueji_quality.reports.county_totals import (
    ERRORS,
    GROUPS,
    ITEM_WORD,
    ITEMS,
    PROBLEM_CLASSES,
    STUDENTS,
    WARNINGS,
    class_counts,
)
from xueji_quality.reports.summary import (
    LINE_HEIGHT,
    WORKBOOK_OPTIONS,
    display_widths,
    line_counts,
    print_setup,
    write_count_sheet,
    write_lines,
)
from xueji_quality.rule_names import rule_names
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


def column_widths(layout: tuple[Column, ...], columns: list[np.ndarray]) -> list[int]:
    """Each column as wide as its longest value (and half its header, which wraps) up to the
    contract's width; a column the clerk fills in gets its full width to write in."""
    widths = []
    for column, values in zip(layout, columns, strict=True):
        header = int(display_widths([column.header])[0])
        if column.filled_by_clerk:
            widths.append(column.width)
            continue
        content = 6 if column.kind == "number" or len(values) == 0 else display_widths(values).max()
        widths.append(int(min(column.width, max(MIN_WIDTH, content + 1, (header + 1) // 2 + 1))))
    return widths


def row_lines(
    layout: tuple[Column, ...], columns: list[np.ndarray], widths: list[int]
) -> np.ndarray:
    """Lines each row takes: its most wrapped cell (hidden and number columns aside)."""
    rows = len(columns[0]) if columns else 0
    lines = np.ones(rows, dtype=int)
    for column, values, width in zip(layout, columns, widths, strict=True):
        if column.hidden or column.kind == "number" or rows == 0:
            continue
        lines = np.maximum(lines, line_counts(values, width))
    return lines


def _header_height(layout: tuple[Column, ...], widths: list[int]) -> float:
    lines = max(int(line_counts([c.header], w)[0]) for c, w in zip(layout, widths, strict=True))
    return LINE_HEIGHT * lines


class _Formats:
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


def _start_list_sheet(
    sheet,
    layout: tuple[Column, ...],
    widths: list[int],
    formats: _Formats,
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


def _write_problem_rows(
    sheet,
    layout: tuple[Column, ...],
    columns: list[np.ndarray],
    lines: np.ndarray,
    formats: _Formats,
    start: int,
    stop: int,
) -> None:
    write = sheet.write_string
    blank = sheet.write_blank
    plain = [formats.cell(column) for column in layout]
    at = workbook.position(layout, "severity")
    severity_format = {
        label: formats.cell(layout[at], severity=label) for label in SEVERITY_LABELS.values()
    }
    clerk = [position for position, column in enumerate(layout) if column.filled_by_clerk]
    rows = zip(lines[start:stop].tolist(), *(c[start:stop] for c in columns), strict=True)
    for row, (height, *values) in enumerate(rows, start=1):
        if height > 1:
            sheet.set_row(row, LINE_HEIGHT * height)
        for position, value in enumerate(values):
            cell = severity_format.get(value, plain[at]) if position == at else plain[position]
            if value:
                write(row, position, value, cell)
            elif position in clerk:
                blank(row, position, None, cell)


def _write_duplicate_rows(
    sheet,
    layout: tuple[Column, ...],
    columns: list[np.ndarray],
    lines: np.ndarray,
    parity: np.ndarray,
    first: np.ndarray,
    other: np.ndarray,
    formats: _Formats,
    start: int,
    stop: int,
) -> None:
    write = sheet.write_string
    blank = sheet.write_blank
    numbers = {position for position, column in enumerate(layout) if column.kind == "number"}
    # One list of cell formats per (fill, first row of its group, another's record).
    styles = {
        (odd, top, foreign): [
            formats.cell(column, fill=GROUP_FILLS[odd], top=bool(top), other=bool(foreign))
            for column in layout
        ]
        for odd in (0, 1)
        for top in (0, 1)
        for foreign in (0, 1)
    }
    rows = zip(
        lines[start:stop].tolist(),
        parity[start:stop].tolist(),
        first[start:stop].tolist(),
        other[start:stop].tolist(),
        *(c[start:stop].tolist() for c in columns),
        strict=True,
    )
    for row, (height, odd, top, foreign, *values) in enumerate(rows, start=1):
        if height > 1:
            sheet.set_row(row, LINE_HEIGHT * height)
        style = styles[(odd, top, int(foreign))]
        for position, value in enumerate(values):
            cell = style[position]
            if position in numbers:
                if value == value:  # NaN stays blank
                    sheet.write_number(row, position, value, cell)
                else:
                    blank(row, position, None, cell)
            elif value:
                write(row, position, value, cell)
            else:
                blank(row, position, None, cell)


def _code_table(rule_catalogue: pd.DataFrame) -> pd.DataFrame:
    catalogue = rule_catalogue.reindex(
        columns=["rule", "severity", "field", "message", "suggestion"]
    ).astype("string")
    catalogue["severity"] = catalogue["severity"].map(SEVERITY_LABELS).fillna(catalogue["severity"])
    catalogue["field"] = catalogue["field"].map(schema.FIELDS).fillna(catalogue["field"])
    duplicates = pd.DataFrame(
        {
            "rule": ["DUP_ID", "DUP_FUZZY"],
            "severity": ["错误", "错误"],
            "field": ["身份证件号", "姓名/出生日期/身份证件号"],
            "message": [
                "身份证号重复：同一身份证件号登记了多条学籍",
                "疑似重复：同一学生可能被登记了两次（证件号一位之差、同音姓名、日月颠倒等）",
            ],
            "suggestion": [
                "逐条核实：学生实际就读的一条“保留”，其余“删除”；证件号录错的“变更”",
                "是同一学生：一条“保留”，其余“删除”；不是同一学生：各条“佐证”并在备注写明依据",
            ],
        },
        dtype="string",
    )
    table = pd.concat([catalogue, duplicates], ignore_index=True).fillna("")
    table.insert(1, "rule_name", rule_names(table["rule"]).to_numpy())
    return table


def about_lines(
    counts: dict,
    *,
    county_label: str,
    province: str,
    run_date: date,
    run_id: str,
    show_status: bool,
    school: bool,
) -> list[str]:
    """The text of 说明 above the code table: the list's figures and how to answer it."""
    unit = "本校" if school else "本区县"
    by_class = counts["items_by_class"]
    students = "" if school else f"{unit}在籍学生 {counts['records']} 人。"
    lines = [
        f"运行日期：{run_date.isoformat()}    运行编号：{run_id}    省份代码：{province}    "
        f"{'学校' if school else '区县'}：{county_label}",
        "",
        "■ 本清单的数字（与“汇总”表合计行一致）",
        f"{students}{ITEM_WORD}{ITEMS} {counts['items']} 条："
        f"{ERRORS} {counts['error_items']} 条（须逐条答复），"
        f"{WARNINGS} {counts['warning_items']} 条（见“{workbook.WARNING_SHEET}”，无须答复）；"
        f"{STUDENTS} {counts['records_with_problems']} 人。",
        "按类别：" + "，".join(f"{c} {by_class.get(c, 0)} 条" for c in PROBLEM_CLASSES) + "。",
        f"{workbook.PROBLEM_SHEET} {counts['error_rows']} 行；{workbook.DUPLICATE_SHEET}："
        f"{GROUPS} {counts['duplicate_groups']}，{unit}学籍 {counts['duplicate_rows']} 行"
        f"（另列外{'校' if school else '区县'}记录 {counts['counterpart_rows']} 行供核对，不计入）；"
        f"{workbook.WARNING_SHEET} {counts['warning_rows']} 行。",
        "一个问题条目是一条学籍的一个问题，或重复组中的一条学籍；一个重复组有几条本"
        f"{'校' if school else '区县'}学籍就计几条。",
        "",
        "■ 怎样答复",
        f"在黄色的“{workbook.ACTION_HEADER}”列选择处理结果，需要时填写“{workbook.NEW_VALUE_HEADER}”"
        f"和“{workbook.NOTE_HEADER}”，然后把本文件交回。",
        f"“{workbook.PROBLEM_SHEET}”每行是一条学籍的一个问题：",
        "  佐证：学籍信息无误，予以保留（在备注中写明依据）；",
        f"  变更：已在学籍系统中更正（在“{workbook.NEW_VALUE_HEADER}”中写更正后的值）；",
        "  删除：该学生不在本校就读，学籍已删除。",
        f"“{workbook.DUPLICATE_SHEET}”每组是可能为同一学生的几条学籍，每条学籍单独答复：",
        "  保留：这条学籍是学生实际就读的一条，保留；",
        "  删除：这条学籍是多余的（学生不在这里就读），删除；",
        f"  变更：这条学籍的信息录错了，已更正（如证件号，写在“{workbook.NEW_VALUE_HEADER}”中）；",
        "  佐证：这几条学籍不是同一学生（如双胞胎），都保留（在备注中写明依据）。",
        "  例：一组两条，甲校记录号 R1、乙校记录号 R2。",
        "    同一学生，在甲校就读：R1 选“保留”，R2 选“删除”；",
        f"    同一学生，R2 的证件号录错：R1 选“保留”，R2 选“变更”并在“{workbook.NEW_VALUE_HEADER}”"
        "写正确的号码；",
        "    不是同一学生：R1、R2 都选“佐证”，备注写“双胞胎，已核对户口簿”。",
        "  以下答复自相矛盾，整份清单将被退回并指明行号：同一组既有“佐证”又有“保留”或“删除”；"
        "同一组两条以上“保留”；一组的每条学籍都“删除”而备注都为空。",
        f"  灰色的外{'校' if school else '区县'}记录只供核对，由其所在"
        f"{'学校' if school else '区县'}答复，请勿填写。",
        f"“{workbook.WARNING_SHEET}”列出需要核实但不一定是错误的情况（如年龄与年级不符），无须答复；"
        "核实有误的请直接在学籍系统中更正。",
        "",
        "■ 排序与使用",
        "六年级、九年级（初三）、高三的学生排在最前，须在毕业办理前处理完；其后按学校、年级、班级。",
        "重复组与组之间底色交替。跨区县的重复组在涉及的每个区县清单中都出现；外区县的记录只列出学校、"
        "区县、姓名和遮蔽的证件号，由所在区县处理。",
        "行数超过一张工作表上限时，续在“错误学籍(2)”等工作表中。",
        "可以排序、筛选、加列、改工作表名；请勿删除或修改隐藏的"
        f"“{workbook.KEY_HEADER}”列和隐藏的“{workbook.MARKER_SHEET}”工作表："
        "交回的清单按问题编号而非行号对应到问题。",
    ]
    if show_status:
        lines += [
            "“状态”列：新增（本次首次发现）；未处理；已答复待修正（已答复变更/删除，但本次导出中问题仍在）；"
            "重新出现（曾解决或曾佐证，但学籍信息已变化或问题再次出现）；"
            "已佐证（错误类问题已佐证，仍须在学籍系统中核对）。",
            "已佐证的重复组在学籍信息不变时不再列出；任何一条相关学籍变化后会重新列出。"
            "只答复了“保留”、其余学籍未答复删除或变更的重复组仍为未处理。",
        ]
    return lines


ABOUT_WIDTHS = (22, 18, 6, 14, 46, 46)


def _write_about_sheet(
    sheet,
    formats: _Formats,
    lines: list[str],
    title: str,
    rule_catalogue: pd.DataFrame,
) -> None:
    for position, width in enumerate(ABOUT_WIDTHS):
        sheet.set_column(position, position, width, formats.wrap)
    sheet.write_string(0, 0, title, formats.title)
    row = write_lines(
        sheet,
        ["", *lines],
        formats.wrap,
        formats.bold_wrap,
        start=1,
        width=sum(ABOUT_WIDTHS),
        last_column=len(ABOUT_WIDTHS) - 1,
    )
    row += 1
    sheet.write_string(row, 0, "■ 问题代码说明", formats.bold)
    row += 1
    columns = ("rule", "rule_name", "severity", "field", "message", "suggestion")
    for position, header in enumerate(
        ("问题代码", "问题名称", "严重程度", "字段", "问题说明", "修改建议")
    ):
        sheet.write_string(row, position, header, formats.header)
    table = _code_table(rule_catalogue)
    lines = np.ones(len(table), dtype=int)
    for column, width in zip(columns, ABOUT_WIDTHS, strict=True):
        lines = np.maximum(lines, line_counts(table[column].to_numpy(dtype=object), width))
    for height, *values in zip(lines.tolist(), *(table[c].tolist() for c in columns), strict=True):
        row += 1
        if height > 1:
            sheet.set_row(row, LINE_HEIGHT * height)
        for position, value in enumerate(values):
            if value:
                sheet.write_string(row, position, value, formats.wrap)


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
    rule_catalogue: pd.DataFrame,
    show_status: bool = False,
    run_id: str = "",
    county_code: str = "",
    school: bool = False,
) -> None:
    """One county's (or, with ``school``, one school's) workbook. ``error_columns`` /
    ``duplicate_columns`` / ``warning_columns``: the list sheets' columns in the contract's order
    (:func:`xueji_quality.workbook.problem_columns` and
    :func:`~xueji_quality.workbook.duplicate_columns` with ``show_status``, and
    :data:`~xueji_quality.workbook.WARNING_COLUMNS`), duplicate rows in group blocks.
    ``list_items``: the list's items (:func:`~xueji_quality.reports.county_totals.problem_items`),
    counted on 汇总; ``counts``: the figures 说明 states."""
    book = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    formats = _Formats(book)
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
    )
    _write_about_sheet(about, formats, lines, f"{county_label} 问题学籍清单", rule_catalogue)
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
    keys = duplicate_columns[workbook.position(duplicate_layout, "problem_key")]
    other = np.array([workbook.OTHER_MEMBER in key for key in keys.tolist()], dtype=bool)
    rows = len(group_ids)
    new_group = np.r_[True, group_ids[1:] != group_ids[:-1]] if rows else np.array([], bool)
    parity = ((np.cumsum(new_group) - 1) % 2).astype(int) if rows else np.array([], int)
    widths = column_widths(duplicate_layout, duplicate_columns)
    lines = row_lines(duplicate_layout, duplicate_columns, widths)
    pieces = duplicate_pieces(group_ids)
    for sheet_name, (start, stop) in zip(
        workbook.sheet_names(workbook.DUPLICATE_SHEET, len(pieces)), pieces, strict=True
    ):
        sheet = book.add_worksheet(sheet_name)
        sheet.set_tab_color(TAB_COLOURS[workbook.DUPLICATE_SHEET])
        _start_list_sheet(
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
        _write_duplicate_rows(
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
    formats: _Formats,
    footer: str,
    run_id: str,
    actions: tuple[str, ...] | None,
    action_help: str = "",
) -> None:
    """错误学籍 (answered with ``actions``) or 提醒 (``actions`` None), continued on more sheets
    when longer than one."""
    widths = column_widths(layout, columns)
    lines = row_lines(layout, columns, widths)
    pieces = problem_pieces(len(columns[0]))
    for sheet_name, (start, stop) in zip(
        workbook.sheet_names(base, len(pieces)), pieces, strict=True
    ):
        sheet = book.add_worksheet(sheet_name)
        sheet.set_tab_color(TAB_COLOURS[base])
        _start_list_sheet(sheet, layout, widths, formats, stop - start, actions, action_help)
        print_setup(sheet, footer, run_id)
        _write_problem_rows(sheet, layout, columns, lines, formats, start, stop)
