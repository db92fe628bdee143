"""The county problem list's contract (问题学籍清单): what a county workbook holds, as data.

The report writer (:mod:`xueji_quality.reports.county_report`) lays a workbook out from this
module and the answer importer (:mod:`xueji_quality.answers.importer`) reads a returned one by
it, so the two cannot drift apart. A workbook has these sheets, in this order:

- 说明 (:data:`ABOUT_SHEET`): what the list is and how to answer it;
- 汇总 (:data:`SUMMARY_SHEET`): items per school and problem class (the province summary's
  count columns);
- 错误学籍 (:data:`PROBLEM_SHEET`, columns :func:`problem_columns`): one row per problem;
- 重复学籍 (:data:`DUPLICATE_SHEET`, columns :func:`duplicate_columns`): one block per group;
- 清单标识 (:data:`MARKER_SHEET`, hidden): label / value rows :data:`MARKER_FIELDS` naming the
  run and the county, so a returned workbook can be matched to them.

A list longer than a sheet continues on 错误学籍(2), 错误学籍(3) … (:func:`sheet_names`). The
clerk fills in 处理方式 (one of :data:`ACTIONS`) and 备注; the hidden 问题编号 (:data:`KEY_HEADER`)
matches an answered row to its problem. Clerks sort rows, insert and move columns and rename
sheets, so a reader finds a list sheet by its headers and every column by its header text, never
by its position (:func:`find_columns`).

>>> headers(problem_columns())[-3:]
('处理方式', '备注', '问题编号')
>>> headers(duplicate_columns(show_status=True))[12:15]
('原因', '状态', '处理方式')
>>> find_columns(["学校反馈", "问题编号", "备注", "处理方式"], ANSWER_FIELDS)
{'problem_key': 1, 'action': 3, 'note': 2}
>>> sheet_names(PROBLEM_SHEET, 3)
['错误学籍', '错误学籍(2)', '错误学籍(3)']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple


class Column(NamedTuple):
    """One column of a list sheet.

    ``kind``: ``text`` for identifier-like values, written as text in a text-formatted column
    so Excel never turns them into numbers; ``plain`` for words; ``number`` for a figure written
    as a number (the similarity score, two decimals).
    """

    header: str
    field: str
    width: int
    kind: str = "plain"
    filled_by_clerk: bool = False
    hidden: bool = False


ABOUT_SHEET = "说明"
SUMMARY_SHEET = "汇总"
PROBLEM_SHEET = "错误学籍"
DUPLICATE_SHEET = "重复学籍"
MARKER_SHEET = "清单标识"

ACTIONS: tuple[str, ...] = ("佐证", "变更", "删除")

KEY_HEADER = "问题编号"
ACTION_HEADER = "处理方式"
NOTE_HEADER = "备注"
STATUS_HEADER = "状态"

_ACTION = Column(ACTION_HEADER, "action", 10, filled_by_clerk=True)
_NOTE = Column(NOTE_HEADER, "note", 30, filled_by_clerk=True)
_KEY = Column(KEY_HEADER, "problem_key", 20, "text", hidden=True)
# Shown before 处理方式 when the run knows each item's status from the answer ledger.
STATUS_COLUMN = Column(STATUS_HEADER, "status", 12)

PROBLEM_COLUMNS: tuple[Column, ...] = (
    Column("学校标识码", "school_code", 12, "text"),
    Column("学校名称", "school_name", 24),
    Column("年级", "grade", 8),
    Column("班级", "class_name", 8),
    Column("姓名", "name", 10),
    Column("身份证件号", "id_number", 21, "text"),
    Column("学籍号", "student_no", 22, "text"),
    Column("记录号", "record_id", 14, "text"),
    Column("问题代码", "rule", 18, "text"),
    Column("严重程度", "severity", 8),
    Column("字段", "field", 12),
    Column("原值", "value", 21, "text"),
    Column("问题说明", "message", 40),
    Column("修改建议", "suggestion", 40),
    _ACTION,
    _NOTE,
    _KEY,
)
DUPLICATE_COLUMNS: tuple[Column, ...] = (
    Column("组号", "group_id", 15, "text"),
    Column("类型", "dup_class", 12),
    Column("所在区县", "county", 18),
    Column("学校标识码", "school_code", 12, "text"),
    Column("学校名称", "school_name", 24),
    Column("年级", "grade", 8),
    Column("班级", "class_name", 8),
    Column("姓名", "name", 10),
    Column("身份证件号", "id_number", 21, "text"),
    Column("学籍号", "student_no", 22, "text"),
    Column("记录号", "record_id", 14, "text"),
    Column("相似度", "score", 8, "number"),
    Column("原因", "reason", 50),
    _ACTION,
    _NOTE,
    _KEY,
)

# What the importer reads from a list sheet: the key and what the clerk fills in. A sheet is a
# list sheet when its header holds the key and the action.
ANSWER_FIELDS: tuple[str, ...] = (
    _KEY.field,
    *(column.field for column in PROBLEM_COLUMNS if column.filled_by_clerk),
)
REQUIRED_ANSWER_FIELDS: tuple[str, ...] = (_KEY.field, _ACTION.field)

# The marker sheet's rows: (field, label in column A); the value stands in column B.
MARKER_FIELDS: tuple[tuple[str, str], ...] = (
    ("run_id", "运行编号"),
    ("county_code", "区县代码"),
    ("format", "清单格式"),
)
MARKER_LABELS: dict[str, str] = dict(MARKER_FIELDS)
FORMAT_NAME = "xueji-quality 问题学籍清单 1"


def with_status(columns: tuple[Column, ...]) -> tuple[Column, ...]:
    """The columns with 状态 inserted before 处理方式."""
    at = position(columns, "action")
    return (*columns[:at], STATUS_COLUMN, *columns[at:])


def problem_columns(show_status: bool = False) -> tuple[Column, ...]:
    """The 错误学籍 columns (状态 before 处理方式 with ``show_status``)."""
    return with_status(PROBLEM_COLUMNS) if show_status else PROBLEM_COLUMNS


def duplicate_columns(show_status: bool = False) -> tuple[Column, ...]:
    """The 重复学籍 columns (状态 before 处理方式 with ``show_status``)."""
    return with_status(DUPLICATE_COLUMNS) if show_status else DUPLICATE_COLUMNS


def headers(columns: Iterable[Column]) -> tuple[str, ...]:
    return tuple(column.header for column in columns)


def position(columns: Sequence[Column], field: str) -> int:
    """Where the column of ``field`` stands in a layout the writer lays out."""
    return [column.field for column in columns].index(field)


def header_of(field: str) -> str:
    """The header a list sheet shows for ``field`` (one header per field in every sheet)."""
    for column in (*PROBLEM_COLUMNS, *DUPLICATE_COLUMNS, STATUS_COLUMN):
        if column.field == field:
            return column.header
    raise KeyError(field)


def find_columns(header_cells: Sequence[str], fields: Iterable[str]) -> dict[str, int]:
    """Field → position of its header among ``header_cells`` (the first, when a header repeats);
    fields whose header is absent are left out."""
    first: dict[str, int] = {}
    for at, cell in enumerate(header_cells):
        first.setdefault(cell, at)
    wanted = {field: header_of(field) for field in fields}
    return {field: first[header] for field, header in wanted.items() if header in first}


def sheet_names(base: str, pieces: int) -> list[str]:
    """The names of a list's sheets: ``base``, then ``base(2)``, ``base(3)`` …"""
    return [base if i == 0 else f"{base}({i + 1})" for i in range(max(1, pieces))]
