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
  the Data Docs once from them. The docs show one validation result per suite and row range.

A staged roster (:func:`validate_store`, what the provincial run uses) is validated a chunk of
its Parquet files at a time: each worker reads its chunk's columns itself and returns the chunk's
problems, so no process ever holds the province (20 million rows would be 14 GB of strings). The
rules are all within one record, so a chunk's problems do not depend on the other chunks.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig

from xueji_quality import schema
from xueji_quality.datadocs import localise_data_docs
from xueji_quality.rules import checks
from xueji_quality.rules import expectations as _registered  # noqa: F401  (registers rules)
from xueji_quality.staging import Part, StagedStore
from xueji_quality.workers import mp_context
from xueji_quality.workers import start as start_workers

DEFAULT_SUITES_DIR = Path(__file__).resolve().parents[1] / "expectations"
CATALOGUE_COLUMNS: tuple[str, ...] = (
    "rule",
    "severity",
    "field",
    "message",
    "suggestion",
    "enabled",
    "suite",
    "expectation",
)
RESULT_FORMAT = {"result_format": "COMPLETE"}
# Suites without a ``meta.stage`` validate the roster itself.
ROSTER_STAGE = "roster"
# Below this many rows a single process is faster than starting workers.
PARALLEL_MIN_ROWS = 200_000
# Rows a worker validates at once when the roster is staged: about 2.4 GB of worker memory per
# million rows, Data Docs included (at 1.5 million rows two workers took a 20-million-row run's
# process tree to 8.5 GB).
CHUNK_ROWS = 1_000_000
# How worker processes start (see the module docstring); "spawn" where there is no forkserver.
START_METHOD = "forkserver"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Suite:
    name: str
    spec: dict[str, Any]  # the suite JSON with only enabled expectations
    columns: tuple[str, ...]


def _suite_files(suites_dir: Path) -> list[Path]:
    return sorted(Path(suites_dir).glob("*.json"))


def _read_suite(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _columns_of(expectation: dict[str, Any]) -> list[str]:
    kwargs = expectation.get("kwargs", {})
    if "column" in kwargs:
        return [kwargs["column"]]
    return list(kwargs.get("column_list", []))


def _enabled(expectation: dict[str, Any]) -> bool:
    return bool(expectation.get("meta", {}).get("enabled", True))


def _stage(spec: dict[str, Any]) -> str:
    """The stage a suite belongs to (suite ``meta.stage``): ``roster`` unless it says otherwise."""
    return str((spec.get("meta") or {}).get("stage", ROSTER_STAGE))


def load_suites(suites_dir: Path | None = None, stage: str = ROSTER_STAGE) -> list[_Suite]:
    """Enabled expectations of each suite file of ``stage``, with the columns each suite needs.

    A suite whose ``meta.stage`` names another stage (``police``: rules over the verdicts of the
    police cross-check) runs only where that stage's columns exist (see ``validate_stage``).
    """
    suites = []
    for path in _suite_files(suites_dir or DEFAULT_SUITES_DIR):
        spec = _read_suite(path)
        if _stage(spec) != stage:
            continue
        live = [e for e in spec.get("expectations", []) if _enabled(e)]
        if not live:
            continue
        columns = tuple(dict.fromkeys(c for e in live for c in _columns_of(e)))
        suites.append(_Suite(spec["name"], {**spec, "expectations": live}, columns))
    return suites


def rule_catalogue(suites_dir: Path | None = None) -> pd.DataFrame:
    """One row per expectation of the suites (switched off ones too), from their ``meta``."""
    rows = []
    for path in _suite_files(suites_dir or DEFAULT_SUITES_DIR):
        spec = _read_suite(path)
        for expectation in spec.get("expectations", []):
            meta = expectation.get("meta", {})
            rows.append(
                {
                    "rule": meta.get("rule"),
                    "severity": meta.get("severity"),
                    "field": meta.get("field"),
                    "message": meta.get("message"),
                    "suggestion": meta.get("suggestion"),
                    "enabled": _enabled(expectation),
                    "suite": spec.get("name"),
                    "expectation": expectation.get("type"),
                }
            )
    frame = pd.DataFrame(rows, columns=list(CATALOGUE_COLUMNS))
    text = [c for c in CATALOGUE_COLUMNS if c != "enabled"]
    return frame.astype({c: "string" for c in text} | {"enabled": bool})


def _empty_problems() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in schema.PROBLEM_COLUMNS})


def _text_column(values: pd.Series) -> pd.Series:
    """One column as pyarrow-backed strings, blank cells as <NA> (a blank cell is a missing value:
    REQUIRED_MISSING's business, no format error)."""
    array = None
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "python":
        # Straight from the object array of Python strings (pandas < 3 keeps it as
        # ``_ndarray``, <NA> for missing): a third of the time of astype or __arrow_array__,
        # which copy it first (14 columns x 1M rows: 0.8 s instead of 1.8 s).
        objects = getattr(values.array, "_ndarray", None)
        try:
            if objects is not None:
                array = pa.array(objects, type=pa.large_string(), from_pandas=True)
        except Exception:  # lone surrogates from a broken decode: as_text replaces them
            array = None
    if array is None:
        array = pa.array(checks.as_text(values).array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    blank = pc.equal(pc.utf8_trim_whitespace(array), "")
    cleaned = pc.if_else(blank, pa.scalar(None, array.type), array)
    return pd.Series(pd.arrays.ArrowStringArray(cleaned), index=values.index)


def _text_columns(roster: pd.DataFrame, columns: set[str]) -> pd.DataFrame:
    """The columns the suites name, strings pyarrow-backed, blanks as <NA> (converted once:
    suites sharing a column share its buffers, so the rules' per-column work is done once)."""
    out = {}
    for column in sorted(columns):
        if column not in roster.columns:
            out[column] = pd.Series(pd.NA, index=roster.index, dtype="string[pyarrow]")
        elif column == "grade_level":
            out[column] = roster[column]
        else:
            out[column] = _text_column(roster[column])
    return pd.DataFrame(out, index=roster.index)


def _batch_frame(
    columns: pd.DataFrame, names: tuple[str, ...], start: int, stop: int
) -> pd.DataFrame:
    """Only the suite's columns, index = roster row position."""
    frame = columns.iloc[start:stop][list(names)]
    frame.index = pd.RangeIndex(start, stop)
    return frame


def _key(kind: str, meta: dict[str, Any] | None) -> str:
    return json.dumps([kind, meta or {}], sort_keys=True, ensure_ascii=False)


def _context(project_root: Path | None):
    if project_root is None:
        context = gx.get_context(mode="ephemeral")
    else:
        context = gx.get_context(mode="file", project_root_dir=str(project_root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _range_name(start: int, stop: int, total: int) -> str:
    """The run name of a row range in the Data Docs (1-based, inclusive, as a clerk counts)."""
    return f"rows {start + 1}-{stop} of {total}"


def _run_suites(
    columns: pd.DataFrame,
    suites: list[_Suite],
    parameters: dict[str, Any],
    start: int,
    stop: int,
    project_root: Path | None = None,
    run_id: RunIdentifier | None = None,
) -> list[list[np.ndarray]]:
    """Positions of the failing rows, per suite and expectation (in suite order)."""
    context = _context(project_root)
    asset = context.data_sources.add_pandas("roster").add_dataframe_asset("roster")
    found: list[list[np.ndarray]] = []
    for suite in suites:
        batch = asset.add_batch_definition_whole_dataframe(suite.name)
        gx_suite = context.suites.add(gx.ExpectationSuite(**suite.spec))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
        )
        frame = _batch_frame(columns, suite.columns, start, stop)
        result = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            result_format=RESULT_FORMAT,
            run_id=run_id,
        )
        # GX does not keep the suite's order in its results: match them by type and meta.
        slot = {_key(e["type"], e.get("meta")): i for i, e in enumerate(suite.spec["expectations"])}
        positions = [np.zeros(0, dtype=np.int64)] * len(slot)
        for outcome in result.results:
            config = outcome.expectation_config
            info = outcome.exception_info or {}
            if info.get("raised_exception"):
                raise RuntimeError(
                    f"规则 {config.meta.get('rule')} 运行出错：{info.get('exception_message')}"
                )
            index = outcome.result.get("unexpected_index_list") or []
            positions[slot[_key(config.type, config.meta)]] = np.asarray(index, dtype=np.int64)
        found.append(positions)
    return found


# --- worker processes --------------------------------------------------------------------------


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
    suites: list[_Suite],
    parameters: dict[str, Any],
    start: int,
    stop: int,
    project_root: str | None,
    run_id: RunIdentifier | None,
) -> list[list[np.ndarray]]:
    """A worker's share: one contiguous row range through every suite."""
    columns = _read_columns(Path(columns_path))
    root = Path(project_root) if project_root else None
    return _run_suites(columns, suites, parameters, start, stop, root, run_id)


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


def _run_parallel(
    columns: pd.DataFrame,
    suites: list[_Suite],
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
                RunIdentifier(run_name=_range_name(start, stop, total), run_time=docs_run)
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


# --- Data Docs ---------------------------------------------------------------------------------


def _validations_dir(root: Path) -> Path:
    return root / "gx" / "uncommitted" / "validations"


def _merge_results(roots: list[Path]) -> Path:
    """Move every project's stored validation results into the first project's store.

    Each range's results are keyed by suite, run name (the range), run time and batch, so keys
    never repeat; a repeated one would mean lost results, hence the error. The store's own
    identity file (``.ge_store_backend_id``) stays the first project's.
    """
    into = _validations_dir(roots[0])
    for root in roots[1:]:
        stored = _validations_dir(root)
        for path in sorted(p for p in stored.rglob("*.json") if p.is_file()):
            target = into / path.relative_to(stored)
            if target.exists():
                raise RuntimeError(f"GX 校验结果键重复，结果会被覆盖：{target.relative_to(into)}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
    return roots[0]


def _publish_data_docs(root: Path, data_docs_dir: Path) -> None:
    """Build the Data Docs of a project once and copy the site into ``data_docs_dir``."""
    _context(root).build_data_docs()
    site = root / "gx" / "uncommitted" / "data_docs" / "local_site"
    # Merged into the folder: never delete what a caller keeps there.
    shutil.copytree(site, Path(data_docs_dir), dirs_exist_ok=True)
    # Intranets have no internet: the pages must not depend on public CDNs.
    localise_data_docs(Path(data_docs_dir))


def _problems(
    roster: pd.DataFrame, suites: list[_Suite], found: list[list[np.ndarray]]
) -> pd.DataFrame:
    pieces = []
    for suite, positions in zip(suites, found, strict=True):
        for expectation, rows in zip(suite.spec["expectations"], positions, strict=True):
            if len(rows) == 0:
                continue
            meta = expectation.get("meta", {})
            field = meta.get("field") or _columns_of(expectation)[-1]
            value = (
                roster[field].iloc[rows].astype("string").to_numpy()
                if field in roster.columns
                else pd.array([pd.NA] * len(rows), dtype="string")
            )
            pieces.append(
                pd.DataFrame(
                    {
                        "record_id": roster["record_id"].iloc[rows].to_numpy(),
                        "county_code": roster["county_code"].iloc[rows].to_numpy()
                        if "county_code" in roster.columns
                        else pd.NA,
                        "rule": meta.get("rule"),
                        "severity": meta.get("severity", "E"),
                        "field": field,
                        "value": value,
                        "message": meta.get("message"),
                        "suggestion": meta.get("suggestion"),
                        "_row": rows,
                    }
                )
            )
    if not pieces:
        return _empty_problems()
    problems = pd.concat(pieces, ignore_index=True)
    # One row per (record, rule, field), in roster order.
    problems = problems.drop_duplicates(["_row", "rule", "field"]).sort_values(
        "_row", kind="stable"
    )
    problems = problems.drop(columns="_row").reset_index(drop=True)
    return problems.astype({c: "string" for c in schema.PROBLEM_COLUMNS})


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
        return _empty_problems()
    workers = max(1, min(workers or default_workers(len(roster)), len(roster)))
    mp_context = _start_workers() if workers > 1 else None
    if not roster.index.equals(pd.RangeIndex(len(roster))):
        roster = roster.reset_index(drop=True)
    parameters = {"as_of": as_of.isoformat(), "province": str(province)}
    columns = _text_columns(roster, {c for suite in suites for c in suite.columns})
    docs_run = datetime.now(UTC) if data_docs_dir is not None else None
    with tempfile.TemporaryDirectory(prefix="xueji-gx-") as folder:
        if mp_context is not None:
            found, roots = _run_parallel(
                columns, suites, parameters, workers, Path(folder), mp_context, docs_run
            )
        else:
            roots = [Path(folder) / "gx"] if docs_run else []
            run_id = (
                RunIdentifier(run_name=_range_name(0, len(roster), len(roster)), run_time=docs_run)
                if docs_run
                else None
            )
            root = roots[0] if roots else None
            found = _run_suites(columns, suites, parameters, 0, len(roster), root, run_id)
        if data_docs_dir is not None:
            _publish_data_docs(_merge_results(roots), Path(data_docs_dir))
    return _problems(roster, suites, found)


def _fields_of(suites: list[_Suite]) -> set[str]:
    """Every column a problem row reads: the suites' columns and the fields their meta names."""
    needed = {"record_id", "county_code"}
    for suite in suites:
        needed.update(suite.columns)
        for expectation in suite.spec["expectations"]:
            meta = expectation.get("meta", {})
            needed.add(meta.get("field") or _columns_of(expectation)[-1])
    return needed


def _run_chunk(
    store: StagedStore,
    parts: list[Part],
    suites: list[_Suite],
    parameters: dict[str, Any],
    project_root: str | None,
    run_id: RunIdentifier | None,
) -> pd.DataFrame:
    """Problems of one chunk of a staged roster (in a worker, or inline for a small roster)."""
    roster = store.read(sorted(_fields_of(suites)), parts=parts)
    if roster.empty:
        return _empty_problems()
    columns = _text_columns(roster, {c for suite in suites for c in suite.columns})
    root = Path(project_root) if project_root else None
    found = _run_suites(columns, suites, parameters, 0, len(roster), root, run_id)
    del columns
    return _problems(roster, suites, found)


def _chunk_name(index: int, chunks: list[list[Part]], start: int, total: int) -> str:
    rows = sum(p.rows for p in chunks[index])
    first, last = chunks[index][0].county_code, chunks[index][-1].county_code
    counties = first if first == last else f"{first}-{last}"
    return (
        f"part {index + 1} of {len(chunks)}: rows {start + 1}-{start + rows} of {total}"
        f" (counties {counties})"
    )


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
        return _empty_problems()
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
                RunIdentifier(run_name=_chunk_name(i, chunks, starts[i], total), run_time=docs_run)
                if docs_run
                else None,
            )
            for i, chunk in enumerate(chunks)
        ]
        if workers > 1 and len(chunks) > 1:
            with ProcessPoolExecutor(workers, mp_context=_start_workers()) as pool:
                futures = [pool.submit(_run_chunk, *call) for call in calls]
                parts = [future.result() for future in futures]
        else:
            parts = [_run_chunk(*call) for call in calls]
        if data_docs_dir is not None:
            _publish_data_docs(_merge_results(roots), Path(data_docs_dir))
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty_problems()
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
        return _empty_problems()
    if not frame.index.equals(pd.RangeIndex(len(frame))):
        frame = frame.reset_index(drop=True)
    columns = _text_columns(frame, {c for suite in suites for c in suite.columns})
    docs_run = datetime.now(UTC) if data_docs_dir is not None else None
    with tempfile.TemporaryDirectory(prefix="xueji-gx-") as folder:
        root = Path(folder) / "gx" if docs_run else None
        run_id = (
            RunIdentifier(
                run_name=f"{stage} {_range_name(0, len(frame), len(frame))}", run_time=docs_run
            )
            if docs_run
            else None
        )
        found = _run_suites(columns, suites, parameters or {}, 0, len(frame), root, run_id)
        if root is not None and data_docs_dir is not None:
            _publish_data_docs(root, Path(data_docs_dir))
    return _problems(frame, suites, found)
