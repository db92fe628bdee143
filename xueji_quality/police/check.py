"""The police cross-check of a roster: per-record verdicts, then the police rules through GX.

Entry point: :func:`police_check` (or :func:`police_problems` for the problem rows alone), with
either a registry extract or a result file of the request/result exchange:

1. verdicts, one set per roster record whose ID number was sent (``exchange.sendable``):
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
from xueji_quality.police import exchange, keys, names
from xueji_quality.police.registry import CANCELLED, DEAD, read_registry
from xueji_quality.rules import checks
from xueji_quality.standards import dates, iso7064, resident_id

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
STATUS_FINDINGS = (CANCELLED, DEAD)
# Name kinds whose suggestion may show the registry's name (the same person, written otherwise).
SHOWN_KINDS = (names.HOMOPHONE, names.VARIANT, names.RARE_PLACEHOLDER)
VERDICT_COLUMNS = ("police_id", "police_name", "police_status")
ROSTER_COLUMNS = ("record_id", "county_code", "name", "sex", "birth_date", "id_type", "id_number")
CHECKSUM_COLUMNS = ("record_id", "suggestion")
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


@dataclass
class Registry:
    """A registry extract prepared for look-ups: its string columns, each number's int64 value
    and the numbers sorted; the index by the birth date and sex inside the numbers is built when
    first needed."""

    table: pa.Table
    values: np.ndarray
    by_id: keys.KeyIndex
    _by_birth: keys.KeyIndex | None = None

    @property
    def by_birth(self) -> keys.KeyIndex:
        if self._by_birth is None:
            born = resident_id.birth_numbers_from_values(self.values)
            sex = 2 - (self.values // resident_id.SEQUENCE_PLACE % 10) % 2
            self._by_birth = keys.key_index(
                np.where(self.values >= 0, born * 10 + sex, keys.NO_KEY)
            )
        return self._by_birth


def prepared(registry: pa.Table | Registry) -> Registry:
    """The extract (the table of ``read_registry``) ready for ``police_check``."""
    if isinstance(registry, Registry):
        return registry
    table = _strings(registry)
    for column in ("name", "sex", "birth_date", "status"):
        if column not in table.column_names:
            table = table.append_column(column, pa.nulls(table.num_rows, pa.string()))
    values, _ = keys.id_values(table.column("id_number"))
    return Registry(table, values, keys.key_index(values))


def _strings(table: pa.Table) -> pa.Table:
    """Every column one chunk of (small) strings."""
    return pa.table(
        {
            name: pc.cast(table.column(name), pa.string()).combine_chunks()
            for name in table.column_names
        }
    )


def _single_chunk(values: pd.Series) -> pd.Series:
    # One chunk: the per-column work of the rules (checks' memo, keyed by buffers) is reused.
    array = pa.array(checks.as_text(values).array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([array])))


def _roster(roster: pd.DataFrame) -> pd.DataFrame:
    """The columns the check reads, each one chunk, RangeIndex (positions are the join keys)."""
    out = {}
    for column in ROSTER_COLUMNS:
        if column in roster.columns:
            out[column] = _single_chunk(roster[column].reset_index(drop=True))
        else:
            out[column] = pd.Series(pd.NA, index=range(len(roster)), dtype=STRING)
    return pd.DataFrame(out)


def _take(values: pd.Series | pa.Array | pa.ChunkedArray, rows: np.ndarray) -> pd.Series:
    """The values at ``rows`` as pyarrow-backed strings (RangeIndex)."""
    array = values if not isinstance(values, pd.Series) else pa.array(values.array)
    taken = array.take(pa.array(rows, pa.int64()))
    if isinstance(taken, pa.ChunkedArray):
        taken = taken.combine_chunks()
    return pd.Series(pd.arrays.ArrowStringArray(pc.cast(taken, pa.large_string())))


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})


def _sex_numbers(values: pa.Array | pa.ChunkedArray | pd.Series) -> np.ndarray:
    array = values if not isinstance(values, pd.Series) else pa.array(values.array)
    found = pc.index_in(array, value_set=pa.array(["1", "2"], array.type))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1


def _birth_keys(birth_dates, sexes) -> np.ndarray:
    """YYYYMMDD * 10 + sex (1, 2); ``NO_KEY`` where either is missing or malformed."""
    born = dates.iso_date_numbers(birth_dates)
    sex = _sex_numbers(sexes)
    return np.where((born > 0) & (sex > 0), born * 10 + sex, keys.NO_KEY)


def _one_each(left: np.ndarray, rank: np.ndarray | None = None) -> np.ndarray:
    """Positions (into ``left``) of one match per distinct value of ``left``: the lowest
    ``rank``, the first on a tie."""
    order = np.lexsort((np.arange(len(left)), rank if rank is not None else left, left))
    first = np.r_[True, left[order][1:] != left[order][:-1]] if len(left) else np.zeros(0, bool)
    return order[first]


def _only(left: np.ndarray, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(left values, their value) for the left values that have exactly one distinct value."""
    found = pd.DataFrame({"left": left, "value": values.to_numpy()}).drop_duplicates()
    counts = found["left"].value_counts()
    found = found[found["left"].isin(counts.index[counts == 1])]
    return found["left"].to_numpy(), found["value"].to_numpy(dtype=object)


# --- verdicts from a registry extract ---------------------------------------------------------


def _differences(sex_differs: np.ndarray, birth_differs: np.ndarray) -> np.ndarray:
    """The reason's note on sex and birth date, without the registry's values."""
    out = np.full(len(sex_differs), "", dtype=object)
    out[sex_differs] = "；公安库登记的性别与花名册不同"
    out[birth_differs] = "；公安库登记的出生日期与花名册不同"
    out[sex_differs & birth_differs] = "；公安库登记的性别、出生日期与花名册不同"
    return out


def _registry_verdicts(frame: pd.DataFrame, sent: np.ndarray, registry: Registry) -> pd.DataFrame:
    """Verdicts and fill-ins of the sent rows (index = roster position)."""
    positions = np.flatnonzero(sent)
    values = resident_id.digits_to_values(checks.id_parts(frame["id_number"]).digits[positions])
    left, right = keys.matches(registry.by_id, values)
    table = registry.table
    kinds = names.classify(
        _take(frame["name"], positions[left]), _take(table.column("name"), right)
    ).to_numpy(dtype=object)
    if (left[1:] == left[:-1]).any():  # matches come in the order of ``values``
        # A number the registry holds twice: the closest name decides (the roster's record is
        # right if either holder is the student; the double number is the police's business).
        rank = pd.Categorical(kinds, categories=list(names.KINDS)).codes.astype(np.int64)
        keep = _one_each(left, rank)
        left, right, kinds = left[keep], right[keep], kinds[keep]
    count = len(positions)
    held = np.zeros(count, dtype=bool)
    held[left] = True
    kind = np.full(count, None, dtype=object)
    kind[left] = kinds
    status = np.full(count, None, dtype=object)
    status[left] = table.column("status").take(right).to_numpy(zero_copy_only=False)
    # Sex and birth date are compared where there is something to report: they only add to
    # a reason.
    noted = (kinds != names.SAME) | pd.Series(status[left]).isin(STATUS_FINDINGS).to_numpy()
    sex_differs = np.zeros(count, dtype=bool)
    birth_differs = np.zeros(count, dtype=bool)
    roster_rows, noted_right, noted_left = positions[left[noted]], right[noted], left[noted]
    roster_sex = _sex_numbers(_take(frame["sex"], roster_rows))
    registry_sex = _sex_numbers(table.column("sex").take(noted_right))
    sex_differs[noted_left] = (roster_sex > 0) & (registry_sex > 0) & (roster_sex != registry_sex)
    roster_born = dates.iso_date_numbers(_take(frame["birth_date"], roster_rows))
    registry_born = dates.iso_date_numbers(table.column("birth_date").take(noted_right))
    birth_differs[noted_left] = (
        (roster_born > 0) & (registry_born > 0) & (roster_born != registry_born)
    )
    shown = pd.Series(kinds).isin(SHOWN_KINDS).to_numpy(dtype=bool)
    registry_name = np.full(count, None, dtype=object)
    registry_name[left[shown]] = (
        table.column("name").take(right[shown]).to_numpy(zero_copy_only=False)
    )
    police_id = np.where(held, "found", "not_found").astype(object)
    suggested = np.full(count, None, dtype=object)
    missing = np.flatnonzero(~held)
    near_rows, near_ids = _near_numbers(frame, positions[missing], values[missing], registry)
    police_id[missing[near_rows]] = "not_found_near"
    suggested[missing[near_rows]] = near_ids
    return pd.DataFrame(
        {
            "police_id": police_id,
            "police_name": kind,
            "police_status": status,
            "registry_name": registry_name,
            "suggested_id": suggested,
            "differences": _differences(sex_differs, birth_differs),
            "pending": False,
        },
        index=positions,
    )


def _near_numbers(
    frame: pd.DataFrame, positions: np.ndarray, values: np.ndarray, registry: Registry
) -> tuple[np.ndarray, np.ndarray]:
    """For roster rows (``positions``, their numbers' ``values``) the registry lacks: (indexes
    into ``positions``, number) of those with exactly one registry person of the same name, sex
    and birth date whose number differs from theirs in one or two positions."""
    none = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object))
    if not len(positions):
        return none
    born = _birth_keys(_take(frame["birth_date"], positions), _take(frame["sex"], positions))
    # Candidates by the birth date and sex inside their numbers; their own 出生日期 and 性别
    # must say the same.
    left, right = keys.matches(registry.by_birth, born)
    table = registry.table
    agree = _birth_keys(table.column("birth_date").take(right), table.column("sex").take(right))
    left, right = left[agree == born[left]], right[agree == born[left]]
    if not len(left):
        return none
    ours = resident_id.values_to_digits(values[left])
    theirs = resident_id.values_to_digits(registry.values[right])
    distance = (ours != theirs).sum(axis=1)
    close = (distance >= 1) & (distance <= 2)
    left, right = left[close], right[close]
    same = names.name_key(_take(frame["name"], positions[left])) == names.name_key(
        _take(registry.table.column("name"), right)
    )
    same = same.fillna(False).to_numpy(dtype=bool)
    left, right = left[same], right[same]
    return _only(left, _take(registry.table.column("id_number"), right))


# --- verdicts from a result file ---------------------------------------------------------------


_ID_VERDICTS = {
    exchange.MATCH: "found",
    exchange.MISMATCH: "not_found",
    exchange.ABSENT: "not_found",
    exchange.FAILED: "pending",
}
_NAME_VERDICTS = {exchange.MATCH: names.SAME, exchange.MISMATCH: "mismatch"}


def _result_lines(frame: pd.DataFrame, positions: np.ndarray, results: pa.Table):
    """(indexes into ``positions``, result line) of the lines answering the sent rows: by
    number and name when the file has them, else by request number; one line per row."""
    if {"id_number", "name"} <= set(results.column_names):
        theirs, _ = keys.id_values(results.column("id_number"))
        ours = resident_id.digits_to_values(checks.id_parts(frame["id_number"]).digits[positions])
        left, right = keys.matches(keys.key_index(theirs), ours)
        named = pc.equal(
            pa.array(_take(frame["name"], positions[left]).array),
            pc.cast(results.column("name").take(right), pa.large_string()),
        )
        named = pc.fill_null(named, False).to_numpy(zero_copy_only=False)
        left, right = left[named], right[named]
    else:
        theirs, valid = exchange.request_keys(results.column("request_no"))
        ours = exchange.request_hashes(
            frame["id_number"].iloc[positions], frame["name"].iloc[positions]
        ).view(np.int64)
        left, right = keys.matches(keys.key_index(np.where(valid, theirs, keys.NO_KEY)), ours)
    keep = _one_each(left)
    return left[keep], right[keep]


def _results_verdicts(frame: pd.DataFrame, sent: np.ndarray, results: pa.Table) -> pd.DataFrame:
    positions = np.flatnonzero(sent)
    count = len(positions)
    left, line = _result_lines(frame, positions, results)

    def answered(column: str) -> np.ndarray:
        out = np.full(count, None, dtype=object)
        if column in results.column_names:
            out[left] = results.column(column).take(line).to_numpy(zero_copy_only=False)
        return out

    id_verdict, name_verdict, status = (
        answered("id_verdict"),
        answered("name_verdict"),
        answered("status"),
    )
    police_id = pd.Series(id_verdict).map(_ID_VERDICTS).fillna("pending").to_numpy(dtype=object)
    found = police_id == "found"
    police_name = pd.Series(name_verdict).map(_NAME_VERDICTS).to_numpy(dtype=object)
    police_name[~found] = None
    mismatch = np.flatnonzero(police_name == "mismatch")
    if len(mismatch):
        placeholder = names.has_placeholder(_take(frame["name"], positions[mismatch]))
        police_name[mismatch[placeholder]] = "mismatch_placeholder"
    name_failed = pd.Series(name_verdict).eq(exchange.FAILED).to_numpy(dtype=bool)
    return pd.DataFrame(
        {
            "police_id": police_id,
            "police_name": police_name,
            "police_status": np.where(found, status, None),
            "registry_name": None,
            "suggested_id": None,
            "differences": "",
            "pending": (police_id == "pending") | (found & name_failed),
        },
        index=positions,
    )


# --- check character help ---------------------------------------------------------------------


def checksum_suggestions(roster: pd.DataFrame, registry: pa.Table | Registry) -> pd.DataFrame:
    """record_id -> suggestion for the ID_CHECKSUM items whose number has exactly one valid
    neighbour (one character changed, two adjacent ones swapped) in the registry under the same
    name."""
    frame = _roster(roster)
    registry = prepared(registry)
    failing = checks.id_status(frame["id_type"], frame["id_number"]) == checks.ID_BAD_CHECKSUM
    failing &= checks.present(frame["name"]).to_numpy()
    positions = np.flatnonzero(failing)
    if not len(positions):
        return _empty(CHECKSUM_COLUMNS)
    row, made = iso7064.one_edit_valid_neighbours(
        checks.id_parts(frame["id_number"]).digits[positions]
    )
    left, right = keys.matches(registry.by_id, resident_id.digits_to_values(made))
    rows = positions[row[left]]
    same = names.name_key(_take(frame["name"], rows)) == names.name_key(
        _take(registry.table.column("name"), right)
    )
    same = same.fillna(False).to_numpy(dtype=bool)
    chosen, number = _only(rows[same], _take(registry.table.column("id_number"), right[same]))
    suggestion = (
        "公安库核实：学生本人的号码应为 "
        + pd.Series(number, dtype="string")
        + "（姓名与公安库一致），对照户口簿确认后更正"
    ).to_numpy()
    return pd.DataFrame(
        {"record_id": frame["record_id"].iloc[chosen].to_numpy(), "suggestion": suggestion}
    ).astype("string")


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
    frame: pd.DataFrame,
    verdicts: pd.DataFrame,
    suites_dir: Path | None,
    data_docs_dir: Path | None,
) -> pd.DataFrame:
    """Problem rows of the records with a finding, through the police suite."""
    from xueji_quality import validate
    from xueji_quality.police import expectations as _registered  # noqa: F401  (registers)

    finding = (
        verdicts["police_id"].isin(ID_FINDINGS)
        | verdicts["police_name"].isin(NAME_FINDINGS)
        | verdicts["police_status"].isin(STATUS_FINDINGS)
    )
    chosen = verdicts[finding.to_numpy(dtype=bool)]
    if chosen.empty:
        return _empty(schema.PROBLEM_COLUMNS)
    rows = chosen.index.to_numpy()
    batch = pd.DataFrame(
        {
            "record_id": frame["record_id"].iloc[rows].to_numpy(),
            "county_code": frame["county_code"].iloc[rows].to_numpy(),
            "id_number": frame["id_number"].iloc[rows].to_numpy(),
            "name": frame["name"].iloc[rows].to_numpy(),
            **{
                c: pd.array(chosen[c].to_numpy(dtype=object), dtype="string")
                for c in VERDICT_COLUMNS
            },
        }
    )
    problems = validate.validate_stage(
        batch, STAGE, suites_dir=suites_dir, data_docs_dir=data_docs_dir
    )
    if problems.empty:
        return problems
    fill = pd.DataFrame(
        {
            "record_id": batch["record_id"].to_numpy(),
            "registry_name": pd.array(
                chosen["registry_name"].to_numpy(dtype=object), dtype="string"
            ),
            "suggested_id": pd.array(chosen["suggested_id"].to_numpy(dtype=object), dtype="string"),
            "differences": pd.array(chosen["differences"].to_numpy(dtype=object), dtype="string"),
        }
    ).set_index("record_id")
    looked_up = fill.reindex(problems["record_id"]).reset_index(drop=True)
    out = problems.reset_index(drop=True)
    for column in ("message", "suggestion"):
        text = out[column].astype("string")
        for column_name, token in TOKENS.items():
            text = _fill(text, token, looked_up[column_name])
        out[column] = text
    return out.astype({c: "string" for c in schema.PROBLEM_COLUMNS})


def file_facts(path: Path | str, rows: int) -> dict:
    """What the manifest may hold of a police file: its name, SHA-256 and row count."""
    path = Path(path)
    return {"name": path.name, "sha256": sha256_file(path), "rows": int(rows)}


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
    staged). ``registry``: a registry extract (path, the table of ``read_registry``, or that
    table ``prepared`` once for several calls, e.g. one per chunk of a large roster);
    ``results``: a result file of the exchange (path, or the table of ``read_results``); exactly
    one of the two. ``suites_dir`` defaults to the project's ``expectations/``; with
    ``data_docs_dir`` the police suite's Data Docs are built there.
    """
    if (registry is None) == (results is None):
        raise ValueError("police_check 需要公安人口信息库摘录或比对结果文件之一")
    frame = _roster(roster)
    sent = exchange.sendable(frame)
    files: list[dict] = []
    checksum = _empty(CHECKSUM_COLUMNS)
    if registry is not None:
        if isinstance(registry, str | Path):
            path = Path(registry)
            registry = read_registry(path)
            files.append(file_facts(path, registry.num_rows))
        registry = prepared(registry)
        verdicts = _registry_verdicts(frame, sent, registry)
        checksum = checksum_suggestions(frame, registry)
    else:
        if isinstance(results, str | Path):
            path = Path(results)
            results = exchange.read_results(path)
            files.append(file_facts(path, results.num_rows))
        verdicts = _results_verdicts(frame, sent, _strings(results))
    pending_rows = verdicts.index[verdicts["pending"].to_numpy(dtype=bool)].to_numpy()
    problems = _rules(frame, verdicts, suites_dir, data_docs_dir)
    pending = pd.DataFrame(
        {
            "record_id": frame["record_id"].iloc[pending_rows].to_numpy(),
            "county_code": frame["county_code"].iloc[pending_rows].to_numpy(),
        }
    ).astype("string")
    return PoliceOutcome(problems, checksum, pending, int(sent.sum()), files)


def police_problems(
    roster: pd.DataFrame,
    *,
    registry: Path | str | pa.Table | None = None,
    results: Path | str | pa.Table | None = None,
) -> pd.DataFrame:
    """The problem rows of :func:`police_check` alone."""
    return police_check(roster, registry=registry, results=results).problems
