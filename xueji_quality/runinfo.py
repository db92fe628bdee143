"""Row conservation and the run's manifest contents.

Every run proves that nothing was lost: rows read = rows staged + rows quarantined, and every staged
row is either named in a problem or duplicate row of its county or counted clean. The figures go
into manifest.json; a run whose figures do not add up fails instead of publishing.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from datetime import date, datetime
from importlib import metadata

import pandas as pd

from xueji_quality.errors import ConservationError

PACKAGES = (
    "xueji-quality",
    "pandas",
    "pyarrow",
    "great-expectations",
    "prefect",
    "recordlinkage",
    "jellyfish",
    "pypinyin",
    "python-stdnum",
    "xlsxwriter",
)


def conservation(
    rows_read: int,
    roster: pd.DataFrame,
    quarantine: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    county_reports: list[dict],
    in_scope: pd.DataFrame | None = None,
    *,
    rows_staged: int | None = None,
    rows_in_scope: int | None = None,
    record_ids_unique: bool | None = None,
) -> dict:
    """Counts that must add up; raises ConservationError when they do not.

    ``county_reports`` are the entries the county lists were written with: each county's staged
    records must equal the records its list names plus those it counts clean, and together the
    lists must cover every row of ``in_scope`` (the whole roster unless the run was narrowed to
    some counties or schools).

    A staged run is never read whole: ``roster`` then holds the records the problems and groups
    name, looked up in the staged files by record id (so a named record the files lack still
    counts as unknown), and ``rows_staged``, ``rows_in_scope`` and ``record_ids_unique`` (checked
    over every staged id when staging) give the rest.
    """
    staged_ids = roster["record_id"]
    in_scope = roster if in_scope is None else in_scope
    staged = len(roster) if rows_staged is None else int(rows_staged)
    scope = len(in_scope) if rows_in_scope is None else int(rows_in_scope)
    unique = bool(staged_ids.is_unique) if record_ids_unique is None else record_ids_unique
    flagged = pd.concat([problems["record_id"], duplicates["record_id"]]).drop_duplicates()
    unknown = int((~flagged.isin(staged_ids)).sum())
    listed = sum(entry["records_with_problems"] for entry in county_reports)
    clean = sum(entry["records_clean"] for entry in county_reports)
    covered = sum(entry["records"] for entry in county_reports)
    figures = {
        "rows_read": int(rows_read),
        "rows_staged": staged,
        "rows_quarantined": len(quarantine),
        "rows_in_scope": scope,
        "rows_in_county_lists": int(listed),
        "rows_clean": int(clean),
        "record_ids_unique": unique and bool(staged_ids.is_unique),
        "unknown_record_ids_in_reports": unknown,
    }
    figures["holds"] = (
        figures["rows_read"] == figures["rows_staged"] + figures["rows_quarantined"]
        and covered == scope == listed + clean
        and figures["record_ids_unique"]
        and unknown == 0
    )
    if not figures["holds"]:
        raise ConservationError(
            f"行数不守恒：读入 {figures['rows_read']} 行，入库 {figures['rows_staged']} 行，"
            f"隔离 {figures['rows_quarantined']} 行；区县清单覆盖 {covered} 行"
            f"（有问题 {listed}，无问题 {clean}），应为 {scope} 行；"
            f"记录号唯一：{figures['record_ids_unique']}；报告中未入库的记录号 {unknown} 个"
        )
    return figures


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["python"] = platform.python_version()
    return found


def totals(problems: pd.DataFrame, duplicates: pd.DataFrame) -> dict:
    """Problem rows per rule and severity, duplicate groups and records per class."""
    by_rule = problems.groupby("rule", observed=True).size().sort_index()
    by_severity = problems.groupby("severity", observed=True).size().sort_index()
    groups = duplicates.drop_duplicates("group_id").groupby("dup_class", observed=True).size()
    records = duplicates.groupby("dup_class", observed=True).size()
    return {
        "problems_by_rule": {str(k): int(v) for k, v in by_rule.items()},
        "problems_by_severity": {str(k): int(v) for k, v in by_severity.items()},
        "duplicate_groups_by_class": {str(k): int(v) for k, v in groups.items()},
        "duplicate_records_by_class": {str(k): int(v) for k, v in records.items()},
    }


def run_manifest(
    *,
    run_id: str,
    province: str,
    run_date: date,
    files: list[dict],
    figures: Mapping,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    normalizations: pd.DataFrame | Mapping[str, int],
    counties: list[dict],
    link_stats: Mapping,
    timings: Mapping[str, float],
    parameters: Mapping,
) -> dict:
    """The manifest's contents. ``normalizations``: the table of normalised values, or their
    counts by "field:kind" (what a staged run keeps)."""
    if isinstance(normalizations, pd.DataFrame):
        norm_counts = normalizations.groupby(["field", "kind"], observed=True).size()
        normalized = {f"{f}:{k}": int(v) for (f, k), v in norm_counts.items()}
    else:
        normalized = {k: int(v) for k, v in normalizations.items()}
    return {
        "run_id": run_id,
        "province": province,
        "run_date": run_date.isoformat(),
        "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "parameters": dict(parameters),
        "inputs": files,
        "rows": dict(figures),
        "totals": totals(problems, duplicates),
        "normalized_values": normalized,
        "linkage": dict(link_stats),
        "counties": counties,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "versions": versions(),
    }
