"""Reports of a run: per-county problem lists, the province summary, the manifest, publishing.

The flow calls, in order::

    run_id = new_run_id(out_root, province, run_date)
    staging = staging_dir(out_root, run_id)
    counties = write_county_reports(staging, roster, problems, duplicates, province=..., ...)
    province_files = write_province_outputs(staging, roster, problems, duplicates, quarantine, ...)
    write_manifest(staging, manifest)          # last: it hashes every other file
    publish(staging, out_root, run_id)         # atomic rename, then ``latest``

Output layout of ``<out>/<run_id>/``: ``manifest.json``; ``province/summary.xlsx``,
``province/{problems,duplicates,quarantine}.parquet``; ``counties/<code>/<code>_<name>_问题学籍清单.xlsx``,
``counties/<code>/{problems,duplicates}.parquet`` and, with ``per_school``,
``counties/<code>/schools/<学校标识码>_<学校名称>.xlsx``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from xueji_quality.reports import tables
from xueji_quality.reports.county_report import (
    county_groups,
    split_by_counties,
    split_by_county,
    write_county_reports,
)
from xueji_quality.reports.county_rows import mask_id_numbers
from xueji_quality.reports.county_sheets import SHEET_MAX_ROWS
from xueji_quality.reports.list_files import (
    county_file_stem,
    iter_county_workbooks,
    iter_school_workbooks,
    run_id_of,
)
from xueji_quality.reports.manifest import (
    manifest_totals,
    read_manifest,
    totals_lines,
    verify_files,
    write_manifest,
)
from xueji_quality.reports.publish import (
    STAGING_PREFIX,
    RunLocked,
    clean_stale_staging,
    new_run_id,
    publish,
    run_lock,
    staging_dir,
)
from xueji_quality.reports.summary import (
    PROBLEM_CLASSES,
    problem_class,
    problem_items,
    roster_context,
    write_summary,
)
from xueji_quality.reports.summary_progress import ANSWERED, OPEN, RESOLVED, run_history


def write_province_outputs(
    run_dir: Path,
    roster: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    quarantine: pd.DataFrame,
    *,
    province: str,
    run_date: date,
    progress: pd.DataFrame | None = None,
    records: pd.Series | None = None,
) -> list[dict]:
    """Write province/problems.parquet, duplicates.parquet, quarantine.parquet and summary.xlsx.

    ``roster`` may hold only the records the problems and groups name when ``records`` (records
    per county code) gives the counties' sizes.

    The summary's trend across runs reads the earlier runs under the run folder's parent (the
    output root) and this run's ``progress``.

    Returns their file entries ({path, sha256, rows}); rows of summary.xlsx = county rows.
    """
    run_dir = Path(run_dir)
    run_id = run_id_of(run_dir)
    current = None
    if progress is not None:
        figures = {c: int(progress[c].sum()) for c in (OPEN, ANSWERED, RESOLVED)}
        current = (run_id, run_date.isoformat(), figures)
    history = run_history(run_dir.parent, current)
    folder = tables.make_dirs(run_dir / "province")
    files = [
        tables.write_problems(run_dir, "province/problems.parquet", problems),
        tables.write_duplicates(run_dir, "province/duplicates.parquet", duplicates),
        tables.write_quarantine(run_dir, "province/quarantine.parquet", quarantine),
    ]
    items = problem_items(roster_context(roster), problems, duplicates)
    summary = folder / "summary.xlsx"
    counties = write_summary(
        summary,
        roster,
        problems,
        items,
        quarantine,
        province=province,
        run_date=run_date,
        progress=progress,
        records=records,
        history=history,
        run_id=run_id,
    )
    files.append(tables.file_entry(run_dir, summary, counties))
    return files


__all__ = [
    "county_groups",
    "split_by_counties",
    "split_by_county",
    "STAGING_PREFIX",
    "RunLocked",
    "run_lock",
    "PROBLEM_CLASSES",
    "SHEET_MAX_ROWS",
    "clean_stale_staging",
    "county_file_stem",
    "iter_county_workbooks",
    "iter_school_workbooks",
    "manifest_totals",
    "mask_id_numbers",
    "totals_lines",
    "new_run_id",
    "problem_class",
    "publish",
    "read_manifest",
    "staging_dir",
    "verify_files",
    "write_county_reports",
    "write_manifest",
    "write_province_outputs",
]
