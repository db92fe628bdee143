"""Writing one list workbook, a county's or a school's, from the rows shaped once for all
counties (:class:`ListWriter`), and the per-school workbooks of a county under
``counties/<code>/schools/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xueji_quality.reports import tables
from xueji_quality.reports.county_rows import duplicate_sheet_columns
from xueji_quality.reports.county_totals import item_figures
from xueji_quality.reports.county_workbook import write_county_workbook
from xueji_quality.reports.list_files import SCHOOLS_FOLDER, UNKNOWN_SCHOOL, school_file_stem


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


def write_school_workbooks(
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
