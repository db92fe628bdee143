"""Writing one county workbook (问题学籍清单) with xlsxwriter: the 说明, 汇总, list and marker
sheets laid out from the workbook contract (:mod:`xueji_quality.workbook`).

The rows come shaped by :mod:`xueji_quality.reports.county_report`: one object array of str per
list column, in the contract's column order (the similarity score as float64). A sheet holds at
most ``SHEET_MAX_ROWS`` rows (Excel's limit, header included); longer lists continue on
错误学籍(2), 错误学籍(3) … and a duplicate group is never split unless it alone exceeds a sheet.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from xueji_quality import schema, workbook
from xueji_quality.reports.summary import (
    WORKBOOK_OPTIONS,
    class_counts,
    write_count_sheet,
    write_lines,
)
from xueji_quality.workbook import Column

# Rows per worksheet, header included (Excel's own limit). Tests lower it to check continuation.
SHEET_MAX_ROWS = 1_048_576
SEVERITY_LABELS: dict[str, str] = {"E": "错误", "W": "警告"}


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


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.bold = book.add_format({"bold": True})
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.header = book.add_format(
            {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}
        )
        self.text = book.add_format({"num_format": "@"})
        self.wrap = book.add_format({"text_wrap": True, "valign": "top"})
        fills = ("#FFFFFF", "#FFF2CC")
        self.group = [
            [book.add_format({"bg_color": fill, "num_format": "@", "top": top}) for top in (0, 1)]
            for fill in fills
        ]
        self.group_score = [
            [
                book.add_format({"bg_color": fill, "num_format": "0.00", "top": top})
                for top in (0, 1)
            ]
            for fill in fills
        ]


def _start_list_sheet(sheet, columns: tuple[Column, ...], formats: _Formats, rows: int) -> None:
    for position, column in enumerate(columns):
        options = {"hidden": True} if column.hidden else None
        cell_format = formats.text if column.kind == "text" else None
        sheet.set_column(position, position, column.width, cell_format, options)
    for position, column in enumerate(columns):
        sheet.write_string(0, position, column.header, formats.header)
    sheet.freeze_panes(1, 0)
    last_row = max(rows, 1)
    sheet.autofilter(0, 0, last_row, len(columns) - 1)
    action = workbook.position(columns, "action")
    sheet.data_validation(
        1,
        action,
        last_row,
        action,
        {
            "validate": "list",
            "source": list(workbook.ACTIONS),
            "error_title": workbook.ACTION_HEADER,
            "error_message": f"请选择：{'、'.join(workbook.ACTIONS[:-1])}或{workbook.ACTIONS[-1]}",
        },
    )


def _write_problem_rows(sheet, columns: list[np.ndarray], start: int, stop: int) -> None:
    write = sheet.write_string
    for row, values in enumerate(zip(*(c[start:stop] for c in columns), strict=True), start=1):
        for position, value in enumerate(values):
            if value:
                write(row, position, value)


def _write_duplicate_rows(
    sheet,
    layout: tuple[Column, ...],
    columns: list[np.ndarray],
    parity: np.ndarray,
    first: np.ndarray,
    formats: _Formats,
    start: int,
    stop: int,
) -> None:
    write = sheet.write_string
    blank = sheet.write_blank
    numbers = {position for position, column in enumerate(layout) if column.kind == "number"}
    rows = zip(
        parity[start:stop].tolist(),
        first[start:stop].tolist(),
        *(c[start:stop].tolist() for c in columns),
        strict=True,
    )
    for row, (odd, top, *values) in enumerate(rows, start=1):
        cell = formats.group[odd][top]
        for position, value in enumerate(values):
            if position in numbers:
                if value == value:  # NaN stays blank
                    sheet.write_number(row, position, value, formats.group_score[odd][top])
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
                "核实每条学籍：保留学生实际就读的一条，其余删除；确为不同学生的，更正证件号",
                "核实是否同一学生：是则删除多余学籍；不是则选择“佐证”并在备注中说明",
            ],
        },
        dtype="string",
    )
    return pd.concat([catalogue, duplicates], ignore_index=True).fillna("")


def _write_about_sheet(
    sheet,
    formats: _Formats,
    *,
    county_label: str,
    province: str,
    run_date: date,
    counts: dict,
    rule_catalogue: pd.DataFrame,
    run_id: str = "",
    show_status: bool = False,
) -> None:
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 1, 10)
    sheet.set_column(2, 2, 16)
    sheet.set_column(3, 4, 60, formats.wrap)
    sheet.write_string(0, 0, f"{county_label} 问题学籍清单", formats.title)
    lines = [
        f"运行日期：{run_date.isoformat()}    省份代码：{province}    区县：{county_label}",
        f"本区县在籍学生 {counts['records']} 人；错误学籍 {counts['problem_rows']} 条，"
        f"重复学籍 {counts['duplicate_groups']} 组（本区县 {counts['duplicate_rows']} 条），"
        f"涉及学生 {counts['records_with_problems']} 人。",
        "本清单列出学籍数据查重查错发现的问题，请转交各学校逐条核实并在“处理方式”列选择处理结果：",
        "  佐证：学籍信息无误，予以保留（须有佐证材料，如“经核实不是同一学生”，写在备注中）；",
        "  变更：已在学籍系统中更正（在备注中写明更正后的值）；",
        "  删除：该学生不在本校就读，学籍已删除。",
        "排序：六年级、九年级（初三）、高三的学生排在最前，须在毕业办理前处理完；其后按学校、年级、班级。",
        "“错误学籍”每行是一条学籍的一个问题；“重复学籍”每组是可能为同一学生的多条学籍，组与组之间底色交替。",
        "跨区县的重复组在涉及的每个区县清单中都出现；外区县的记录只列出学校、区县、姓名和遮蔽的证件号，由所在区县处理。",
        "行数超过一张工作表上限时，续在“错误学籍(2)”等工作表中。",
        f"运行编号：{run_id}。填好“处理方式”和“备注”后将本文件交回即可：可以排序、筛选、加列、"
        f"改工作表名，但请勿删除或修改隐藏的“{workbook.KEY_HEADER}”列"
        f"和隐藏的“{workbook.MARKER_SHEET}”工作表，"
        "交回的清单按问题编号而非行号对应到问题。",
    ]
    if show_status:
        lines += [
            "“状态”列：新增（本次首次发现）；未处理；已答复待修正（已答复变更/删除，但本次导出中问题仍在）；"
            "重新出现（曾解决或曾佐证，但学籍信息已变化或问题再次出现）；"
            "已佐证（错误类问题已佐证，仍须在学籍系统中核对）。",
            "已佐证的重复组和警告在学籍信息不变时不再列出；任何一条相关学籍变化后会重新列出。",
        ]
    row = write_lines(sheet, ["", *lines], formats.bold, start=1)
    row += 1
    sheet.write_string(row, 0, "■ 问题代码说明", formats.bold)
    row += 1
    for position, header in enumerate(("问题代码", "严重程度", "字段", "问题说明", "修改建议")):
        sheet.write_string(row, position, header, formats.header)
    table = _code_table(rule_catalogue)
    for values in zip(
        *(table[c].tolist() for c in ("rule", "severity", "field", "message", "suggestion")),
        strict=True,
    ):
        row += 1
        for position, value in enumerate(values):
            if value:
                sheet.write_string(row, position, value, formats.wrap if position >= 3 else None)


def write_county_workbook(
    path: Path,
    problem_columns: list[np.ndarray],
    duplicate_columns: list[np.ndarray],
    county_items: pd.DataFrame,
    counts: dict,
    *,
    county_label: str,
    province: str,
    run_date: date,
    rule_catalogue: pd.DataFrame,
    show_status: bool = False,
    run_id: str = "",
    county_code: str = "",
) -> None:
    """One county's workbook. ``problem_columns`` / ``duplicate_columns``: the list sheets'
    columns in the contract's order (:func:`xueji_quality.workbook.problem_columns` and
    :func:`~xueji_quality.workbook.duplicate_columns` with ``show_status``), duplicate rows in
    group blocks."""
    book = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    formats = _Formats(book)
    about = book.add_worksheet(workbook.ABOUT_SHEET)
    _write_about_sheet(
        about,
        formats,
        county_label=county_label,
        province=province,
        run_date=run_date,
        counts=counts,
        rule_catalogue=rule_catalogue,
        run_id=run_id,
        show_status=show_status,
    )

    by_school = class_counts(county_items, ["school_code", "school_name"])
    by_school = by_school.sort_values(
        ["错误合计", "合计", "school_code"], ascending=[False, False, True], kind="stable"
    ).rename(columns={"school_code": "学校标识码", "school_name": "学校名称"})
    write_count_sheet(book, workbook.SUMMARY_SHEET, by_school, ["学校标识码", "学校名称"], "合计")

    problem_layout = workbook.problem_columns(show_status)
    duplicate_layout = workbook.duplicate_columns(show_status)
    rows = len(problem_columns[0])
    pieces = problem_pieces(rows)
    for sheet_name, (start, stop) in zip(
        workbook.sheet_names(workbook.PROBLEM_SHEET, len(pieces)), pieces, strict=True
    ):
        sheet = book.add_worksheet(sheet_name)
        _start_list_sheet(sheet, problem_layout, formats, stop - start)
        _write_problem_rows(sheet, problem_columns, start, stop)

    group_ids = duplicate_columns[workbook.position(duplicate_layout, "group_id")]
    rows = len(group_ids)
    new_group = np.r_[True, group_ids[1:] != group_ids[:-1]] if rows else np.array([], bool)
    parity = ((np.cumsum(new_group) - 1) % 2).astype(int) if rows else np.array([], int)
    pieces = duplicate_pieces(group_ids)
    for sheet_name, (start, stop) in zip(
        workbook.sheet_names(workbook.DUPLICATE_SHEET, len(pieces)), pieces, strict=True
    ):
        sheet = book.add_worksheet(sheet_name)
        _start_list_sheet(sheet, duplicate_layout, formats, stop - start)
        _write_duplicate_rows(
            sheet,
            duplicate_layout,
            duplicate_columns,
            parity,
            new_group.astype(int),
            formats,
            start,
            stop,
        )
    marker = book.add_worksheet(workbook.MARKER_SHEET)
    values = {"run_id": run_id, "county_code": county_code, "format": workbook.FORMAT_NAME}
    for row, (field, label) in enumerate(workbook.MARKER_FIELDS):
        marker.write_string(row, 0, label)
        marker.write_string(row, 1, values[field])
    about.activate()
    marker.hide()
    book.close()
