"""The county problem list (问题学籍清单): one workbook and two Parquet files per county.

A county education bureau passes each item to its school and records the outcome: 佐证 (keep,
with evidence), 变更 (corrected) or 删除 (student not at the school). The workbook has four kinds
of sheet:

- 说明: what the list is, the run date, the county, how to handle an item, and every problem code
  with its severity, meaning and suggested fix;
- 汇总: items per school and problem class (graduating grades apart), with a totals row;
- 错误学籍: one row per problem of a record of this county;
- 重复学籍: one block per duplicate group touching this county, each block a different fill.
  A group that spans counties appears in every county it touches; the other county's records
  show only their school, county, name and masked ID number.

Rows come graduating grades first (六年级, 九年级, 高三), then by school, grade and class. The
处理方式 column has a drop-down (佐证/变更/删除). Every identifier is written as a text cell and no
value is ever turned into a formula, number or link. A sheet holds at most ``SHEET_MAX_ROWS`` rows
(Excel's limit, header included); longer lists continue on 错误学籍(2), 错误学籍(3) … and nothing is
truncated. With ``mask_ids`` the workbook shows ID numbers as 440103********123X (first six,
eight stars, last four) and 学籍号 likewise; the Parquet files always keep the full values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from xueji_quality import regions, schema
from xueji_quality.answers import identity
from xueji_quality.reports import tables
from xueji_quality.reports.summary import (
    DUP_CLASS_LABELS,
    WORKBOOK_OPTIONS,
    class_counts,
    problem_items,
    roster_context,
    write_count_sheet,
    write_lines,
)

# Rows per worksheet, header included (Excel's own limit). Tests lower it to check continuation.
SHEET_MAX_ROWS = 1_048_576
# Excel refuses longer cell text.
CELL_MAX_CHARS = 32_767
ACTIONS: tuple[str, ...] = ("佐证", "变更", "删除")
SEVERITY_LABELS: dict[str, str] = {"E": "错误", "W": "警告"}
MASK = "*" * 8
UNKNOWN_COUNTY = "未知区县"
COUNTERPART_NOTE = "外区县记录，仅供核对，由所在区县处理"

PROBLEM_SHEET = "错误学籍"
DUPLICATE_SHEET = "重复学籍"

# (header, width, identifier-like text column)
PROBLEM_LAYOUT: tuple[tuple[str, int, bool], ...] = (
    ("学校标识码", 12, True),
    ("学校名称", 24, False),
    ("年级", 8, False),
    ("班级", 8, False),
    ("姓名", 10, False),
    ("身份证件号", 21, True),
    ("学籍号", 22, True),
    ("记录号", 14, True),
    ("问题代码", 18, True),
    ("严重程度", 8, False),
    ("字段", 12, False),
    ("原值", 21, True),
    ("问题说明", 40, False),
    ("修改建议", 40, False),
    ("处理方式", 10, False),
    ("备注", 30, False),
    ("问题编号", 20, True),
)
DUPLICATE_LAYOUT: tuple[tuple[str, int, bool], ...] = (
    ("组号", 15, True),
    ("类型", 12, False),
    ("所在区县", 18, False),
    ("学校标识码", 12, True),
    ("学校名称", 24, False),
    ("年级", 8, False),
    ("班级", 8, False),
    ("姓名", 10, False),
    ("身份证件号", 21, True),
    ("学籍号", 22, True),
    ("记录号", 14, True),
    ("相似度", 8, False),
    ("原因", 50, False),
    ("处理方式", 10, False),
    ("备注", 30, False),
    ("问题编号", 20, True),
)
SCORE_COLUMN = 11
# Hidden: the key that matches an answered row to its problem (see xueji_quality.answers).
KEY_HEADER = "问题编号"
# Shown before 处理方式 when the run knows each item's status from the answer ledger.
STATUS_COLUMN: tuple[str, int, bool] = ("状态", 12, False)
# A hidden sheet naming the run and county, so a returned workbook can be matched to them.
MARKER_SHEET = "清单标识"
FORMAT_NAME = "xueji-quality 问题学籍清单 1"


def with_status(layout: tuple[tuple[str, int, bool], ...]) -> tuple[tuple[str, int, bool], ...]:
    """The layout with 状态 inserted before 处理方式."""
    at = [h for h, _, _ in layout].index("处理方式")
    return (*layout[:at], STATUS_COLUMN, *layout[at:])


_UNSAFE_NAME = re.compile(r"[\\/:*?\"<>|\x00-\x1f\x7f]|\.\.")
_COUNTY_CODE = re.compile(r"\d{6}")


def county_file_stem(county_code: str, county_name: str) -> str:
    """``<code>_<name>``: the code must be 6 digits; the name loses path separators, control
    characters and '..' (an empty name becomes 未知区县)."""
    if not isinstance(county_code, str) or not _COUNTY_CODE.fullmatch(county_code):
        raise ValueError(f"区县代码必须是 6 位数字: {county_code!r}")
    name = _UNSAFE_NAME.sub("", county_name or "").strip(" .")[:40]
    return f"{county_code}_{name or UNKNOWN_COUNTY}"


def mask_id_numbers(numbers: pd.Series, head: int = 6) -> pd.Series:
    """First ``head`` characters, eight stars, last four; values of ten characters or fewer are
    all stars (too short to keep a head and a tail without showing most of them)."""
    text = numbers.astype("string")
    long_enough = text.str.len() > head + 4
    masked = text.str.slice(0, head) + MASK + text.str.slice(-4)
    masked = masked.where(long_enough, MASK).where(text.notna(), pd.NA)
    # An empty value stays empty: stars would suggest a number that is not there.
    return masked.where(text.fillna("").str.strip() != "", text).astype("string")


def mask_student_numbers(numbers: pd.Series) -> pd.Series:
    """学籍号 = a letter and an ID-like number: keep the letter and six, then as for IDs."""
    return mask_id_numbers(numbers, head=7)


def _text(values: pd.Series) -> np.ndarray:
    """Object array of str for writing: <NA> -> '', cut to Excel's cell limit."""
    text = values.astype("string").fillna("")
    too_long = text.str.len() > CELL_MAX_CHARS
    if too_long.any():
        text = text.where(~too_long, text.str.slice(0, CELL_MAX_CHARS))
    return text.to_numpy(dtype=object)


def _sort_key_frame(frame: pd.DataFrame) -> list[str]:
    frame["_not_graduating"] = ~frame["graduating"].fillna(False).astype(bool)
    return ["_not_graduating", "school_code", "grade_level", "class_name", "record_id"]


def prepare_problems(problems: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    """Problems with their record's school, grade, class, name and IDs, in list order."""
    extra = [c for c in ("problem_key", "status") if c in problems.columns]
    frame = problems[[*schema.PROBLEM_COLUMNS, *extra]].reset_index(drop=True)
    frame = frame.merge(context, on="record_id", how="left", sort=False)
    keys = _sort_key_frame(frame)
    frame = frame.sort_values(
        [*keys, "rule", "field"], na_position="last", kind="stable"
    ).reset_index(drop=True)
    return frame


def prepare_duplicates(duplicates: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    """Duplicate rows with their record's grade, class, name and IDs (school from the row)."""
    keep = [c for c in ("problem_key", "status") if c in duplicates.columns]
    frame = duplicates[[*schema.DUPLICATE_COLUMNS, *keep]].reset_index(drop=True)
    extra = context.drop(columns=["school_code", "school_name"])
    frame = frame.merge(extra, on="record_id", how="left", sort=False)
    frame["graduating"] = frame["graduating"].fillna(False).astype(bool)
    return frame


def _status_and_key(frame: pd.DataFrame, show_status: bool) -> tuple[list, list]:
    key = [_text(frame["problem_key"] if "problem_key" in frame.columns else frame["record_id"])]
    if not show_status:
        return [], key
    status = frame["status"] if "status" in frame.columns else frame["record_id"].where(False)
    return [_text(status)], key


def problem_sheet_columns(
    frame: pd.DataFrame, mask_ids: bool, show_status: bool = False
) -> list[np.ndarray]:
    """The 错误学籍 columns as object arrays of str, in PROBLEM_LAYOUT order (状态 before
    处理方式 with ``show_status``)."""
    status, key = _status_and_key(frame, show_status)
    id_number = frame["id_number"]
    student_no = frame["student_no"]
    value = frame["value"].astype("string")
    if mask_ids:
        id_number = mask_id_numbers(id_number)
        student_no = mask_student_numbers(student_no)
        value = value.mask(frame["field"] == "id_number", mask_id_numbers(value))
        value = value.mask(frame["field"] == "student_no", mask_student_numbers(value))
    field_label = frame["field"].astype("string").map(schema.FIELDS).fillna(frame["field"])
    blank = np.full(len(frame), "", dtype=object)
    return [
        _text(frame["school_code"]),
        _text(frame["school_name"]),
        _text(frame["grade"]),
        _text(frame["class_name"]),
        _text(frame["name"]),
        _text(id_number),
        _text(student_no),
        _text(frame["record_id"]),
        _text(frame["rule"]),
        _text(frame["severity"].map(SEVERITY_LABELS).fillna(frame["severity"])),
        _text(field_label),
        _text(value),
        _text(frame["message"]),
        _text(frame["suggestion"]),
        *status,
        blank,
        blank,
        *key,
    ]


def county_duplicate_block(
    duplicates: pd.DataFrame, county_code: str, county_labels: dict[str, str]
) -> pd.DataFrame:
    """Rows of every group touching the county, ordered: groups with graduating students of the
    county first, then by the county's school; inside a group the county's own records first."""
    own = duplicates["county_code"] == county_code
    groups = duplicates.loc[own.fillna(False), "group_id"].unique()
    block = duplicates[duplicates["group_id"].isin(groups)].copy()
    block["_own"] = (block["county_code"] == county_code).fillna(False).astype(bool)
    # Group keys by sort and first-of-group instead of a per-group Python aggregate.
    own_rows = block[block["_own"]]
    graduating_groups = own_rows.loc[own_rows["graduating"], "group_id"].unique()
    block["_group_not_graduating"] = ~block["group_id"].isin(graduating_groups)
    first_school = (
        own_rows.sort_values("school_code", na_position="last", kind="stable")
        .drop_duplicates("group_id")
        .set_index("group_id")["school_code"]
    )
    block["_group_school"] = block["group_id"].map(first_school)
    block["_not_own"] = ~block["_own"]
    block["_not_graduating"] = ~block["graduating"]
    block = block.sort_values(
        [
            "_group_not_graduating",
            "_group_school",
            "group_id",
            "_not_own",
            "_not_graduating",
            "school_code",
            "grade_level",
            "class_name",
            "record_id",
        ],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    block["_county_label"] = block["county_code"].map(county_labels).fillna(block["county_code"])
    return block


def duplicate_sheet_columns(
    block: pd.DataFrame, mask_ids: bool, show_status: bool = False
) -> list[np.ndarray]:
    """The 重复学籍 columns in DUPLICATE_LAYOUT order (状态 before 处理方式 with
    ``show_status``); the score column stays float64."""
    status, key = _status_and_key(block, show_status)
    own = block["_own"].to_numpy(dtype=bool)
    other = ~own

    def own_only(values: pd.Series) -> np.ndarray:
        out = _text(values)
        out[other] = ""
        return out

    # The other county's records always show a masked number; the county's own as asked.
    id_number = block["id_number"].astype("string")
    masked = mask_id_numbers(id_number)
    id_shown = masked if mask_ids else id_number.where(block["_own"], masked)
    student_no = block["student_no"]
    if mask_ids:
        student_no = mask_student_numbers(student_no)
    notes = np.full(len(block), "", dtype=object)
    notes[other] = COUNTERPART_NOTE
    return [
        _text(block["group_id"]),
        _text(block["dup_class"].map(DUP_CLASS_LABELS).fillna(block["dup_class"])),
        _text(block["_county_label"]),
        _text(block["school_code"]),
        _text(block["school_name"]),
        own_only(block["grade"]),
        own_only(block["class_name"]),
        _text(block["name"]),
        _text(id_shown),
        own_only(student_no),
        own_only(block["record_id"]),
        block["score"].astype("float64").to_numpy(),
        _text(block["reason"]),
        *status,
        np.full(len(block), "", dtype=object),
        notes,
        *key,
    ]


def sheet_names(base: str, pieces: int) -> list[str]:
    return [base if i == 0 else f"{base}({i + 1})" for i in range(max(1, pieces))]


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
    def __init__(self, workbook: xlsxwriter.Workbook) -> None:
        self.bold = workbook.add_format({"bold": True})
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.header = workbook.add_format(
            {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}
        )
        self.text = workbook.add_format({"num_format": "@"})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        fills = ("#FFFFFF", "#FFF2CC")
        self.group = [
            [
                workbook.add_format({"bg_color": fill, "num_format": "@", "top": top})
                for top in (0, 1)
            ]
            for fill in fills
        ]
        self.group_score = [
            [
                workbook.add_format({"bg_color": fill, "num_format": "0.00", "top": top})
                for top in (0, 1)
            ]
            for fill in fills
        ]


def _start_list_sheet(sheet, layout, formats: _Formats, rows: int) -> None:
    for position, (header, width, is_text) in enumerate(layout):
        options = {"hidden": True} if header == KEY_HEADER else None
        sheet.set_column(position, position, width, formats.text if is_text else None, options)
    for position, (header, _, _) in enumerate(layout):
        sheet.write_string(0, position, header, formats.header)
    sheet.freeze_panes(1, 0)
    last_row = max(rows, 1)
    sheet.autofilter(0, 0, last_row, len(layout) - 1)
    action = [h for h, _, _ in layout].index("处理方式")
    sheet.data_validation(
        1,
        action,
        last_row,
        action,
        {
            "validate": "list",
            "source": list(ACTIONS),
            "error_title": "处理方式",
            "error_message": "请选择：佐证、变更或删除",
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
    columns: list[np.ndarray],
    parity: np.ndarray,
    first: np.ndarray,
    formats: _Formats,
    start: int,
    stop: int,
) -> None:
    write = sheet.write_string
    blank = sheet.write_blank
    rows = zip(
        parity[start:stop].tolist(),
        first[start:stop].tolist(),
        *(c[start:stop].tolist() for c in columns),
        strict=True,
    )
    for row, (odd, top, *values) in enumerate(rows, start=1):
        cell = formats.group[odd][top]
        for position, value in enumerate(values):
            if position == SCORE_COLUMN:
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
        "改工作表名，但请勿删除或修改隐藏的“问题编号”列和隐藏的“清单标识”工作表，"
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


def run_id_of(run_dir: Path) -> str:
    """The run id a run folder stands for: ``<run_id>`` or a staging ``.tmp-<run_id>-<pid>``."""
    name = Path(run_dir).name
    if name.startswith(".tmp-"):
        stem, _, pid = name[len(".tmp-") :].rpartition("-")
        if stem and pid.isdigit():
            return stem
    return name


def _with_keys(
    problems: pd.DataFrame, duplicates: pd.DataFrame, roster: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables with a ``problem_key`` column (kept if given, else computed)."""
    if "problem_key" not in problems.columns:
        problems = problems.assign(
            problem_key=identity.problem_keys(problems, roster)["problem_key"]
        )
    if "problem_key" not in duplicates.columns:
        keys = identity.group_keys(duplicates, roster)["problem_key"]
        duplicates = duplicates.assign(problem_key=keys)
    return problems, duplicates


def _county_targets(
    roster: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    counties: list[str] | None,
) -> list[str]:
    if counties is not None:
        return list(dict.fromkeys(counties))
    codes: set[str] = set()
    for frame in (roster, problems, duplicates):
        codes.update(frame["county_code"].dropna().astype(str).unique().tolist())
    return sorted(codes)


def _positions(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    if frame.empty:
        return {}
    return {
        str(k): v for k, v in frame.groupby("county_code", sort=False, dropna=True).indices.items()
    }


def split_by_county(
    roster: pd.DataFrame, problems: pd.DataFrame, duplicates: pd.DataFrame, counties: list[str]
) -> list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """What each county's list needs, cut once for all counties: (roster, problems, duplicates).

    A county gets all its own roster rows (their count is the county's record total), its problem
    rows, every row of the duplicate groups that touch it, and the roster rows of those groups'
    other-county records. Cutting once keeps the per-county work proportional to the county, not
    to the province, and keeps what a scaled-out worker receives small.
    """
    roster = roster.reset_index(drop=True)
    problems = problems.reset_index(drop=True)
    duplicates = duplicates.reset_index(drop=True)
    # Roster sorted by county once: each county's own rows are then a contiguous slice, which
    # costs nothing, where a row selection per county would copy every column each time.
    codes, uniques = pd.factorize(roster["county_code"], use_na_sentinel=True)
    order = np.argsort(codes, kind="stable")
    by_county = roster.take(order)
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    own_rows = {code: (bounds[i], bounds[i + 1]) for i, code in enumerate(uniques)}
    own_problems = problems.groupby("county_code", observed=True, sort=False).indices
    touching = duplicates[["group_id", "county_code"]].dropna().drop_duplicates()
    by_group = (
        duplicates[["group_id"]]
        .assign(row=np.arange(len(duplicates)))
        .merge(touching, on="group_id")
    )
    group_rows = by_group.groupby("county_code", observed=True, sort=False)["row"]
    group_rows = {code: rows.to_numpy() for code, rows in group_rows}
    # Every record that is some group's member is taken out once: a row selection from the
    # province's chunked columns costs the same for ten rows as for ten thousand.
    members = pd.Index(duplicates["record_id"].dropna().unique())
    member_rows = pd.Series(np.arange(len(roster)), index=roster["record_id"].to_numpy())
    member_rows = member_rows.reindex(members).dropna().astype(np.int64)
    member_roster = roster.iloc[member_rows.to_numpy()].reset_index(drop=True)
    member_at = pd.Series(np.arange(len(member_rows)), index=member_rows.index)
    empty = np.array([], dtype=np.int64)
    slices = []
    for county in counties:
        county_duplicates = duplicates.iloc[np.sort(group_rows.get(county, empty))]
        others = county_duplicates.loc[county_duplicates["county_code"] != county, "record_id"]
        other_rows = member_at.reindex(others.unique()).dropna().to_numpy(dtype=np.int64)
        lo, hi = own_rows.get(county, (0, 0))
        county_roster = by_county.iloc[lo:hi]
        if len(other_rows):
            county_roster = pd.concat([county_roster, member_roster.iloc[np.sort(other_rows)]])
        slices.append(
            (county_roster, problems.iloc[own_problems.get(county, empty)], county_duplicates)
        )
    return slices


def write_county_reports(
    run_dir: Path,
    roster: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    *,
    province: str,
    run_date: date,
    rule_catalogue: pd.DataFrame,
    mask_ids: bool = False,
    counties: list[str] | None = None,
    statuses: pd.DataFrame | None = None,
    run_id: str | None = None,
    records: Mapping[str, int] | None = None,
) -> list[dict]:
    """Write counties/<code>/… for every county (or the given ones); one dict per county.

    ``records`` (records per county code) gives the counties' sizes when ``roster`` holds only
    the records the problems and groups name.

    Every list row carries its hidden problem key (问题编号): the ``problem_key`` column of
    ``problems`` / ``duplicates`` when present (as the answer ledger gives them), else computed
    here from the tables given. ``statuses`` (problem_key → status, from the answer ledger) adds
    the 状态 column; None leaves it out. ``run_id`` (default: taken from ``run_dir``'s name) is
    written with the county code into the hidden sheet 清单标识.

    Each dict: county_code, county_name, files ([{path, sha256, rows}], paths relative to
    ``run_dir``), problem_rows, duplicate_groups, duplicate_rows (the county's own records in
    groups), counterpart_rows (other counties' records shown), records (roster rows of the
    county), records_with_problems, records_clean, graduating_items.
    """
    run_dir = Path(run_dir)
    run_id = run_id or run_id_of(run_dir)
    problems, duplicates = _with_keys(problems, duplicates, roster)
    show_status = statuses is not None
    if show_status:
        status_of = statuses.drop_duplicates("problem_key").set_index("problem_key")["status"]
        problems = problems.assign(status=problems["problem_key"].map(status_of))
        duplicates = duplicates.assign(status=duplicates["problem_key"].map(status_of))
    targets = _county_targets(roster, problems, duplicates, counties)
    names = regions.county_names(pd.Series(targets, dtype="string")).tolist()
    # Refuses a bad code before anything is written.
    stems = {code: county_file_stem(code, name) for code, name in zip(targets, names, strict=True)}
    county_labels = {
        code: f"{name or UNKNOWN_COUNTY}（{code}）"
        for code, name in zip(targets, names, strict=True)
    }
    if counties is not None:
        # One call per county (the flow maps over counties): keep only what these counties need
        # before the heavier preparation below.
        problems = problems[problems["county_code"].isin(targets).fillna(False)]
        touched = duplicates.loc[duplicates["county_code"].isin(targets).fillna(False), "group_id"]
        duplicates = duplicates[duplicates["group_id"].isin(touched.unique())]
    needed = pd.concat([problems["record_id"], duplicates["record_id"]]).dropna().unique()
    roster_sizes = (
        roster["county_code"].value_counts(dropna=True)
        if records is None
        else pd.Series(dict(records), dtype="int64")
    )
    roster = roster[roster["record_id"].isin(needed).fillna(False)]
    all_codes = duplicates["county_code"].dropna().astype(str).unique()
    other_names = regions.county_names(pd.Series(all_codes, dtype="string")).tolist()
    labels = {
        c: f"{n or UNKNOWN_COUNTY}（{c}）" for c, n in zip(all_codes, other_names, strict=True)
    }
    labels.update(county_labels)

    context = roster_context(roster)
    items = problem_items(context, problems, duplicates)
    item_positions = _positions(items)
    sorted_problems = prepare_problems(problems, context)
    problem_positions = _positions(sorted_problems)
    problem_columns = problem_sheet_columns(sorted_problems, mask_ids, show_status)
    dup_frame = prepare_duplicates(duplicates, context)

    results = []
    for code, name in zip(targets, names, strict=True):
        folder = tables.make_dirs(run_dir / "counties" / code)
        empty = np.array([], dtype=np.int64)
        rows_here = problem_positions.get(code, empty)
        county_problems = sorted_problems.iloc[rows_here]
        block = county_duplicate_block(dup_frame, code, labels)
        county_items = items.iloc[item_positions.get(code, empty)]
        counts = {
            "records": int(roster_sizes.get(code, 0)),
            "problem_rows": len(county_problems),
            "duplicate_groups": int(block["group_id"].nunique()),
            "duplicate_rows": int(block["_own"].sum()),
            "counterpart_rows": int((~block["_own"]).sum()),
            "records_with_problems": int(county_items["record_id"].nunique()),
        }
        workbook_path = folder / f"{stems[code]}_问题学籍清单.xlsx"
        write_county_workbook(
            workbook_path,
            [c[rows_here] for c in problem_columns],
            block,
            county_items,
            counts,
            county_label=county_labels[code],
            province=province,
            run_date=run_date,
            rule_catalogue=rule_catalogue,
            mask_ids=mask_ids,
            show_status=show_status,
            run_id=run_id,
            county_code=code,
        )
        files = [
            tables.file_entry(run_dir, workbook_path, counts["problem_rows"] + len(block)),
            tables.write_problems(run_dir, f"counties/{code}/problems.parquet", county_problems),
            tables.write_duplicates(run_dir, f"counties/{code}/duplicates.parquet", block),
        ]
        graduating = int(county_items["graduating"].sum())
        results.append(
            {
                "county_code": code,
                "county_name": name,
                "files": files,
                **counts,
                "records_clean": counts["records"] - counts["records_with_problems"],
                "items": len(county_items),
                "graduating_items": graduating,
            }
        )
    return results


def write_county_workbook(
    path: Path,
    problem_columns: list[np.ndarray],
    block: pd.DataFrame,
    county_items: pd.DataFrame,
    counts: dict,
    *,
    county_label: str,
    province: str,
    run_date: date,
    rule_catalogue: pd.DataFrame,
    mask_ids: bool,
    show_status: bool = False,
    run_id: str = "",
    county_code: str = "",
) -> None:
    workbook = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    formats = _Formats(workbook)
    about = workbook.add_worksheet("说明")
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
    write_count_sheet(workbook, "汇总", by_school, ["学校标识码", "学校名称"], "合计")

    problem_layout = with_status(PROBLEM_LAYOUT) if show_status else PROBLEM_LAYOUT
    duplicate_layout = with_status(DUPLICATE_LAYOUT) if show_status else DUPLICATE_LAYOUT
    rows = len(problem_columns[0])
    pieces = problem_pieces(rows)
    for sheet_name, (start, stop) in zip(
        sheet_names(PROBLEM_SHEET, len(pieces)), pieces, strict=True
    ):
        sheet = workbook.add_worksheet(sheet_name)
        _start_list_sheet(sheet, problem_layout, formats, stop - start)
        _write_problem_rows(sheet, problem_columns, start, stop)

    group_ids = block["group_id"].astype("string").fillna("").to_numpy(dtype=object)
    new_group = np.r_[True, group_ids[1:] != group_ids[:-1]] if len(block) else np.array([], bool)
    parity = ((np.cumsum(new_group) - 1) % 2).astype(int) if len(block) else np.array([], int)
    duplicate_columns = duplicate_sheet_columns(block, mask_ids, show_status)
    pieces = duplicate_pieces(group_ids)
    for sheet_name, (start, stop) in zip(
        sheet_names(DUPLICATE_SHEET, len(pieces)), pieces, strict=True
    ):
        sheet = workbook.add_worksheet(sheet_name)
        _start_list_sheet(sheet, duplicate_layout, formats, stop - start)
        _write_duplicate_rows(
            sheet, duplicate_columns, parity, new_group.astype(int), formats, start, stop
        )
    marker = workbook.add_worksheet(MARKER_SHEET)
    for row, (label, value) in enumerate(
        (("运行编号", run_id), ("区县代码", county_code), ("清单格式", FORMAT_NAME))
    ):
        marker.write_string(row, 0, label)
        marker.write_string(row, 1, value)
    about.activate()
    marker.hide()
    workbook.close()


def iter_county_workbooks(run_dir: Path) -> Iterator[Path]:
    """Every county workbook of a run folder."""
    yield from sorted(Path(run_dir).glob("counties/*/*_问题学籍清单.xlsx"))
