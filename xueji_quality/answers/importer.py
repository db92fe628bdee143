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

Checked before anything is written: the run is one this output root recorded; every answered key
belongs to this county and was listed by that run; every 处理方式 is one the row can take (佐证,
变更 or 删除 for an error; 保留, 删除, 变更 or 佐证 for a record of a duplicate group); no record
of another county (or school) is answered; a row copied twice does not carry two answers; and the
answers to one duplicate group make sense together. Contradictory, and so refused:

- 佐证 (the records are different students) beside 保留 or 删除 (they are one student);
- 保留 on two records or more (one student keeps one registration; different students are 佐证);
- 删除 on every record of a group the file shows whole (no other county's record), with no 备注
  saying why none stays.

Anything else is taken as given: a group partly answered, 保留 beside 删除 or 变更, 佐证 beside
变更. Any failure rejects the whole file with every offending file, sheet and row named;
otherwise all its answers are written in one transaction. A file already imported (same SHA-256)
is reported and not read again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from python_calamine import CalamineWorkbook

from xueji_quality.answers import ledger
from xueji_quality.errors import InputError
from xueji_quality.files import sha256_file
from xueji_quality.workbook import (
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
    PROVE,
    REQUIRED_ANSWER_FIELDS,
    find_columns,
    parse_key,
)

MARKER_RUN = MARKER_LABELS["run_id"]
MARKER_COUNTY = MARKER_LABELS["county_code"]
MARKER_FORMAT = MARKER_LABELS["format"]
HEADER_SEARCH_ROWS = 10
MARKER_SEARCH_ROWS = 20
MAX_LISTED_ISSUES = 50
_COUNTY = re.compile(r"\d{6}")


class AnswerFileError(InputError):
    """A returned workbook that cannot be imported; nothing of it was written."""

    def __init__(self, file: str, issues: list[str]) -> None:
        self.issues = issues
        shown = issues[:MAX_LISTED_ISSUES]
        more = len(issues) - len(shown)
        text = "；".join(shown) + (f"；另有 {more} 处问题" if more > 0 else "")
        super().__init__(file, f"未导入：{text}")


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
    """What a returned workbook says: its run, county, answers and row-level issues."""

    path: Path
    sha256: str
    run_id: str
    county_code: str
    answers: list[Answer] = field(default_factory=list)
    unanswered: int = 0
    issues: list[str] = field(default_factory=list)
    # Group key -> {member: answerable by this county?} of every group row the file shows.
    group_rows: dict[str, dict[str, bool]] = field(default_factory=dict)


@dataclass
class ImportReport:
    file: str
    sha256: str
    run_id: str
    county_code: str
    answers: int
    by_action: dict[str, int]
    unanswered: int
    already_imported: bool = False


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _sheets(path: Path) -> list[tuple[str, list[list[object]]]]:
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        try:
            return [
                (name, workbook.get_sheet_by_name(name).to_python(skip_empty_area=False))
                for name in workbook.sheet_names
            ]
        finally:
            workbook.close()
    except Exception as exc:  # every reader failure means the same to the clerk
        raise AnswerFileError(
            str(path), [f"无法读取工作簿（文件损坏、不完整或不是 xlsx）：{exc}"]
        ) from None


def _label_cells(rows: list[list[object]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {MARKER_RUN: set(), MARKER_COUNTY: set(), MARKER_FORMAT: set()}
    for row in rows[:MARKER_SEARCH_ROWS]:
        if len(row) >= 2 and _cell(row[0]) in found:
            found[_cell(row[0])].add(_cell(row[1]))
    return found


def _markers(sheets: list[tuple[str, list[list[object]]]]) -> dict[str, set[str]]:
    """运行编号 / 区县代码 of the marker sheet (the one carrying 清单格式, whatever its name);
    without one, of every sheet (so a clerk's own 区县代码 column cannot pass unnoticed)."""
    labelled = [_label_cells(rows) for _, rows in sheets]
    marked = [f for f in labelled if FORMAT_NAME in f[MARKER_FORMAT]]
    merged: dict[str, set[str]] = {MARKER_RUN: set(), MARKER_COUNTY: set(), MARKER_FORMAT: set()}
    for found in marked or labelled:
        for label, values in found.items():
            merged[label] |= values
    return merged


def _header(rows: list[list[object]]) -> tuple[int, dict[str, int]] | None:
    """The header row of a list sheet and where each answer field's column stands in it."""
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        columns = find_columns([_cell(c) for c in row], (*ANSWER_FIELDS, "group_id"))
        if all(field in columns for field in REQUIRED_ANSWER_FIELDS):
            return index, columns
    return None


def read_answer_file(path: Path) -> AnswerFile:
    """Read a returned workbook; raise AnswerFileError if it cannot be one of ours at all."""
    path = Path(path)
    if not path.is_file():
        raise AnswerFileError(str(path), ["文件不存在"])
    sheets = _sheets(path)
    markers = _markers(sheets)
    issues = []
    for label in (MARKER_RUN, MARKER_COUNTY):
        if len(markers[label]) != 1:
            shown = "、".join(sorted(markers[label])) or "无"
            issues.append(f"隐藏工作表“{MARKER_SHEET}”中的{label}缺失或不唯一（{shown}）")
    if issues:
        raise AnswerFileError(str(path), issues)
    (run_id,) = markers[MARKER_RUN]
    (county,) = markers[MARKER_COUNTY]
    if not _COUNTY.fullmatch(county):
        raise AnswerFileError(str(path), [f"区县代码“{county}”不是 6 位数字"])
    result = AnswerFile(path=path, sha256=sha256_file(path), run_id=run_id, county_code=county)
    list_sheets = 0
    for name, rows in sheets:
        header = _header(rows)
        if header is None:
            continue
        list_sheets += 1
        header_row, columns = header
        for offset, row in enumerate(rows[header_row + 1 :], start=header_row + 2):
            _read_row(
                result,
                name,
                offset,
                {f: _cell(row[at]) if at < len(row) else "" for f, at in columns.items()},
            )
    if list_sheets == 0:
        raise AnswerFileError(
            str(path), [f"没有找到含“{KEY_HEADER}”和“{ACTION_HEADER}”列的问题清单工作表"]
        )
    _check_consistent(result)
    return result


def _read_row(result: AnswerFile, sheet: str, row: int, cells: dict[str, str]) -> None:
    """Take one list row's answer into ``result`` (or an issue naming the row)."""
    key = cells.get("problem_key", "")
    action = cells.get("action", "")
    parsed = parse_key(key) if key else None
    if parsed is not None and parsed[1] is not None:
        result.group_rows.setdefault(parsed[0], {})[parsed[1]] = parsed[2]
    own = parsed is None or parsed[2]
    if not action:
        if own and (key or cells.get("note")):
            result.unanswered += 1
        return
    where = f"工作表“{sheet}”第 {row} 行"
    if action not in ANSWER_ACTIONS:
        result.issues.append(f"{where}：{ACTION_HEADER}“{action}”不是 {'/'.join(ANSWER_ACTIONS)}")
    elif not key:
        result.issues.append(f"{where}：{KEY_HEADER}缺失，无法对应到问题")
    elif parsed is None:
        result.issues.append(f"{where}：{KEY_HEADER}“{key}”被改动，无法对应到问题")
    elif not own:
        result.issues.append(
            f"{where}：这是外区县（或外校）的学籍，由其所在区县（学校）答复，请清空“{ACTION_HEADER}”"
        )
    elif parsed[1] is None and action not in ACTIONS:
        result.issues.append(
            f"{where}：{ACTION_HEADER}“{action}”只用于重复学籍的各条记录，"
            f"这里请选 {'/'.join(ACTIONS)}"
        )
    else:
        result.answers.append(
            Answer(
                key=parsed[0],
                action=action,
                note=cells.get("note", ""),
                sheet=sheet,
                row=row,
                member=parsed[1],
                new_value=cells.get("new_value", ""),
                group=cells.get("group_id", ""),
            )
        )


def _rows(answers: list[Answer]) -> str:
    """``工作表“重复学籍”第 3、4 行`` (sheet by sheet)."""
    by_sheet: dict[str, list[str]] = {}
    for answer in answers:
        by_sheet.setdefault(answer.sheet, []).append(str(answer.row))
    return "，".join(f"工作表“{sheet}”第 {'、'.join(rows)} 行" for sheet, rows in by_sheet.items())


def _check_consistent(result: AnswerFile) -> None:
    """One answer per record (a row copied twice must not disagree), and each duplicate group's
    answers sensible together (see the module docstring)."""
    chosen: dict[tuple[str, str | None], Answer] = {}
    for answer in result.answers:
        first = chosen.get((answer.key, answer.member))
        if first is None:
            chosen[(answer.key, answer.member)] = answer
        elif first.action != answer.action:
            result.issues.append(
                f"{answer.where}：同一问题（{answer.key}）已在{first.where}"
                f"答复为“{first.action}”，此处为“{answer.action}”"
            )
        elif answer.note and answer.note not in first.note.split("；"):
            first.note = "；".join(filter(None, (first.note, answer.note)))
    result.answers = list(chosen.values())
    groups: dict[str, list[Answer]] = {}
    for answer in result.answers:
        if answer.member is not None:
            groups.setdefault(answer.key, []).append(answer)
    for key, answers in groups.items():
        result.issues.extend(_group_issues(answers, result.group_rows.get(key, {})))


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


def _check_against_ledger(connection, answer_file: AnswerFile) -> tuple[int, dict[str, str]]:
    """Run seq, and the fingerprint each answered key had in that run; issues added in place."""
    seq = ledger.run_seq(connection, answer_file.run_id)
    if seq is None:
        answer_file.issues.insert(
            0, f"运行编号“{answer_file.run_id}”不是本输出目录产生的运行（或尚未记入答复台账）"
        )
        return -1, {}
    connection.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (key TEXT PRIMARY KEY)")
    connection.execute("DELETE FROM wanted")
    connection.executemany(
        "INSERT OR IGNORE INTO wanted (key) VALUES (?)", [(a.key,) for a in answer_file.answers]
    )
    rows = connection.execute(
        "SELECT w.key, p.key IS NOT NULL,"
        " EXISTS (SELECT 1 FROM problem_counties c WHERE c.key = w.key AND c.county_code = ?),"
        " (SELECT v.fingerprint FROM versions v WHERE v.key = w.key"
        "  AND v.first_seen_seq <= ? AND v.last_seen_seq >= ?)"
        " FROM wanted w LEFT JOIN problems p ON p.key = w.key",
        (answer_file.county_code, seq, seq),
    ).fetchall()
    connection.execute("DELETE FROM wanted")
    facts = {key: (known, ours, fingerprint) for key, known, ours, fingerprint in rows}
    fingerprints = {}
    for answer in answer_file.answers:
        known, ours, fingerprint = facts[answer.key]
        where = answer.where
        if not known:
            answer_file.issues.append(f"{where}：问题编号“{answer.key}”不存在（被改动？）")
        elif not ours:
            answer_file.issues.append(
                f"{where}：问题编号“{answer.key}”不属于区县 {answer_file.county_code}"
            )
        elif fingerprint is None:
            answer_file.issues.append(
                f"{where}：问题编号“{answer.key}”不在运行 {answer_file.run_id} 的清单中"
            )
        else:
            fingerprints[answer.key] = fingerprint
    return seq, fingerprints


def _write_answers(connection, import_id: int, rows: list[tuple]) -> None:
    connection.executemany(
        "INSERT INTO answers (import_id, key, member, county_code, run_seq, action, new_value,"
        " note, fingerprint, sheet, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(import_id, *r) for r in rows],
    )


def import_file(out_root: Path, path: Path, *, ledger_file: Path | None = None) -> ImportReport:
    """Import one returned workbook into the ledger of ``out_root`` (all of it, or nothing)."""
    answer_file = read_answer_file(path)
    by_action = {a: sum(x.action == a for x in answer_file.answers) for a in ANSWER_ACTIONS}
    report = ImportReport(
        file=str(path),
        sha256=answer_file.sha256,
        run_id=answer_file.run_id,
        county_code=answer_file.county_code,
        answers=len(answer_file.answers),
        by_action=by_action,
        unanswered=answer_file.unanswered,
    )
    ledger_file = ledger.ledger_path(out_root, ledger_file)
    if not ledger_file.is_file():
        raise AnswerFileError(
            str(path),
            [f"运行编号“{answer_file.run_id}”不是本输出目录产生的运行（无答复台账 {ledger_file}）"],
        )
    connection = ledger.connect(ledger_file)
    try:
        with ledger.transaction(connection):
            seen = connection.execute(
                "SELECT 1 FROM imports WHERE sha256 = ?", (answer_file.sha256,)
            ).fetchone()
            if seen:
                report.already_imported = True
                return report
            seq, fingerprints = _check_against_ledger(connection, answer_file)
            if answer_file.issues:
                raise AnswerFileError(str(path), answer_file.issues)
            cursor = connection.execute(
                "INSERT INTO imports (file_name, sha256, run_seq, county_code, imported_at,"
                " answers) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    Path(path).name,
                    answer_file.sha256,
                    seq,
                    answer_file.county_code,
                    datetime.now().astimezone().isoformat(timespec="microseconds"),
                    len(answer_file.answers),
                ),
            )
            _write_answers(
                connection,
                int(cursor.lastrowid),
                [
                    (
                        a.key,
                        a.member,
                        answer_file.county_code,
                        seq,
                        a.action,
                        a.new_value or None,
                        a.note or None,
                        fingerprints[a.key],
                        a.sheet,
                        a.row,
                    )
                    for a in answer_file.answers
                ],
            )
    finally:
        connection.close()
    return report


def import_answers(
    out_root: Path, paths: list[Path], *, ledger_file: Path | None = None
) -> tuple[list[ImportReport], list[AnswerFileError]]:
    """Import each file on its own: a rejected file leaves the others' answers in place."""
    reports: list[ImportReport] = []
    rejected: list[AnswerFileError] = []
    for path in paths:
        try:
            reports.append(import_file(out_root, path, ledger_file=ledger_file))
        except AnswerFileError as exc:
            rejected.append(exc)
    return reports, rejected
