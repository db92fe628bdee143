"""Problem classes and the province summary (province/summary.xlsx).

The Ministry names three kinds of trouble (身份证号重复, 身份证号错误, 姓名+性别+出生日期重复 and
near-duplicates); a county also has to clear every other wrong field and should look at warnings.
Every item of a county list falls into exactly one class:

- 身份证号错误: an error (severity E) on the field ``id_number`` (missing, format, check
  character, date inside the number, legacy 15-digit, spreadsheet damage) or saying that a field
  disagrees with the number (``ID_MATCH_RULES``: sex, birth date). The ID *type* code is another
  field;
- 身份证号重复: a record in a ``DUP_ID`` group (one row per record of the county in the group);
- 疑似重复: a record in a ``DUP_FUZZY`` group;
- 其他字段错误: any other error;
- 警告: any warning (severity W), whatever the field.

The summary holds one row per county with its items per class, the same counts restricted to the
graduating grades (六年级, 九年级, 高三), the roster size and the number of students concerned;
counties are sorted by errors to clear (all classes but 警告), then by all items. Its totals row
is the sum of the county rows, and each county row equals the totals row of that county's own
汇总 sheet: both are counted from the same item table (:func:`problem_items`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from xueji_quality import regions, schema

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

WORKBOOK_OPTIONS = {
    "constant_memory": True,
    "strings_to_numbers": False,
    "strings_to_formulas": False,
    "strings_to_urls": False,
}

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
    """One row per item a county must handle: each problem row and each record in a duplicate group.

    Columns: county_code, record_id, school_code, school_name, problem_class, graduating.
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
        }
    )
    found = lookup.reindex(duplicate_part["record_id"])
    duplicate_part["graduating"] = found["graduating"].fillna(False).to_numpy(dtype=bool)
    items = pd.concat([problem_part, duplicate_part], ignore_index=True)
    items["problem_class"] = items["problem_class"].fillna(FUZZY_DUPLICATE).astype("string")
    for column in ("county_code", "record_id", "school_code", "school_name"):
        items[column] = items[column].astype("string")
    return items


def class_counts(items: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Items per ``by`` × class, graduating-grade items per class, 合计 and 涉及学生数."""
    keys = items[by].fillna("")
    frame = keys.assign(problem_class=items["problem_class"], graduating=items["graduating"])
    counts = pd.crosstab([frame[c] for c in by], frame["problem_class"]).reindex(
        columns=list(PROBLEM_CLASSES), fill_value=0
    )
    graduating = frame[frame["graduating"]]
    grad_counts = (
        pd.crosstab([graduating[c] for c in by], graduating["problem_class"])
        .reindex(columns=list(PROBLEM_CLASSES), fill_value=0)
        .reindex(counts.index, fill_value=0)
    )
    grad_counts.columns = [GRADUATING_PREFIX + c for c in PROBLEM_CLASSES]
    out = counts.copy()
    out["错误合计"] = counts[list(ERROR_CLASSES)].sum(axis=1)
    out["合计"] = counts.sum(axis=1)
    out = out.join(grad_counts)
    out[GRADUATING_PREFIX + "合计"] = grad_counts.sum(axis=1)
    students = frame.assign(record_id=items["record_id"]).groupby(by)["record_id"].nunique()
    out["涉及学生数"] = students.reindex(out.index, fill_value=0)
    out = out.reset_index()
    out.columns.name = None
    return out.astype({c: "int64" for c in out.columns if c not in by})


COUNT_COLUMNS: tuple[str, ...] = (
    *PROBLEM_CLASSES,
    "错误合计",
    "合计",
    *(GRADUATING_PREFIX + c for c in PROBLEM_CLASSES),
    GRADUATING_PREFIX + "合计",
    "涉及学生数",
)


def county_sizes(roster: pd.DataFrame) -> pd.Series:
    """Records per county code of a roster."""
    return pd.Series(roster["county_code"], dtype="string").dropna().value_counts()


def county_table(
    roster: pd.DataFrame,
    items: pd.DataFrame,
    counties: list[str] | None = None,
    records: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per county: 区县代码, 区县名称, 在籍学生数, the count columns; worst first.

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
    table["在籍学生数"] = table["county_code"].map(sizes).fillna(0).astype("int64")
    names = regions.county_names(table["county_code"])
    table["区县名称"] = names.mask(names == "", "未知区县").to_numpy()
    table = table.sort_values(
        ["错误合计", "合计", "county_code"], ascending=[False, False, True], kind="stable"
    )
    table = table.rename(columns={"county_code": "区县代码"})
    return table[["区县代码", "区县名称", "在籍学生数", *COUNT_COLUMNS]].reset_index(drop=True)


def write_count_sheet(
    workbook: xlsxwriter.Workbook,
    name: str,
    table: pd.DataFrame,
    text_columns: list[str],
    total_label: str,
    untotalled: tuple[str, ...] = (),
) -> None:
    """A table of counts: text key columns, integer columns, a frozen header and a totals row."""
    header = workbook.add_format(
        {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True}
    )
    text = workbook.add_format({"num_format": "@"})
    total = workbook.add_format({"bold": True, "top": 2})
    sheet = workbook.add_worksheet(name)
    for position, column in enumerate(table.columns):
        if column in text_columns:
            width = 30 if "名称" in column else 14
            sheet.set_column(position, position, width, text)
        else:
            sheet.set_column(position, position, max(8, min(18, 2 * len(column) + 2)))
    sheet.set_row(0, 32)
    for position, column in enumerate(table.columns):
        sheet.write_string(0, position, column, header)
    columns = [
        table[c].fillna("").astype(str).tolist() if c in text_columns else table[c].tolist()
        for c in table.columns
    ]
    is_text = [c in text_columns for c in table.columns]
    row = 0
    for row, values in enumerate(zip(*columns, strict=True), start=1):
        for position, value in enumerate(values):
            if is_text[position]:
                if value:
                    sheet.write_string(row, position, value)
            else:
                sheet.write_number(row, position, value)
    last = row + 1
    sheet.write_string(last, 0, total_label, total)
    for position, column in enumerate(table.columns):
        if position == 0:
            continue
        if is_text[position] or column in untotalled:
            sheet.write_blank(last, position, None, total)
        else:
            sheet.write_number(last, position, int(table[column].sum()), total)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(row, 1), len(table.columns) - 1)


def write_lines(sheet, lines: list[str], bold, start: int = 0) -> int:
    """Plain text lines in column A (a heading is a line starting with '■'); next free row."""
    row = start
    for row, line in enumerate(lines, start=start):
        if line:
            sheet.write_string(row, 0, line, bold if line.startswith("■") else None)
    return row + 1


PROGRESS_NOTES: tuple[str, ...] = (
    "■ 处理进度（按问题计：一条错误、一个重复组在其涉及的每个区县各计一条）",
    "新增：本次首次发现；未处理：新增、未答复、重新出现和已答复待修正之和，须继续处理；"
    "已答复待修正：已答复变更/删除，但本次导出中问题仍在；重新出现：曾解决或曾佐证，但问题再次出现或学籍已变化；"
    "已佐证：最近一次答复为佐证且学籍未变；不再列出：已佐证的重复组和警告，本次清单不再列出；"
    "本次已答复：上次运行以来导入的答复涉及的问题数；本次已解决：上次运行列出、本次导出中已不存在的问题数；"
    "最久未处理天数：未处理问题中首次发现距今最久的天数；“毕业年级·”开头的列只计六年级、九年级（初三）、高三学生。",
)


def write_progress_sheet(workbook: xlsxwriter.Workbook, progress: pd.DataFrame) -> None:
    """处理进度: one row per county with the answer ledger's figures, worst first."""
    table = progress.copy()
    table["区县代码"] = table["区县代码"].astype("string")
    names = regions.county_names(table["区县代码"])
    table.insert(1, "区县名称", names.mask(names == "", "未知区县").to_numpy())
    table = table.sort_values(
        ["未处理", "最久未处理天数", "区县代码"], ascending=[False, False, True], kind="stable"
    ).reset_index(drop=True)
    days = tuple(c for c in table.columns if c.endswith("天数"))
    write_count_sheet(workbook, "处理进度", table, ["区县代码", "区县名称"], "全省合计", days)


def write_summary(
    path: Path,
    roster: pd.DataFrame,
    problems: pd.DataFrame,
    items: pd.DataFrame,
    quarantine: pd.DataFrame,
    *,
    province: str,
    run_date: date,
    progress: pd.DataFrame | None = None,
    records: pd.Series | None = None,
) -> int:
    """Write province/summary.xlsx; return the number of county rows.

    ``records``: records per county code, when ``roster`` holds only the flagged records.

    ``progress`` (one row per county: 区县代码 and the answer ledger's figures, see
    ``xueji_quality.answers.PROGRESS_COLUMNS``) adds the sheet 处理进度.
    """
    table = county_table(roster, items, records=records)
    total = len(roster) if records is None else int(records.sum())
    try:
        province_label = f"{regions.province_name(province)}（{province}）"
    except ValueError:
        province_label = province
    workbook = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    bold = workbook.add_format({"bold": True})
    about = workbook.add_worksheet("说明")
    about.set_column(0, 0, 110)
    lines = [
        f"■ {province_label} 学籍数据查重查错汇总",
        f"运行日期：{run_date.isoformat()}",
        f"在籍学生（已读入）：{total} 条；无法读入而隔离的行：{len(quarantine)} 条（见 quarantine.parquet）",
        f"问题条目：{int(table['合计'].sum())} 条，涉及学生 {int(table['涉及学生数'].sum())} 人",
        "",
        "■ 问题类别",
        f"{ID_ERROR}：身份证件号无法成立（缺失、格式、校验码、出生日期、15 位旧号、表格软件损坏）或性别/出生日期与证件号不符",
        f"{ID_DUPLICATE}：同一身份证件号登记多次，每条涉及本区县的学籍计一条（跨区县的重复组在两个区县各自计数）",
        f"{FUZZY_DUPLICATE}：疑似同一学生重复登记（证件号一位之差、同音姓名、日月颠倒等），每条涉及的学籍计一条",
        f"{OTHER_ERROR}：其他字段的错误（必填项缺失、代码不在代码表内、学籍号格式等）",
        f"{WARNING}：需要核实但不一定是错误的情况（年龄与年级不符、行政区划代码过期等）",
        "错误合计：前四类之和（必须处理）；合计：全部条目；"
        f"“{GRADUATING_PREFIX}”开头的列：六年级、九年级（初三）、高三学生的条目，须在毕业办理前处理",
        "区县按错误合计从多到少排列；最后一行为全省合计，等于各区县清单“汇总”表合计行之和。",
    ]
    if progress is not None:
        lines += ["", *PROGRESS_NOTES]
    write_lines(about, lines, bold)
    write_count_sheet(workbook, "区县汇总", table, ["区县代码", "区县名称"], "全省合计")

    rules = pd.DataFrame(
        {
            "问题代码": problems["rule"].astype("string"),
            "严重程度": problems["severity"].map({"E": "错误", "W": "警告"}).astype("string"),
            "问题类别": problem_class(problems["rule"], problems["severity"], problems["field"]),
            "county_code": problems["county_code"].astype("string"),
        }
    )
    by_rule = (
        rules.groupby(["问题代码", "严重程度", "问题类别"], dropna=False)
        .agg(条目数=("county_code", "size"), 涉及区县数=("county_code", "nunique"))
        .reset_index()
        .sort_values(["条目数", "问题代码"], ascending=[False, True], kind="stable")
    )
    dup_rows = items[items["problem_class"].isin([ID_DUPLICATE, FUZZY_DUPLICATE])]
    if len(dup_rows):
        by_dup = (
            dup_rows.groupby("problem_class")
            .agg(条目数=("county_code", "size"), 涉及区县数=("county_code", "nunique"))
            .reset_index()
            .rename(columns={"problem_class": "问题类别"})
        )
        by_dup["问题代码"] = by_dup["问题类别"].map({v: k for k, v in DUP_CLASS_LABELS.items()})
        by_dup["严重程度"] = "错误"
        by_rule = pd.concat([by_rule, by_dup[by_rule.columns]], ignore_index=True)
    by_rule = by_rule.astype({"条目数": "int64", "涉及区县数": "int64"})
    write_count_sheet(
        workbook, "规则统计", by_rule, ["问题代码", "严重程度", "问题类别"], "合计", ("涉及区县数",)
    )

    held = pd.DataFrame(
        {
            "来源文件": quarantine["source_file"].astype("string"),
            "原因": quarantine["reason"].astype("string"),
        }
    )
    by_reason = held.groupby(["来源文件", "原因"], dropna=False).size().rename("行数").reset_index()
    by_reason = by_reason.astype({"行数": "int64"})
    write_count_sheet(workbook, "隔离行", by_reason, ["来源文件", "原因"], "合计")
    if progress is not None:
        write_progress_sheet(workbook, progress)
    workbook.close()
    return len(table)
