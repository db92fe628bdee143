"""The provincial run as a Prefect flow: ingest → validate → link → report → publish.

Each task calls one function of the library and adds only orchestration: retries on I/O, none on
a deterministic input error (it fails at once with its message), logging of what a stage read and
wrote, and the run's artifacts. Tables pass between tasks in memory; caching is off because
hashing a province's roster to build a cache key costs more than the stage itself.
"""

from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from xueji_quality import ingest, linkage, reports, runinfo, validate
from xueji_quality.schema import DUPLICATE_COLUMNS, PROBLEM_COLUMNS

STAGES = ("ingest", "validate", "link", "report", "publish")


@task(name="find-exports", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def find_exports(inputs: list[str]) -> list[Path]:
    return ingest.find_exports([Path(p) for p in inputs])


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_exports(paths: list[Path], province: str) -> ingest.Staged:
    staged = ingest.read_exports(paths, province)
    get_run_logger().info(
        "读入 %d 个文件 %d 行：入库 %d 行，隔离 %d 行",
        len(paths),
        staged.rows_read,
        len(staged.roster),
        len(staged.quarantine),
    )
    return staged


@task(name="validate", cache_policy=NO_CACHE)
def validate_roster(
    roster: pd.DataFrame, province: str, as_of: date, data_docs_dir: Path, suites_dir: Path | None
) -> pd.DataFrame:
    problems = validate.validate_roster(
        roster, province, as_of, suites_dir=suites_dir, data_docs_dir=data_docs_dir
    )
    get_run_logger().info("校验 %d 行：发现 %d 条问题", len(roster), len(problems))
    return problems


@task(name="link", cache_policy=NO_CACHE)
def link_roster(roster: pd.DataFrame, config_path: Path | None) -> linkage.LinkResult:
    result = linkage.find_duplicates(roster, config_path)
    get_run_logger().info(
        "查重：候选对 %s，重复组 %d",
        result.stats.get("candidate_pairs"),
        result.duplicates["group_id"].nunique(),
    )
    return result


@task(name="county-report", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def county_report(
    run_dir: Path,
    roster: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    province: str,
    run_date: date,
    catalogue: pd.DataFrame,
    mask_ids: bool,
    county: str,
) -> list[dict]:
    return reports.write_county_reports(
        run_dir,
        roster,
        problems,
        duplicates,
        province=province,
        run_date=run_date,
        rule_catalogue=catalogue,
        mask_ids=mask_ids,
        counties=[county],
    )


@task(name="province-outputs", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def province_outputs(
    run_dir: Path,
    roster: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    quarantine: pd.DataFrame,
    province: str,
    run_date: date,
) -> list[dict]:
    return reports.write_province_outputs(
        run_dir, roster, problems, duplicates, quarantine, province=province, run_date=run_date
    )


@task(name="publish", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def publish_run(staging: Path, out_root: Path, run_id: str) -> Path:
    return reports.publish(staging, out_root, run_id)


def _only_counties(table: pd.DataFrame, counties: list[str] | None) -> pd.DataFrame:
    if not counties:
        return table
    return table[table["county_code"].isin(counties)].reset_index(drop=True)


def _groups_touching(duplicates: pd.DataFrame, counties: list[str] | None) -> pd.DataFrame:
    if not counties:
        return duplicates
    touched = duplicates.loc[duplicates["county_code"].isin(counties), "group_id"].unique()
    return duplicates[duplicates["group_id"].isin(touched)].reset_index(drop=True)


def _county_table(problems: pd.DataFrame, duplicates: pd.DataFrame) -> list[dict]:
    errors = problems[problems["severity"] == "E"].groupby("county_code").size()
    warnings = problems[problems["severity"] == "W"].groupby("county_code").size()
    groups = duplicates.drop_duplicates(["group_id", "county_code"]).groupby("county_code").size()
    counties = sorted(set(errors.index) | set(warnings.index) | set(groups.index))
    return [
        {
            "区县代码": c,
            "错误": int(errors.get(c, 0)),
            "警告": int(warnings.get(c, 0)),
            "重复组": int(groups.get(c, 0)),
        }
        for c in counties
    ]


@flow(name="provincial-run", log_prints=True)
def provincial_run(
    inputs: list[str],
    province: str,
    out: str,
    as_of: date | None = None,
    counties: list[str] | None = None,
    mask_ids: bool = False,
    suites_dir: str | None = None,
    linkage_config: str | None = None,
) -> dict:
    """Check one provincial export (or a folder of them) and publish the county problem lists."""
    logger = get_run_logger()
    run_date = as_of or date.today()
    out_root = Path(out)
    out_root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    progress = create_progress_artifact(0.0, key="xueji-progress", description="省级查重查错进度")

    def stage_done(name: str, started: float) -> None:
        timings[name] = time.perf_counter() - started
        update_progress_artifact(progress, 100.0 * (STAGES.index(name) + 1) / len(STAGES))
        logger.info("阶段 %s 用时 %.1f 秒", name, timings[name])

    started = time.perf_counter()
    paths = find_exports(inputs)
    staged = ingest_exports(paths, province)
    stage_done("ingest", started)

    run_id = reports.new_run_id(out_root, province, run_date)
    staging = reports.staging_dir(out_root, run_id)
    try:
        started = time.perf_counter()
        problems = validate_roster(
            staged.roster,
            province,
            run_date,
            staging / "data_docs",
            Path(suites_dir) if suites_dir else None,
        )
        stage_done("validate", started)

        started = time.perf_counter()
        linked = link_roster(staged.roster, Path(linkage_config) if linkage_config else None)
        stage_done("link", started)

        problems = _only_counties(problems, counties)
        duplicates = _groups_touching(linked.duplicates, counties)
        roster = staged.roster
        if counties:
            keep = roster["county_code"].isin(counties) | roster["record_id"].isin(
                duplicates["record_id"]
            )
            roster = roster[keep].reset_index(drop=True)

        started = time.perf_counter()
        catalogue = validate.rule_catalogue(Path(suites_dir) if suites_dir else None)
        report_counties = sorted(
            set(counties) if counties else set(staged.roster["county_code"].dropna())
        )
        futures = county_report.map(
            unmapped(staging),
            unmapped(roster),
            unmapped(problems),
            unmapped(duplicates),
            unmapped(province),
            unmapped(run_date),
            unmapped(catalogue),
            unmapped(mask_ids),
            report_counties,
        )
        county_files = [entry for f in futures.result() for entry in f]
        province_files = province_outputs(
            staging, roster, problems, duplicates, staged.quarantine, province, run_date
        )
        stage_done("report", started)

        figures = runinfo.conservation(
            staged.rows_read,
            staged.roster,
            staged.quarantine,
            problems,
            duplicates,
            county_files,
            counties,
        )
        manifest = runinfo.run_manifest(
            run_id=run_id,
            province=province,
            run_date=run_date,
            files=staged.files,
            figures=figures,
            problems=problems,
            duplicates=duplicates,
            normalizations=staged.normalizations,
            counties=county_files,
            link_stats=linked.stats,
            timings=timings,
            parameters={
                "inputs": [str(p) for p in inputs],
                "counties": counties,
                "mask_ids": mask_ids,
                "province_files": province_files,
            },
        )
        reports.write_manifest(staging, manifest)
        started = time.perf_counter()
        published = publish_run(staging, out_root, run_id)
        stage_done("publish", started)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    table = _county_table(problems, duplicates)
    if table:
        create_table_artifact(table, key="xueji-county-totals", description="各区县问题数")
    create_markdown_artifact(
        f"# 学籍查重查错 {run_id}\n\n"
        f"- 报告目录：`{published}`\n"
        f"- 读入 {figures['rows_read']} 行，入库 {figures['rows_staged']} 行，"
        f"隔离 {figures['rows_quarantined']} 行\n"
        f"- 问题 {len(problems)} 条，重复组 {duplicates['group_id'].nunique()} 个\n",
        key="xueji-run-summary",
        description="本次运行的报告位置与概况",
    )
    return {
        "run_id": run_id,
        "run_dir": str(published),
        "rows": figures,
        "problems": problems.reindex(columns=list(PROBLEM_COLUMNS)),
        "duplicates": duplicates.reindex(columns=list(DUPLICATE_COLUMNS)),
        "manifest": manifest,
    }
