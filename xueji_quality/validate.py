"""Validation (查错): run the expectation suites over a canonical roster, return problem rows.

The suites in ``expectations/*.json`` are Great Expectations 1.x ExpectationSuite JSON and the
single place where a rule is switched on (``meta.enabled``), parameterised (value sets, patterns,
windows) and given its code, severity, field, Chinese message and suggestion (``meta``). Domain
rules are the custom expectations of ``xueji_quality.rules``.

How a run goes, and why (1 million rows in seconds):
- each suite is validated on a narrow frame holding only the columns its expectations name
  (GX copies and filters the whole batch frame several times per expectation), with
  pyarrow-backed strings (vectorised RE2 matching, cheap copies);
- the batch frame's index is the roster's row position, so COMPLETE results'
  ``unexpected_index_list`` maps straight back to ``record_id`` (no per-row dicts);
- large rosters are split into contiguous row ranges validated in worker processes, with or
  without Data Docs. Workers come from a ``forkserver`` (a clean single-threaded process that
  imported this module once), never from a fork of the caller: the caller may be a thread of a
  multi-threaded program (an orchestrator's worker thread), and a forked copy of such a process can
  deadlock on a lock another thread held. The server starts with the first parallel run of a
  process and imports GX while the caller converts the columns; on 2 cores it adds about 1.5 s to
  that first run (1M rows with Data Docs: 9.5-10.6 s first, 8.0 s later; forking: 8.3 s). The
  validated columns reach the workers as one Arrow IPC file in the run's temporary folder,
  memory-mapped (no pickled copy of the roster);
- with Data Docs, each worker validates its row range in its own file-mode GX project (a project
  keeps its datasources in one YAML file that concurrent writers would overwrite), storing its
  results under the run name of its range ("rows 1-500000 of 1000000"); the parent then moves the
  stored results (plain JSON files) into the first project, refusing any key collision, and builds
  the Data Docs once from them. The docs show one validation result per suite and row range,
  each expectation by its rule code and Chinese message, a masked sample of its failing records by
  记录号; the site's front page totals the ranges and suites (``datadocs_index``).

A staged roster (:func:`validate_store`, what the provincial run uses) is validated a chunk of
its Parquet files at a time: each worker reads its chunk's columns itself and returns the chunk's
problems, so no process ever holds the province (20 million rows would be 14 GB of strings). The
rules are all within one record, so a chunk's problems do not depend on the other chunks.

The suites are read by ``validate_suites``, run over a frame by ``validate_run`` (problem rows,
Data Docs) and handed to worker processes by ``validate_workers``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier

from xueji_quality import schema
from xueji_quality.datadocs_index import windows_safe_name
from xueji_quality.staging import StagedStore
from xueji_quality.validate_run import (
    empty_problems,
    merge_results,
    problem_rows,
    publish_data_docs,
    range_name,
    run_suites,
    text_columns,
)
from xueji_quality.validate_suites import DEFAULT_SUITES_DIR, load_suites, rule_catalogue
from xueji_quality.validate_workers import chunk_name, run_chunk, run_parallel
from xueji_quality.workers import mp_context
from xueji_quality.workers import start as start_workers

__all__ = [
    "CHUNK_ROWS",
    "DEFAULT_SUITES_DIR",
    "PARALLEL_MIN_ROWS",
    "START_METHOD",
    "default_workers",
    "load_suites",
    "rule_catalogue",
    "validate_roster",
    "validate_stage",
    "validate_store",
]

# Below this many rows a single process is faster than starting workers.
PARALLEL_MIN_ROWS = 200_000
# Rows a worker validates at once when the roster is staged: about 2.4 GB of worker memory per
# million rows, Data Docs included (at 1.5 million rows two workers took a 20-million-row run's
# process tree to 8.5 GB).
CHUNK_ROWS = 1_000_000
# How worker processes start (see the module docstring); "spawn" where there is no forkserver.
START_METHOD = "forkserver"

logger = logging.getLogger(__name__)


def _pool_context() -> multiprocessing.context.BaseContext:
    if START_METHOD == "forkserver":
        # The run's shared forkserver: every worker starts with GX loaded.
        return mp_context()
    return multiprocessing.get_context(START_METHOD)


def _start_workers() -> multiprocessing.context.BaseContext:
    """The pool's start context; a forkserver starts now, importing while the caller prepares."""
    if START_METHOD == "forkserver":
        return start_workers()
    return _pool_context()


def default_workers(rows: int) -> int:
    """Worker processes for a roster of ``rows`` rows (workers pay off on large rosters only).

    None inside a daemonic process (a Dask worker): it may not start children, and its cluster
    is what spreads the work.
    """
    if rows < PARALLEL_MIN_ROWS or multiprocessing.current_process().daemon:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def validate_roster(
    roster: pd.DataFrame,
    province: str,
    as_of: date,
    *,
    suites_dir: Path | None = None,
    data_docs_dir: Path | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Problems (schema.PROBLEM_COLUMNS) of a canonical roster, one row per (record, rule, field).

    ``as_of`` is the reference date (future dates, school year for AGE_GRADE). With
    ``data_docs_dir`` the run also builds GX Data Docs there (file-mode GX projects under a
    temporary folder; one validation result per suite and row range). ``workers`` defaults to the
    CPU count for large rosters.
    """
    suites = load_suites(suites_dir)
    if not suites or roster.empty:
        return empty_problems()
    workers = max(1, min(workers or default_workers(len(roster)), len(roster)))
    mp_context = _start_workers() if workers > 1 else None
    if not roster.index.equals(pd.RangeIndex(len(roster))):
        roster = roster.reset_index(drop=True)
    parameters = {"as_of": as_of.isoformat(), "province": str(province)}
    docs_run = datetime.now(UTC) if data_docs_dir is not None else None
    columns = text_columns(
        roster, {c for suite in suites for c in suite.columns}, with_keys=docs_run is not None
    )
    with tempfile.TemporaryDirectory(prefix="xueji-gx-") as folder:
        if mp_context is not None:
            found, roots = run_parallel(
                columns, suites, parameters, workers, Path(folder), mp_context, docs_run
            )
        else:
            roots = [Path(folder) / "gx"] if docs_run else []
            run_id = (
                RunIdentifier(run_name=range_name(0, len(roster), len(roster)), run_time=docs_run)
                if docs_run
                else None
            )
            root = roots[0] if roots else None
            found = run_suites(columns, suites, parameters, 0, len(roster), root, run_id)
        if data_docs_dir is not None:
            publish_data_docs(merge_results(roots), Path(data_docs_dir))
    return problem_rows(roster, suites, found)


def validate_store(
    store: StagedStore,
    province: str,
    as_of: date,
    *,
    suites_dir: Path | None = None,
    data_docs_dir: Path | None = None,
    workers: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Problems of a staged roster, as :func:`validate_roster` gives them for the same rows.

    The store's files are validated in chunks of about ``chunk_rows`` rows (never fewer chunks
    than workers), each in a worker process; Data Docs show one validation result per suite and
    chunk. Problems come in store order (by county, then file order).
    """
    suites = load_suites(suites_dir)
    total = store.rows_staged
    if not suites or total == 0:
        return empty_problems()
    workers = max(1, min(workers or default_workers(total), total))
    chunks = store.chunks(max(1, min(chunk_rows, -(-total // workers))))
    parameters = {"as_of": as_of.isoformat(), "province": str(province)}
    docs_run = datetime.now(UTC) if data_docs_dir is not None else None
    light = store.without_tables()
    with tempfile.TemporaryDirectory(prefix="xueji-gx-") as folder:
        roots = [Path(folder) / f"gx-{i + 1}" for i in range(len(chunks))] if docs_run else []
        starts = np.cumsum([0] + [sum(p.rows for p in chunk) for chunk in chunks]).tolist()
        calls = [
            (
                light,
                chunk,
                suites,
                parameters,
                str(roots[i]) if docs_run else None,
                RunIdentifier(run_name=chunk_name(i, chunks, starts[i], total), run_time=docs_run)
                if docs_run
                else None,
            )
            for i, chunk in enumerate(chunks)
        ]
        if workers > 1 and len(chunks) > 1:
            # A fresh worker per chunk: a worker that validated a chunk keeps its heap (about
            # 2.5 GB for a million rows), so long-lived workers grew with the roster.
            with ProcessPoolExecutor(
                workers, mp_context=_start_workers(), max_tasks_per_child=1
            ) as pool:
                futures = [pool.submit(run_chunk, *call) for call in calls]
                parts = [future.result() for future in futures]
        else:
            parts = [run_chunk(*call) for call in calls]
        if data_docs_dir is not None:
            publish_data_docs(merge_results(roots), Path(data_docs_dir))
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_problems()
    problems = pd.concat(parts, ignore_index=True)
    return problems.astype({c: "string" for c in schema.PROBLEM_COLUMNS})


def validate_stage(
    frame: pd.DataFrame,
    stage: str,
    *,
    suites_dir: Path | None = None,
    parameters: dict[str, Any] | None = None,
    data_docs_dir: Path | None = None,
) -> pd.DataFrame:
    """Problems of ``frame`` under the suites of ``stage``, in one process (the frame of a
    later stage is small: only the records that stage has something to say about).

    ``frame`` carries ``record_id``, ``county_code``, the columns the suites name and the fields
    their ``meta`` names; problems come as :func:`validate_roster` gives them.
    """
    suites = load_suites(suites_dir, stage)
    if not suites or frame.empty:
        return empty_problems()
    if not frame.index.equals(pd.RangeIndex(len(frame))):
        frame = frame.reset_index(drop=True)
    docs_run = datetime.now(UTC) if data_docs_dir is not None else None
    columns = text_columns(
        frame, {c for suite in suites for c in suite.columns}, with_keys=docs_run is not None
    )
    with tempfile.TemporaryDirectory(prefix="xueji-gx-") as folder:
        root = Path(folder) / "gx" if docs_run else None
        run_id = (
            RunIdentifier(
                run_name=windows_safe_name(f"{stage} {range_name(0, len(frame), len(frame))}"),
                run_time=docs_run,
            )
            if docs_run
            else None
        )
        found = run_suites(columns, suites, parameters or {}, 0, len(frame), root, run_id)
        if root is not None and data_docs_dir is not None:
            publish_data_docs(root, Path(data_docs_dir), stage)
    return problem_rows(frame, suites, found)
