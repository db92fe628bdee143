"""The files of one county's list, written from what the county needs alone (:class:`CountyList`),
in this process or in worker processes, one county at a time each.

A workbook's list rows are built over whole columns (:mod:`sheet_xml`), the rest is
xlsxwriter's and zlib's work, one core at a time: with ``processes`` > 1 the counties'
workbooks are written by that many worker processes at once.
Each worker gets only its county's rows, already shaped as arrays (a pickle of those is a small
fraction of the time its workbook takes), and at most two counties per worker are handed out
ahead, so the caller never holds more than a few counties' copies besides the province's tables.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from xueji_quality import workers
from xueji_quality.reports import tables
from xueji_quality.reports.county_rows import county_duplicate_block
from xueji_quality.reports.list_writer import ListSettings, ListWriter, write_school_workbooks
from xueji_quality.workers import WorkerDied

# Counties handed to each worker ahead of the one it writes.
AHEAD_PER_PROCESS = 2
# Fewer list rows than this (a province's errors, warnings and duplicate rows) are written in
# the calling process: a worker starts as a fresh interpreter importing pandas and pyarrow, about
# a second of CPU, which a few thousand rows do not win back.
ROWS_FOR_PROCESSES = 20_000


@dataclass
class CountyList:
    """What one county's list needs: its code, name and label, the workbook's path relative to
    the run folder, its record count, its error and warning rows (the list columns in the
    contract's order), its problem rows as its ``problems.parquet`` holds them, the rows of the
    duplicate groups touching it with every county's label (its duplicate block is made from
    them: :func:`county_rows.county_duplicate_block`) and its items
    (:func:`county_totals.problem_items`)."""

    code: str
    name: str
    label: str
    workbook: str
    records: int
    error_columns: list[np.ndarray]
    warning_columns: list[np.ndarray]
    problems: pa.Table
    duplicates: pd.DataFrame
    labels: dict[str, str]
    items: pd.DataFrame


def write_county_files(settings: ListSettings, county: CountyList, per_school: bool) -> dict:
    """Write the county's workbook (with any list too long for it beside it), its
    ``problems.parquet`` and ``duplicates.parquet`` and, with ``per_school``, its schools'
    workbooks. Returns ``counts`` (the workbook's figures), ``files`` (the workbook and the files
    beside it), ``tables`` (the two Parquet files) and ``school_files``.

    The duplicate block and both tables are made here, in the worker: in the calling process they
    were most of what kept the workers waiting for their next county."""
    lists = ListWriter(settings)
    block = county_duplicate_block(county.duplicates, county.code, county.labels)
    path = settings.run_dir / county.workbook
    counts, beside = lists.write(
        path,
        county.error_columns,
        county.warning_columns,
        block,
        county.items,
        label=county.label,
        county_code=county.code,
        records=county.records,
    )
    rows = counts["problem_rows"] + len(block)
    files = [tables.file_entry(settings.run_dir, path, rows), *beside]
    folder = f"counties/{county.code}"
    written_tables = [
        tables.write_arrow(settings.run_dir, f"{folder}/problems.parquet", county.problems),
        tables.write_duplicates(settings.run_dir, f"{folder}/duplicates.parquet", block),
    ]
    school_files = []
    if per_school:
        school_files = write_school_workbooks(
            lists,
            path.parent,
            county.error_columns,
            county.warning_columns,
            block,
            county.items,
            county_label=county.label,
            county_code=county.code,
        )
    return {
        "counts": counts,
        "files": files,
        "tables": written_tables,
        "school_files": school_files,
    }


def in_processes(
    function: Callable[..., dict],
    jobs: Iterable[tuple[Any, ...]],
    processes: int,
) -> Iterator[dict]:
    """``function(*job)`` for each job, in order; in ``processes`` worker processes when more
    than one. Jobs are drawn from ``jobs`` only as workers become free (a few ahead).

    The workers start from the run's forkserver (:func:`xueji_quality.workers.nested_context`): a
    clean single-threaded process, whatever threads the caller runs, with the libraries imported
    already (a spawned worker spent over half a second importing them and the command's module).
    """
    if processes <= 1:
        for job in jobs:
            yield function(*job)
        return
    context = workers.nested_context(("xueji_quality.reports",))
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        pending: deque[Future] = deque()
        try:
            for job in jobs:
                pending.append(pool.submit(function, *job))
                if len(pending) >= processes * AHEAD_PER_PROCESS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool as error:
            raise WorkerDied("write_county_reports") from error
        finally:
            for future in pending:
                future.cancel()
