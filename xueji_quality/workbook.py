"""The county problem list's contract (问题学籍清单): what a county workbook holds, as data.

The report writer (:mod:`xueji_quality.reports.county_workbook`) lays a workbook out from this
module and the answer importer (:mod:`xueji_quality.answers.importer`) reads a returned one by
it, so the two cannot drift apart. A workbook has these sheets, in this order:

- 说明 (:data:`ABOUT_SHEET`): what the list is and how to answer it;
- 汇总 (:data:`SUMMARY_SHEET`): items per school and problem class (the province summary's
  count columns);
- 错误学籍 (:data:`PROBLEM_SHEET`, columns :func:`problem_columns`): one row per error of a
  record, answered with one of :data:`ACTIONS`;
- 重复学籍 (:data:`DUPLICATE_SHEET`, columns :func:`duplicate_columns`): one block per group,
  one row per record, each of the county's own records answered on its own with one of
  :data:`DUPLICATE_ACTIONS`;
- 提醒 (:data:`WARNING_SHEET`, columns :data:`WARNING_COLUMNS`): warnings, to look at; they
  need no answer and the sheet has no answer columns;
- 清单标识 (:data:`MARKER_SHEET`, hidden): label / value rows :data:`MARKER_FIELDS` naming the
  run and the county, so a returned workbook can be matched to them.

A list longer than a sheet continues on 错误学籍(2), 错误学籍(3) … (:func:`sheet_names`). The
clerk fills in 处理方式, 更正后的值 and 备注 (:func:`clerk_columns`); the hidden 问题编号
(:data:`KEY_HEADER`) matches an answered row to its problem. Clerks sort rows, insert and move
columns and rename sheets, so a reader finds a list sheet by its headers and every column by its
header text, never by its position (:func:`find_columns`).

问题编号 (:func:`row_key`, :func:`parse_key`): ``P`` + 16 hex on an error row; on a duplicate
row the group's ``D`` + 16 hex, then ``-<n>`` for the county's own record n of the group or
``~<n>`` for another county's record (shown so the clerk can act, answered by its own county).
A bare ``D`` key is a whole-group answer of a list written before answers were per record.

>>> headers(problem_columns())[-4:]
('处理方式', '更正后的值', '备注', '问题编号')
>>> headers(duplicate_columns(show_status=True))[12:16]
('原因', '状态', '处理方式', '更正后的值')
>>> find_columns(["学校反馈", "问题编号", "备注", "处理方式"], ANSWER_FIELDS)
{'problem_key': 1, 'action': 3, 'note': 2}
>>> sheet_names(PROBLEM_SHEET, 3)
['错误学籍', '错误学籍(2)', '错误学籍(3)']
>>> row_key("D0123456789abcdef", 2, own=False)
'D0123456789abcdef~2'
>>> parse_key("D0123456789abcdef-2")
('D0123456789abcdef', '2', True)
>>> parse_key("P0123456789abcdef"), parse_key("p-1")
(('P0123456789abcdef', None, True), None)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple


class Column(NamedTuple):
    """One column of a list sheet.

    ``kind``: ``text`` for identifier-like values, written as text in a text-formatted column
    so Excel never turns them into numbers; ``plain`` for words; ``number`` for a figure written
    as a number (the similarity score, two decimals). ``width``: the widest the column gets
    (characters; a column is as wide as its longest value up to this); ``wrap``: longer values
    wrap inside the cell instead of being cut off.
    """

    header: str
    field: str
    width: int
    kind: str = "plain"
    filled_by_clerk: bool = False
    hidden: bool = False
    wrap: bool = False


ABOUT_SHEET = "说明"
SUMMARY_SHEET = "汇总"
PROBLEM_SHEET = "错误学籍"
DUPLICATE_SHEET = "重复学籍"
WARNING_SHEET = "提醒"
MARKER_SHEET = "清单标识"

PROVE = "佐证"
CHANGE = "变更"
DELETE = "删除"
KEEP = "保留"
# An error row: the record is right as it is (with evidence), was corrected, or is not ours.
ACTIONS: tuple[str, ...] = (PROVE, CHANGE, DELETE)
# A record of a duplicate group: it stays, goes or was corrected; or the group's records are
# different students (佐证, with the evidence in 备注).
DUPLICATE_ACTIONS: tuple[str, ...] = (KEEP, DELETE, CHANGE, PROVE)
ANSWER_ACTIONS: tuple[str, ...] = (PROVE, CHANGE, DELETE, KEEP)

KEY_HEADER = "问题编号"
ACTION_HEADER = "处理方式"
NEW_VALUE_HEADER = "更正后的值"
NOTE_HEADER = "备注"
STATUS_HEADER = "状态"
GROUP_HEADER = "组号"

_ACTION = Column(ACTION_HEADER, "action", 9, filled_by_clerk=True)
_NEW_VALUE = Column(NEW_VALUE_HEADER, "new_value", 20, "text", filled_by_clerk=True)
_NOTE = Column(NOTE_HEADER, "note", 26, filled_by_clerk=True, wrap=True)
_KEY = Column(KEY_HEADER, "problem_key", 20, "text", hidden=True)
# Shown before 处理方式 when the run knows each item's status from the answer ledger.
STATUS_COLUMN = Column(STATUS_HEADER, "status", 10, wrap=True)

_RECORD_COLUMNS: tuple[Column, ...] = (
    Column("学校标识码", "school_code", 11, "text"),
    Column("学校名称", "school_name", 18, wrap=True),
    Column("年级", "grade", 7),
    Column("班级", "class_name", 7),
    Column("姓名", "name", 9),
    Column("身份证件号", "id_number", 19, "text"),
    Column("学籍号", "student_no", 20, "text"),
    Column("记录号", "record_id", 14, "text"),
)
_FINDING_COLUMNS: tuple[Column, ...] = (
    Column("问题代码", "rule", 16, "text", wrap=True),
    Column("问题名称", "rule_name", 14, wrap=True),
    Column("严重程度", "severity", 5, wrap=True),
    Column("字段", "field", 9, wrap=True),
    Column("原值", "value", 19, "text", wrap=True),
    Column("问题说明", "message", 32, wrap=True),
    Column("修改建议", "suggestion", 28, wrap=True),
)
PROBLEM_COLUMNS: tuple[Column, ...] = (
    *_RECORD_COLUMNS,
    *_FINDING_COLUMNS,
    _ACTION,
    _NEW_VALUE,
    _NOTE,
    _KEY,
)
WARNING_COLUMNS: tuple[Column, ...] = (*_RECORD_COLUMNS, *_FINDING_COLUMNS)
DUPLICATE_COLUMNS: tuple[Column, ...] = (
    Column(GROUP_HEADER, "group_id", 14, "text"),
    Column("问题名称", "rule_name", 10, wrap=True),
    Column("所在区县", "county", 14, wrap=True),
    *_RECORD_COLUMNS,
    Column("相似度", "score", 6, "number"),
    Column("原因", "reason", 32, wrap=True),
    _ACTION,
    _NEW_VALUE,
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

OWN_MEMBER = "-"
OTHER_MEMBER = "~"
_KEY_PATTERN = re.compile(r"(P[0-9a-f]{16})|(D[0-9a-f]{16})(?:([-~])([1-9][0-9]{0,5}))?")


def row_key(group_key: str, member: int | str, own: bool = True) -> str:
    """问题编号 of record ``member`` (1, 2 …) of a duplicate group, own county's or another's."""
    return f"{group_key}{OWN_MEMBER if own else OTHER_MEMBER}{member}"


def parse_key(key: str) -> tuple[str, str | None, bool] | None:
    """(problem key, member or None, own record?) of a 问题编号; None when it is none."""
    match = _KEY_PATTERN.fullmatch(key)
    if match is None:
        return None
    problem, group, sign, member = match.groups()
    if problem:
        return problem, None, True
    return group, member, sign != OTHER_MEMBER


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


def clerk_columns(columns: Iterable[Column]) -> tuple[str, ...]:
    """Headers of the columns the clerk fills in."""
    return tuple(column.header for column in columns if column.filled_by_clerk)


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
