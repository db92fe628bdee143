"""The county problem list (问题学籍清单): one workbook and two Parquet files per county.

A county education bureau passes each item to its school and records the outcome. The workbook
has these sheets (the contract of :mod:`xueji_quality.workbook`):

- 说明: what the list is, the run date, the county, its figures (:mod:`county_totals`), how to
  answer an error and a duplicate group (with an example), and every problem code with its name,
  severity, meaning and suggested fix;
- 汇总: items per school and problem class (graduating grades apart), with a totals row;
- 错误学籍: one row per error of a record of this county, answered 佐证/变更/删除;
- 重复学籍: one block per duplicate group touching this county, each block a different fill, one
  row per record; each of the county's own records is answered on its own (保留/删除/变更/佐证).
  A group that spans counties appears in every county it touches; the other county's records
  show only their school, county, name and masked ID number, and are answered by their county;
- 提醒: the warnings, to look at; they need no answer.

Rows come graduating grades first (六年级, 九年级, 高三), then by school, grade and class. Every
identifier is written as a text cell and no value is ever turned into a formula, number or link.
Longer lists than a sheet holds continue on 错误学籍(2), 错误学籍(3) … and nothing is truncated.

With ``mask_ids`` the workbook shows an ID number of the standard layout as 440103********123X
(first six, eight stars, last four) and a 学籍号 likewise after its letter; any other value of
those fields (spreadsheet damage such as 4.40106E+17, a digit missing) has every digit starred,
so no part of a number shows whatever form it has. The Parquet files always keep full values.

With ``per_school`` each school with items also gets a small workbook of its own rows,
``counties/<code>/schools/<学校标识码>_<学校名称>.xlsx``, laid out and answered like the county's
(records of other schools appear there as counterparts, as other counties' do in a county list).

This module shapes the rows (which rows each list gets, in which order, what each column shows)
as one array per contract column; :mod:`xueji_quality.reports.county_sheets` writes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from xueji_quality import schema, workbook
from xueji_quality.answers import identity
from xueji_quality.reports import tables
from xueji_quality.reports.county_sheets import SEVERITY_LABELS, write_county_workbook
from xueji_quality.reports.county_totals import item_figures, problem_items, roster_context
from xueji_quality.rule_names import rule_names
from xueji_quality.standards import gb2260
from xueji_quality.workbook import DUPLICATE_SHEET, PROBLEM_SHEET, WARNING_SHEET

__all__ = [
    "COUNTERPART_NOTE",
    "DUPLICATE_SHEET",
    "PROBLEM_SHEET",
    "WARNING_SHEET",
    "county_file_stem",
    "iter_county_workbooks",
    "iter_school_workbooks",
    "mask_id_numbers",
    "school_file_stem",
    "split_by_county",
    "write_county_reports",
]

# Excel refuses longer cell text.
CELL_MAX_CHARS = 32_767
MASK = "*" * 8
UNKNOWN_COUNTY = "未知区县"
UNKNOWN_SCHOOL = "未知学校"
COUNTERPART_NOTE = "外区县记录，仅供核对，由所在区县处理"
OTHER_SCHOOL_NOTE = "外校记录，仅供核对，由所在学校处理"
SCHOOLS_FOLDER = "schools"
ID_LAYOUT = r"\d{17}[\dX]"
STUDENT_NO_LAYOUT = r"[A-Z]\d{17}[\dX]"


_UNSAFE_NAME = re.compile(r"[\\/:*?\"<>|\x00-\x1f\x7f]|\.\.")
_COUNTY_CODE = re.compile(r"\d{6}")
_NOT_CODE = re.compile(r"[^0-9A-Za-z]")


def county_file_stem(county_code: str, county_name: str) -> str:
    """``<code>_<name>``: the code must be 6 digits; the name loses path separators, control
    characters and '..' (an empty name becomes 未知区县)."""
    if not isinstance(county_code, str) or not _COUNTY_CODE.fullmatch(county_code):
        raise ValueError(f"区县代码必须是 6 位数字: {county_code!r}")
    name = _UNSAFE_NAME.sub("", county_name or "").strip(" .")[:40]
    return f"{county_code}_{name or UNKNOWN_COUNTY}"


def school_file_stem(school_code: str, school_name: str) -> str:
    """``<学校标识码>_<学校名称>`` for a file name: the code keeps letters and digits only (a
    wrong code is a problem of the list, not a path), the name as for a county.

    >>> school_file_stem("2144010301", "广州市/荔湾区..第一小学")
    '2144010301_广州市荔湾区第一小学'
    >>> school_file_stem("", "")
    '无标识码_未知学校'
    """
    code = _NOT_CODE.sub("", school_code or "")[:20] or "无标识码"
    name = _UNSAFE_NAME.sub("", school_name or "").strip(" .")[:40]
    return f"{code}_{name or UNKNOWN_SCHOOL}"


def mask_id_numbers(numbers: pd.Series, head: int = 6, layout: str = ID_LAYOUT) -> pd.Series:
    """A number of the standard ``layout``: first ``head`` characters, eight stars, last four.
    Anything else (spreadsheet damage, a digit missing or extra, a legacy 15-digit number): every
    digit a star, whatever its form, so no part of the number shows. Empty stays empty.

    >>> mask_id_numbers(pd.Series(["44010320120101001X", "5.20321E+17", "440103201201010"])).tolist()
    ['440103********001X', '*.*****E+**', '***************']
    """
    text = numbers.astype("string")
    standard = text.str.fullmatch(layout).fillna(False).astype(bool)
    kept = text.str.slice(0, head) + MASK + text.str.slice(-4)
    starred = text.str.replace(r"[0-9]", "*", regex=True)
    masked = kept.where(standard, starred).where(text.notna(), pd.NA)
    # An empty value stays empty: stars would suggest a number that is not there.
    return masked.where(text.fillna("").str.strip() != "", text).astype("string")


def mask_student_numbers(numbers: pd.Series) -> pd.Series:
    """学籍号 = a letter and an ID-like number: keep the letter and six, then as for IDs."""
    return mask_id_numbers(numbers, head=7, layout=STUDENT_NO_LAYOUT)


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
    keep = [c for c in ("problem_key", "member", "status") if c in duplicates.columns]
    frame = duplicates[[*schema.DUPLICATE_COLUMNS, *keep]].reset_index(drop=True)
    extra = context.drop(columns=["school_code", "school_name"])
    frame = frame.merge(extra, on="record_id", how="left", sort=False)
    frame["graduating"] = frame["graduating"].fillna(False).astype(bool)
    return frame


def _status(frame: pd.DataFrame, show_status: bool) -> dict[str, np.ndarray]:
    if not show_status:
        return {}
    status = frame["status"] if "status" in frame.columns else frame["record_id"].where(False)
    return {"status": _text(status)}


def in_contract_order(
    values: Mapping[str, np.ndarray], columns: tuple[workbook.Column, ...]
) -> list[np.ndarray]:
    """One array per contract column, in the contract's order."""
    missing = [column.field for column in columns if column.field not in values]
    if missing:
        raise KeyError(f"no values for workbook columns {missing}")
    return [values[column.field] for column in columns]


def problem_values(
    frame: pd.DataFrame, mask_ids: bool, show_status: bool = False
) -> dict[str, np.ndarray]:
    """What each 错误学籍 / 提醒 column shows, by field: object arrays of str."""
    id_number = frame["id_number"]
    student_no = frame["student_no"]
    value = frame["value"].astype("string")
    if mask_ids:
        id_number = mask_id_numbers(id_number)
        student_no = mask_student_numbers(student_no)
        value = value.mask(frame["field"] == "id_number", mask_id_numbers(value))
        value = value.mask(frame["field"] == "student_no", mask_student_numbers(value))
    field_label = frame["field"].astype("string").map(schema.FIELDS).fillna(frame["field"])
    key = frame["problem_key"] if "problem_key" in frame.columns else frame["record_id"]
    blank = np.full(len(frame), "", dtype=object)
    return {
        "school_code": _text(frame["school_code"]),
        "school_name": _text(frame["school_name"]),
        "grade": _text(frame["grade"]),
        "class_name": _text(frame["class_name"]),
        "name": _text(frame["name"]),
        "id_number": _text(id_number),
        "student_no": _text(student_no),
        "record_id": _text(frame["record_id"]),
        "rule": _text(frame["rule"]),
        "rule_name": _text(rule_names(frame["rule"])),
        "severity": _text(frame["severity"].map(SEVERITY_LABELS).fillna(frame["severity"])),
        "field": _text(field_label),
        "value": _text(value),
        "message": _text(frame["message"]),
        "suggestion": _text(frame["suggestion"]),
        "action": blank,
        "new_value": blank,
        "note": blank,
        "problem_key": _text(key),
        **_status(frame, show_status),
    }


def problem_sheet_columns(
    frame: pd.DataFrame, mask_ids: bool, show_status: bool = False
) -> list[np.ndarray]:
    """The 错误学籍 columns as object arrays of str, in the order of
    :func:`xueji_quality.workbook.problem_columns` (状态 before 处理方式 with ``show_status``)."""
    values = problem_values(frame, mask_ids, show_status)
    return in_contract_order(values, workbook.problem_columns(show_status))


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
    block: pd.DataFrame,
    mask_ids: bool,
    show_status: bool = False,
    county_code: str | None = None,
) -> list[np.ndarray]:
    """The 重复学籍 columns in the order of :func:`xueji_quality.workbook.duplicate_columns`
    (状态 before 处理方式 with ``show_status``); the score column stays float64.

    ``block["_own"]`` marks the list's own records: the others are counterparts, shown with
    their school, county, name and masked ID only, a note in 备注 saying who handles them and a
    问题编号 that says they are answered elsewhere. With ``county_code`` (a school's list), the
    county's records of other schools are counterparts too."""
    own = block["_own"].to_numpy(dtype=bool)
    other = ~own

    def own_only(values: pd.Series) -> np.ndarray:
        out = _text(values)
        out[other] = ""
        return out

    # The other records always show a masked number; the list's own as asked.
    id_number = block["id_number"].astype("string")
    masked = mask_id_numbers(id_number)
    id_shown = masked if mask_ids else id_number.where(block["_own"], masked)
    student_no = block["student_no"]
    if mask_ids:
        student_no = mask_student_numbers(student_no)
    same_county = (block["county_code"] == county_code).fillna(False).to_numpy(dtype=bool)
    notes = np.full(len(block), "", dtype=object)
    notes[other] = np.where(same_county[other], OTHER_SCHOOL_NOTE, COUNTERPART_NOTE)
    if "problem_key" in block.columns and "member" in block.columns:
        sign = np.where(own, workbook.OWN_MEMBER, workbook.OTHER_MEMBER).astype(object)
        keys = _text(block["problem_key"]) + sign + _text(block["member"])
    else:
        keys = _text(block["record_id"])
    values = {
        "group_id": _text(block["group_id"]),
        "rule_name": _text(rule_names(block["dup_class"])),
        "county": _text(block["_county_label"]),
        "school_code": _text(block["school_code"]),
        "school_name": _text(block["school_name"]),
        "grade": own_only(block["grade"]),
        "class_name": own_only(block["class_name"]),
        "name": _text(block["name"]),
        "id_number": _text(id_shown),
        "student_no": own_only(student_no),
        "record_id": own_only(block["record_id"]),
        "score": block["score"].astype("float64").to_numpy(),
        "reason": _text(block["reason"]),
        "action": np.full(len(block), "", dtype=object),
        "new_value": np.full(len(block), "", dtype=object),
        "note": notes,
        "problem_key": keys,
        **_status(block, show_status),
    }
    return in_contract_order(values, workbook.duplicate_columns(show_status))


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
    """The tables with ``problem_key`` (and ``member`` for duplicate rows): kept if given, else
    computed from the tables given."""
    if "problem_key" not in problems.columns:
        problems = problems.assign(
            problem_key=identity.problem_keys(problems, roster)["problem_key"]
        )
    if "problem_key" not in duplicates.columns or "member" not in duplicates.columns:
        keys = identity.group_keys(duplicates, roster)
        duplicates = duplicates.assign(problem_key=keys["problem_key"], member=keys["member"])
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
    per_school: bool = False,
) -> list[dict]:
    """Write counties/<code>/… for every county (or the given ones); one dict per county.

    ``records`` (records per county code) gives the counties' sizes when ``roster`` holds only
    the records the problems and groups name. ``per_school``: also one workbook per school with
    items, under ``counties/<code>/schools/``.

    Every list row carries its hidden problem key (问题编号): the ``problem_key`` column of
    ``problems`` / ``duplicates`` (and ``member`` of duplicates) when present, as the answer
    ledger gives them, else computed here from the tables given. ``statuses`` (problem_key →
    status, from the answer ledger) adds the 状态 column; None leaves it out. ``run_id``
    (default: taken from ``run_dir``'s name) is written with the county code into the hidden
    sheet 清单标识.

    Each dict: county_code, county_name, files ([{path, sha256, rows}], paths relative to
    ``run_dir``), records (roster rows of the county), records_clean, problem_rows (errors and
    warnings of its records), error_rows, warning_rows, duplicate_rows (the county's own records
    in groups), counterpart_rows (other counties' records shown), school_workbooks, and the
    figures of :func:`xueji_quality.reports.county_totals.item_figures` (items, error_items,
    warning_items, items_by_class, records_with_problems, duplicate_groups, graduating_items …).
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
    names = gb2260.county_names(pd.Series(targets, dtype="string")).tolist()
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
    other_names = gb2260.county_names(pd.Series(all_codes, dtype="string")).tolist()
    labels = {
        c: f"{n or UNKNOWN_COUNTY}（{c}）" for c, n in zip(all_codes, other_names, strict=True)
    }
    labels.update(county_labels)

    context = roster_context(roster)
    items = problem_items(context, problems, duplicates)
    item_positions = _positions(items)
    sorted_problems = prepare_problems(problems, context)
    problem_positions = _positions(sorted_problems)
    values = problem_values(sorted_problems, mask_ids, show_status)
    error_layout = workbook.problem_columns(show_status)
    error_columns = in_contract_order(values, error_layout)
    warning_columns = in_contract_order(values, workbook.WARNING_COLUMNS)
    is_warning = (sorted_problems["severity"] == "W").fillna(False).to_numpy(dtype=bool)
    school_of_problem = sorted_problems["school_code"].astype("string").fillna("").to_numpy()
    dup_frame = prepare_duplicates(duplicates, context)
    lists = ListWriter(
        run_dir=run_dir,
        error_columns=error_columns,
        warning_columns=warning_columns,
        is_warning=is_warning,
        mask_ids=mask_ids,
        show_status=show_status,
        province=province,
        run_date=run_date,
        rule_catalogue=rule_catalogue,
        run_id=run_id,
    )

    results = []
    empty = np.array([], dtype=np.int64)
    for code, name in zip(targets, names, strict=True):
        folder = tables.make_dirs(run_dir / "counties" / code)
        rows_here = problem_positions.get(code, empty)
        county_problems = sorted_problems.iloc[rows_here]
        block = county_duplicate_block(dup_frame, code, labels)
        county_items = items.iloc[item_positions.get(code, empty)]
        workbook_path = folder / f"{stems[code]}_问题学籍清单.xlsx"
        counts = lists.write(
            workbook_path,
            rows_here,
            block,
            county_items,
            label=county_labels[code],
            county_code=code,
            records=int(roster_sizes.get(code, 0)),
        )
        files = [
            tables.file_entry(run_dir, workbook_path, counts["problem_rows"] + len(block)),
            tables.write_problems(run_dir, f"counties/{code}/problems.parquet", county_problems),
            tables.write_duplicates(run_dir, f"counties/{code}/duplicates.parquet", block),
        ]
        if per_school:
            files += _write_school_workbooks(
                lists,
                folder,
                rows_here,
                school_of_problem,
                block,
                county_items,
                county_label=county_labels[code],
                county_code=code,
            )
        results.append(
            {
                "county_code": code,
                "county_name": name,
                "files": files,
                **counts,
                "records_clean": counts["records"] - counts["records_with_problems"],
                "school_workbooks": len(files) - 3,
            }
        )
    return results


class ListWriter:
    """Writes one list (a county's or a school's) from the rows shaped once for all counties."""

    def __init__(self, **shared) -> None:
        self.__dict__.update(shared)

    def write(
        self,
        path: Path,
        problem_rows: np.ndarray,
        block: pd.DataFrame,
        list_items: pd.DataFrame,
        *,
        label: str,
        county_code: str,
        records: int,
        school: bool = False,
    ) -> dict:
        """Write the workbook; return its counts (see :func:`write_county_reports`)."""
        warning = self.is_warning[problem_rows]
        error_rows, warning_rows = problem_rows[~warning], problem_rows[warning]
        own = block["_own"].to_numpy(dtype=bool)
        counts = {
            "records": records,
            "problem_rows": len(problem_rows),
            "error_rows": len(error_rows),
            "warning_rows": len(warning_rows),
            "duplicate_rows": int(own.sum()),
            "counterpart_rows": int((~own).sum()),
            **item_figures(list_items),
        }
        write_county_workbook(
            path,
            [c[error_rows] for c in self.error_columns],
            duplicate_sheet_columns(
                block, self.mask_ids, self.show_status, county_code if school else None
            ),
            [c[warning_rows] for c in self.warning_columns],
            list_items,
            counts,
            county_label=label,
            province=self.province,
            run_date=self.run_date,
            rule_catalogue=self.rule_catalogue,
            show_status=self.show_status,
            run_id=self.run_id,
            county_code=county_code,
            school=school,
        )
        return counts


def _write_school_workbooks(
    lists: ListWriter,
    folder: Path,
    rows_here: np.ndarray,
    school_of_problem: np.ndarray,
    block: pd.DataFrame,
    county_items: pd.DataFrame,
    *,
    county_label: str,
    county_code: str,
) -> list[dict]:
    """One workbook per school with items: its errors, warnings and the groups holding one of
    its records (other schools' records of a group shown as counterparts)."""
    schools = county_items[["school_code", "school_name"]].astype("string").fillna("")
    names = schools.drop_duplicates("school_code").set_index("school_code")["school_name"]
    school_items = county_items.assign(_school=schools["school_code"].to_numpy())
    item_rows = school_items.groupby("_school", sort=True).indices
    problem_schools = school_of_problem[rows_here]
    own = block["_own"].to_numpy(dtype=bool)
    block_school = block["school_code"].astype("string").fillna("").to_numpy()
    target = tables.make_dirs(folder / SCHOOLS_FOLDER)
    entries = []
    for school, positions in item_rows.items():
        mine = own & (block_school == school)
        groups = pd.unique(block["group_id"].to_numpy()[mine])
        in_groups = block["group_id"].isin(groups).to_numpy(dtype=bool)
        school_block = block[in_groups].assign(_own=mine[in_groups]).reset_index(drop=True)
        rows = rows_here[problem_schools == school]
        name = str(names.get(school, ""))
        path = target / f"{school_file_stem(school, name)}.xlsx"
        counts = lists.write(
            path,
            rows,
            school_block,
            school_items.iloc[positions],
            label=f"{name or UNKNOWN_SCHOOL}（{school or '无标识码'}）· {county_label}",
            county_code=county_code,
            records=0,
            school=True,
        )
        entries.append(
            tables.file_entry(lists.run_dir, path, counts["problem_rows"] + len(school_block))
        )
    return entries


def iter_county_workbooks(run_dir: Path) -> Iterator[Path]:
    """Every county workbook of a run folder."""
    yield from sorted(Path(run_dir).glob("counties/*/*_问题学籍清单.xlsx"))


def iter_school_workbooks(run_dir: Path, county_code: str = "*") -> Iterator[Path]:
    """Every school workbook of a run folder (of one county, if given)."""
    yield from sorted(Path(run_dir).glob(f"counties/{county_code}/{SCHOOLS_FOLDER}/*.xlsx"))
