"""The summary's answer progress: the sheet 处理进度 (per county, the answer ledger's figures)
and the trend across runs (历次运行): open, answered and resolved items per run, read from
earlier runs' manifests and the answer ledger."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pandas as pd
import xlsxwriter

from xueji_quality.reports.county_totals import ERRORS, ITEMS, WARNINGS
from xueji_quality.reports.sheet_layout import print_setup, write_count_sheet
from xueji_quality.standards import gb2260

PROGRESS_SHEET = "处理进度"
HISTORY_SHEET = "历次运行"
# The trend's figures, named as on 处理进度.
OPEN, ANSWERED, RESOLVED = "未处理", "本次已答复", "本次已解决"
TREND_COLUMNS: tuple[str, ...] = (OPEN, ANSWERED, RESOLVED)
HISTORY_RUNS = 30
_RUN_FOLDER = re.compile(r"[0-9A-Za-z]{1,12}-\d{8}(-\d+)?")


PROGRESS_NOTES: tuple[str, ...] = (
    "■ 处理进度（按问题条目计，与区县汇总相同：一条错误、重复组中的一条学籍各计一条）",
    f"{ITEMS}、{ERRORS}、{WARNINGS}：本次清单列出的问题条目，与“区县汇总”同名列相等；"
    "以下各列只计错误（警告无须答复）。",
    "新增：本次首次发现；未处理：新增、未答复、重新出现和已答复待修正之和，须继续处理；"
    "已答复待修正：已答复变更/删除，但本次导出中问题仍在；重新出现：曾解决或曾佐证，但问题再次出现或学籍已变化；"
    "已佐证：最近一次答复为佐证且学籍未变；不再列出：已佐证的重复组和警告，本次清单不再列出；"
    f"{ERRORS} = 未处理 + 已佐证 − 不再列出中的错误。",
    "本次已答复：上次运行以来导入的答复涉及的问题条目数；本次已解决：上次运行列出、本次导出中已不存在的问题条目数；"
    "最久未处理天数：未处理问题中首次发现距今最久的天数；“毕业年级·”开头的列只计六年级、九年级（初三）、高三学生。",
)


def write_progress_sheet(workbook: xlsxwriter.Workbook, progress: pd.DataFrame, footer, run_id):
    """处理进度: one row per county with the answer ledger's figures, worst first."""
    table = progress.copy()
    table["区县代码"] = table["区县代码"].astype("string")
    names = gb2260.county_names(table["区县代码"])
    table.insert(1, "区县名称", names.mask(names == "", "未知区县").to_numpy())
    table = table.sort_values(
        [OPEN, "最久未处理天数", "区县代码"], ascending=[False, False, True], kind="stable"
    ).reset_index(drop=True)
    days = tuple(c for c in table.columns if c.endswith("天数"))
    sheet = write_count_sheet(
        workbook, PROGRESS_SHEET, table, ["区县代码", "区县名称"], "全省合计", days
    )
    print_setup(sheet, footer, run_id)


def _progress_figures(counts: dict) -> dict[str, int] | None:
    """Open, answered and resolved items of a run from its answer counts (a manifest's
    ``answers`` or a ledger run's counts)."""
    progress = counts.get("progress")
    if isinstance(progress, dict) and all(c in progress for c in TREND_COLUMNS):
        return {c: int(progress[c]) for c in TREND_COLUMNS}
    return None


def run_history(
    out_root: Path, current: tuple[str, str, dict[str, int]] | None = None
) -> pd.DataFrame:
    """Open, answered and resolved items per run under ``out_root``, oldest first.

    Read from each published run's manifest (its ``answers.progress``) and from the answer
    ledger's runs (which keeps the same counts, also of runs whose folders were pruned);
    ``current``: (run_id, run_date, figures) of the run being written. At most the last
    :data:`HISTORY_RUNS` runs. Columns: 运行编号, 运行日期, 未处理, 本次已答复, 本次已解决.
    """
    out_root = Path(out_root)
    found: dict[str, tuple[str, dict[str, int]]] = {}
    ledger_file = out_root / "ledger.sqlite"
    if ledger_file.is_file():
        try:
            connection = sqlite3.connect(f"{ledger_file.resolve().as_uri()}?mode=ro", uri=True)
            try:
                rows = connection.execute("SELECT run_id, run_date, counts FROM runs").fetchall()
            finally:
                connection.close()
        except sqlite3.Error:
            rows = []
        for run_id, run_date, counts in rows:
            figures = _progress_figures(json.loads(counts or "{}"))
            if figures is not None:
                found[run_id] = (run_date, figures)
    for manifest in out_root.glob("*/manifest.json"):
        if not _RUN_FOLDER.fullmatch(manifest.parent.name) or manifest.parent.is_symlink():
            continue
        try:
            content = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        figures = _progress_figures(content.get("answers") or {})
        if figures is not None:
            found[str(content.get("run_id", manifest.parent.name))] = (
                str(content.get("run_date", "")),
                figures,
            )
    if current is not None:
        found[current[0]] = (current[1], current[2])
    table = pd.DataFrame(
        [
            {"运行编号": run_id, "运行日期": run_date, **figures}
            for run_id, (run_date, figures) in found.items()
        ],
        columns=["运行编号", "运行日期", *TREND_COLUMNS],
    )
    if table.empty:
        return table
    # Runs of one day are numbered -2, -3 …: order by date, then by that number.
    number = table["运行编号"].str.extract(r"-\d{8}(?:-(\d+))?$")[0].fillna("1").astype(int)
    table = table.assign(_n=number).sort_values(["运行日期", "_n"], kind="stable")
    table = table.drop(columns="_n").tail(HISTORY_RUNS).reset_index(drop=True)
    return table.astype({c: "int64" for c in TREND_COLUMNS})
