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
- large rosters are split into contiguous row ranges validated in forked worker processes.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig

from xueji_quality import schema
from xueji_quality.datadocs import localise_data_docs
from xueji_quality.rules import checks
from xueji_quality.rules import expectations as _registered  # noqa: F401  (registers rules)

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
# Below this many rows a single process is faster than forking workers.
PARALLEL_MIN_ROWS = 200_000

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


def load_suites(suites_dir: Path | None = None) -> list[_Suite]:
    """Enabled expectations of each suite file, with the roster columns each suite needs."""
    suites = []
    for path in _suite_files(suites_dir or DEFAULT_SUITES_DIR):
        spec = _read_suite(path)
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
            values = checks.as_text(roster[column])
            # A blank cell is a missing value (REQUIRED_MISSING's business, no format error).
            out[column] = values.mask(values.str.strip().eq("").fillna(False))
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


def _run_suites(
    columns: pd.DataFrame,
    suites: list[_Suite],
    parameters: dict[str, Any],
    start: int,
    stop: int,
    project_root: Path | None = None,
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
    if project_root is not None:
        context.build_data_docs()
    return found


# Forked workers read the roster from here instead of receiving a pickled copy.
_SHARED: dict[str, Any] = {}
_SHARED_LOCK = threading.Lock()


def _run_shared_range(start: int, stop: int) -> list[list[np.ndarray]]:
    return _run_suites(_SHARED["columns"], _SHARED["suites"], _SHARED["parameters"], start, stop)


def _run_parallel(
    columns: pd.DataFrame, suites: list[_Suite], parameters: dict[str, Any], workers: int
) -> list[list[np.ndarray]]:
    bounds = np.linspace(0, len(columns), workers + 1).astype(int)
    with _SHARED_LOCK:  # one parallel run at a time per process: workers read _SHARED
        _SHARED.update(columns=columns, suites=suites, parameters=parameters)
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                parts = list(pool.map(_run_shared_range, bounds[:-1], bounds[1:]))
        finally:
            _SHARED.clear()
    return [
        [
            np.concatenate([part[s][e] for part in parts])
            for e in range(len(suite.spec["expectations"]))
        ]
        for s, suite in enumerate(suites)
    ]


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
    """Worker processes for a roster of ``rows`` rows (forking pays off on large rosters only)."""
    if rows < PARALLEL_MIN_ROWS or "fork" not in multiprocessing.get_all_start_methods():
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
    ``data_docs_dir`` the run also builds GX Data Docs there (validated in one process, in a
    file-mode GX project under a temporary folder). ``workers`` defaults to the CPU count for
    large rosters.
    """
    suites = load_suites(suites_dir)
    if not suites or roster.empty:
        return _empty_problems()
    if not roster.index.equals(pd.RangeIndex(len(roster))):
        roster = roster.reset_index(drop=True)
    parameters = {"as_of": as_of.isoformat(), "province": str(province)}
    columns = _text_columns(roster, {c for suite in suites for c in suite.columns})
    if data_docs_dir is not None:
        with tempfile.TemporaryDirectory(prefix="xueji-gx-") as root:
            found = _run_suites(columns, suites, parameters, 0, len(roster), Path(root))
            site = Path(root) / "gx" / "uncommitted" / "data_docs" / "local_site"
            # Merged into the folder: never delete what a caller keeps there.
            shutil.copytree(site, Path(data_docs_dir), dirs_exist_ok=True)
        # Intranets have no internet: the pages must not depend on public CDNs.
        localise_data_docs(Path(data_docs_dir))
    else:
        workers = workers or default_workers(len(roster))
        if workers > 1:
            found = _run_parallel(columns, suites, parameters, workers)
        else:
            found = _run_suites(columns, suites, parameters, 0, len(roster))
    return _problems(roster, suites, found)
