"""The police cross-check of a roster: per-record verdicts, then the police rules through GX.

Entry point: :func:`police_check` (or :func:`police_problems` for the problem rows alone), with
either a registry extract or a result file of the request/result exchange:

1. verdicts (``verdicts``), one set per roster record whose ID number was sent
   (``exchange.sendable``):
   ``police_id`` (found / not_found / not_found_near / pending), ``police_name`` (a kind of
   ``names``, or mismatch / mismatch_placeholder from a result file that says only 不一致),
   ``police_status`` (normal / moved / cancelled / dead);
2. the suite ``expectations/roster_police.json`` (stage ``police``) validates the records with
   something to report, so each police rule is declared, switched on and worded like every other
   rule, and its problem rows come out of Great Expectations;
3. the placeholders of the messages are filled per record (``TOKENS``): 〔公安库姓名〕 (only for
   the kinds that may show it: 同音字, 形近字/异体字/繁简, 生僻字), 〔公安库号码〕 and
   〔性别、出生日期差异〕 (the registry's sex or birth date differ from the roster's, said without
   showing the registry's values). Written so, the catalogue's text still reads as a legend.

With a registry extract two more helps come from the registry, both for the same person only:
an ID that is not in the registry, where exactly one registry person with the same name, sex and
birth date holds a number differing in at most two positions, gets that number as the suggestion
(疑似录入错误); an ID that fails its check character, where exactly one of its valid neighbours
(one character changed, or two adjacent characters swapped) is in the registry under the same
name, gets that number for its ID_CHECKSUM item (``checksum_suggestions``,
``apply_checksum_suggestions``).

The registry and the result file are read, never copied: the outcome holds roster values,
verdict words, counts, and the registry's name or number only in the suggestions above. A
registry person the roster does not point at never appears. Joins are sorted integer look-ups
over whole columns (``keys``); name pairs are judged once per distinct pair.

A large roster is checked a chunk at a time (``runs.check_staged``): ``findings`` of each chunk
against a registry read once (``registry_index.load_registry``), ``combined``, then one pass of
the suite over the records with something to report (``outcome``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import schema
from xueji_quality.files import sha256_file
from xueji_quality.police import exchange, names, verdicts
from xueji_quality.police.registry_index import Registry, load_registry, prepared
from xueji_quality.police.verdicts import CHECKSUM_COLUMNS, SHOWN_KINDS, STATUS_FINDINGS
from xueji_quality.rules import checks

__all__ = [
    "CHECKSUM_COLUMNS",
    "Findings",
    "PoliceOutcome",
    "Registry",
    "SHOWN_KINDS",
    "apply_checksum_suggestions",
    "checksum_suggestions",
    "combined",
    "file_facts",
    "findings",
    "outcome",
    "police_check",
    "police_problems",
    "prepared",
]

STAGE = "police"
# Verdicts that are findings (what the suite's expectations look for).
ID_FINDINGS = ("not_found", "not_found_near")
NAME_FINDINGS = (
    names.HOMOPHONE,
    names.VARIANT,
    names.RARE_PLACEHOLDER,
    names.DIFFERENT,
    "mismatch",
    "mismatch_placeholder",
)
VERDICT_COLUMNS = ("police_id", "police_name", "police_status")
FILL_COLUMNS = ("registry_name", "suggested_id", "differences")
ROSTER_COLUMNS = ("record_id", "county_code", "name", "sex", "birth_date", "id_type", "id_number")
FINDING_COLUMNS = ("record_id", "county_code", "id_number", "name", *VERDICT_COLUMNS, *FILL_COLUMNS)
PENDING_COLUMNS = ("record_id", "county_code")
STRING = pd.StringDtype("pyarrow")
# Placeholders of the suite's messages and suggestions, filled per record from these columns.
TOKENS = {
    "registry_name": "〔公安库姓名〕",
    "suggested_id": "〔公安库号码〕",
    "differences": "〔性别、出生日期差异〕",
}


@dataclass(frozen=True)
class PoliceOutcome:
    """What the police cross-check of a roster found.

    ``problems``: schema.PROBLEM_COLUMNS rows of POLICE_ID_NOT_FOUND, POLICE_NAME_MISMATCH and
    POLICE_ID_CANCELLED. ``checksum_suggestions``: record_id -> new suggestion of its ID_CHECKSUM
    item. ``pending``: records sent but not compared (比对失败, or no result line), with their
    county. ``sent``: records whose number was compared or asked about. ``files``: name, sha256
    and row count of each police file read (all the manifest may hold of them).
    """

    problems: pd.DataFrame
    checksum_suggestions: pd.DataFrame
    pending: pd.DataFrame
    sent: int
    files: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Findings:
    """The verdicts of a roster (or a chunk of one) before the rules: ``records`` holds the
    records with something to report (``FINDING_COLUMNS``), the rest as in ``PoliceOutcome``."""

    records: pd.DataFrame
    checksum_suggestions: pd.DataFrame
    pending: pd.DataFrame
    sent: int


def _single_chunk(values: pd.Series) -> pd.Series:
    # One chunk: the per-column work of the rules (checks' memo, keyed by buffers) is reused.
    array = pa.array(checks.as_text(values).array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([array])))


# Columns read whole by the rules' shared work (kept in one chunk); the others are only taken
# from at some rows.
WHOLE_COLUMNS = ("name", "id_type", "id_number")


def _roster(roster: pd.DataFrame) -> pd.DataFrame:
    """The columns the check reads, pyarrow-backed, RangeIndex (positions are the join keys)."""
    out = {}
    for column in ROSTER_COLUMNS:
        if column not in roster.columns:
            out[column] = pd.Series(pd.NA, index=range(len(roster)), dtype=STRING)
        elif column in WHOLE_COLUMNS:
            out[column] = _single_chunk(roster[column].reset_index(drop=True))
        else:
            out[column] = checks.as_text(roster[column].reset_index(drop=True))
    return pd.DataFrame(out)


def _strings(table: pa.Table) -> pa.Table:
    """Every column one chunk of (small) strings."""
    return pa.table(
        {
            name: pc.cast(table.column(name), pa.string()).combine_chunks()
            for name in table.column_names
        }
    )


def _strings_of(values) -> pd.arrays.ArrowStringArray:
    return pd.array(np.asarray(values, dtype=object), dtype="string")


def findings(
    roster: pd.DataFrame, *, registry: Registry | None = None, results: pa.Table | None = None
) -> Findings:
    """The verdicts of a canonical roster against a prepared registry or a result table (the
    tables of ``registry_index.load_registry`` / ``prepared`` and ``exchange.read_results``).
    Near numbers of the numbers the registry lacks come later (``combined``)."""
    frame = _roster(roster)
    sent = exchange.sendable(frame)
    if registry is not None:
        found = verdicts.registry_verdicts(frame, sent, registry)
        checksum = verdicts.checksum_suggestions(frame, registry)
    else:
        found = verdicts.results_verdicts(frame, sent, _strings(results))
        checksum = verdicts.empty(CHECKSUM_COLUMNS)
    pending_rows = found.index[found["pending"].to_numpy(dtype=bool)].to_numpy()
    pending = pd.DataFrame(
        {
            "record_id": frame["record_id"].iloc[pending_rows].to_numpy(),
            "county_code": frame["county_code"].iloc[pending_rows].to_numpy(),
        }
    ).astype("string")
    finding = (
        found["police_id"].isin(ID_FINDINGS)
        | found["police_name"].isin(NAME_FINDINGS)
        | found["police_status"].isin(STATUS_FINDINGS)
    )
    chosen = found[finding.to_numpy(dtype=bool)]
    rows = chosen.index.to_numpy()
    records = pd.DataFrame(
        {
            **{c: frame[c].iloc[rows].to_numpy() for c in FINDING_COLUMNS[:4]},
            **{c: _strings_of(chosen[c].to_numpy(dtype=object)) for c in VERDICT_COLUMNS},
            **{c: _strings_of(chosen[c].to_numpy(dtype=object)) for c in FILL_COLUMNS},
            "birth_key": chosen["birth_key"].to_numpy(dtype=np.int64)
            if "birth_key" in chosen.columns
            else np.full(len(chosen), -1, dtype=np.int64),
        }
    )
    return Findings(records, checksum, pending, int(sent.sum()))


def combined(parts: list[Findings], registry: Registry | None = None) -> Findings:
    """The findings of a roster's chunks (at least one) as those of the whole roster; with
    the registry they were found against, the numbers it lacks get their near numbers
    (``verdicts.near_numbers``: one pass over the registry for the whole roster)."""

    def joined(name: str) -> pd.DataFrame:
        return pd.concat([getattr(p, name) for p in parts], ignore_index=True)

    records = joined("records")
    if registry is not None:
        records = verdicts.near_numbers(records, registry)
    return Findings(
        records,
        joined("checksum_suggestions"),
        joined("pending"),
        sum(p.sent for p in parts),
    )


# --- the rules ---------------------------------------------------------------------------------


def _fill(text: pd.Series, token: str, values: pd.Series) -> pd.Series:
    """``token`` in each text replaced by that row's value (empty where missing)."""
    has = text.str.contains(token, regex=False).fillna(False).to_numpy(dtype=bool)
    if not has.any():
        return text
    parts = text[has].str.split(token, n=1, expand=True, regex=False)
    out = text.copy()
    out[has] = parts[0] + values[has].fillna("").astype("string") + parts[1]
    return out


def _rules(
    records: pd.DataFrame, suites_dir: Path | None, data_docs_dir: Path | None
) -> pd.DataFrame:
    """Problem rows of the records with a finding, through the police suite."""
    if records.empty:
        return verdicts.empty(schema.PROBLEM_COLUMNS)
    from xueji_quality import validate
    from xueji_quality.police import expectations as _registered  # noqa: F401  (registers)

    batch = records[list(FINDING_COLUMNS[:4]) + list(VERDICT_COLUMNS)].reset_index(drop=True)
    problems = validate.validate_stage(
        batch, STAGE, suites_dir=suites_dir, data_docs_dir=data_docs_dir
    )
    if problems.empty:
        return problems
    fill = records[["record_id", *FILL_COLUMNS]].set_index("record_id")
    looked_up = fill.reindex(problems["record_id"]).reset_index(drop=True)
    out = problems.reset_index(drop=True)
    for column in ("message", "suggestion"):
        text = out[column].astype("string")
        for column_name, token in TOKENS.items():
            text = _fill(text, token, looked_up[column_name])
        out[column] = text
    return out.astype({c: "string" for c in schema.PROBLEM_COLUMNS})


def outcome(
    found: Findings,
    files: list[dict],
    suites_dir: Path | None = None,
    data_docs_dir: Path | None = None,
) -> PoliceOutcome:
    """The outcome of a roster's findings: their records through the police suite."""
    problems = _rules(found.records, suites_dir, data_docs_dir)
    return PoliceOutcome(problems, found.checksum_suggestions, found.pending, found.sent, files)


def file_facts(path: Path | str, rows: int) -> dict:
    """What the manifest may hold of a police file: its name, SHA-256 and row count."""
    path = Path(path)
    return {"name": path.name, "sha256": sha256_file(path), "rows": int(rows)}


def checksum_suggestions(roster: pd.DataFrame, registry: pa.Table | Registry) -> pd.DataFrame:
    """record_id -> suggestion for the ID_CHECKSUM items whose number has exactly one valid
    neighbour (one character changed, two adjacent ones swapped) in the registry under the same
    name."""
    return verdicts.checksum_suggestions(_roster(roster), prepared(registry))


def apply_checksum_suggestions(problems: pd.DataFrame, suggestions: pd.DataFrame) -> pd.DataFrame:
    """``problems`` with the suggestion of each ID_CHECKSUM item replaced where
    ``suggestions`` has one for its record."""
    if suggestions.empty or problems.empty:
        return problems
    by_record = suggestions.set_index("record_id")["suggestion"]
    out = problems.copy()
    hit = (out["rule"] == "ID_CHECKSUM").fillna(False) & out["record_id"].isin(by_record.index)
    out.loc[hit, "suggestion"] = by_record.reindex(out.loc[hit, "record_id"]).to_numpy()
    return out


def police_check(
    roster: pd.DataFrame,
    *,
    registry: Path | str | pa.Table | Registry | None = None,
    results: Path | str | pa.Table | None = None,
    suites_dir: Path | None = None,
    data_docs_dir: Path | None = None,
) -> PoliceOutcome:
    """The police cross-check of a canonical roster (see the module docstring).

    ``roster``: record_id, county_code, name, sex, birth_date, id_type, id_number (normalised as
    staged). ``registry``: a registry extract (path, the table of ``read_registry``, or the
    ``Registry`` of ``load_registry`` / ``prepared``, read once for several calls);
    ``results``: a result file of the exchange (path, or the table of ``read_results``); exactly
    one of the two. ``suites_dir`` defaults to the project's ``expectations/``; with
    ``data_docs_dir`` the police suite's Data Docs are built there.
    """
    if (registry is None) == (results is None):
        raise ValueError("police_check 需要公安人口信息库摘录或比对结果文件之一")
    files: list[dict] = []
    if registry is not None:
        if isinstance(registry, str | Path):
            path = Path(registry)
            registry = load_registry(path)
            files.append(file_facts(path, registry.rows))
        registry = prepared(registry)
        found = combined([findings(roster, registry=registry)], registry)
    else:
        if isinstance(results, str | Path):
            path = Path(results)
            results = exchange.read_results(path)
            files.append(file_facts(path, results.num_rows))
        found = findings(roster, results=results)
    return outcome(found, files, suites_dir, data_docs_dir)


def police_problems(
    roster: pd.DataFrame,
    *,
    registry: Path | str | pa.Table | None = None,
    results: Path | str | pa.Table | None = None,
) -> pd.DataFrame:
    """The problem rows of :func:`police_check` alone."""
    return police_check(roster, registry=registry, results=results).problems
