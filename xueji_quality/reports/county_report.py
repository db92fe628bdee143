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
A list of more than ``list_cap`` rows (100,000 by default) shows its first rows, and the whole
list goes beside the workbook as CSV and Parquet, which 说明 names
(:mod:`xueji_quality.reports.list_overflow`): a clerk's workbook opens in seconds. Without a cap,
lists longer than a sheet holds continue on 错误学籍(2), 错误学籍(3) …; nothing is truncated.

With ``mask_ids`` the workbook shows an ID number of the standard layout as 440103********123X
(first six, eight stars, last four) and a 学籍号 likewise after its letter; any other value of
those fields (spreadsheet damage such as 4.40106E+17, a digit missing) has every digit starred,
so no part of a number shows whatever form it has. The county's problems.parquet and
duplicates.parquet always keep full values; a whole list beside a workbook shows what its
sheet shows.

With ``per_school`` each school with items also gets a small workbook of its own rows,
``counties/<code>/schools/<学校标识码>_<学校名称>.xlsx``, laid out and answered like the county's
(records of other schools appear there as counterparts, as other counties' do in a county list).

With ``processes`` > 1 the counties' workbooks are written by that many worker processes
(:mod:`xueji_quality.reports.county_files`).

This module decides which counties get a list and what each needs, and writes their files;
:mod:`xueji_quality.reports.county_rows` shapes the rows, :mod:`xueji_quality.reports.list_writer`
writes each workbook and :mod:`xueji_quality.reports.list_files` names the files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from xueji_quality import schema, workbook
from xueji_quality.answers import identity
from xueji_quality.reports import county_files, tables
from xueji_quality.reports.about_sheet import code_table
from xueji_quality.reports.county_files import CountyList, in_processes, write_county_files
from xueji_quality.reports.county_rows import (
    in_contract_order,
    prepare_duplicates,
    prepare_problems,
    problem_values,
)
from xueji_quality.reports.county_totals import problem_items, roster_context
from xueji_quality.reports.list_files import UNKNOWN_COUNTY, county_file_stem, run_id_of
from xueji_quality.reports.list_overflow import LIST_CAP_ROWS
from xueji_quality.reports.list_writer import ListSettings
from xueji_quality.standards import gb2260
from xueji_quality.text_sets import is_in

__all__ = ["split_by_county", "write_county_reports"]


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
    return split_by_counties(roster, problems, duplicates, [[county] for county in counties])


def county_groups(counties: list[str], records: Mapping[str, int], groups: int) -> list[list[str]]:
    """``counties`` shared among at most ``groups`` groups of about equal records (each county
    to the group with fewest so far, largest county first); groups and the counties in each
    keep the given order."""
    groups = max(1, min(groups, len(counties)))
    if groups == 1:
        return [list(counties)]
    shares: list[list[str]] = [[] for _ in range(groups)]
    totals = [0] * groups
    for county in sorted(counties, key=lambda c: -int(records.get(c, 0))):
        smallest = min(range(groups), key=lambda g: (totals[g], len(shares[g])))
        shares[smallest].append(county)
        totals[smallest] += int(records.get(county, 0))
    order = {county: i for i, county in enumerate(counties)}
    shares = [sorted(share, key=order.__getitem__) for share in shares]
    return sorted(shares, key=lambda share: order[share[0]])


def split_by_counties(
    roster: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    groups: list[list[str]],
) -> list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """:func:`split_by_county` for groups of counties: each group's own roster rows, problem
    rows, the rows of the duplicate groups touching any of its counties (each once) and the
    roster rows of those groups' records from counties outside it."""
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
    for group in groups:
        dup_rows = [group_rows.get(county, empty) for county in group]
        county_duplicates = duplicates.iloc[np.unique(np.concatenate([empty, *dup_rows]))]
        outside = ~county_duplicates["county_code"].isin(group).fillna(False)
        others = county_duplicates.loc[outside.to_numpy(dtype=bool), "record_id"]
        other_rows = member_at.reindex(others.unique()).dropna().to_numpy(dtype=np.int64)
        own = [by_county.iloc[slice(*own_rows.get(county, (0, 0)))] for county in group]
        if len(other_rows):
            own.append(member_roster.iloc[np.sort(other_rows)])
        county_roster = own[0] if len(own) == 1 else pd.concat(own)
        own_problem_rows = [own_problems.get(county, empty) for county in group]
        slices.append(
            (
                county_roster,
                problems.iloc[np.sort(np.concatenate([empty, *own_problem_rows]))],
                county_duplicates,
            )
        )
    return slices


def _duplicate_positions(duplicates: pd.DataFrame) -> dict[str, np.ndarray]:
    """Rows of the groups touching each county, in table order."""
    touching = duplicates[["group_id", "county_code"]].dropna().drop_duplicates()
    by_group = (
        duplicates[["group_id"]]
        .assign(row=np.arange(len(duplicates)))
        .merge(touching, on="group_id")
    )
    rows = by_group.groupby("county_code", observed=True, sort=False)["row"]
    return {str(code): np.sort(found.to_numpy()) for code, found in rows}


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
    processes: int = 1,
    list_cap: int | None = LIST_CAP_ROWS,
    on_written: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Write counties/<code>/… for every county (or the given ones); one dict per county.

    ``records`` (records per county code) gives the counties' sizes when ``roster`` holds only
    the records the problems and groups name. ``per_school``: also one workbook per school with
    items, under ``counties/<code>/schools/``. ``processes``: worker processes writing the
    counties' workbooks at once (:mod:`xueji_quality.reports.county_files`). ``list_cap``: rows
    of one list a workbook shows; a longer list's whole goes beside it as CSV and Parquet
    (:mod:`xueji_quality.reports.list_overflow`; None: no cap). ``on_written``: called with each
    county's dict as soon as its files are written (a run's progress).

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
    # Every county a list names (its own and its groups' other counties), named at once.
    all_codes = sorted(
        set(targets) | set(duplicates["county_code"].dropna().astype(str).unique().tolist())
    )
    found = gb2260.county_names(pd.Series(all_codes, dtype="string")).tolist()
    name_of = dict(zip(all_codes, found, strict=True))
    names = [name_of[code] for code in targets]
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
    roster = roster[is_in(roster["record_id"], needed).to_numpy()]
    labels = {
        c: f"{name_of[c] or UNKNOWN_COUNTY}（{c}）"
        for c in duplicates["county_code"].dropna().astype(str).unique().tolist()
    }
    labels.update(county_labels)

    context = roster_context(roster)
    items = problem_items(context, problems, duplicates)
    item_positions = _positions(items)
    sorted_problems = prepare_problems(problems, context)
    problem_positions = _positions(sorted_problems)
    values = problem_values(sorted_problems, mask_ids, show_status)
    error_columns = in_contract_order(values, workbook.problem_columns(show_status))
    warning_columns = in_contract_order(values, workbook.WARNING_COLUMNS)
    del values
    is_warning = (sorted_problems["severity"] == "W").fillna(False).to_numpy(dtype=bool)
    # Converted once: each county's problems.parquet is then a take of Arrow buffers, which a
    # worker receives as buffers too.
    problem_table = tables.arrow_table(sorted_problems, schema.PROBLEM_COLUMNS)
    dup_frame = prepare_duplicates(duplicates, context)
    dup_positions = _duplicate_positions(dup_frame)
    settings = ListSettings(
        run_dir=run_dir,
        province=province,
        run_date=run_date,
        rule_catalogue=rule_catalogue,
        run_id=run_id,
        mask_ids=mask_ids,
        show_status=show_status,
        list_cap=list_cap,
        codes=code_table(rule_catalogue),
    )
    empty = np.array([], dtype=np.int64)

    def county_list(code: str, name: str) -> CountyList:
        rows_here = problem_positions.get(code, empty)
        warning = is_warning[rows_here]
        error_rows, warning_rows = rows_here[~warning], rows_here[warning]
        return CountyList(
            code=code,
            name=name,
            label=county_labels[code],
            workbook=f"counties/{code}/{stems[code]}_问题学籍清单.xlsx",
            records=int(roster_sizes.get(code, 0)),
            error_columns=[c[error_rows] for c in error_columns],
            warning_columns=[c[warning_rows] for c in warning_columns],
            problems=problem_table.take(pa.array(rows_here, pa.int64())),
            duplicates=dup_frame.iloc[dup_positions.get(code, empty)],
            labels=labels,
            items=items.iloc[item_positions.get(code, empty)],
        )

    def jobs():
        for code, name in zip(targets, names, strict=True):
            tables.make_dirs(run_dir / "counties" / code)
            yield settings, county_list(code, name), per_school

    if len(sorted_problems) + len(dup_frame) < county_files.ROWS_FOR_PROCESSES:
        processes = 1
    written = in_processes(write_county_files, jobs(), processes)
    results = []
    for (code, name), county in zip(zip(targets, names, strict=True), written, strict=True):
        counts = county["counts"]
        files = [*county["files"], *county["tables"], *county["school_files"]]
        results.append(
            {
                "county_code": code,
                "county_name": name,
                "files": files,
                **counts,
                "records_clean": counts["records"] - counts["records_with_problems"],
                "school_workbooks": sum(
                    entry["path"].endswith(".xlsx") for entry in county["school_files"]
                ),
            }
        )
        if on_written is not None:
            on_written(results[-1])
    return results
