"""Totals per county for a run's overview: list items per problem class beside duplicate groups.

Two different things are counted, and each column's name says which:

- ``问题条数·<类别>``: items of the county's list by the classes of the province summary, counted
  by :func:`xueji_quality.reports.summary.county_table` from the same item table
  (:func:`~xueji_quality.reports.summary.problem_items`): a problem row is one item, and every
  record of the county in a duplicate group is one item. These are the figures of the summary's
  区县汇总 sheet and of the county list's own 汇总 sheet;
- ``重复组数·<类别>``: duplicate groups with at least one member in the county; a group spanning
  two counties counts once in each.

A group of three records in one county is therefore 3 under 问题条数·身份证号重复 and 1 under
重复组数·身份证号重复.
"""

from __future__ import annotations

import pandas as pd

from xueji_quality.reports.summary import (
    DUP_CLASS_LABELS,
    FUZZY_DUPLICATE,
    PROBLEM_CLASSES,
    county_table,
    problem_items,
    roster_context,
)

ITEM_PREFIX = "问题条数·"
GROUP_PREFIX = "重复组数·"
ITEM_COLUMNS: tuple[str, ...] = (*PROBLEM_CLASSES, "错误合计", "合计")
GROUP_CLASSES: tuple[str, ...] = tuple(DUP_CLASS_LABELS.values())


def duplicate_groups_by_county(duplicates: pd.DataFrame) -> pd.DataFrame:
    """Duplicate groups touching each county, per class: county_code and one column per class
    of :data:`GROUP_CLASSES` (groups of an unknown class count as 疑似重复, as their items do)."""
    touching = duplicates.drop_duplicates(["group_id", "county_code"])
    frame = pd.DataFrame(
        {
            "county_code": touching["county_code"].astype("string").fillna(""),
            "group_class": touching["dup_class"].map(DUP_CLASS_LABELS).fillna(FUZZY_DUPLICATE),
        }
    )
    counts = pd.crosstab(frame["county_code"], frame["group_class"]).reindex(
        columns=list(GROUP_CLASSES), fill_value=0
    )
    counts = counts.reset_index()
    counts.columns.name = None
    return counts.astype({c: "int64" for c in GROUP_CLASSES}).astype({"county_code": "string"})


def county_totals(
    roster: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    records: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per county of the province summary, in its order (worst first).

    Columns: 区县代码, 区县名称, 在籍学生数, ``问题条数·<类别>`` for each problem class and
    错误合计 and 合计, then ``重复组数·<类别>`` for 身份证号重复 and 疑似重复. ``roster`` and
    ``records`` (records per county code) as for :func:`~xueji_quality.reports.summary.county_table`.
    """
    items = problem_items(roster_context(roster), problems, duplicates)
    table = county_table(roster, items, records=records)
    table = table[["区县代码", "区县名称", "在籍学生数", *ITEM_COLUMNS]]
    table = table.rename(columns={c: ITEM_PREFIX + c for c in ITEM_COLUMNS})
    groups = duplicate_groups_by_county(duplicates).set_index("county_code")
    codes = table["区县代码"].astype("string")
    for group_class in GROUP_CLASSES:
        found = codes.map(groups[group_class]).fillna(0).astype("int64")
        table[GROUP_PREFIX + group_class] = found.to_numpy()
    return table.reset_index(drop=True)
