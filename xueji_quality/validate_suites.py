"""The expectation suites of ``expectations/*.json``: which expectations are on, the columns each
suite needs, how Data Docs describe each expectation, and the rule catalogue (every expectation's
code, severity, field, message and suggestion, from its ``meta``)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from xueji_quality import schema
from xueji_quality.rule_names import RULE_NAMES

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
# Suites without a ``meta.stage`` validate the roster itself.
ROSTER_STAGE = "roster"
# The severities of ``meta.severity``, in the words the county lists use.
SEVERITY_LABELS: dict[str, str] = {"E": "错误", "W": "警告"}
# Expectation arguments that say nothing to a reader of the docs.
_PLAIN_KWARGS = ("batch_id", "column", "column_list", "mostly")


@dataclass(frozen=True)
class Suite:
    name: str
    spec: dict[str, Any]  # the suite JSON with only enabled expectations
    columns: tuple[str, ...]


def _suite_files(suites_dir: Path) -> list[Path]:
    return sorted(Path(suites_dir).glob("*.json"))


def _read_suite(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def columns_of(expectation: dict[str, Any]) -> list[str]:
    kwargs = expectation.get("kwargs", {})
    if "column" in kwargs:
        return [kwargs["column"]]
    return list(kwargs.get("column_list", []))


def _argument(value: Any) -> str:
    if isinstance(value, dict) and "$PARAMETER" in value:
        return f"运行参数 {value['$PARAMETER']}"
    return json.dumps(value, ensure_ascii=False)


def described(expectation: dict[str, Any]) -> dict[str, Any]:
    """The expectation with the ``description`` and ``notes`` its Data Docs show, from its meta.

    GX renders an expectation's ``description``, when there is one, instead of its prescriptive
    renderer (for the custom rules: ``expect_…(**{kwargs})``), on suite and validation pages;
    ``notes`` open under it on suite pages. The description is the rule code, its short Chinese
    name, severity and message; the notes the suggestion, the field and the GX check with its
    parameters. A description or notes the suite gives itself are kept.
    """
    meta = expectation.get("meta") or {}
    code = meta.get("rule")
    if not code:
        return expectation
    severity = SEVERITY_LABELS.get(str(meta.get("severity", "E")), meta.get("severity"))
    title = f"{code} {RULE_NAMES.get(code, code)}（{severity}）"
    # GX puts the description into the page as markup; newlines become line breaks.
    description = html.escape("\n".join(filter(None, [title, meta.get("message")])), quote=False)
    kwargs = expectation.get("kwargs", {})
    field = meta.get("field") or columns_of(expectation)[-1]
    check = ", ".join(
        [f"`{expectation['type']}`", "列 " + "、".join(columns_of(expectation))]
        + [f"{k}={_argument(v)}" for k, v in kwargs.items() if k not in _PLAIN_KWARGS]
    )
    notes = [
        f"**修改建议**：{html.escape(meta['suggestion'])}" if meta.get("suggestion") else None,
        f"**字段**：{schema.FIELDS.get(field, field)}（{field}）",
        f"**校验**：{check}",
    ]
    return {
        **expectation,
        "description": expectation.get("description") or description,
        "notes": expectation.get("notes") or [note for note in notes if note],
    }


def _enabled(expectation: dict[str, Any]) -> bool:
    return bool(expectation.get("meta", {}).get("enabled", True))


def _stage(spec: dict[str, Any]) -> str:
    """The stage a suite belongs to (suite ``meta.stage``): ``roster`` unless it says otherwise."""
    return str((spec.get("meta") or {}).get("stage", ROSTER_STAGE))


def load_suites(suites_dir: Path | None = None, stage: str = ROSTER_STAGE) -> list[Suite]:
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
        columns = tuple(dict.fromkeys(c for e in live for c in columns_of(e)))
        suites.append(Suite(spec["name"], {**spec, "expectations": live}, columns))
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


def fields_of(suites: list[Suite]) -> set[str]:
    """Every column a problem row reads: the suites' columns and the fields their meta names."""
    needed = {"record_id", "county_code"}
    for suite in suites:
        needed.update(suite.columns)
        for expectation in suite.spec["expectations"]:
            meta = expectation.get("meta", {})
            needed.add(meta.get("field") or columns_of(expectation)[-1])
    return needed
