"""Every figure a run reports, defined and counted here once.

Three things are counted, each under one name wherever it appears (county 说明 and 汇总, the
province summary's 区县汇总 and 处理进度, the manifest, the command line):

- **问题条目** (an item): one row a county's list carries for one of its own records: a problem
  of a record (an error on 错误学籍 or a warning on 提醒), or one of the county's records in a
  duplicate group (重复学籍; each record is answered on its own). Items fall into the classes
  :data:`PROBLEM_CLASSES`; :data:`ERRORS` (错误合计) are the items of the four error classes, to
  be answered; :data:`WARNINGS` (警告) need no answer; :data:`ITEMS` (合计) is both;
- **涉及学生数**: records of the county with at least one item;
- **重复组**: duplicate groups with a record in the county. A group spanning two counties is one
  group of each county's, and one group of the province.

A group of three records in one county is therefore 3 items (身份证号重复) and 1 group. A
cross-county group's records are items of their own county only, so county figures add up to the
province's, except groups.

Every item falls into exactly one class:

- 身份证号错误: an error (severity E) on the field ``id_number`` (missing, format, check
  character, date inside the number, legacy 15-digit, spreadsheet damage) or saying that a field
  disagrees with the number (``ID_MATCH_RULES``: sex, birth date). The ID *type* code is another
  field;
- 身份证号重复: a record in a ``DUP_ID`` group;
- 疑似重复: a record in a ``DUP_FUZZY`` group;
- 其他字段错误: any other error;
- 警告: any warning (severity W), whatever the field.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xueji_quality import schema
from xueji_quality.standards import gb2260

ID_ERROR = "身份证号错误"
ID_DUPLICATE = "身份证号重复"
FUZZY_DUPLICATE = "疑似重复"
OTHER_ERROR = "其他字段错误"
WARNING = "警告"
PROBLEM_CLASSES: tuple[str, ...] = (ID_ERROR, ID_DUPLICATE, FUZZY_DUPLICATE, OTHER_ERROR, WARNING)
ERROR_CLASSES: tuple[str, ...] = PROBLEM_CLASSES[:4]
DUP_CLASS_LABELS: dict[str, str] = {"DUP_ID": ID_DUPLICATE, "DUP_FUZZY": FUZZY_DUPLICATE}
GRADUATING_PREFIX = "毕业年级·"
# Errors outside the ID_ prefix that the Ministry counts as 身份证号错误: sex or birth date
# disagreeing with the number.
ID_MATCH_RULES: frozenset[str] = frozenset({"SEX_MISMATCH", "BIRTHDATE_MISMATCH"})

# The names of the figures, as every table, sheet and message shows them.
ITEMS = "合计"
ERRORS = "错误合计"
WARNINGS = WARNING
STUDENTS = "涉及学生数"
GROUPS = "重复组数"
RECORDS = "在籍学生数"
ITEM_WORD = "问题条目"

COUNT_COLUMNS: tuple[str, ...] = (
    *PROBLEM_CLASSES,
    ERRORS,
    ITEMS,
    *(GRADUATING_PREFIX + c for c in PROBLEM_CLASSES),
    GRADUATING_PREFIX + ITEMS,
    STUDENTS,
)

ROSTER_CONTEXT_COLUMNS: tuple[str, ...] = (
    "record_id",
    "school_code",
    "school_name",
    "grade",
    "grade_level",
    "class_name",
    "name",
    "id_number",
    "student_no",
)


def problem_class(rules: pd.Series, severities: pd.Series, fields: pd.Series) -> pd.Series:
    """Class of each problem row (see the module docstring)."""
    rules = rules.astype("string").fillna("")
    severities = severities.astype("string").fillna("")
    fields = fields.astype("string").fillna("")
    labels = np.select(
        [
            (severities == "W").to_numpy(dtype=bool),
            ((fields == "id_number") | rules.isin(ID_MATCH_RULES)).to_numpy(dtype=bool),
        ],
        [WARNING, ID_ERROR],
        OTHER_ERROR,
    )
    return pd.Series(labels, index=rules.index, dtype="string")


def roster_context(roster: pd.DataFrame) -> pd.DataFrame:
    """The roster columns a report shows next to a problem, one row per record_id."""
    context = pd.DataFrame(index=roster.index)
    for column in ROSTER_CONTEXT_COLUMNS:
        if column in roster.columns:
            context[column] = roster[column]
        elif column == "grade_level":
            context[column] = pd.array([pd.NA] * len(roster), dtype="Int8")
        else:
            context[column] = pd.array([pd.NA] * len(roster), dtype="string")
    # record_id is unique by contract; keep the first should an export repeat its own key.
    context = context.drop_duplicates("record_id")
    context["graduating"] = context["grade_level"].isin(schema.GRADUATING_LEVELS).to_numpy(bool)
    return context.reset_index(drop=True)


def problem_items(
    context: pd.DataFrame, problems: pd.DataFrame, duplicates: pd.DataFrame
) -> pd.DataFrame:
    """One row per item (see the module docstring): each problem row and each record of a
    duplicate group.

    Columns: county_code, record_id, school_code, school_name, problem_class, graduating, and
    group_id (empty for problem rows).
    """
    lookup = context.set_index("record_id")
    problem_part = pd.DataFrame(
        {
            "county_code": problems["county_code"].astype("string").to_numpy(),
            "record_id": problems["record_id"].astype("string").to_numpy(),
            "problem_class": problem_class(
                problems["rule"], problems["severity"], problems["field"]
            ).to_numpy(),
        }
    )
    found = lookup.reindex(problem_part["record_id"])
    problem_part["school_code"] = found["school_code"].to_numpy()
    problem_part["school_name"] = found["school_name"].to_numpy()
    problem_part["graduating"] = found["graduating"].fillna(False).to_numpy(dtype=bool)

    duplicate_part = pd.DataFrame(
        {
            "county_code": duplicates["county_code"].astype("string").to_numpy(),
            "record_id": duplicates["record_id"].astype("string").to_numpy(),
            "problem_class": duplicates["dup_class"].map(DUP_CLASS_LABELS).to_numpy(),
            "school_code": duplicates["school_code"].astype("string").to_numpy(),
            "school_name": duplicates["school_name"].astype("string").to_numpy(),
            "group_id": duplicates["group_id"].astype("string").to_numpy(),
        }
    )
    found = lookup.reindex(duplicate_part["record_id"])
    duplicate_part["graduating"] = found["graduating"].fillna(False).to_numpy(dtype=bool)
    items = pd.concat([problem_part, duplicate_part], ignore_index=True)
    items["problem_class"] = items["problem_class"].fillna(FUZZY_DUPLICATE).astype("string")
    for column in ("county_code", "record_id", "school_code", "school_name", "group_id"):
        items[column] = items[column].astype("string")
    return items


def class_counts(items: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Items per ``by`` × class, 错误合计, 合计, graduating-grade items per class and 涉及学生数;
    one row per ``by`` value present (missing keys as ''), in key order.

    Counted with one ``bincount`` over (group, class) cells, the groups numbered by factorising
    each key in sorted order: a county's and a school's 汇总 are counted for every workbook,
    where pandas' grouping and cross-tabulation cost far more than the counting."""
    key_codes, key_values = [], []
    for column in by:
        codes, values = items[column].fillna("").factorize(sort=True)
        key_codes.append(codes)
        key_values.append(values)
    sizes = tuple(max(1, len(values)) for values in key_values)
    cells = np.ravel_multi_index(key_codes, sizes) if len(items) else np.zeros(0, np.int64)
    present, group = np.unique(cells, return_inverse=True)
    group = group.reshape(-1)
    groups, width = len(present), len(PROBLEM_CLASSES)
    at = np.unravel_index(present, sizes)
    out: dict[str, object] = {
        column: values.take(positions)
        for column, values, positions in zip(by, key_values, at, strict=True)
    }
    classes = pd.Index(PROBLEM_CLASSES).get_indexer(items["problem_class"])
    known = classes >= 0
    cell = group[known] * width + classes[known]
    graduating = items["graduating"].to_numpy(dtype=bool)[known]
    counts = np.bincount(cell, minlength=groups * width).reshape(groups, width)
    grad = np.bincount(cell[graduating], minlength=groups * width).reshape(groups, width)
    errors = [PROBLEM_CLASSES.index(c) for c in ERROR_CLASSES]
    for position, name in enumerate(PROBLEM_CLASSES):
        out[name] = counts[:, position]
    out[ERRORS] = counts[:, errors].sum(axis=1)
    out[ITEMS] = counts.sum(axis=1)
    for position, name in enumerate(PROBLEM_CLASSES):
        out[GRADUATING_PREFIX + name] = grad[:, position]
    out[GRADUATING_PREFIX + ITEMS] = grad.sum(axis=1)
    # 涉及学生数: the distinct (group, record) pairs of each group.
    record = items["record_id"]
    listed = record.notna().to_numpy(dtype=bool)
    records, _ = pd.factorize(record[listed])
    pairs = np.unique(group[listed] * (len(records) + 1) + records)
    out[STUDENTS] = np.bincount(pairs // (len(records) + 1), minlength=groups)
    # The counts as int64 arrays already: a frame's astype costs more than the counting.
    return pd.DataFrame(
        {c: v if c in by else np.asarray(v, dtype=np.int64) for c, v in out.items()}
    )


def item_figures(items: pd.DataFrame) -> dict:
    """The figures of one county's items, as its 说明 states them and the manifest keeps them:
    items, error_items, warning_items, items_by_class, records_with_problems, duplicate_groups,
    graduating_items, graduating_error_items.

    Counted with numpy over the class numbers: every workbook (a county's, a school's) states
    them, where pandas' value counts and distinct counts cost more than the counting."""
    classes = pd.Index(PROBLEM_CLASSES).get_indexer(items["problem_class"])
    by_class = np.bincount(classes[classes >= 0], minlength=len(PROBLEM_CLASSES))
    errors = np.isin(classes, [PROBLEM_CLASSES.index(c) for c in ERROR_CLASSES])
    graduating = items["graduating"].to_numpy(dtype=bool)
    groups = items["group_id"] if "group_id" in items.columns else pd.Series(dtype="string")
    return {
        "items": len(items),
        "error_items": int(errors.sum()),
        "warning_items": int((~errors).sum()),
        "items_by_class": {c: int(v) for c, v in zip(PROBLEM_CLASSES, by_class, strict=True)},
        "records_with_problems": _distinct(items["record_id"]),
        "duplicate_groups": _distinct(groups),
        "graduating_items": int(graduating.sum()),
        "graduating_error_items": int((graduating & errors).sum()),
    }


def _distinct(values: pd.Series) -> int:
    """Distinct values present (a missing value is none)."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return int(np.unique(codes[codes >= 0]).size)


def county_sizes(roster: pd.DataFrame) -> pd.Series:
    """Records per county code of a roster."""
    return pd.Series(roster["county_code"], dtype="string").dropna().value_counts()


def prefecture_names(codes: pd.Series) -> pd.Series:
    """The prefecture (地市) of each county code, by the name of its ``xxxx00`` code; a county of
    a municipality or a province-governed county gets its province's name."""
    codes = codes.astype("string")
    own = gb2260.county_names(codes.str.slice(0, 4) + "00")
    province = gb2260.county_names(codes.str.slice(0, 2) + "0000")
    placeholder = own.isin(
        ["", "市辖区", "县", "省直辖县级行政单位", "省直辖行政单位", "自治区直辖县级行政单位"]
    )
    names = own.where(~placeholder, province)
    return names.mask(names == "", "未知地市").astype("string")


def county_table(
    roster: pd.DataFrame,
    items: pd.DataFrame,
    counties: list[str] | None = None,
    records: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per county: 区县代码, 区县名称, 地市, 在籍学生数, the count columns, 重复组数; worst
    first.

    ``records`` (records per county code) stands for the roster's counts when the roster given
    holds only the records the items name (a staged province is never read whole).
    """
    sizes = county_sizes(roster) if records is None else records
    known = {str(c) for c in sizes.index} | set(items["county_code"].dropna().unique())
    if counties is not None:
        known = set(counties)
    counts = class_counts(items, ["county_code"])
    table = pd.DataFrame({"county_code": sorted(known)}, dtype="string")
    table = table.merge(counts.astype({"county_code": "string"}), on="county_code", how="left")
    for column in COUNT_COLUMNS:
        table[column] = table[column].fillna(0).astype("int64")
    table[RECORDS] = table["county_code"].map(sizes).fillna(0).astype("int64")
    groups = items.dropna(subset=["group_id"]).groupby("county_code")["group_id"].nunique()
    table[GROUPS] = table["county_code"].map(groups).fillna(0).astype("int64")
    names = gb2260.county_names(table["county_code"])
    table["区县名称"] = names.mask(names == "", "未知区县").to_numpy()
    table["地市"] = prefecture_names(table["county_code"]).to_numpy()
    table = table.sort_values(
        [ERRORS, ITEMS, "county_code"], ascending=[False, False, True], kind="stable"
    )
    table = table.rename(columns={"county_code": "区县代码"})
    columns = ["区县代码", "区县名称", "地市", RECORDS, *COUNT_COLUMNS, GROUPS]
    return table[columns].reset_index(drop=True)


ITEM_PREFIX = "问题条数·"
GROUP_PREFIX = "重复组数·"
ITEM_COLUMNS: tuple[str, ...] = (*PROBLEM_CLASSES, ERRORS, ITEMS)
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
    """One row per county of the province summary, in its order (worst first): a run's overview.

    Columns: 区县代码, 区县名称, 在籍学生数, ``问题条数·<类别>`` for each problem class and
    错误合计 and 合计 (the 区县汇总 figures), then ``重复组数·<类别>`` for 身份证号重复 and
    疑似重复. ``roster`` and ``records`` as for :func:`county_table`.
    """
    items = problem_items(roster_context(roster), problems, duplicates)
    table = county_table(roster, items, records=records)
    table = table[["区县代码", "区县名称", RECORDS, *ITEM_COLUMNS]]
    table = table.rename(columns={c: ITEM_PREFIX + c for c in ITEM_COLUMNS})
    groups = duplicate_groups_by_county(duplicates).set_index("county_code")
    codes = table["区县代码"].astype("string")
    for group_class in GROUP_CLASSES:
        found = codes.map(groups[group_class]).fillna(0).astype("int64")
        table[GROUP_PREFIX + group_class] = found.to_numpy()
    return table.reset_index(drop=True)
