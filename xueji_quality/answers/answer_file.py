"""Reading the problem lists counties send back (问题学籍清单 with 处理方式 filled in).

A clerk re-sorts and filters rows, adds, hides or moves columns, edits other cells, renames
sheets and saves with Excel, WPS or LibreOffice. None of that matters here:

- the workbook is identified by its hidden sheet 清单标识 (any name: it is found by its
  运行编号 / 区县代码 cells): the run that wrote it and the county it was written for;
- a list sheet is any sheet whose header (within its first rows) holds 问题编号 and 处理方式;
  columns are found by header text, never by position; rows are matched by the hidden 问题编号
  (the problem key), never by row number;
- a row with no 处理方式 is not an answer and is left alone.

Sheet names, headers, actions, keys and the marker are the workbook contract
(:mod:`xueji_quality.workbook`) the report writer lays the workbook out by.

Checked here, from the file alone: every 处理方式 is one the row can take (佐证, 变更 or 删除 for
an error; 保留, 删除, 变更 or 佐证 for a record of a duplicate group); no record of another
county (or school) is answered; a row copied twice does not carry two answers; and the answers
to one duplicate group make sense together. Contradictory, and so refused:

- 佐证 (the records are different students) beside 保留 or 删除 (they are one student);
- 保留 on two records or more (one student keeps one registration; different students are 佐证);
- 删除 on every record of a group the file shows whole (no other county's record), with no 备注
  saying why none stays.

Anything else is taken as given: a group partly answered, 保留 beside 删除 or 变更, 佐证 beside
变更. What the ledger must confirm (the run, the county, the keys) is checked by
:mod:`xueji_quality.answers.importer`.

A list sheet is read as columns: calamine parses the workbook, the cells of the answer columns
become pandas columns, and keys, actions and the checks above are column operations. Python
walks single cells only where a clerk typed a number or a date into one of those columns, and
builds Python objects per answer only for the rows an issue names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from python_calamine import CalamineWorkbook

from xueji_quality.errors import InputError
from xueji_quality.files import sha256_file
from xueji_quality.workbook import (
    _KEY_PATTERN,
    ACTION_HEADER,
    ACTIONS,
    ANSWER_ACTIONS,
    ANSWER_FIELDS,
    DELETE,
    DUPLICATE_ACTIONS,
    FORMAT_NAME,
    GROUP_HEADER,
    KEEP,
    KEY_HEADER,
    MARKER_LABELS,
    MARKER_SHEET,
    NOTE_HEADER,
    OTHER_MEMBER,
    PROVE,
    REQUIRED_ANSWER_FIELDS,
    find_columns,
)

MARKER_RUN = MARKER_LABELS["run_id"]
MARKER_COUNTY = MARKER_LABELS["county_code"]
MARKER_FORMAT = MARKER_LABELS["format"]
HEADER_SEARCH_ROWS = 10
MARKER_SEARCH_ROWS = 20
MAX_LISTED_ISSUES = 50
READ_FIELDS: tuple[str, ...] = (*ANSWER_FIELDS, "group_id")
# The columns of an answers table, in the order of the file's rows.
ANSWER_COLUMNS: tuple[str, ...] = (
    "key",
    "member",
    "action",
    "note",
    "new_value",
    "sheet",
    "row",
    "group",
)
# parse_key's pattern, anchored and with named groups, for Arrow's extract_regex (RE2).
_KEY_REGEX = (
    "^(?:"
    + _KEY_PATTERN.pattern.replace("(P", "(?P<problem>P", 1)
    .replace("(D", "(?P<group>D", 1)
    .replace("([-~])", "(?P<sign>[-~])", 1)
    .replace("([1-9]", "(?P<member>[1-9]", 1)
    + ")$"
)
# What str.strip() strips: every character Python counts as white space.
_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_COUNTY_REGEX = r"\d{6}"


class AnswerFileError(InputError):
    """A returned workbook that cannot be imported; nothing of it was written."""

    def __init__(self, file: str, issues: list[str]) -> None:
        self.issues = issues
        shown = issues[:MAX_LISTED_ISSUES]
        more = len(issues) - len(shown)
        text = "；".join(shown) + (f"；另有 {more} 处问题" if more > 0 else "")
        super().__init__(file, f"未导入：{text}")

    def __reduce__(self):
        # Crosses from a reading worker process to the importer whole, issues and all.
        return (type(self), (self.file, self.issues))


@dataclass
class Answer:
    """One answered row: the problem key, the record of a duplicate group it answers (None for
    an error row or a whole-group answer), what was answered and where."""

    key: str
    action: str
    note: str
    sheet: str
    row: int
    member: str | None = None
    new_value: str = ""
    group: str = ""

    @property
    def where(self) -> str:
        return f"工作表“{self.sheet}”第 {self.row} 行"


@dataclass
class AnswerFile:
    """What a returned workbook says: its run, county, answers (one row each, in the file's
    order: columns :data:`ANSWER_COLUMNS`, member None for an error row) and row-level issues."""

    path: Path
    sha256: str
    run_id: str
    county_code: str
    table: pd.DataFrame = field(default_factory=lambda: _empty_answers())
    unanswered: int = 0
    issues: list[str] = field(default_factory=list)

    @property
    def answers(self) -> list[Answer]:
        """The answers as objects (for a reader that wants them one by one)."""
        return _answer_objects(self.table)


def _empty_answers() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="int64" if c == "row" else object) for c in ANSWER_COLUMNS}
    )


def _answer_objects(table: pd.DataFrame) -> list[Answer]:
    return [
        Answer(
            key=key,
            action=action,
            note=note,
            sheet=sheet,
            row=int(row),
            member=member,
            new_value=new_value,
            group=group,
        )
        for key, member, action, note, new_value, sheet, row, group in zip(
            *(table[c].tolist() for c in ANSWER_COLUMNS), strict=True
        )
    ]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _texts(values: np.ndarray) -> np.ndarray:
    """The cells of a column as stripped text ("" for an empty cell), as :func:`_cell` reads
    each: text cells by Arrow's kernels, the cells a clerk typed as numbers or dates one by
    one."""
    try:
        text = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        is_text = pd.Series(values, dtype=object).map(type).eq(str).to_numpy()
        out = np.empty(len(values), dtype=object)
        out[is_text] = _texts(values[is_text])
        out[~is_text] = [_cell(v) for v in values[~is_text].tolist()]
        return out
    return pc.utf8_trim(text, _WHITESPACE).fill_null("").to_numpy(zero_copy_only=False)


def _label_cells(rows: list[list[object]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {MARKER_RUN: set(), MARKER_COUNTY: set(), MARKER_FORMAT: set()}
    for row in rows[:MARKER_SEARCH_ROWS]:
        if len(row) >= 2 and _cell(row[0]) in found:
            found[_cell(row[0])].add(_cell(row[1]))
    return found


def _markers(heads: list[tuple[str, list[list[object]]]]) -> dict[str, set[str]]:
    """运行编号 / 区县代码 of the marker sheet (the one carrying 清单格式, whatever its name);
    without one, of every sheet (so a clerk's own 区县代码 column cannot pass unnoticed)."""
    labelled = [_label_cells(rows) for _, rows in heads]
    marked = [f for f in labelled if FORMAT_NAME in f[MARKER_FORMAT]]
    merged: dict[str, set[str]] = {MARKER_RUN: set(), MARKER_COUNTY: set(), MARKER_FORMAT: set()}
    for found in marked or labelled:
        for label, values in found.items():
            merged[label] |= values
    return merged


def _header(rows: list[list[object]]) -> tuple[int, dict[str, int]] | None:
    """The header row of a list sheet and where each answer field's column stands in it."""
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        columns = find_columns([_cell(c) for c in row], READ_FIELDS)
        if all(field in columns for field in REQUIRED_ANSWER_FIELDS):
            return index, columns
    return None


def _cell_columns(body: list) -> np.ndarray:
    """Rows of cells as one two-dimensional array (short rows padded with None)."""
    try:
        cells = np.array(body, dtype=object)
    except ValueError:
        cells = pd.DataFrame(body, dtype=object).to_numpy()
    return cells if cells.ndim == 2 else np.empty((len(body), 0), dtype=object)


def _sheet_table(name: str, header_row: int, columns: dict[str, int], body: list) -> pd.DataFrame:
    """sheet, row (as Excel numbers it) and the text of each answer field, per row below the
    header."""
    cells = _cell_columns(body)
    table = {"sheet": np.full(len(body), name, dtype=object)}
    table["row"] = np.arange(header_row + 2, header_row + 2 + len(body))
    for name_of_field in READ_FIELDS:
        at = columns.get(name_of_field)
        if at is not None and at < cells.shape[1]:
            table[name_of_field] = _texts(cells[:, at])
        else:
            table[name_of_field] = np.full(len(body), "", dtype=object)
    return pd.DataFrame(table)


def _read_sheets(path: Path) -> tuple[list[tuple[str, list[list[object]]]], pd.DataFrame]:
    """(name, first rows) of every sheet, and the rows of every list sheet as one table."""
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        try:
            heads, tables = [], []
            for name in workbook.sheet_names:
                sheet = workbook.get_sheet_by_name(name)
                head = sheet.to_python(skip_empty_area=False, nrows=MARKER_SEARCH_ROWS)
                heads.append((name, head))
                header = _header(head)
                if header is not None:
                    rows = sheet.to_python(skip_empty_area=False)
                    tables.append(_sheet_table(name, *header, rows[header[0] + 1 :]))
        finally:
            workbook.close()
    except Exception as exc:  # every reader failure means the same to the clerk
        raise AnswerFileError(
            str(path), [f"无法读取工作簿（文件损坏、不完整或不是 xlsx）：{exc}"]
        ) from None
    rows = pd.concat(tables, ignore_index=True) if tables else None
    return heads, rows


def _where(sheet: pd.Series, row: pd.Series) -> pd.Series:
    return "工作表“" + sheet + "”第 " + row.astype(str) + " 行"


def read_answer_file(path: Path) -> AnswerFile:
    """Read a returned workbook; raise AnswerFileError if it cannot be one of ours at all."""
    path = Path(path)
    if not path.is_file():
        raise AnswerFileError(str(path), ["文件不存在"])
    heads, rows = _read_sheets(path)
    markers = _markers(heads)
    issues = []
    for label in (MARKER_RUN, MARKER_COUNTY):
        if len(markers[label]) != 1:
            shown = "、".join(sorted(markers[label])) or "无"
            issues.append(f"隐藏工作表“{MARKER_SHEET}”中的{label}缺失或不唯一（{shown}）")
    if issues:
        raise AnswerFileError(str(path), issues)
    (run_id,) = markers[MARKER_RUN]
    (county,) = markers[MARKER_COUNTY]
    if not re.fullmatch(_COUNTY_REGEX, county):
        raise AnswerFileError(str(path), [f"区县代码“{county}”不是 6 位数字"])
    if rows is None:
        raise AnswerFileError(
            str(path), [f"没有找到含“{KEY_HEADER}”和“{ACTION_HEADER}”列的问题清单工作表"]
        )
    result = AnswerFile(path=path, sha256=sha256_file(path), run_id=run_id, county_code=county)
    answers, shown = _answers_of(rows, result)
    _check_consistent(result, answers, shown)
    return result


def _answers_of(rows: pd.DataFrame, result: AnswerFile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The answered rows that can be answers (issues for the others go into ``result``), and
    the duplicate-group records the file shows: key, member, own."""
    key = rows["problem_key"].to_numpy(dtype=object)
    action = rows["action"].to_numpy(dtype=object)
    note = rows["note"].to_numpy(dtype=object)
    parts = pc.extract_regex(pa.array(key, type=pa.string()), _KEY_REGEX)
    parsed = parts.is_valid().to_numpy(zero_copy_only=False)
    fields = {
        f: parts.field(f).fill_null("").to_numpy(zero_copy_only=False)
        for f in ("problem", "group", "sign", "member")
    }
    problem = np.where(fields["problem"] != "", fields["problem"], fields["group"])
    member = np.where(fields["member"] != "", fields["member"], None)
    has_member = parsed & (fields["member"] != "")
    own = fields["sign"] != OTHER_MEMBER
    shown = pd.DataFrame({"key": problem, "member": member, "own": own})[has_member]
    # A member shown twice counts as its later row says (own or another county's).
    shown = shown.drop_duplicates(["key", "member"], keep="last")
    answered = action != ""
    result.unanswered += int((~answered & own & ((key != "") | (note != ""))).sum())
    known_action = pd.Series(action).isin(ANSWER_ACTIONS).to_numpy()
    error_action = pd.Series(action).isin(ACTIONS).to_numpy()
    failures = [
        (~known_action, lambda a, k: f"：{ACTION_HEADER}“{a}”不是 {'/'.join(ANSWER_ACTIONS)}"),
        (key == "", lambda a, k: f"：{KEY_HEADER}缺失，无法对应到问题"),
        (~parsed, lambda a, k: f"：{KEY_HEADER}“{k}”被改动，无法对应到问题"),
        (
            ~own,
            lambda a, k: (
                f"：这是外区县（或外校）的学籍，由其所在区县（学校）答复，请清空“{ACTION_HEADER}”"
            ),
        ),
        (
            ~has_member & ~error_action,
            lambda a, k: (
                f"：{ACTION_HEADER}“{a}”只用于重复学籍的各条记录，这里请选 {'/'.join(ACTIONS)}"
            ),
        ),
    ]
    failed = np.zeros(len(rows), dtype=bool)
    message = np.full(len(rows), "", dtype=object)
    for condition, text in failures:
        hit = answered & ~failed & condition
        # Words only for the rows that failed.
        message[hit] = [text(a, k) for a, k in zip(action[hit], key[hit], strict=True)]
        failed |= hit
    if failed.any():
        where = _where(rows["sheet"][failed], rows["row"][failed])
        result.issues.extend((where + message[failed]).tolist())
    good = answered & ~failed
    answers = pd.DataFrame(
        {
            "key": problem[good],
            "member": member[good],
            "action": action[good],
            "note": note[good],
            "new_value": rows["new_value"].to_numpy(dtype=object)[good],
            "sheet": rows["sheet"].to_numpy(dtype=object)[good],
            "row": rows["row"].to_numpy(dtype="int64")[good],
            "group": rows["group_id"].to_numpy(dtype=object)[good],
        }
    )
    return answers, shown


def _rows(answers: list[Answer]) -> str:
    """``工作表“重复学籍”第 3、4 行`` (sheet by sheet)."""
    by_sheet: dict[str, list[str]] = {}
    for answer in answers:
        by_sheet.setdefault(answer.sheet, []).append(str(answer.row))
    return "，".join(f"工作表“{sheet}”第 {'、'.join(rows)} 行" for sheet, rows in by_sheet.items())


def _merge_copies(answers: pd.DataFrame, result: AnswerFile) -> pd.DataFrame:
    """One answer per record: a row copied twice must not disagree (an issue per later row that
    does), and a copy's 备注 joins the first row's. Only the repeated rows are walked."""
    record = answers["key"] + "|" + answers["member"].fillna("")
    repeated = record.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return answers
    chosen: dict[str, tuple[int, Answer]] = {}
    for at, answer in zip(
        np.flatnonzero(repeated).tolist(), _answer_objects(answers[repeated]), strict=True
    ):
        kept = chosen.get(record.iat[at])
        first = kept[1] if kept else None
        if first is None:
            chosen[record.iat[at]] = (at, answer)
        elif first.action != answer.action:
            result.issues.append(
                f"{answer.where}：同一问题（{answer.key}）已在{first.where}"
                f"答复为“{first.action}”，此处为“{answer.action}”"
            )
        elif answer.note and answer.note not in first.note.split("；"):
            first.note = "；".join(filter(None, (first.note, answer.note)))
    answers = answers.copy()
    for at, first in chosen.values():
        answers.iat[at, answers.columns.get_loc("note")] = first.note
    return answers[~record.duplicated(keep="first").to_numpy()].reset_index(drop=True)


def _check_consistent(result: AnswerFile, answers: pd.DataFrame, shown: pd.DataFrame) -> None:
    """One answer per record, and each duplicate group's answers sensible together (see the
    module docstring); the answers that stand go into ``result.table``."""
    answers = _merge_copies(answers, result)
    result.table = answers.reset_index(drop=True)
    records = answers[answers["member"].notna()]
    if records.empty:
        return
    action = records["action"]
    per_group = pd.DataFrame(
        {
            "key": records["key"],
            "prove": action == PROVE,
            "same": action.isin([KEEP, DELETE]),
            "keep": action == KEEP,
            "deleted": action == DELETE,
            "deleted_note": (action == DELETE) & (records["note"] != ""),
        }
    ).groupby("key", sort=False)
    flags = per_group.sum()
    shown_per_group = shown.groupby("key", sort=False).agg(
        shown=("member", "size"), all_own=("own", "all")
    )
    flags = flags.join(shown_per_group, how="left")
    whole = flags["shown"].fillna(0).gt(0) & flags["all_own"].fillna(False).astype(bool)
    all_deleted = whole & (flags["deleted"] == flags["shown"]) & (flags["deleted_note"] == 0)
    contradicts = ((flags["prove"] > 0) & (flags["same"] > 0)) | (flags["keep"] > 1) | all_deleted
    if not contradicts.any():
        return
    # Only the offending groups become objects, to name their rows.
    offending = records[records["key"].isin(flags.index[contradicts])]
    for key, group in offending.groupby("key", sort=False):
        members = shown[shown["key"] == key]
        result.issues.extend(
            _group_issues(
                _answer_objects(group),
                dict(zip(members["member"].tolist(), members["own"].tolist(), strict=True)),
            )
        )


def _group_issues(answers: list[Answer], shown: dict[str, bool]) -> list[str]:
    """What contradicts itself in the answers to the records of one duplicate group."""
    group = next((a.group for a in answers if a.group), "")
    name = f"重复组（{GROUP_HEADER} {group}）" if group else "同一重复组"
    by_action: dict[str, list[Answer]] = {}
    for answer in sorted(answers, key=lambda a: (a.sheet, a.row)):
        by_action.setdefault(answer.action, []).append(answer)
    issues = []
    same_student = by_action.get(KEEP, []) + by_action.get(DELETE, [])
    if PROVE in by_action and same_student:
        said = "/".join(sorted({a.action for a in same_student}, key=DUPLICATE_ACTIONS.index))
        issues.append(
            f"{_rows(by_action[PROVE])}答复“{PROVE}”（不是同一学生），"
            f"{_rows(same_student)}答复“{said}”（是同一学生）：{name}的答复自相矛盾；"
            f"不是同一学生的，各条都选“{PROVE}”，是同一学生的，一条“{KEEP}”、其余“{DELETE}”"
        )
    if len(by_action.get(KEEP, [])) > 1:
        issues.append(
            f"{_rows(by_action[KEEP])}都答复“{KEEP}”：{name}中同一学生只能保留一条学籍；"
            f"确为不同学生的，请都选“{PROVE}”并在{NOTE_HEADER}中写明依据"
        )
    deleted = by_action.get(DELETE, [])
    whole = bool(shown) and all(shown.values())
    if whole and {a.member for a in deleted} == set(shown) and not any(a.note for a in deleted):
        issues.append(
            f"{_rows(deleted)}：{name}的每条学籍都答复“{DELETE}”且{NOTE_HEADER}为空："
            f"学生实际就读的一条应“{KEEP}”；确已不在任何一处就读的，请在{NOTE_HEADER}中说明"
        )
    return issues
