"""The tasks of the provincial run (``pipelines.provincial``): each calls one function of the
library and adds only orchestration: retries on I/O, none on a deterministic input error (it fails
at once with its message), logging of what a stage read and wrote. Caching is off: hashing the
problems and groups to build a cache key costs more than the stage itself. Validation, the police
cross-check, the national returns and linkage are imported where they run, so a Dask worker that
only writes county lists never pays for importing Great Expectations.
"""

from __future__ import annotations

import importlib
import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from xueji_quality import ingest, reports, run_scope, staging, workers
from xueji_quality.errors import InputError
from xueji_quality.files import known_hashes

if TYPE_CHECKING:
    from xueji_quality import linkage

IO_RETRIES = 2
IO_RETRY_DELAY_S = 2


def retry_unless_input_error(task: Task, task_run: TaskRun, state: State) -> bool:
    """Retry condition of the I/O tasks: a transient error is retried, an InputError never.

    An unreadable or missing input fails the same way every time; retrying it only delays the
    message the data officer needs.
    """
    try:
        state.result()
    except InputError:
        return False
    except Exception:
        return True
    return True


@task(
    name="find-exports",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAY_S,
    retry_condition_fn=retry_unless_input_error,
    cache_policy=NO_CACHE,
)
def find_exports(inputs: list[str]) -> list[Path]:
    paths = ingest.find_exports([Path(p) for p in inputs])
    get_run_logger().info("待读入的导出文件：%s", "、".join(str(p) for p in paths))
    return paths


# Export bytes from which ingest stages with two worker processes (about 1.5 million rows of
# CSV; fewer of a workbook, whose reading is slower per byte).
INGEST_WORKERS_FROM_BYTES = 256 * 1024 * 1024


@task(
    name="ingest",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAY_S,
    retry_condition_fn=retry_unless_input_error,
    cache_policy=NO_CACHE,
)
def ingest_exports(
    paths: list[Path], province: str, folder: Path, alone: bool
) -> staging.StagedStore:
    # In a process of its own (see link_roster): reading a province leaves the reader's heap
    # large, and the run's own process then carries it through every later stage.
    if alone:
        # Validation's libraries (seconds of Great Expectations) import here while the worker
        # reads: this process only waits meanwhile, and validation needs them next.
        threading.Thread(
            target=importlib.import_module, args=("xueji_quality.validate",), daemon=True
        ).start()
        # Two staging workers pay for themselves from a few million rows on (5M rows: 24.5 s
        # against 32.8 s); below that their start and memory (half a GB) buy nothing.
        size = sum(Path(path).stat().st_size for path in paths)
        processes = 2 if size >= INGEST_WORKERS_FROM_BYTES else 1
        store = workers.call_alone(
            staging.stage_exports,
            paths,
            province,
            folder,
            processes=processes,
            # The exports as hashed when the run checked whether they changed.
            hashes=known_hashes(paths),
        )
    else:
        store = staging.stage_exports(paths, province, folder)
    get_run_logger().info(
        "读入 %d 个文件 %d 行：入库 %d 行（%d 个区县），隔离 %d 行",
        len(paths),
        store.rows_read,
        store.rows_staged,
        len(store.counties()),
        len(store.quarantine),
    )
    return store


@task(name="validate", cache_policy=NO_CACHE)
def validate_roster(
    store: staging.StagedStore,
    province: str,
    as_of: date,
    data_docs_dir: Path,
    suites_dir: Path | None,
    published_docs: Path | None = None,
) -> pd.DataFrame:
    """Validate the staged roster; Data Docs are built in ``data_docs_dir`` (the run's staging
    folder) and the log names ``published_docs``, where they are once the run is published."""
    from xueji_quality import validate

    problems = validate.validate_store(
        store, province, as_of, suites_dir=suites_dir, data_docs_dir=data_docs_dir
    )
    get_run_logger().info(
        "校验 %d 行：发现 %d 条问题；Data Docs 随本次运行发布到 %s",
        store.rows_staged,
        len(problems),
        published_docs or data_docs_dir,
    )
    return problems


@task(name="police", cache_policy=NO_CACHE)
def police_roster(
    store: staging.StagedStore,
    registry: Path | None,
    results: Path | None,
    suites_dir: Path | None,
    data_docs_dir: Path,
):
    from xueji_quality.police import runs

    outcome = runs.check_staged(
        store,
        registry=registry,
        results=results,
        suites_dir=suites_dir,
        data_docs_dir=data_docs_dir,
    )
    get_run_logger().info(
        "公安比对：送核 %d 条，发现问题 %d 条，待比对 %d 条",
        outcome.sent,
        len(outcome.problems),
        len(outcome.pending),
    )
    return outcome


@task(name="national-returns", cache_policy=NO_CACHE)
def national_items(
    store: staging.StagedStore,
    paths: list[Path],
    province: str,
    suites_dir: Path | None,
    data_docs_dir: Path,
):
    from xueji_quality.national import returns

    keys = pd.concat([returns.read_returns(p)["record_key"] for p in paths], ignore_index=True)
    outcome = returns.national_problems(
        paths,
        province,
        store.records(keys, ["record_id", "county_code", "id_number", "name"]),
        suites_dir=suites_dir,
        data_docs_dir=data_docs_dir,
    )
    get_run_logger().info(
        "全国查重回执：跨省重复 %d 条，本次导出中没有的记录 %d 条",
        len(outcome.problems),
        len(outcome.unknown_record_keys),
    )
    return outcome


@task(name="link", cache_policy=NO_CACHE)
def link_roster(
    store: staging.StagedStore, config_path: Path | None, alone: bool, as_of: date
) -> linkage.LinkResult:
    # In a process of its own unless already in a worker process (a Dask worker may not start
    # children): its memory goes back to the system before the reports are written.
    light = store.without_tables()
    if alone:
        result = workers.call_alone(staging.find_duplicates, light, config_path, as_of)
    else:
        result = staging.find_duplicates(light, config_path, as_of)
    get_run_logger().info(
        "查重：候选对 %s，重复组 %d",
        result.stats.get("candidate_pairs"),
        result.duplicates["group_id"].nunique(),
    )
    return result


@task(
    name="county-reports",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAY_S,
    retry_condition_fn=retry_unless_input_error,
    cache_policy=NO_CACHE,
)
def county_reports(
    run_dir: Path,
    tables: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    *,
    province: str,
    run_date: date,
    catalogue: pd.DataFrame,
    mask_ids: bool,
    statuses: pd.DataFrame | None,
    processes: int,
    records: dict[str, int],
    counties: list[str],
    per_school: bool = False,
) -> list[dict]:
    """The lists of ``counties`` (``tables``: their roster, problems and duplicate rows, as
    :func:`xueji_quality.reports.split_by_counties` cuts them) in one task: the workbooks are written by ``processes`` worker
    processes at once, and each county written is one log line (a step of the progress bar).
    One task rather than one per county: a task's states and logs go through the run's API
    server, whose CPU the workbook writers need."""
    logger = get_run_logger()
    roster, problems, duplicates = tables

    def written(entry: dict) -> None:
        logger.info(
            "区县 %s：%d 条问题，%d 个重复组，写出 %s",
            entry["county_code"],
            entry["problem_rows"],
            entry["duplicate_groups"],
            "、".join(f["path"] for f in entry["files"]),
            # A step of the report stage's progress bar (pipelines.progress).
            extra={"xueji_stage_step": "report"},
        )

    return reports.write_county_reports(
        run_dir,
        roster,
        problems,
        duplicates,
        province=province,
        run_date=run_date,
        rule_catalogue=catalogue,
        mask_ids=mask_ids,
        counties=counties,
        statuses=run_scope.statuses_of_items(statuses, problems, duplicates),
        processes=processes,
        records={county: int(records.get(county, 0)) for county in counties},
        per_school=per_school,
        on_written=written,
    )


@task(
    name="province-outputs",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAY_S,
    retry_condition_fn=retry_unless_input_error,
    cache_policy=NO_CACHE,
)
def province_outputs(
    run_dir: Path,
    roster: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    quarantine: pd.DataFrame,
    province: str,
    run_date: date,
    progress: pd.DataFrame | None = None,
    records: pd.Series | None = None,
) -> list[dict]:
    written = reports.write_province_outputs(
        run_dir,
        roster,
        problems,
        duplicates,
        quarantine,
        province=province,
        run_date=run_date,
        progress=progress,
        records=records,
    )
    get_run_logger().info("全省汇总写出 %s", "、".join(f["path"] for f in written))
    return written


@task(
    name="publish",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAY_S,
    retry_condition_fn=retry_unless_input_error,
    cache_policy=NO_CACHE,
)
def publish_run(staging: Path, out_root: Path, run_id: str) -> Path:
    published = reports.publish(staging, out_root, run_id)
    get_run_logger().info("报告已发布到 %s（latest 已指向本次运行）", published)
    return published
