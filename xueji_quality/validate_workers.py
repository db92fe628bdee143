"""What validation's worker processes run: a contiguous row range of a roster (its validated
columns shared as one memory-mapped Arrow IPC file), or a chunk of a staged roster's Parquet
files that the worker reads itself."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from great_expectations.core.run_identifier import RunIdentifier

from xueji_quality.datadocs_index import windows_safe_name
from xueji_quality.staging import Part, StagedStore
from xueji_quality.validate_run import (
    empty_problems,
    problem_rows,
    range_name,
    run_suites,
    text_columns,
)
from xueji_quality.validate_suites import Suite, fields_of


def _write_columns(columns: pd.DataFrame, path: Path) -> None:
    """The validated columns as one Arrow IPC file (one record batch), for workers to map."""
    table = pa.Table.from_pandas(columns, preserve_index=False).combine_chunks()
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, len(table)))


_PANDAS_TYPES = {
    pa.large_string(): pd.StringDtype("pyarrow"),
    pa.string(): pd.StringDtype("pyarrow"),
    pa.int8(): pd.Int8Dtype(),
}


def _read_columns(path: Path) -> pd.DataFrame:
    """The columns written by ``_write_columns``; the strings stay in the memory map."""
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    return table.to_pandas(types_mapper=_PANDAS_TYPES.get, self_destruct=False)


def _run_range(
    columns_path: str,
    suites: list[Suite],
    parameters: dict[str, Any],
    start: int,
    stop: int,
    project_root: str | None,
    run_id: RunIdentifier | None,
) -> list[list[np.ndarray]]:
    """A worker's share: one contiguous row range through every suite."""
    columns = _read_columns(Path(columns_path))
    root = Path(project_root) if project_root else None
    return run_suites(columns, suites, parameters, start, stop, root, run_id)


def run_parallel(
    columns: pd.DataFrame,
    suites: list[Suite],
    parameters: dict[str, Any],
    workers: int,
    folder: Path,
    mp_context: multiprocessing.context.BaseContext,
    docs_run: datetime | None = None,
) -> tuple[list[list[np.ndarray]], list[Path]]:
    """Found positions of all rows, and the GX project root of each range (with ``docs_run``)."""
    total = len(columns)
    bounds = np.linspace(0, total, workers + 1).astype(int).tolist()
    ranges = list(zip(bounds[:-1], bounds[1:], strict=True))
    columns_path = folder / "columns.arrow"
    _write_columns(columns, columns_path)
    roots = [folder / f"gx-{start + 1}-{stop}" for start, stop in ranges] if docs_run else []
    with ProcessPoolExecutor(workers, mp_context=mp_context) as pool:
        futures = [
            pool.submit(
                _run_range,
                str(columns_path),
                suites,
                parameters,
                start,
                stop,
                str(roots[i]) if docs_run else None,
                RunIdentifier(run_name=range_name(start, stop, total), run_time=docs_run)
                if docs_run
                else None,
            )
            for i, (start, stop) in enumerate(ranges)
        ]
        parts = [future.result() for future in futures]
    found = [
        [
            np.concatenate([part[s][e] for part in parts])
            for e in range(len(suite.spec["expectations"]))
        ]
        for s, suite in enumerate(suites)
    ]
    return found, roots


def run_chunk(
    store: StagedStore,
    parts: list[Part],
    suites: list[Suite],
    parameters: dict[str, Any],
    project_root: str | None,
    run_id: RunIdentifier | None,
) -> pd.DataFrame:
    """Problems of one chunk of a staged roster (in a worker, or inline for a small roster).

    Under pandas' copy-on-write, like :func:`run_suites`: the chunk's frames are then shared, not
    copied, by the selections that keep all their rows."""
    with pd.option_context("mode.copy_on_write", True):
        roster = store.read(sorted(fields_of(suites)), parts=parts)
        if roster.empty:
            return empty_problems()
        root = Path(project_root) if project_root else None
        columns = text_columns(
            roster, {c for suite in suites for c in suite.columns}, with_keys=root is not None
        )
        found = run_suites(columns, suites, parameters, 0, len(roster), root, run_id)
        del columns
        return problem_rows(roster, suites, found)


def chunk_name(index: int, chunks: list[list[Part]], start: int, total: int) -> str:
    """The run name of a chunk in the Data Docs; GX makes a folder of it."""
    rows = sum(p.rows for p in chunks[index])
    first, last = chunks[index][0].county_code, chunks[index][-1].county_code
    counties = first if first == last else f"{first}-{last}"
    return windows_safe_name(
        f"part {index + 1} of {len(chunks)}, rows {start + 1}-{start + rows} of {total}"
        f" (counties {counties})"
    )
