"""Running suites over a frame with Great Expectations: the validated columns as pyarrow-backed
strings, one GX project (ephemeral, or file-mode for Data Docs) per run, the failing row positions
per suite and expectation, the problem rows they make, and the Data Docs built from stored
results (merged from the projects of several row ranges).

For Data Docs, each stored result is rewritten to show a masked sample of its failing records by
their 记录号 (``datadocs_samples``), and the site gets a front page with the run's totals
(``datadocs_index``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from xueji_quality import schema
from xueji_quality.datadocs import localise_data_docs
from xueji_quality.datadocs_index import (
    GX_INDEX_FILE,
    INDEX_FILE,
    TOTALS_FILE,
    site_totals,
    windows_safe_name,
    write_index,
    write_totals,
)
from xueji_quality.datadocs_samples import KEY_COLUMN, documented_results
from xueji_quality.rules import checks
from xueji_quality.rules import expectations as _registered  # noqa: F401  (registers rules)
from xueji_quality.validate_suites import ROSTER_STAGE, Suite, columns_of, described

# COMPLETE: every failing row's position (the problem rows). No unexpected_index_query: for a
# pandas batch it is the text of every failing position again.
RESULT_FORMAT = {"result_format": "COMPLETE", "return_unexpected_index_query": False}


def empty_problems() -> pd.DataFrame:
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


def text_columns(
    roster: pd.DataFrame, columns: set[str], *, with_keys: bool = False
) -> pd.DataFrame:
    """The columns the suites name, strings pyarrow-backed, blanks as <NA> (converted once:
    suites sharing a column share its buffers, so the rules' per-column work is done once).
    ``with_keys`` adds ``record_id`` as it is (Data Docs name sampled rows by it)."""
    out = {}
    if with_keys:
        columns = columns | {KEY_COLUMN}
    for column in sorted(columns):
        if column not in roster.columns:
            out[column] = pd.Series(pd.NA, index=roster.index, dtype="string[pyarrow]")
        elif column in ("grade_level", KEY_COLUMN):
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


def _no_batch_fingerprint() -> None:
    """GX's pandas engine hashes every row of every batch below 1 GB (pandas'
    ``hash_pandas_object``) for a fingerprint it only stores in the batch markers: two fifths of
    validation's CPU time here, whose batches are named by run and row range instead. The
    threshold is the engine's module setting; at 0 no batch is hashed."""
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0


def gx_context(project_root: Path | None):
    _no_batch_fingerprint()
    if project_root is None:
        context = gx.get_context(mode="ephemeral")
    else:
        context = gx.get_context(mode="file", project_root_dir=str(project_root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def range_name(start: int, stop: int, total: int) -> str:
    """The run name of a row range in the Data Docs (1-based, inclusive, as a clerk counts); GX
    makes a folder of it."""
    return windows_safe_name(f"rows {start + 1}-{stop} of {total}")


def _store_for_docs(context, ran: list[tuple[Any, Suite, list[np.ndarray]]], columns) -> None:
    """Store each suite's result again as its Data Docs page should show it: the failing records
    of each expectation as a masked sample named by 记录号 (``datadocs_samples``)."""
    outcomes, owners = [], []
    for result, suite, positions in ran:
        slot = {_key(e["type"], e.get("meta")): i for i, e in enumerate(suite.spec["expectations"])}
        for outcome in result.results:
            config = outcome.expectation_config
            rows = positions[slot[_key(config.type, config.meta)]]
            outcomes.append((outcome.result, rows, columns_of({"kwargs": config.kwargs})))
            owners.append(outcome)
    for outcome, shown in zip(owners, documented_results(outcomes, columns), strict=True):
        outcome.result = shown
    for result, _, _ in ran:
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
            run_id=result.meta["run_id"],
            batch_identifier=result.results[0].expectation_config.kwargs["batch_id"],
        )
        context.validation_results_store.set(key, result)


def run_suites(
    columns: pd.DataFrame,
    suites: list[Suite],
    parameters: dict[str, Any],
    start: int,
    stop: int,
    project_root: Path | None = None,
    run_id: RunIdentifier | None = None,
) -> list[list[np.ndarray]]:
    """Positions of the failing rows, per suite and expectation (in suite order).

    GX runs under pandas' copy-on-write: for every null filter, row condition and
    ``ignore_row_if`` of every expectation it selects the batch's rows, and without copy-on-write
    a selection that keeps every row still copies every column (a fifth of validation's CPU).
    """
    with pd.option_context("mode.copy_on_write", True):
        context = gx_context(project_root)
        asset = context.data_sources.add_pandas("roster").add_dataframe_asset("roster")
        found: list[list[np.ndarray]] = []
        ran: list[tuple[Any, Suite, list[np.ndarray]]] = []
        for suite in suites:
            name = windows_safe_name(suite.name)  # GX makes folders and files of it
            batch = asset.add_batch_definition_whole_dataframe(name)
            spec = {**suite.spec, "name": name}
            if project_root is not None:
                # What the pages say of each expectation (rule code, Chinese name, message).
                spec["expectations"] = [described(e) for e in spec["expectations"]]
            gx_suite = context.suites.add(gx.ExpectationSuite(**spec))
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=gx_suite)
            )
            frame = _batch_frame(columns, suite.columns, start, stop)
            result = definition.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=parameters,
                result_format=RESULT_FORMAT,
                run_id=run_id,
            )
            # GX does not keep the suite's order in its results: match them by type and meta.
            slot = {
                _key(e["type"], e.get("meta")): i for i, e in enumerate(suite.spec["expectations"])
            }
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
            if project_root is not None and result.results:
                ran.append((result, suite, positions))
            found.append(positions)
        if ran:
            _store_for_docs(context, ran, columns)
        return found


def problem_rows(
    roster: pd.DataFrame, suites: list[Suite], found: list[list[np.ndarray]]
) -> pd.DataFrame:
    pieces = []
    for suite, positions in zip(suites, found, strict=True):
        for expectation, rows in zip(suite.spec["expectations"], positions, strict=True):
            if len(rows) == 0:
                continue
            meta = expectation.get("meta", {})
            field = meta.get("field") or columns_of(expectation)[-1]
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
        return empty_problems()
    problems = pd.concat(pieces, ignore_index=True)
    # One row per (record, rule, field), in roster order.
    problems = problems.drop_duplicates(["_row", "rule", "field"]).sort_values(
        "_row", kind="stable"
    )
    problems = problems.drop(columns="_row").reset_index(drop=True)
    return problems.astype({c: "string" for c in schema.PROBLEM_COLUMNS})


# --- Data Docs ---------------------------------------------------------------------------------


def _validations_dir(root: Path) -> Path:
    return root / "gx" / "uncommitted" / "validations"


def merge_results(roots: list[Path]) -> Path:
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


def publish_data_docs(root: Path, data_docs_dir: Path, stage: str = ROSTER_STAGE) -> None:
    """Build the Data Docs of a project once and copy the site into ``data_docs_dir``, with a
    front page of the run's totals (GX's own index kept as ``gx_index.html``)."""
    totals = site_totals(_validations_dir(root), stage)
    gx_context(root).build_data_docs()
    site = root / "gx" / "uncommitted" / "data_docs" / "local_site"
    (site / INDEX_FILE).replace(site / GX_INDEX_FILE)
    docs = Path(data_docs_dir)
    # Merged into the folder: never delete what a caller keeps there.
    shutil.copytree(site, docs, dirs_exist_ok=True)
    write_totals(docs, totals)
    write_index(docs)
    if (docs.parent / TOTALS_FILE).is_file():
        # A later stage's site inside the run's site: its totals join the run's front page.
        write_index(docs.parent)
    # Intranets have no internet: the pages must not depend on public CDNs.
    localise_data_docs(docs)
