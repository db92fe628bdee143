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
value is ever turned into a formula, number or link. Longer lists than a sheet holds continue on
错误学籍(2), 错误学籍(3) … and nothing is truncated. With ``mask_ids`` the workbook shows ID
numbers as 440103********123X (first six, eight stars, last four) and 学籍号 likewise; the Parquet
files always keep the full values.

The sheets, their columns, the answer actions and the hidden marker are the workbook contract
(:mod:`xueji_quality.workbook`), shared with the answer importer. This module shapes the rows
(which rows each county gets, in which order, what each column shows) as one array per contract
column; :mod:`xueji_quality.reports.county_sheets` writes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from xueji_quality import regions, schema, workbook
from xueji_quality.answers import identity
from xueji_quality.reports import tables
from xueji_quality.reports.county_sheets import SEVERITY_LABELS, write_county_workbook
from xueji_quality.reports.summary import DUP_CLASS_LABELS, problem_items, roster_context
from xueji_quality.workbook import DUPLICATE_SHEET, PROBLEM_SHEET

__all__ = [
    "COUNTERPART_NOTE",
    "DUPLICATE_SHEET",
    "PROBLEM_SHEET",
    "county_file_stem",
    "iter_county_workbooks",
    "mask_id_numbers",
    "split_by_county",
    "write_county_reports",
]

# Excel refuses longer cell text.
CELL_MAX_CHARS = 32_767
MASK = "*" * 8
UNKNOWN_COUNTY = "未知区县"
COUNTERPART_NOTE = "外区县记录，仅供核对，由所在区县处理"


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


def _key_and_status(frame: pd.DataFrame, show_status: bool) -> dict[str, np.ndarray]:
    key = frame["problem_key"] if "problem_key" in frame.columns else frame["record_id"]
    values = {"problem_key": _text(key)}
    if show_status:
        status = frame["status"] if "status" in frame.columns else frame["record_id"].where(False)
        values["status"] = _text(status)
    return values


def _in_contract_order(
    values: dict[str, np.ndarray], columns: tuple[workbook.Column, ...]
) -> list[np.ndarray]:
    """One array per contract column, in the contract's order."""
    missing = [column.field for column in columns if column.field not in values]
    if missing:
        raise KeyError(f"no values for workbook columns {missing}")
    return [values[column.field] for column in columns]


def problem_sheet_columns(
    frame: pd.DataFrame, mask_ids: bool, show_status: bool = False
) -> list[np.ndarray]:
    """The 错误学籍 columns as object arrays of str, in the order of
    :func:`xueji_quality.workbook.problem_columns` (状态 before 处理方式 with ``show_status``)."""
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
    values = {
        "school_code": _text(frame["school_code"]),
        "school_name": _text(frame["school_name"]),
        "grade": _text(frame["grade"]),
        "class_name": _text(frame["class_name"]),
        "name": _text(frame["name"]),
        "id_number": _text(id_number),
        "student_no": _text(student_no),
        "record_id": _text(frame["record_id"]),
        "rule": _text(frame["rule"]),
        "severity": _text(frame["severity"].map(SEVERITY_LABELS).fillna(frame["severity"])),
        "field": _text(field_label),
        "value": _text(value),
        "message": _text(frame["message"]),
        "suggestion": _text(frame["suggestion"]),
        "action": blank,
        "note": blank,
        **_key_and_status(frame, show_status),
    }
    return _in_contract_order(values, workbook.problem_columns(show_status))


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
    """The 重复学籍 columns in the order of :func:`xueji_quality.workbook.duplicate_columns`
    (状态 before 处理方式 with ``show_status``); the score column stays float64."""
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
    values = {
        "group_id": _text(block["group_id"]),
        "dup_class": _text(block["dup_class"].map(DUP_CLASS_LABELS).fillna(block["dup_class"])),
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
        "note": notes,
        **_key_and_status(block, show_status),
    }
    return _in_contract_order(values, workbook.duplicate_columns(show_status))


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
            duplicate_sheet_columns(block, mask_ids, show_status),
            county_items,
            counts,
            county_label=county_labels[code],
            province=province,
            run_date=run_date,
            rule_catalogue=rule_catalogue,
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


def iter_county_workbooks(run_dir: Path) -> Iterator[Path]:
    """Every county workbook of a run folder."""
    yield from sorted(Path(run_dir).glob("counties/*/*_问题学籍清单.xlsx"))
