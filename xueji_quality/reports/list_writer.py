"""Writing one list workbook, a county's or a school's, from its rows shaped as arrays
(:class:`ListWriter`), the whole of a list longer than the cap beside it
(:mod:`xueji_quality.reports.list_overflow`), and the per-school workbooks of a county under
``counties/<code>/schools/``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from xueji_quality import workbook
from xueji_quality.reports import tables
from xueji_quality.reports.about_sheet import CodeTable, code_table
from xueji_quality.reports.county_rows import duplicate_sheet_columns
from xueji_quality.reports.county_totals import item_figures
from xueji_quality.reports.county_workbook import write_county_workbook
from xueji_quality.reports.list_files import SCHOOLS_FOLDER, UNKNOWN_SCHOOL, school_file_stem
from xueji_quality.reports.list_overflow import LIST_CAP_ROWS, shown_rows, write_full_list


@dataclass(frozen=True)
class ListSettings:
    """What every list of a run shares. ``list_cap``: rows of one list a workbook shows (None:
    all, continued on more sheets beyond Excel's limit)."""

    run_dir: Path
    province: str
    run_date: date
    rule_catalogue: pd.DataFrame
    run_id: str
    mask_ids: bool = False
    show_status: bool = False
    list_cap: int | None = LIST_CAP_ROWS
    # 说明's code table, when laid out already (once per run rather than once per county).
    codes: CodeTable | None = None


class ListWriter:
    """Writes lists (a county's or a school's) of one run; the code table of 说明 is laid out
    once for all of them."""

    def __init__(self, settings: ListSettings) -> None:
        self.settings = settings
        self.codes = settings.codes or code_table(settings.rule_catalogue)

    def write(
        self,
        path: Path,
        error_columns: list[np.ndarray],
        warning_columns: list[np.ndarray],
        block: pd.DataFrame,
        list_items: pd.DataFrame,
        *,
        label: str,
        county_code: str,
        records: int,
        school: bool = False,
    ) -> tuple[dict, list[dict]]:
        """Write the workbook (and the whole of any list too long for it); return its counts
        (see :func:`write_county_reports`) and the entries of the files beside it."""
        settings = self.settings
        own = block["_own"].to_numpy(dtype=bool)
        errors, warnings = len(error_columns[0]), len(warning_columns[0])
        counts = {
            "records": records,
            "problem_rows": errors + warnings,
            "error_rows": errors,
            "warning_rows": warnings,
            "duplicate_rows": int(own.sum()),
            "counterpart_rows": int((~own).sum()),
            **item_figures(list_items),
        }
        duplicate_layout = workbook.duplicate_columns(settings.show_status)
        duplicate_columns = duplicate_sheet_columns(
            block, settings.mask_ids, settings.show_status, county_code if school else None
        )
        group_ids = duplicate_columns[workbook.position(duplicate_layout, "group_id")]
        lists = [
            (workbook.PROBLEM_SHEET, workbook.problem_columns(settings.show_status), error_columns),
            (workbook.DUPLICATE_SHEET, duplicate_layout, duplicate_columns),
            (workbook.WARNING_SHEET, workbook.WARNING_COLUMNS, warning_columns),
        ]
        shown_lists, full_lists, entries = [], [], []
        for sheet, layout, columns in lists:
            rows = len(columns[0])
            groups = group_ids if sheet == workbook.DUPLICATE_SHEET else None
            shown = shown_rows(rows, settings.list_cap, groups)
            if shown < rows:
                note, files = write_full_list(settings.run_dir, path, sheet, layout, columns, shown)
                full_lists.append(note)
                entries += files
                columns = [c[:shown] for c in columns]
            shown_lists.append(columns)
        shown_errors, shown_duplicates, shown_warnings = shown_lists
        write_county_workbook(
            path,
            shown_errors,
            shown_duplicates,
            shown_warnings,
            list_items,
            counts,
            county_label=label,
            province=settings.province,
            run_date=settings.run_date,
            codes=self.codes,
            show_status=settings.show_status,
            run_id=settings.run_id,
            county_code=county_code,
            school=school,
            duplicate_other=~own[: len(shown_duplicates[0])],
            full_lists=full_lists,
            list_cap=settings.list_cap,
        )
        return counts, entries


def write_school_workbooks(
    lists: ListWriter,
    folder: Path,
    error_columns: list[np.ndarray],
    warning_columns: list[np.ndarray],
    block: pd.DataFrame,
    county_items: pd.DataFrame,
    *,
    county_label: str,
    county_code: str,
) -> list[dict]:
    """One workbook per school with items: its errors, warnings and the groups holding one of
    its records (other schools' records of a group shown as counterparts)."""
    settings = lists.settings
    error_schools = error_columns[
        workbook.position(workbook.problem_columns(settings.show_status), "school_code")
    ]
    warning_schools = warning_columns[workbook.position(workbook.WARNING_COLUMNS, "school_code")]
    schools = county_items[["school_code", "school_name"]].astype("string").fillna("")
    names = schools.drop_duplicates("school_code").set_index("school_code")["school_name"]
    school_items = county_items.assign(_school=schools["school_code"].to_numpy())
    item_rows = school_items.groupby("_school", sort=True).indices
    own = block["_own"].to_numpy(dtype=bool)
    block_school = block["school_code"].astype("string").fillna("").to_numpy()
    block_groups = block["group_id"].to_numpy()
    target = tables.make_dirs(folder / SCHOOLS_FOLDER)
    entries = []
    for school, positions in item_rows.items():
        mine = own & (block_school == school)
        in_groups = block["group_id"].isin(pd.unique(block_groups[mine])).to_numpy(dtype=bool)
        school_block = block[in_groups].assign(_own=mine[in_groups]).reset_index(drop=True)
        errors = error_schools == school
        warnings = warning_schools == school
        name = str(names.get(school, ""))
        path = target / f"{school_file_stem(school, name)}.xlsx"
        counts, beside = lists.write(
            path,
            [c[errors] for c in error_columns],
            [c[warnings] for c in warning_columns],
            school_block,
            school_items.iloc[positions],
            label=f"{name or UNKNOWN_SCHOOL}（{school or '无标识码'}）· {county_label}",
            county_code=county_code,
            records=0,
            school=True,
        )
        entries.append(
            tables.file_entry(settings.run_dir, path, counts["problem_rows"] + len(school_block))
        )
        entries += beside
    return entries
