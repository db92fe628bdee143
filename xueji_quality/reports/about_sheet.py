"""The 说明 sheet of a county (or school) workbook: the list's figures, how to answer an error
and a duplicate group (with an example), and every problem code with its name, severity, field,
meaning and suggested fix."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd

from xueji_quality import schema, workbook
from xueji_quality.reports.county_sheets import SEVERITY_LABELS, CellFormats
from xueji_quality.reports.county_totals import (
    ERRORS,
    GROUPS,
    ITEM_WORD,
    ITEMS,
    PROBLEM_CLASSES,
    STUDENTS,
    WARNINGS,
)
from xueji_quality.reports.list_overflow import FullList, full_list_lines
from xueji_quality.reports.sheet_layout import LINE_HEIGHT, line_counts, write_lines
from xueji_quality.rule_names import rule_names

CATALOGUE_COLUMNS = ["rule", "severity", "field", "message", "suggestion"]
CODE_COLUMNS = ("rule", "rule_name", "severity", "field", "message", "suggestion")
CODE_HEADERS = ("问题代码", "问题名称", "严重程度", "字段", "问题说明", "修改建议")
ABOUT_WIDTHS = (22, 18, 6, 14, 46, 46)


class CodeTable(NamedTuple):
    """The 问题代码说明 table of 说明, laid out once for every workbook of a run: its rows (one
    tuple of str per code, in :data:`CODE_COLUMNS` order) and the lines each row takes."""

    rows: list[tuple[str, ...]]
    lines: list[int]


def _code_table(rule_catalogue: pd.DataFrame) -> pd.DataFrame:
    catalogue = rule_catalogue.reindex(columns=CATALOGUE_COLUMNS).astype("string")
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


def code_table(rule_catalogue: pd.DataFrame) -> CodeTable:
    """Every problem code with its name, severity, field, meaning and fix, laid out for 说明
    (once per catalogue in a process: each county of a run has the same)."""
    rows = rule_catalogue.reindex(columns=CATALOGUE_COLUMNS).astype("string")
    return _laid_out(tuple(map(tuple, rows.to_numpy(dtype=object, na_value=None).tolist())))


@lru_cache(maxsize=8)
def _laid_out(catalogue_rows: tuple[tuple, ...]) -> CodeTable:
    catalogue = pd.DataFrame(list(catalogue_rows), columns=CATALOGUE_COLUMNS, dtype="string")
    table = _code_table(catalogue)
    lines = np.ones(len(table), dtype=int)
    for column, width in zip(CODE_COLUMNS, ABOUT_WIDTHS, strict=True):
        lines = np.maximum(lines, line_counts(table[column].to_numpy(dtype=object), width))
    rows = list(zip(*(table[c].tolist() for c in CODE_COLUMNS), strict=True))
    return CodeTable(rows, lines.tolist())


def about_lines(
    counts: dict,
    *,
    county_label: str,
    province: str,
    run_date: date,
    run_id: str,
    show_status: bool,
    school: bool,
    full_lists: list[FullList] | tuple = (),
    list_cap: int | None = None,
) -> list[str]:
    """The text of 说明 above the code table: the list's figures, where the whole of a list too
    long for the workbook is (``full_lists``), and how to answer it."""
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
        *full_list_lines(list(full_lists), list_cap),
        *([""] if full_lists else []),
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


def write_about_sheet(
    sheet,
    formats: CellFormats,
    lines: list[str],
    title: str,
    codes: CodeTable,
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
    for position, header in enumerate(CODE_HEADERS):
        sheet.write_string(row, position, header, formats.header)
    for height, values in zip(codes.lines, codes.rows, strict=True):
        row += 1
        if height > 1:
            sheet.set_row(row, LINE_HEIGHT * height)
        for position, value in enumerate(values):
            if value:
                sheet.write_string(row, position, value, formats.wrap)
