"""What a run makes of the counties' answers: each problem's status, what is no longer listed,
and each county's progress since the last run.

Status of an item found by this run (see :mod:`ledger` for where it is kept):

- 新增: never listed before;
- 已解决 before and found again → 重新出现;
- the latest answer given on a workbook of a run since the item was last (re)opened decides:
  佐证 → 已佐证 while the item's fingerprint equals the one the answer was given against, else
  重新出现 (a record changed: the evidence no longer covers it); 变更 / 删除 → 已答复待修正
  (the county says it acted, the export still shows the problem);
- no such answer → 未处理, or 重新出现 again if it was re-opened and nobody has answered since.

An item listed by the last recorded run and not found now becomes 已解决.

A duplicate group is answered record by record (保留 / 删除 / 变更 / 佐证); the latest answer to
each of its records since the group was (re)opened counts, whichever county gave it, and together
they make the group's answer:

- a record 删除 or 变更 → the group's answer is that (the latest of them): somebody acted, and the
  group is 已答复待修正 while the export still shows it;
- else a record 佐证 (its records are different students) → 佐证, judged against the group's
  fingerprint as above;
- else only 保留 (or nothing): nobody acted yet, the group stays 未处理 (or 重新出现): keeping one
  registration settles nothing until the other is removed or corrected.

A group answered as a whole (a list written before answers were per record) counts as the answer
of one record. The importer has already refused a file whose answers to one group contradict each
other.

What 佐证 does: a 佐证'd duplicate group or warning is dropped from the lists (counted as
suppressed) while its records are unchanged. A 佐证'd *error* stays listed, marked 已佐证: a clerk's
evidence that an ID number is right despite a failed check character, or that a required field may
stay empty, cannot make the record pass the Ministry's checks, so the province keeps seeing it.

A cross-county duplicate group is one problem with one status in every county it touches. Each
county's records of the group are its items (:mod:`xueji_quality.reports.county_totals`), so the
statuses table has a row per problem row and per record of a group, and every figure of the
progress table counts items as the county lists do. Warnings need no answer: the status columns
of the progress table count errors only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from xueji_quality import schema
from xueji_quality.answers import identity, ledger, ledger_state
from xueji_quality.text_sets import is_in

PROGRESS_COLUMNS: tuple[str, ...] = (
    "合计",
    "错误合计",
    "警告",
    "新增",
    "未处理",
    "已答复待修正",
    "重新出现",
    "已佐证",
    "不再列出",
    "本次已答复",
    "本次已解决",
    "最久未处理天数",
    "毕业年级·新增",
    "毕业年级·未处理",
    "毕业年级·最久未处理天数",
)
# Items a county still has to act on.
OPEN_STATUSES: tuple[str, ...] = (
    ledger.NEW,
    ledger.OPEN,
    ledger.REOPENED,
    ledger.ANSWERED_NOT_FIXED,
)


@dataclass
class LedgerResult:
    """What :func:`apply_ledger` found; :func:`record_run` writes it once the run is published.

    problems / duplicates: the rows still to be listed, with ``problem_key`` and ``status`` (and
    ``member`` for duplicate rows); statuses: one row per item found, listed or not (a problem
    row, or a record of a group with its county), with problem_key, county_code, kind, severity,
    status, listed …;
    progress: one row per county (区县代码 and :data:`PROGRESS_COLUMNS`); counts: for the manifest.
    Unpacks as ``problems, duplicates, statuses, counts``.
    """

    out_root: Path
    ledger_file: Path
    run_id: str
    run_date: date
    province: str | None
    problems: pd.DataFrame
    duplicates: pd.DataFrame
    statuses: pd.DataFrame
    progress: pd.DataFrame
    counts: dict
    items: pd.DataFrame = field(repr=False)
    resolved: pd.DataFrame = field(repr=False)
    # When the ledger was read: answers imported later count as "since" this run in the next.
    read_at: str = ""

    def __iter__(self):
        return iter((self.problems, self.duplicates, self.statuses, self.counts))


def _graduating(roster: pd.DataFrame, record_ids: pd.Series) -> np.ndarray:
    """Whether each record's first roster row is in a graduating grade (a record the roster
    lacks is not)."""
    levels = roster["grade_level"] if "grade_level" in roster.columns else pd.Series(dtype="Int8")
    flags = levels.isin(schema.GRADUATING_LEVELS).fillna(False).astype(bool).to_numpy()
    return np.r_[flags, False][identity.roster_rows(roster, record_ids)]


def _item_rows(
    problems: pd.DataFrame, duplicates: pd.DataFrame, roster: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Keyed problems, keyed duplicates, and one row per item with its facts."""
    problems = problems.reset_index(drop=True)
    duplicates = duplicates.reset_index(drop=True)
    # Both tables' records looked up in one pass over the roster.
    graduating = _graduating(
        roster, pd.concat([problems["record_id"], duplicates["record_id"]], ignore_index=True)
    )
    p_keys = identity.problem_keys(problems, roster)
    g_keys = identity.group_keys(duplicates, roster)
    problems = problems.assign(problem_key=p_keys["problem_key"])
    duplicates = duplicates.assign(problem_key=g_keys["problem_key"], member=g_keys["member"])
    p_items = pd.DataFrame(
        {
            "problem_key": p_keys["problem_key"],
            "county_code": problems["county_code"].astype("string"),
            "kind": "P",
            "rule": problems["rule"].astype("string"),
            "field": problems["field"].astype("string"),
            "severity": problems["severity"].astype("string"),
            "fingerprint": p_keys["fingerprint"],
            "graduating": graduating[: len(problems)],
        }
    )
    g_items = pd.DataFrame(
        {
            "problem_key": g_keys["problem_key"],
            "county_code": duplicates["county_code"].astype("string"),
            "kind": "D",
            "rule": duplicates["dup_class"].astype("string"),
            "field": pd.Series(pd.NA, index=duplicates.index, dtype="string"),
            "severity": "E",
            "fingerprint": g_keys["fingerprint"],
            "graduating": graduating[len(problems) :],
        }
    )
    # One item per record of a group, in the record's county.
    g_items = g_items.dropna(subset=["county_code"])
    # An empty table leaves the other's column types alone (pandas is changing how concat
    # treats empty or all-missing entries).
    tables = [t for t in (p_items, g_items) if len(t)] or [p_items]
    per_county = pd.concat(tables, ignore_index=True)
    per_county["kind"] = per_county["kind"].astype("string")
    per_county["severity"] = per_county["severity"].astype("string")
    return problems, duplicates, per_county


class _Distinct:
    """A text column as numbers of its distinct values, so a test of the values is made once
    per distinct value, not per row."""

    def __init__(self, values: pd.Series) -> None:
        self.numbers, found = pd.factorize(values.astype("string"))
        self.values = np.asarray(found, dtype=object)

    def missing(self) -> np.ndarray:
        return self.numbers < 0

    def among(self, *wanted: str) -> np.ndarray:
        """Rows whose value is one of ``wanted`` (a missing value is none of them)."""
        return np.r_[np.isin(self.values, list(wanted)), False][self.numbers]


def decide_status(items: pd.DataFrame) -> pd.Series:
    """Status per item from previous_status, action, fingerprint, answered_fingerprint."""
    previous, action = _Distinct(items["previous_status"]), _Distinct(items["action"])
    proved = action.among("佐证")
    # Fingerprints matter only where the answer is 佐证: only those rows are compared.
    rows = np.flatnonzero(proved)
    same = np.zeros(len(items), dtype=bool)
    same[rows] = (
        (
            items["fingerprint"].iloc[rows].astype("string")
            == items["answered_fingerprint"].iloc[rows].astype("string")
        )
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    status = np.select(
        [
            previous.missing(),
            previous.among(ledger.RESOLVED),
            proved & same,
            proved,
            action.among("变更", "删除"),
            previous.among(ledger.REOPENED),
        ],
        [
            ledger.NEW,
            ledger.REOPENED,
            ledger.CONFIRMED,
            ledger.REOPENED,
            ledger.ANSWERED_NOT_FIXED,
            ledger.REOPENED,
        ],
        ledger.OPEN,
    )
    return pd.Series(status, index=items.index, dtype="string")


def apply_ledger(
    out_root: Path,
    run_id: str,
    run_date: date,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    roster: pd.DataFrame,
    *,
    province: str | None = None,
    ledger_file: Path | None = None,
    counties: list[str] | None = None,
) -> LedgerResult:
    """Key every problem and group, give it its status, drop what a county proved (see module).

    Pass the tables of the whole export. ``counties``: the run covers only these counties (an
    on-demand run), so only their items can be found gone (已解决); None = the whole province.
    Reads the ledger only; nothing is written until :func:`record_run`.
    """
    path = ledger.ledger_path(out_root, ledger_file)
    problems, duplicates, per_county = _item_rows(problems, duplicates, roster)
    connection = ledger.connect(path)
    read_at = datetime.now().astimezone().isoformat(timespec="microseconds")
    try:
        known = ledger_state.known_problems(connection)
        previous_run = ledger.last_run(connection)
        answered = ledger.read_frame(
            connection,
            "SELECT a.county_code, COUNT(DISTINCT a.key || '|' || IFNULL(a.member, ''))"
            " AS answered FROM answers a"
            " JOIN imports i ON i.id = a.import_id WHERE i.imported_at > ?"
            " GROUP BY a.county_code",
            (previous_run["recorded_at"] if previous_run else "",),
        )
        gone = known[
            (known["previous_status"] != ledger.RESOLVED)
            & ~known["problem_key"].isin(per_county["problem_key"])
        ]
        # Only the keys of the run's counties can be found gone. When most of the ledger is
        # missing from the run (a run of some counties), those keys are found from the counties'
        # side, one pass over the ledger's (key, county) table, instead of looking up the
        # counties of every key of the other counties.
        if counties is not None and 2 * len(gone) > len(known):
            in_scope = ledger_state.keys_of_counties(connection, counties)
            gone = gone[is_in(gone["problem_key"], in_scope).to_numpy()]
        counties_of = ledger_state.counties_of(connection, gone["problem_key"])
    finally:
        connection.close()

    items = per_county.drop_duplicates("problem_key").drop(columns=["county_code", "graduating"])
    items = items.merge(known, on="problem_key", how="left")
    items["status"] = decide_status(items)
    items["first_seen_date"] = items["first_seen_date"].fillna(run_date.isoformat())
    # Re-opened now: the answers given before no longer count for it.
    items["reopen"] = (items["status"] == ledger.REOPENED) & (
        items["previous_status"] != ledger.REOPENED
    ).fillna(True)
    items["suppressed"] = (items["status"] == ledger.CONFIRMED) & (
        (items["kind"] == "D") | (items["severity"] == "W")
    )

    status_of = items.set_index("problem_key")["status"]
    suppressed_keys = items.loc[items["suppressed"], "problem_key"]
    listed_problems = problems[~problems["problem_key"].isin(suppressed_keys)].reset_index(
        drop=True
    )
    listed_problems["status"] = listed_problems["problem_key"].map(status_of).astype("string")
    listed_duplicates = duplicates[~duplicates["problem_key"].isin(suppressed_keys)].reset_index(
        drop=True
    )
    listed_duplicates["status"] = listed_duplicates["problem_key"].map(status_of).astype("string")

    # Item n is the n-th key to appear in per_county (drop_duplicates and left merges keep that
    # order): each row's item is its key's number, with no join on the text. The key column
    # keeps the type the items' key has from the merges with the ledger's tables.
    item_of_row = pd.factorize(per_county["problem_key"])[0]
    statuses = per_county.assign(
        problem_key=per_county["problem_key"].astype(items["problem_key"].dtype),
        **{
            name: items[name].array.take(item_of_row)
            for name in ("status", "suppressed", "first_seen_date")
        },
    )
    statuses["listed"] = ~statuses["suppressed"]

    if counties is not None:
        in_scope = counties_of.loc[counties_of["county_code"].isin(counties), "problem_key"]
        gone = gone[gone["problem_key"].isin(in_scope)]
    resolved = gone[["problem_key"]].merge(counties_of, on="problem_key", how="left")

    progress = _progress(statuses, resolved, answered, run_date)
    by_status = items["status"].value_counts()
    counts = {
        "ledger": str(path),
        "items": len(statuses),
        "problem_keys": len(items),
        "suppressed": int(items["suppressed"].sum()),
        "suppressed_duplicate_groups": int((items["suppressed"] & (items["kind"] == "D")).sum()),
        "suppressed_warnings": int((items["suppressed"] & (items["kind"] == "P")).sum()),
        "suppressed_problem_rows": int(len(problems) - len(listed_problems)),
        "suppressed_duplicate_rows": int(len(duplicates) - len(listed_duplicates)),
        "by_status": {s: int(by_status.get(s, 0)) for s in ledger.STATUSES},
        "resolved_since_last_run": int(len(gone)),
        "previous_run": previous_run["run_id"] if previous_run else None,
    }
    counts["by_status"][ledger.RESOLVED] = counts["resolved_since_last_run"]
    counts["progress"] = progress_totals(progress)
    return LedgerResult(
        out_root=Path(out_root),
        ledger_file=path,
        run_id=run_id,
        run_date=run_date,
        province=province,
        problems=listed_problems,
        duplicates=listed_duplicates,
        statuses=statuses.reset_index(drop=True),
        progress=progress,
        counts=counts,
        items=items,
        resolved=gone[["problem_key"]].reset_index(drop=True),
        read_at=read_at,
    )


def _county_numbers(
    statuses: pd.DataFrame, resolved: pd.DataFrame, answered: pd.DataFrame
) -> tuple[pd.Index, np.ndarray]:
    """Every county of the three tables, sorted, and each status row's place among them (-1:
    no county)."""
    county = _Distinct(statuses["county_code"])
    others = (set(table["county_code"].dropna()) for table in (resolved, answered))
    counties = pd.Index(
        sorted(set(county.values).union(*others)), dtype="string", name="county_code"
    )
    return counties, np.r_[counties.get_indexer(county.values), -1][county.numbers]


def _ages(first_seen: pd.Series, run_date: date) -> np.ndarray:
    """Days from each first_seen_date to the run date (NaN where it is not a date)."""
    # Each distinct date is parsed once, in the order the column gives them.
    numbers, found = pd.factorize(first_seen)
    days = (pd.Timestamp(run_date) - pd.to_datetime(pd.Series(found), errors="coerce")).dt.days
    return np.r_[days.to_numpy(dtype=float), np.nan][numbers]


def _progress(
    statuses: pd.DataFrame, resolved: pd.DataFrame, answered: pd.DataFrame, run_date: date
) -> pd.DataFrame:
    """One row per county: 区县代码 and PROGRESS_COLUMNS (see the module docstring)."""
    counties, county = _county_numbers(statuses, resolved, answered)
    table = pd.DataFrame(index=counties)
    age = _ages(statuses["first_seen_date"], run_date)
    kind, severity = _Distinct(statuses["kind"]), _Distinct(statuses["severity"])
    # Only a warning of a problem row is no error; a row whose kind or severity is missing is.
    error = ~(~kind.missing() & ~kind.among("D") & severity.among("W"))
    listed = statuses["listed"].to_numpy(dtype=bool)
    suppressed = statuses["suppressed"].to_numpy(dtype=bool)
    graduating = statuses["graduating"].to_numpy(dtype=bool)
    status = _Distinct(statuses["status"])
    open_items = error & status.among(*OPEN_STATUSES)

    def count(rows: np.ndarray) -> np.ndarray:
        return np.bincount(county[rows & (county >= 0)], minlength=len(counties))

    def oldest(rows: np.ndarray) -> np.ndarray:
        # A county none of whose rows has an age counts 0.
        rows = rows & (county >= 0) & ~np.isnan(age)
        most = np.full(len(counties), -np.inf)
        np.maximum.at(most, county[rows], age[rows])
        return np.where(np.isinf(most), 0, most)

    table["合计"] = count(listed)
    table["错误合计"] = count(listed & error)
    table["警告"] = count(listed & ~error)
    table["新增"] = count(error & status.among(ledger.NEW))
    table["未处理"] = count(open_items)
    table["已答复待修正"] = count(error & status.among(ledger.ANSWERED_NOT_FIXED))
    table["重新出现"] = count(error & status.among(ledger.REOPENED))
    table["已佐证"] = count(error & status.among(ledger.CONFIRMED))
    table["不再列出"] = count(suppressed)
    table["本次已答复"] = (
        answered.set_index("county_code")["answered"].reindex(table.index).fillna(0)
        if len(answered)
        else 0
    )
    gone = resolved.dropna(subset=["county_code"])
    table["本次已解决"] = (
        gone.groupby("county_code")["items"].sum().reindex(table.index, fill_value=0)
        if len(gone)
        else 0
    )
    table["最久未处理天数"] = oldest(open_items)
    table["毕业年级·新增"] = count(error & graduating & status.among(ledger.NEW))
    table["毕业年级·未处理"] = count(open_items & graduating)
    table["毕业年级·最久未处理天数"] = oldest(open_items & graduating)
    table = table[list(PROGRESS_COLUMNS)].astype("int64")
    table = table.reset_index().rename(columns={"county_code": "区县代码"})
    table["区县代码"] = table["区县代码"].astype("string")
    return table


def progress_totals(progress: pd.DataFrame) -> dict[str, int]:
    """The province's figures of a progress table: sums, and the maximum of the day columns."""
    return {
        column: int(progress[column].max() if column.endswith("天数") else progress[column].sum())
        if len(progress)
        else 0
        for column in PROGRESS_COLUMNS
    }
