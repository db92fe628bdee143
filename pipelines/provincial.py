"""The provincial run as a Prefect flow: ingest → validate → link → report → publish.

Each task calls one function of the library and adds only orchestration: retries on I/O, none on
a deterministic input error (it fails at once with its message), logging of what a stage read and
wrote, and the run's artifacts. The roster never passes between tasks: ingest stages it as
Parquet files by county (``xueji_quality.staging``, in ``<out>/.tmp-roster-<pid>``, removed when
the run ends) and each stage reads what it needs from there — validation a chunk at a time,
linkage (in a process of its own) only the columns it compares, answers and reports only the
records the problems and groups name. Problems, groups and counts pass in memory; caching is off
because hashing them to build a cache key costs more than the stage itself. Validation and
linkage are imported where they run: a Dask worker that only writes county lists then never pays
for importing Great Expectations (several seconds per process).

Filters: ``counties`` and ``schools`` (学校标识码) narrow problems, duplicate groups and county
lists to those records (``xueji_quality.run_scope``); validation and linkage still see the whole
roster, so a duplicate whose other half lies outside the filter is still found and shown.

Artifacts: ``xueji-progress`` (updated as each stage finishes), ``xueji-county-totals`` (per
county, the summary's 问题条数 per problem class beside the 重复组数 touching it:
``xueji_quality.reports.county_totals``) and ``xueji-run-summary`` (where the reports are and
what changed since the previous published run: ``xueji_quality.reports.changes``, read from
``<out>/latest/manifest.json`` before publishing).

Counting, scoping, change detection and table building live in the library; this module only
orders the tasks (``pipelines.provincial_tasks``), moves files between them and records what
they did.
"""

from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from pipelines.provincial_tasks import (
    county_report,
    find_exports,
    ingest_exports,
    link_roster,
    national_items,
    police_roster,
    province_outputs,
    publish_run,
    retry_unless_input_error,
    validate_roster,
)
from xueji_quality import answers, reports, run_folders, run_scope, runinfo, staging
from xueji_quality.reports.changes import changes_since, previous_manifest
from xueji_quality.reports.county_totals import county_totals
from xueji_quality.schema import DUPLICATE_COLUMNS, PROBLEM_COLUMNS

__all__ = ["provincial_run", "retry_unless_input_error"]

STAGES = ("ingest", "validate", "link", "answers", "report", "publish")
STAGE_LABELS = {
    "ingest": "读入",
    "validate": "校验",
    "link": "查重",
    "answers": "答复",
    "report": "报告",
    "publish": "发布",
}


@flow(name="provincial-run", log_prints=True)
def provincial_run(
    inputs: list[str],
    province: str,
    out: str,
    as_of: date | None = None,
    counties: list[str] | None = None,
    schools: list[str] | None = None,
    mask_ids: bool = False,
    suites_dir: str | None = None,
    linkage_config: str | None = None,
    report_processes: int = 2,
    police_registry: str | None = None,
    police_results: str | None = None,
    national_returns: list[str] | None = None,
    per_school: bool = False,
) -> dict:
    """Check one provincial export (or an inbox folder of them) and publish the county lists.

    ``inputs``: export files or folders; ``as_of``: run date (school year of the age/grade checks,
    default today); ``counties`` / ``schools`` (学校标识码): only these records' problems, duplicate
    groups and county lists; ``suites_dir`` / ``linkage_config``: edited rule suites and linkage
    parameters; ``report_processes``: worker processes writing county workbooks (1 under a
    Dask runner, whose workers are processes already); ``police_registry`` /
    ``police_results``: a population registry extract or the police's result file, for the
    police cross-check (身份证号不存在, 身份证号与姓名不匹配, 已注销); ``national_returns``:
    the national run's returns files for this province (外省已注册有学籍); ``per_school``: one
    small workbook per school beside each county's list.
    """
    logger = get_run_logger()
    run_date = as_of or date.today()
    out_root = Path(out)
    out_root.mkdir(parents=True, exist_ok=True)
    # One run at a time per output folder (re-entrant: the command line holds it already).
    with reports.run_lock(out_root):
        timings: dict[str, float] = {}
        flow_started = time.perf_counter()
        progress = create_progress_artifact(
            0.0, key="xueji-progress", description="省级查重查错进度"
        )

        def stage_done(name: str, started: float, rows: int) -> None:
            timings[name] = time.perf_counter() - started
            update_progress_artifact(progress, 100.0 * (STAGES.index(name) + 1) / len(STAGES))
            logger.info(
                "阶段 %s 完成：%d 行，用时 %.1f 秒（累计 %.1f 秒）",
                name,
                rows,
                timings[name],
                time.perf_counter() - flow_started,
                extra={
                    "xueji_stage": name,
                    "xueji_stage_label": STAGE_LABELS[name],
                    "xueji_rows": rows,
                    "xueji_elapsed_s": timings[name],
                    "xueji_total_s": time.perf_counter() - flow_started,
                },
            )

        started = time.perf_counter()
        paths = find_exports(inputs)
        store = ingest_exports(
            paths, province, run_folders.roster_folder(out_root), report_processes > 1
        )
        try:
            stage_done("ingest", started, store.rows_read)
            outcome = _check_and_report(
                store,
                inputs=inputs,
                province=province,
                out_root=out_root,
                run_date=run_date,
                counties=counties,
                schools=schools,
                mask_ids=mask_ids,
                suites_dir=suites_dir,
                linkage_config=linkage_config,
                report_processes=report_processes,
                stage_done=stage_done,
                timings=timings,
                police_registry=police_registry,
                police_results=police_results,
                national_returns=national_returns,
                per_school=per_school,
            )
        finally:
            store.remove()
        return outcome


def _check_and_report(
    store: staging.StagedStore,
    *,
    inputs: list[str],
    province: str,
    out_root: Path,
    run_date: date,
    counties: list[str] | None,
    schools: list[str] | None,
    mask_ids: bool,
    suites_dir: str | None,
    linkage_config: str | None,
    report_processes: int,
    stage_done,
    timings: dict[str, float],
    police_registry: str | None = None,
    police_results: str | None = None,
    national_returns: list[str] | None = None,
    per_school: bool = False,
) -> dict:
    logger = get_run_logger()
    run_id = reports.new_run_id(out_root, province, run_date)
    staging_folder = reports.staging_dir(out_root, run_id)
    try:
        started = time.perf_counter()
        problems = validate_roster(
            store,
            province,
            run_date,
            staging_folder / "data_docs",
            Path(suites_dir) if suites_dir else None,
        )
        stage_done("validate", started, store.rows_staged)

        police_facts = None
        if police_registry or police_results:
            police_started = time.perf_counter()
            from xueji_quality import police
            from xueji_quality.police import runs

            checked = police_roster(
                store,
                Path(police_registry) if police_registry else None,
                Path(police_results) if police_results else None,
                Path(suites_dir) if suites_dir else None,
                staging_folder / "data_docs" / "police",
            )
            problems = police.apply_checksum_suggestions(
                pd.concat([problems, checked.problems], ignore_index=True),
                checked.checksum_suggestions,
            )
            police_facts = runs.manifest_facts(checked)
            timings["police"] = time.perf_counter() - police_started

        national_facts = None
        if national_returns:
            returned = national_items(
                store,
                [Path(p) for p in national_returns],
                province,
                Path(suites_dir) if suites_dir else None,
                staging_folder / "data_docs" / "national",
            )
            problems = pd.concat([problems, returned.problems], ignore_index=True)
            national_facts = {
                "files": returned.files,
                "items": int(len(returned.problems)),
                "unknown_record_keys": len(returned.unknown_record_keys),
            }

        started = time.perf_counter()
        linked = link_roster(
            store, Path(linkage_config) if linkage_config else None, report_processes > 1, run_date
        )
        stage_done("link", started, store.rows_staged)

        # Keys, statuses; groups and warnings a county proved (佐证) are no longer listed.
        started = time.perf_counter()
        flagged = store.records(pd.concat([problems["record_id"], linked.duplicates["record_id"]]))
        answered = answers.apply_ledger(
            out_root,
            run_id,
            run_date,
            problems,
            linked.duplicates,
            flagged,
            province=province,
            # An export of some counties only must not close the other counties' items.
            counties=counties or store.counties(),
        )
        stage_done("answers", started, len(problems) + len(linked.duplicates))
        selected = (
            run_scope.selected_records(store, counties, schools) if counties or schools else None
        )
        scope = run_scope.scope_tables(
            flagged,
            answered.problems,
            answered.duplicates,
            staged_records=store.county_rows(),
            selected=selected,
            counties=counties,
        )
        problems, duplicates = scope.problems, scope.duplicates
        if selected is not None:
            logger.info(
                "筛选（区县 %s，学校 %s）：%d 条记录，问题 %d 条，重复组 %d 个",
                counties,
                schools,
                len(selected),
                len(problems),
                duplicates["group_id"].nunique(),
            )

        started = time.perf_counter()
        from xueji_quality import validate

        catalogue = validate.rule_catalogue(Path(suites_dir) if suites_dir else None)
        futures = county_report.map(
            unmapped(staging_folder),
            reports.split_by_county(scope.roster, problems, duplicates, scope.counties),
            unmapped(province),
            unmapped(run_date),
            unmapped(catalogue),
            unmapped(mask_ids),
            unmapped(answered.statuses),
            unmapped(report_processes),
            unmapped(scope.county_records),
            scope.counties,
            per_school=unmapped(per_school),
        )
        county_files = [entry for f in futures.result() for entry in f]
        province_files = province_outputs(
            staging_folder,
            scope.roster,
            problems,
            duplicates,
            store.quarantine,
            province,
            run_date,
            # A narrowed run's progress covers the counties it lists, as 区县汇总 does.
            answered.progress[answered.progress["区县代码"].isin(scope.counties)]
            if counties or schools
            else answered.progress,
            scope.records,
        )
        stage_done("report", started, len(problems) + len(duplicates))
        totals = county_totals(scope.roster, problems, duplicates, scope.records)
        if len(totals):
            create_table_artifact(
                totals.to_dict("records"),
                key="xueji-county-totals",
                description="各区县按问题类别的问题条数（同全省汇总）与涉及的重复组数",
            )

        figures = runinfo.conservation(
            store.rows_read,
            flagged,
            store.quarantine,
            problems,
            duplicates,
            county_files,
            rows_staged=store.rows_staged,
            rows_in_scope=scope.rows_in_scope,
            record_ids_unique=store.record_ids_unique,
        )
        manifest = runinfo.run_manifest(
            run_id=run_id,
            province=province,
            run_date=run_date,
            files=store.files,
            figures=figures,
            problems=problems,
            duplicates=duplicates,
            normalizations=store.normalized_values,
            counties=county_files,
            link_stats=linked.stats,
            timings=timings,
            parameters={
                "inputs": [str(p) for p in inputs],
                "counties": counties,
                "schools": schools,
                "mask_ids": mask_ids,
                "province_files": province_files,
            },
        )
        manifest["answers"] = answered.counts
        if police_facts is not None:
            manifest["police"] = police_facts
        if national_facts is not None:
            manifest["national_returns"] = national_facts
        reports.write_manifest(staging_folder, manifest)
        previous = previous_manifest(out_root)
        started = time.perf_counter()
        published = publish_run(staging_folder, out_root, run_id)
        # Only a published run enters the answer ledger; a run narrowed to some schools
        # sees too little of its counties to say which of their items were resolved.
        if not schools:
            answers.record_run(answered)
        stage_done("publish", started, len(county_files))
    except BaseException:
        shutil.rmtree(staging_folder, ignore_errors=True)
        raise

    create_markdown_artifact(
        f"# 学籍查重查错 {run_id}\n\n"
        f"- 报告目录：`{published}`（`{out_root / 'latest'}` 指向它）\n"
        f"- 区县清单：`{published / 'counties'}` 下 {len(county_files)} 个区县；"
        f"全省汇总：`{published / 'province' / 'summary.xlsx'}`\n"
        f"- 读入 {figures['rows_read']} 行，入库 {figures['rows_staged']} 行，"
        f"隔离 {figures['rows_quarantined']} 行\n"
        f"- 问题 {len(problems)} 条，重复组 {duplicates['group_id'].nunique()} 个\n\n"
        f"## 与上次运行相比\n\n{changes_since(previous, manifest)}",
        key="xueji-run-summary",
        description="本次运行的报告位置、概况及与上次运行的变化",
    )
    return {
        "run_id": run_id,
        "run_dir": str(published),
        "rows": figures,
        "problems": problems.reindex(columns=list(PROBLEM_COLUMNS)),
        "duplicates": duplicates.reindex(columns=list(DUPLICATE_COLUMNS)),
        "manifest": manifest,
    }
