"""The province summary (province/summary.xlsx) a provincial data officer reads at a glance.

Sheets:

- 说明: what the figures mean (the definitions of :mod:`county_totals`) and the province's
  totals;
- 图表: native Excel charts: items by problem class; counties ranked by errors per 1,000
  students; items by class per 地市 (prefecture); and, when earlier runs exist under the same
  output root, the trend across runs of items open, answered and resolved;
- 区县汇总: one row per county with its items per class, the same counts restricted to the
  graduating grades (六年级, 九年级, 高三), the roster size, the students concerned and the
  duplicate groups; worst first (errors to clear, then all items). Its totals row is the sum of
  the county rows, and each county row equals the totals row of that county's own 汇总 sheet:
  both are counted from the same item table (:func:`county_totals.problem_items`);
- 区县排名: counties by errors per 1,000 students (a large county is not the worst one for
  having more students);
- 地市汇总: the county rows added up by prefecture;
- 规则统计, 隔离行: items per rule, quarantined rows per file and reason;
- 处理进度 (when the run knows the answer ledger): per county, the items listed and their
  statuses;
- 历次运行 (when there are earlier runs): the figures of the trend chart, from earlier runs'
  manifests and the answer ledger.

The counting itself lives in :mod:`xueji_quality.reports.county_totals`; the names below are
re-exported from there for the modules that import them from here. 处理进度 and 历次运行 come
from :mod:`xueji_quality.reports.summary_progress`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from xueji_quality.reports.county_totals import (
    COUNT_COLUMNS,
    DUP_CLASS_LABELS,
    ERROR_CLASSES,
    ERRORS,
    FUZZY_DUPLICATE,
    GRADUATING_PREFIX,
    GROUPS,
    ID_DUPLICATE,
    ID_ERROR,
    ID_MATCH_RULES,
    ITEM_WORD,
    ITEMS,
    OTHER_ERROR,
    PROBLEM_CLASSES,
    RECORDS,
    STUDENTS,
    WARNING,
    WARNINGS,
    class_counts,
    county_sizes,
    county_table,
    problem_class,
    problem_items,
    roster_context,
)
from xueji_quality.reports.sheet_layout import (
    print_setup,
    workbook_options,
    write_count_sheet,
    write_lines,
)
from xueji_quality.reports.sheet_xml import ListWorkbook
from xueji_quality.reports.summary_progress import (
    HISTORY_SHEET,
    PROGRESS_NOTES,
    TREND_COLUMNS,
    write_progress_sheet,
)
from xueji_quality.rule_names import rule_names
from xueji_quality.standards import gb2260

__all__ = [
    "COUNT_COLUMNS",
    "DUP_CLASS_LABELS",
    "ERROR_CLASSES",
    "FUZZY_DUPLICATE",
    "GRADUATING_PREFIX",
    "ID_DUPLICATE",
    "ID_ERROR",
    "ID_MATCH_RULES",
    "OTHER_ERROR",
    "PROBLEM_CLASSES",
    "WARNING",
    "class_counts",
    "county_sizes",
    "county_table",
    "problem_class",
    "problem_items",
    "roster_context",
    "write_summary",
]

RATE = "每千名学生错误数"
PREFECTURE = "地市"
RANKED_IN_CHART = 30
# A rate over a handful of students says nothing (one error in three students is 333 per 1,000).
MIN_STUDENTS_FOR_RATE = 100
CLASS_COLOURS = ("#C00000", "#ED7D31", "#FFC000", "#5B9BD5", "#A5A5A5")


def ranked_counties(table: pd.DataFrame) -> pd.DataFrame:
    """Counties by errors per 1,000 students, highest first; counties of fewer than
    :data:`MIN_STUDENTS_FOR_RATE` students have no rate and come last."""
    ranked = table[["区县代码", "区县名称", PREFECTURE, RECORDS, ERRORS, ITEMS]].copy()
    students = ranked[RECORDS].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(
            students >= MIN_STUDENTS_FOR_RATE,
            1000.0 * ranked[ERRORS].to_numpy() / students,
            np.nan,
        )
    ranked[RATE] = np.round(rate, 1)
    return ranked.sort_values(
        [RATE, ERRORS, "区县代码"], ascending=[False, False, True], na_position="last"
    ).reset_index(drop=True)


def prefecture_table(table: pd.DataFrame) -> pd.DataFrame:
    """The county rows added up by 地市 (no group counts: a group spans counties)."""
    columns = [RECORDS, *PROBLEM_CLASSES, ERRORS, ITEMS, STUDENTS]
    sums = table.groupby(PREFECTURE, sort=False)[columns].sum()
    counties = table.groupby(PREFECTURE, sort=False)["区县代码"].size().rename("区县数")
    out = pd.concat([counties, sums], axis=1).reset_index()
    students = out[RECORDS].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(students > 0, 1000.0 * out[ERRORS].to_numpy() / students, np.nan)
    out[RATE] = np.round(rate, 1)
    out = out.sort_values([ERRORS, ITEMS, PREFECTURE], ascending=[False, False, True])
    return out.astype({c: "int64" for c in ["区县数", *columns]}).reset_index(drop=True)


def _add_charts(
    workbook: xlsxwriter.Workbook,
    sheet,
    county_rows: int,
    ranked_rows: int,
    prefecture_rows: int,
    history_rows: int,
) -> None:
    """The four charts on 图表, each reading its table's cells."""
    classes_at = 4  # 区县汇总: 区县代码, 区县名称, 地市, 在籍学生数, then the classes
    total_row = county_rows + 1
    by_class = workbook.add_chart({"type": "column"})
    by_class.add_series(
        {
            "name": "问题条目",
            "categories": ["区县汇总", 0, classes_at, 0, classes_at + len(PROBLEM_CLASSES) - 1],
            "values": [
                "区县汇总",
                total_row,
                classes_at,
                total_row,
                classes_at + len(PROBLEM_CLASSES) - 1,
            ],
            "points": [{"fill": {"color": c}} for c in CLASS_COLOURS],
            "data_labels": {"value": True},
        }
    )
    by_class.set_title({"name": "全省问题条目（按类别）"})
    by_class.set_legend({"none": True})
    by_class.set_y_axis({"name": "条"})
    sheet.insert_chart(1, 0, by_class, {"x_scale": 1.3, "y_scale": 1.2})

    shown = min(ranked_rows, RANKED_IN_CHART)
    if shown:
        ranked = workbook.add_chart({"type": "bar"})
        ranked.add_series(
            {
                "name": RATE,
                "categories": ["区县排名", 1, 1, shown, 1],
                "values": ["区县排名", 1, 6, shown, 6],
                "fill": {"color": "#C00000"},
                "data_labels": {"value": True, "num_format": "0.0"},
            }
        )
        ranked.set_title({"name": f"区县{RATE}（前 {shown} 名）"})
        ranked.set_legend({"none": True})
        ranked.set_y_axis({"reverse": True, "interval_unit": 1})
        ranked.set_x_axis({"name": "每千名在籍学生的错误条目"})
        scale = min(3.6, max(1.2, 0.12 * shown))
        sheet.insert_chart(1, 10, ranked, {"x_scale": 1.3, "y_scale": scale})

    if prefecture_rows:
        prefecture = workbook.add_chart({"type": "column", "subtype": "stacked"})
        for offset, colour in enumerate(CLASS_COLOURS[: len(PROBLEM_CLASSES)]):
            prefecture.add_series(
                {
                    "name": ["地市汇总", 0, 3 + offset],
                    "categories": ["地市汇总", 1, 0, prefecture_rows, 0],
                    "values": ["地市汇总", 1, 3 + offset, prefecture_rows, 3 + offset],
                    "fill": {"color": colour},
                }
            )
        prefecture.set_title({"name": "各地市问题条目（按类别）"})
        prefecture.set_x_axis({"interval_unit": 1})
        prefecture.set_y_axis({"name": "条"})
        sheet.insert_chart(19, 0, prefecture, {"x_scale": 1.3, "y_scale": 1.2})

    if history_rows:
        trend = workbook.add_chart({"type": "line"})
        for offset, colour in enumerate(("#C00000", "#5B9BD5", "#70AD47")):
            trend.add_series(
                {
                    "name": [HISTORY_SHEET, 0, 2 + offset],
                    "categories": [HISTORY_SHEET, 1, 0, history_rows, 0],
                    "values": [HISTORY_SHEET, 1, 2 + offset, history_rows, 2 + offset],
                    "line": {"color": colour, "width": 2.25},
                    "marker": {"type": "circle", "size": 6},
                }
            )
        trend.set_title({"name": "历次运行：未处理、已答复、已解决的问题条目"})
        trend.set_y_axis({"name": "条"})
        sheet.insert_chart(37, 0, trend, {"x_scale": 1.3, "y_scale": 1.2})


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
    history: pd.DataFrame | None = None,
    run_id: str = "",
) -> int:
    """Write province/summary.xlsx; return the number of county rows.

    ``records``: records per county code, when ``roster`` holds only the flagged records.
    ``progress`` (one row per county: 区县代码 and the answer ledger's figures, see
    ``xueji_quality.answers.PROGRESS_COLUMNS``) adds the sheet 处理进度; ``history`` (see
    :func:`run_history`) the sheet 历次运行 and the trend chart when it holds two runs or more.
    """
    table = county_table(roster, items, records=records)
    total = len(roster) if records is None else int(records.sum())
    try:
        province_label = f"{gb2260.province_name(province)}（{province}）"
    except ValueError:
        province_label = province
    # A few rows per county: small enough to assemble in memory.
    workbook = ListWorkbook(str(path), workbook_options(0))
    bold = workbook.add_format({"bold": True})
    plain = workbook.add_format({"text_wrap": True, "valign": "top"})
    heading = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    about = workbook.add_worksheet("说明")
    about.set_column(0, 0, 120)
    groups = int(items["group_id"].dropna().nunique()) if "group_id" in items.columns else 0
    lines = [
        f"■ {province_label} 学籍数据查重查错汇总",
        f"运行日期：{run_date.isoformat()}    运行编号：{run_id}",
        f"在籍学生（已读入）：{total} 条；无法读入而隔离的行：{len(quarantine)} 条（见 quarantine.parquet）",
        f"{ITEM_WORD}{ITEMS} {int(table[ITEMS].sum())} 条：{ERRORS} {int(table[ERRORS].sum())} 条，"
        f"{WARNINGS} {int(table[WARNINGS].sum())} 条；{STUDENTS} {int(table[STUDENTS].sum())} 人；"
        f"{GROUPS} {groups}（全省，跨区县的组计一次；“区县汇总”中各区县各计一次）",
        "",
        "■ 怎样计数（全省汇总、区县清单的“说明”和“汇总”、处理进度与运行清单 manifest.json 用同一口径）",
        "一个问题条目是区县清单中的一行：一条学籍的一个问题（错误或警告），或重复组中本区县的一条学籍；"
        "跨区县的重复组中，每条学籍只计入其所在区县。",
        f"{ERRORS}：前四类之和（须逐条答复）；{WARNINGS}：须核实但无须答复；{ITEMS}：全部条目；"
        f"{STUDENTS}：有问题条目的学籍数；{GROUPS}：有本区县学籍的重复组数。",
        "",
        "■ 问题类别",
        f"{ID_ERROR}：身份证件号无法成立（缺失、格式、校验码、出生日期、15 位旧号、表格软件损坏）或性别/出生日期与证件号不符",
        f"{ID_DUPLICATE}：同一身份证件号登记多次，每条涉及本区县的学籍计一条",
        f"{FUZZY_DUPLICATE}：疑似同一学生重复登记（证件号一位之差、同音姓名、日月颠倒等），每条涉及的学籍计一条",
        f"{OTHER_ERROR}：其他字段的错误（必填项缺失、代码不在代码表内、学籍号格式等）",
        f"{WARNING}：需要核实但不一定是错误的情况（年龄与年级相差一年以上、行政区划代码过期等）",
        f"“{GRADUATING_PREFIX}”开头的列：六年级、九年级（初三）、高三学生的条目，须在毕业办理前处理",
        f"区县按{ERRORS}从多到少排列；最后一行为全省合计，等于各区县清单“汇总”表合计行之和。",
        f"{RATE}：{ERRORS} ÷ {RECORDS} × 1000，大小不同的区县可以相比（“区县排名”；"
        f"在籍学生不足 {MIN_STUDENTS_FOR_RATE} 人的区县不计算）；"
        "“地市汇总”把各区县按所属地市相加。",
    ]
    if progress is not None:
        lines += ["", *PROGRESS_NOTES]
    write_lines(about, lines, plain, heading, width=120)
    print_setup(about, province_label, run_id, title_rows=False)

    charts = workbook.add_worksheet("图表")
    charts.write_string(0, 0, f"{province_label} 图表（数据见各表）", bold)
    # The charts print as one landscape page, like a dashboard.
    charts.set_landscape()
    charts.set_paper(9)
    charts.fit_to_pages(1, 1)
    charts.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)

    county_sheet = write_count_sheet(
        workbook, "区县汇总", table, ["区县代码", "区县名称", PREFECTURE], "全省合计", (GROUPS,)
    )
    print_setup(county_sheet, province_label, run_id)
    ranked = ranked_counties(table)
    ranked_sheet = write_count_sheet(
        workbook,
        "区县排名",
        ranked,
        ["区县代码", "区县名称", PREFECTURE],
        "全省合计",
        decimals=(RATE,),
    )
    print_setup(ranked_sheet, province_label, run_id)
    prefectures = prefecture_table(table)
    prefecture_sheet = write_count_sheet(
        workbook, "地市汇总", prefectures, [PREFECTURE], "全省合计", decimals=(RATE,)
    )
    print_setup(prefecture_sheet, province_label, run_id)

    rules = pd.DataFrame(
        {
            "问题代码": problems["rule"].astype("string"),
            "问题名称": rule_names(problems["rule"]),
            "严重程度": problems["severity"].map({"E": "错误", "W": "警告"}).astype("string"),
            "问题类别": problem_class(problems["rule"], problems["severity"], problems["field"]),
            "county_code": problems["county_code"].astype("string"),
        }
    )
    keys = ["问题代码", "问题名称", "严重程度", "问题类别"]
    by_rule = (
        rules.groupby(keys, dropna=False)
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
        by_dup["问题名称"] = rule_names(by_dup["问题代码"]).to_numpy()
        by_dup["严重程度"] = "错误"
        by_rule = pd.concat([by_rule, by_dup[by_rule.columns]], ignore_index=True)
    by_rule = by_rule.astype({"条目数": "int64", "涉及区县数": "int64"})
    rule_sheet = write_count_sheet(workbook, "规则统计", by_rule, keys, ITEMS, ("涉及区县数",))
    print_setup(rule_sheet, province_label, run_id)

    held = pd.DataFrame(
        {
            "来源文件": quarantine["source_file"].astype("string"),
            "原因": quarantine["reason"].astype("string"),
        }
    )
    by_reason = held.groupby(["来源文件", "原因"], dropna=False).size().rename("行数").reset_index()
    by_reason = by_reason.astype({"行数": "int64"})
    held_sheet = write_count_sheet(workbook, "隔离行", by_reason, ["来源文件", "原因"], ITEMS)
    print_setup(held_sheet, province_label, run_id)
    if progress is not None:
        write_progress_sheet(workbook, progress, province_label, run_id)
    history_rows = 0
    if history is not None and len(history) >= 2:
        history_rows = len(history)
        history_sheet = write_count_sheet(
            workbook, HISTORY_SHEET, history, ["运行编号", "运行日期"], "", TREND_COLUMNS
        )
        print_setup(history_sheet, province_label, run_id)
    rated = int(ranked[RATE].notna().sum())
    _add_charts(workbook, charts, len(table), rated, len(prefectures), history_rows)
    about.activate()
    workbook.close()
    return len(table)
