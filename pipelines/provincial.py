"""The provincial run as a Prefect flow: ingest → validate → link → report → publish.

Each task calls one function of the library and adds only orchestration: retries on I/O, none on
a deterministic input error (it fails at once with its message), logging of what a stage read and
wrote, and the run's artifacts. The roster never passes between tasks: ingest stages it as
Parquet files by county (``xueji_quality.staging``, in ``<out>/.tmp-roster-<pid>``, kept in
``<out>/.state`` once published: ``xueji_quality.run_state``, whose state the next run of the same
input reuses instead of ingest, validation and linkage) and each stage reads what it needs —
validation a chunk at a time, linkage (in a process of its own) only the columns it compares,
answers and reports only the records the problems and groups name. Problems, groups and counts
pass in memory; caching is off because hashing them to build a cache key costs more than the
stage itself. Validation and linkage are imported where they run: a Dask worker that only writes
county lists then never pays for importing Great Expectations (several seconds per process).

Filters: ``counties`` and ``schools`` (学校标识码) narrow problems, duplicate groups and county
lists to those records (``xueji_quality.run_scope``); validation and linkage still see the whole
roster, so a duplicate whose other half lies outside the filter is still found and shown.

Artifacts: ``xueji-progress`` (updated as each stage finishes), ``xueji-county-totals`` (per
county, the summary's 问题条数 per problem class beside the 重复组数 touching it:
``xueji_quality.reports.county_totals``, and a link to the county's published list) and
``xueji-run-summary`` (links to the published run, county lists, summary and Data Docs, and what
changed since the previous published run: ``xueji_quality.reports.changes``, read from
``<out>/latest/manifest.json`` before publishing); ``pipelines.run_artifacts`` words them.

Operations: the flow run is named after the run id it publishes (44-20261128-2), decided under
the output folder's lock before anything is read; ``<out>/status.json`` says 运行中 with the
stage under way, then 成功 or 失败 with the failing stage and one line
(``xueji_quality.run_status``); a failure is notified through a Prefect block when one is
configured (``pipelines.notify``); after publishing, the published runs beyond the newest
``keep_runs`` are removed (``xueji_quality.reports.retention``). The manifest keeps the run's
fingerprint (``xueji_quality.run_fingerprint``: inputs by SHA-256, options, rules, answers), by
which the command line and the nightly run recognise an unchanged input.

Counting, scoping, change detection and table building live in the library; this module only
orders the tasks (``pipelines.provincial_tasks``), moves files between them and records what
they did.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, unmapped

from pipelines.exit_status import failure_line
from pipelines.notify import notify_on_failure
from pipelines.provincial_tasks import (
    county_reports,
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
from pipelines.run_artifacts import create_run_artifacts, published_paths
from pipelines.run_names import flow_run_name, name_flow_run, run_date_of
from pipelines.stages import StageLog
from xueji_quality import (
    answers,
    reports,
    run_fingerprint,
    run_folders,
    run_scope,
    run_state,
    run_status,
    runinfo,
    staging,
)
from xueji_quality.reports.changes import changes_since, previous_manifest
from xueji_quality.reports.county_totals import county_totals
from xueji_quality.reports.manifest import totals_lines
from xueji_quality.reports.retention import DEFAULT_KEEP_RUNS, prune_runs
from xueji_quality.schema import DUPLICATE_COLUMNS, PROBLEM_COLUMNS
from xueji_quality.validate_suites import rule_catalogue

__all__ = ["provincial_run", "retry_unless_input_error"]


@flow(
    name="provincial-run",
    log_prints=True,
    flow_run_name=flow_run_name,
    on_failure=[notify_on_failure],
)
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
    report_tasks: int = 1,
    police_registry: str | None = None,
    police_results: str | None = None,
    national_returns: list[str] | None = None,
    per_school: bool = False,
    keep_runs: int = DEFAULT_KEEP_RUNS,
    notify_block: str | None = None,
    reuse: bool = True,
) -> dict:
    """Check one provincial export (or an inbox folder of them) and publish the county lists.

    ``inputs``: export files or folders; ``as_of``: run date (school year of the age/grade checks,
    default today); ``counties`` / ``schools`` (学校标识码): only these records' problems, duplicate
    groups and county lists; ``suites_dir`` / ``linkage_config``: edited rule suites and linkage
    parameters; ``report_processes``: worker processes each report task writes county workbooks
    with (1 under a Dask runner, whose workers are processes already); ``report_tasks``: report
    tasks the counties are shared among (one per Dask worker or more; 1 on one machine, where a
    task's states and logs cost the API server CPU the workbook writers need); ``police_registry`` /
    ``police_results``: a population registry extract or the police's result file, for the
    police cross-check (身份证号不存在, 身份证号与姓名不匹配, 已注销); ``national_returns``:
    the national run's returns files for this province (外省已注册有学籍); ``per_school``: one
    small workbook per school beside each county's list; ``keep_runs``: published runs kept
    after this one is published (0: all); ``notify_block``: the Prefect block notified when the
    run fails (default: ``$XUEJI_NOTIFY_BLOCK``, else none); ``reuse``: take the staged roster,
    validation problems and linkage result from the state the last run kept when its input and
    options were the same (``xueji_quality.run_state``); False rechecks everything.
    """
    logger = get_run_logger()
    run_date = run_date_of(as_of)
    out_root = Path(out)
    out_root.mkdir(parents=True, exist_ok=True)
    # Absolute: links, logs and the status file name paths a reader elsewhere can open.
    out_root = out_root.resolve()
    # One run at a time per output folder (re-entrant: the command line holds it already).
    with reports.run_lock(out_root):
        run_id = reports.new_run_id(out_root, province, run_date)
        run_status.begin(out_root, run_id, province=province, flow_run=name_flow_run(run_id))
        stages = StageLog(logger, out_root)
        try:
            started = stages.start("ingest")
            paths = find_exports(inputs)
            kept, said = (
                run_state.reusable(out_root, paths, province, run_date, suites_dir, linkage_config)
                if reuse
                else (None, "按 --no-reuse 完整读入、校验与查重")
            )
            logger.info(said)
            store = (
                kept.store
                if kept
                else ingest_exports(
                    paths, province, run_folders.roster_folder(out_root), report_processes > 1
                )
            )
            try:
                stages.done("ingest", started, store.rows_read)
                outcome = _check_and_report(
                    store,
                    kept=kept,
                    run_id=run_id,
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
                    report_tasks=report_tasks,
                    stages=stages,
                    police_registry=police_registry,
                    police_results=police_results,
                    national_returns=national_returns,
                    per_school=per_school,
                    keep_runs=keep_runs,
                )
            finally:
                # A kept state's roster stays; one this run kept was moved away already.
                if kept is None:
                    store.remove()
        except BaseException as exc:
            try:
                run_status.fail(out_root, failure_line(exc), stage=stages.current)
            except OSError as unwritable:  # the run's own failure is what must be reported
                logger.warning("未能写入运行状态文件：%s", unwritable)
            raise
        run_status.succeed(
            out_root,
            f"已发布 {run_id}：{totals_lines(outcome['manifest'])[0]}",
            published=Path(outcome["run_dir"]),
        )
        return outcome


def _check_and_report(
    store: staging.StagedStore,
    *,
    kept: run_state.KeptState | None = None,
    run_id: str,
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
    stages: StageLog,
    report_tasks: int = 1,
    police_registry: str | None = None,
    police_results: str | None = None,
    national_returns: list[str] | None = None,
    per_school: bool = False,
    keep_runs: int = DEFAULT_KEEP_RUNS,
) -> dict:
    logger = get_run_logger()
    staging_folder = reports.staging_dir(out_root, run_id)
    # Where the run's files will be once published: what the logs and artifacts name.
    final = published_paths(out_root / run_id)
    # The state this run keeps for the next one, built beside the reports (none when reused).
    pending = run_state.pending_folder(out_root) if kept is None else None
    try:
        started = stages.start("validate")
        if kept is not None:
            problems = kept.validation(staging_folder / "data_docs")
            logger.info("复用上次运行 %s 的校验结果：%d 条问题", kept.run_id, len(problems))
        else:
            problems = validate_roster(
                store,
                province,
                run_date,
                staging_folder / "data_docs",
                Path(suites_dir) if suites_dir else None,
                final["data_docs"],
            )
            run_state.save_validation(pending, problems, staging_folder / "data_docs")
        stages.done("validate", started, store.rows_staged)

        police_facts = None
        if police_registry or police_results:
            police_started = stages.start("police")
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
            stages.done("police", police_started, store.rows_staged)

        national_facts = None
        if national_returns:
            national_started = stages.start("national")
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
            stages.done("national", national_started, len(returned.problems))

        started = stages.start("link")
        if kept is not None:
            linked = kept.link_result()
            logger.info(
                "复用上次运行 %s 的查重结果：重复组 %s 个", kept.run_id, linked.stats["groups"]
            )
        else:
            linked = link_roster(
                store,
                Path(linkage_config) if linkage_config else None,
                report_processes > 1,
                run_date,
            )
            run_state.save_linkage(pending, linked)
        stages.done("link", started, store.rows_staged)

        # Keys, statuses; groups and warnings a county proved (佐证) are no longer listed.
        started = stages.start("answers")
        # The answers this run reads: part of what makes a re-run of the same export new.
        answers_read = run_fingerprint.answers_fingerprint(out_root)
        duplicates = linked.duplicates
        if counties:
            # A run for some counties keys, answers and records their items only.
            problems, duplicates = run_scope.of_counties(problems, duplicates, counties)
        flagged = store.records(pd.concat([problems["record_id"], duplicates["record_id"]]))
        answered = answers.apply_ledger(
            out_root,
            run_id,
            run_date,
            problems,
            duplicates,
            flagged,
            province=province,
            # An export of some counties only must not close the other counties' items.
            counties=counties or store.counties(),
        )
        stages.done("answers", started, len(problems) + len(duplicates))
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

        started = stages.start("report", total=len(scope.counties))
        catalogue = rule_catalogue(Path(suites_dir) if suites_dir else None)
        groups = reports.county_groups(scope.counties, scope.county_records, report_tasks)
        futures = county_reports.map(
            unmapped(staging_folder),
            reports.split_by_counties(scope.roster, problems, duplicates, groups),
            province=unmapped(province),
            run_date=unmapped(run_date),
            catalogue=unmapped(catalogue),
            mask_ids=unmapped(mask_ids),
            statuses=unmapped(answered.statuses),
            processes=unmapped(report_processes),
            records=unmapped(scope.county_records),
            counties=groups,
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
        stages.done("report", started, len(problems) + len(duplicates))
        totals = county_totals(scope.roster, problems, duplicates, scope.records)

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
            timings=stages.timings,
            parameters={
                "inputs": [str(p) for p in inputs],
                "counties": counties,
                "schools": schools,
                "mask_ids": mask_ids,
                "province_files": province_files,
            },
        )
        manifest["answers"] = answered.counts
        manifest["fingerprint"] = run_fingerprint.fingerprint(
            (entry["sha256"] for entry in store.files),
            run_fingerprint.options_fingerprint(
                province=province,
                run_date=run_date,
                counties=counties,
                schools=schools,
                mask_ids=mask_ids,
                per_school=per_school,
                suites_dir=suites_dir,
                linkage_config=linkage_config,
                police_registry=police_registry,
                police_results=police_results,
                national_returns=national_returns,
            ),
            answers_read,
        )
        if police_facts is not None:
            manifest["police"] = police_facts
        if national_facts is not None:
            manifest["national_returns"] = national_facts
        manifest["reused_state"] = (
            {"run_id": kept.run_id, "stages": ["ingest", "validate", "link"]} if kept else None
        )
        reports.write_manifest(staging_folder, manifest)
        previous = previous_manifest(out_root)
        started = stages.start("publish")
        published = publish_run(staging_folder, out_root, run_id)
        if pending is not None:
            try:
                run_state.keep(
                    pending, out_root, run_id, store, province, run_date, suites_dir, linkage_config
                )
            except Exception as exc:  # the run is published; the next one checks everything
                logger.warning("未能保存本次运行的状态，下次运行将完整重查：%s", exc)
        # Only a published run enters the answer ledger; a run narrowed to some schools
        # sees too little of its counties to say which of their items were resolved.
        if not schools:
            answers.record_run(answered)
        pruned = _prune(out_root, keep_runs, run_id)
        stages.done("publish", started, len(county_files))
    except BaseException:
        shutil.rmtree(staging_folder, ignore_errors=True)
        if pending is not None:
            shutil.rmtree(pending, ignore_errors=True)
        raise

    if final["data_docs"].is_file():
        logger.info("Data Docs：%s", final["data_docs"])
    create_run_artifacts(
        totals,
        county_files,
        published,
        run_id=run_id,
        latest=out_root / "latest",
        figures=figures,
        problems=len(problems),
        groups=duplicates["group_id"].nunique(),
        changes=changes_since(previous, manifest),
        pruned=pruned,
    )
    return {
        "run_id": run_id,
        "run_dir": str(published),
        "rows": figures,
        "problems": problems.reindex(columns=list(PROBLEM_COLUMNS)),
        "duplicates": duplicates.reindex(columns=list(DUPLICATE_COLUMNS)),
        "manifest": manifest,
    }


def _prune(out_root: Path, keep_runs: int, run_id: str) -> list[str]:
    """Remove the runs beyond the newest ``keep_runs``; a failure to is only a warning (the run
    is published)."""
    logger = get_run_logger()
    try:
        pruned = prune_runs(out_root, keep_runs, protect=run_id)
    except OSError as exc:
        logger.warning("未能删除超出保留次数（%d）的旧运行：%s", keep_runs, exc)
        return []
    if pruned:
        logger.info("保留最近 %d 次运行，已删除：%s", keep_runs, "、".join(pruned))
    return pruned
