"""What the provincial run shows in the Prefect UI, pointing at the published files.

Every path is the published one (``<out>/<run_id>/…``, never the run's staging folder), as a
``file://`` link a browser on the same machine or share opens: the run folder, the county lists'
folder, the province summary and the Data Docs index in the markdown summary, and each county's
list in the table of county totals.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect.artifacts import create_markdown_artifact, create_table_artifact

DATA_DOCS_INDEX = Path("data_docs") / "index.html"
SUMMARY = Path("province") / "summary.xlsx"
COUNTY_LIST_SUFFIX = "_问题学籍清单.xlsx"
LINK_COLUMN = "清单文件"


def file_link(path: Path, text: str | None = None) -> str:
    """A markdown link to ``path`` (absolute ``file://`` URL), shown as ``text`` or the path."""
    path = Path(path).resolve()
    return f"[{text or path}]({path.as_uri()})"


def published_paths(published: Path) -> dict[str, Path]:
    """The files and folders of a published run an officer opens first."""
    published = Path(published).resolve()
    return {
        "run": published,
        "counties": published / "counties",
        "summary": published / SUMMARY,
        "data_docs": published / DATA_DOCS_INDEX,
    }


def summary_markdown(
    *,
    run_id: str,
    published: Path,
    latest: Path,
    counties: int,
    figures: dict,
    problems: int,
    groups: int,
    changes: str,
    pruned: list[str],
) -> str:
    """The ``xueji-run-summary`` artifact: where the reports are and what changed."""
    paths = published_paths(published)
    lines = [
        f"# 学籍查重查错 {run_id}",
        "",
        f"- 报告目录：{file_link(paths['run'])}（`{latest}` 指向它）",
        f"- 区县清单：{file_link(paths['counties'])} 下 {counties} 个区县",
        f"- 全省汇总：{file_link(paths['summary'])}",
    ]
    if paths["data_docs"].is_file():
        lines.append(f"- Data Docs：{file_link(paths['data_docs'])}")
    lines += [
        f"- 读入 {figures['rows_read']} 行，入库 {figures['rows_staged']} 行，"
        f"隔离 {figures['rows_quarantined']} 行",
        f"- 问题 {problems} 条，重复组 {groups} 个",
    ]
    if pruned:
        lines.append(f"- 按保留次数删除的旧运行：{'、'.join(pruned)}")
    return "\n".join(lines) + f"\n\n## 与上次运行相比\n\n{changes}"


def county_rows(totals: pd.DataFrame, county_files: list[dict], published: Path) -> list[dict]:
    """The county totals with a ``file://`` link to each county's published list."""
    published = Path(published).resolve()
    lists = {
        entry["county_code"]: (published / f["path"]).as_uri()
        for entry in county_files
        for f in entry.get("files", [])
        if f["path"].endswith(COUNTY_LIST_SUFFIX)
    }
    rows = totals.to_dict("records")
    for row in rows:
        row[LINK_COLUMN] = lists.get(row["区县代码"], "")
    return rows


def create_run_artifacts(
    totals: pd.DataFrame,
    county_files: list[dict],
    published: Path,
    *,
    run_id: str,
    latest: Path,
    figures: dict,
    problems: int,
    groups: int,
    changes: str,
    pruned: list[str],
) -> None:
    """The run's two artifacts: the county totals table (when any county was listed) and the
    summary (see :func:`summary_markdown`)."""
    if len(totals):
        create_table_artifact(
            county_rows(totals, county_files, published),
            key="xueji-county-totals",
            description="各区县按问题类别的问题条数（同全省汇总）、涉及的重复组数与清单文件",
        )
    create_markdown_artifact(
        summary_markdown(
            run_id=run_id,
            published=published,
            latest=latest,
            counties=len(county_files),
            figures=figures,
            problems=problems,
            groups=groups,
            changes=changes,
            pruned=pruned,
        ),
        key="xueji-run-summary",
        description="本次运行的报告位置（链接到已发布的文件）、概况及与上次运行的变化",
    )
