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
registry person the roster does not point at never appears. Joins are Arrow hash joins over
whole columns; name pairs are judged once per distinct pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import idcard, schema
from xueji_quality.files import sha256_file
from xueji_quality.police import exchange, names
from xueji_quality.police.registry import CANCELLED, DEAD, read_registry
from xueji_quality.rules import checks

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


def _text(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pd.Series):
        values = pa.array(checks.as_text(values).array)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.cast(values, pa.string())


def _series(array: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(pc.cast(array, pa.large_string())))


def _roster(roster: pd.DataFrame) -> pd.DataFrame:
    """The columns the check reads, RangeIndex (positions are the join keys)."""
    out = {}
    for column in ROSTER_COLUMNS:
        if column in roster.columns:
            out[column] = checks.as_text(roster[column]).reset_index(drop=True)
        else:
            out[column] = pd.Series(pd.NA, index=range(len(roster)), dtype=STRING)
    return pd.DataFrame(out)


def _strings(table: pa.Table) -> pa.Table:
    """Every column as (small) string, so joins meet columns of one type."""
    return pa.table({name: pc.cast(table.column(name), pa.string()) for name in table.column_names})


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})


# --- verdicts from a registry extract ---------------------------------------------------------


def _differences(sex_differs: np.ndarray, birth_differs: np.ndarray) -> np.ndarray:
    """The reason's note on sex and birth date, without the registry's values."""
    both = "；公安库登记的性别、出生日期与花名册不同"
    out = np.full(len(sex_differs), "", dtype=object)
    out[sex_differs] = "；公安库登记的性别与花名册不同"
    out[birth_differs] = "；公安库登记的出生日期与花名册不同"
    out[sex_differs & birth_differs] = both
    return out


def _differs(roster_values: pa.Array, registry_values: pa.Array, allowed: str) -> np.ndarray:
    """True where both sides hold a well-formed value (``allowed`` regex) and they differ."""
    both = pc.and_(
        pc.match_substring_regex(roster_values, allowed),
        pc.match_substring_regex(registry_values, allowed),
    )
    differ = pc.and_(both, pc.not_equal(roster_values, registry_values))
    return pc.fill_null(differ, False).to_numpy(zero_copy_only=False)


def _registry_verdicts(frame: pd.DataFrame, sent: np.ndarray, registry: pa.Table) -> pd.DataFrame:
    """Verdicts and fill-ins of the sent rows (index = roster position)."""
    positions = np.flatnonzero(sent)
    left = pa.table(
        {
            "pos": pa.array(positions, pa.int64()),
            "id_number": _text(frame["id_number"]).take(positions),
        }
    )
    right = pa.table(
        {
            "id_number": registry.column("id_number"),
            **{
                f"reg_{c}": registry.column(c)
                if c in registry.column_names
                else pa.nulls(registry.num_rows, pa.string())
                for c in ("name", "sex", "birth_date", "status")
            },
            "held": pa.repeat(pa.scalar(True), registry.num_rows),
        }
    )
    joined = left.join(right, "id_number", join_type="left outer", use_threads=True)
    pos = joined.column("pos").to_numpy()
    held = pc.fill_null(joined.column("held"), False).to_numpy(zero_copy_only=False)
    roster_names = _series(_text(frame["name"]).take(pa.array(pos)))
    kinds = np.full(len(pos), None, dtype=object)
    if held.any():
        where = np.flatnonzero(held)
        judged = names.classify(
            roster_names.iloc[where].reset_index(drop=True),
            _series(joined.column("reg_name").take(pa.array(where))),
        )
        kinds[where] = judged.to_numpy(dtype=object)
    # One registry row per roster row: the closest name (a number held twice is the police's
    # problem; the roster's record is right if either holder is the student).
    codes = pd.Categorical(kinds, categories=list(names.KINDS)).codes.astype(np.int64)
    kind_rank = np.where(codes < 0, len(names.KINDS), codes)
    order = np.lexsort((kind_rank, pos))
    first = order[np.r_[True, pos[order][1:] != pos[order][:-1]]]
    pos, held, kinds = pos[first], held[first], kinds[first]
    taken = joined.take(pa.array(first))
    roster_sex = _text(frame["sex"]).take(pa.array(pos))
    roster_birth = _text(frame["birth_date"]).take(pa.array(pos))
    sex_differs = held & _differs(roster_sex, _text(taken.column("reg_sex")), "^[12]$")
    birth_differs = held & _differs(
        roster_birth, _text(taken.column("reg_birth_date")), r"^\d{4}-\d{2}-\d{2}$"
    )
    status = taken.column("reg_status").to_numpy(zero_copy_only=False).astype(object)
    shown = pd.Series(kinds).isin(SHOWN_KINDS).to_numpy(dtype=bool)
    registry_name = np.where(shown, taken.column("reg_name").to_numpy(zero_copy_only=False), None)
    verdicts = pd.DataFrame(
        {
            "police_id": np.where(held, "found", "not_found"),
            "police_name": kinds,
            "police_status": np.where(held, status, None),
            "registry_name": registry_name,
            "suggested_id": None,
            "differences": _differences(sex_differs, birth_differs),
        },
        index=pos,
    ).sort_index()
    near = _near_numbers(frame, verdicts.index[verdicts["police_id"] == "not_found"], registry)
    if len(near):
        verdicts.loc[near.index, "police_id"] = "not_found_near"
        verdicts.loc[near.index, "suggested_id"] = near.to_numpy()
    return verdicts


def _id_matrix(values: pa.Array) -> np.ndarray:
    return idcard.digit_matrix(values).astype(np.int16)


def _near_numbers(frame: pd.DataFrame, missing: pd.Index, registry: pa.Table) -> pd.Series:
    """For roster rows (positions) whose number the registry lacks: the number of the single
    registry person with the same name, sex and birth date whose number differs in one or two
    positions (rows with no such single person are left out)."""
    if not len(missing) or not {"sex", "birth_date", "name"} <= set(registry.column_names):
        return pd.Series(dtype="string")
    positions = pa.array(np.asarray(missing, dtype=np.int64))
    left = pa.table(
        {
            "pos": positions,
            "id_number": _text(frame["id_number"]).take(positions),
            "key": _text(names.name_key(_series(_text(frame["name"]).take(positions)))),
            "sex": _text(frame["sex"]).take(positions),
            "birth_date": _text(frame["birth_date"]).take(positions),
        }
    ).filter(pc.field("sex").is_valid() & pc.field("birth_date").is_valid())
    if not left.num_rows:
        return pd.Series(dtype="string")
    # Only registry people born on one of these days are candidates: key their names only.
    same_day = registry.filter(
        pc.is_in(registry.column("birth_date"), value_set=left.column("birth_date"))
    )
    right = pa.table(
        {
            "reg_id": same_day.column("id_number"),
            "key": _text(names.name_key(_series(same_day.column("name")))),
            "sex": same_day.column("sex"),
            "birth_date": same_day.column("birth_date"),
        }
    )
    pairs = left.join(right, ["key", "sex", "birth_date"], join_type="inner")
    if not pairs.num_rows:
        return pd.Series(dtype="string")
    a = _id_matrix(pairs.column("id_number"))
    b = _id_matrix(pairs.column("reg_id"))
    distance = (a != b).sum(axis=1)
    close = pairs.filter(pa.array((distance >= 1) & (distance <= 2)))
    return _single(close.column("pos").to_numpy(), close.column("reg_id"))


def _single(pos: np.ndarray, values: pa.Array | pa.ChunkedArray) -> pd.Series:
    """values by position, for the positions that have exactly one distinct value."""
    found = pd.DataFrame({"pos": pos, "value": _series(values)}).drop_duplicates()
    counts = found["pos"].value_counts()
    found = found[found["pos"].isin(counts.index[counts == 1])]
    return pd.Series(found["value"].to_numpy(), index=found["pos"].to_numpy(), dtype="string")


# --- verdicts from a result file ---------------------------------------------------------------


_ID_VERDICTS = {
    exchange.MATCH: "found",
    exchange.MISMATCH: "not_found",
    exchange.ABSENT: "not_found",
    exchange.FAILED: "pending",
}
_NAME_VERDICTS = {exchange.MATCH: names.SAME, exchange.MISMATCH: "mismatch", exchange.FAILED: None}


def _results_verdicts(frame: pd.DataFrame, sent: np.ndarray, results: pa.Table) -> pd.DataFrame:
    positions = np.flatnonzero(sent)
    take = pa.array(positions)
    left = {
        "pos": pa.array(positions, pa.int64()),
        "id_number": _text(frame["id_number"]).take(take),
        "name": _text(frame["name"]).take(take),
    }
    if {"id_number", "name"} <= set(results.column_names):
        keys = ["id_number", "name"]
    else:
        keys = ["request_no"]
        left["request_no"] = _text(
            exchange.request_numbers(
                frame["id_number"].iloc[positions], frame["name"].iloc[positions]
            )
        )
    right_columns = [
        c for c in ("id_verdict", "name_verdict", "status") if c in results.column_names
    ]
    right = results.select(keys + right_columns)
    right = right.group_by(keys, use_threads=False).aggregate([(c, "first") for c in right_columns])
    right = right.rename_columns([c.removesuffix("_first") for c in right.column_names])
    joined = pa.table(left).join(right, keys, join_type="left outer").sort_by("pos")
    id_verdict = joined.column("id_verdict").to_numpy(zero_copy_only=False).astype(object)
    name_verdict = joined.column("name_verdict").to_numpy(zero_copy_only=False).astype(object)
    police_id = pd.Series(id_verdict).map(_ID_VERDICTS).fillna("pending").to_numpy(dtype=object)
    found = police_id == "found"
    police_name = np.where(
        found, pd.Series(name_verdict).map(_NAME_VERDICTS).to_numpy(dtype=object), None
    )
    placeholder = names.has_placeholder(_series(joined.column("name")))
    police_name[(police_name == "mismatch") & placeholder] = "mismatch_placeholder"
    status = (
        joined.column("status").to_numpy(zero_copy_only=False).astype(object)
        if "status" in joined.column_names
        else np.full(len(found), None, dtype=object)
    )
    pending = (police_id == "pending") | (found & (name_verdict == exchange.FAILED))
    return pd.DataFrame(
        {
            "police_id": police_id,
            "police_name": police_name,
            "police_status": np.where(found, status, None),
            "registry_name": None,
            "suggested_id": None,
            "differences": "",
            "pending": pending,
        },
        index=joined.column("pos").to_numpy(),
    )


# --- check character help ---------------------------------------------------------------------


def _inverse_weights() -> np.ndarray:
    return np.array([pow(int(w), -1, 11) for w in idcard.WEIGHTS], dtype=np.int64)


def check_neighbours(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valid numbers one substitution or one adjacent swap away from each row of ``digits``
    ((n, 18) digit values, X = 10, each failing its check): (row index, (m, 18) digits).

    A number is valid when (S + c) mod 11 == 1, S the weighted sum of the first 17 digits and c
    the check value; for each position the one digit that makes it valid is solved for, so no
    candidate is built that fails.
    """
    d = digits.astype(np.int64)
    n = len(d)
    weights = idcard.WEIGHTS
    total = d[:, :17] @ weights
    check = d[:, 17]
    rows, made = [], []
    inverse = _inverse_weights()
    for p in range(17):
        need = (inverse[p] * ((1 - check - total + d[:, p] * weights[p]) % 11)) % 11
        ok = (need <= 9) & (need != d[:, p])
        new = d[ok].copy()
        new[:, p] = need[ok]
        rows.append(np.flatnonzero(ok))
        made.append(new)
    new = d.copy()
    new[:, 17] = (1 - total) % 11
    rows.append(np.arange(n))
    made.append(new)
    for p in range(17):
        q = p + 1
        if q < 17:
            swapped = total - d[:, p] * weights[p] - d[:, q] * weights[q]
            swapped = swapped + d[:, q] * weights[p] + d[:, p] * weights[q]
            ok = (d[:, p] != d[:, q]) & ((swapped + check) % 11 == 1)
        else:
            swapped = total - d[:, p] * weights[p] + check * weights[p]
            ok = (check <= 9) & (check != d[:, p]) & ((swapped + d[:, p]) % 11 == 1)
        new = d[ok].copy()
        new[:, [p, q]] = new[:, [q, p]]
        rows.append(np.flatnonzero(ok))
        made.append(new)
    return np.concatenate(rows), np.concatenate(made).astype(np.uint8)


def _id_text(digits: np.ndarray) -> pa.Array:
    chars = (digits + ord("0")).astype(np.uint8)
    chars[digits == 10] = ord("X")
    return pa.array(chars.view("S18").ravel().astype("U18"), pa.string())


def checksum_suggestions(roster: pd.DataFrame, registry: pa.Table) -> pd.DataFrame:
    """record_id -> suggestion for the ID_CHECKSUM items whose number has exactly one valid
    neighbour in the registry under the same name."""
    frame = roster if isinstance(roster.index, pd.RangeIndex) else roster.reset_index(drop=True)
    frame = _roster(frame)
    id_type = frame["id_type"]
    failing = checks.id_status(id_type, frame["id_number"]) == checks.ID_BAD_CHECKSUM
    failing &= checks.present(frame["name"]).to_numpy()
    positions = np.flatnonzero(failing)
    if not len(positions):
        return _empty(CHECKSUM_COLUMNS)
    digits = checks.id_parts(frame["id_number"]).digits[positions]
    row, made = check_neighbours(digits)
    candidates = pa.table({"pos": pa.array(positions[row]), "id_number": _id_text(made)})
    right = registry.select(["id_number", "name"])
    pairs = candidates.join(right, "id_number", join_type="inner")
    if not pairs.num_rows:
        return _empty(CHECKSUM_COLUMNS)
    pos = pairs.column("pos").to_numpy()
    roster_key = names.name_key(_series(_text(frame["name"]).take(pa.array(pos))))
    registry_key = names.name_key(_series(pairs.column("name")))
    same = (roster_key == registry_key).fillna(False).to_numpy(dtype=bool)
    chosen = _single(pos[same], pairs.column("id_number").filter(pa.array(same)))
    return pd.DataFrame(
        {
            "record_id": frame["record_id"].iloc[chosen.index].to_numpy(),
            "suggestion": (
                "公安库核实：学生本人的号码应为 "
                + chosen
                + "（姓名与公安库一致），对照户口簿确认后更正"
            ).to_numpy(),
        }
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


def _facts(path: Path, rows: int) -> dict:
    return {"name": path.name, "sha256": sha256_file(path), "rows": int(rows)}


def police_check(
    roster: pd.DataFrame,
    *,
    registry: Path | str | pa.Table | None = None,
    results: Path | str | pa.Table | None = None,
    suites_dir: Path | None = None,
    data_docs_dir: Path | None = None,
) -> PoliceOutcome:
    """The police cross-check of a canonical roster (see the module docstring).

    ``roster``: record_id, county_code, name, sex, birth_date, id_type, id_number (normalised as
    staged). ``registry``: a registry extract (path, or the table of ``read_registry``);
    ``results``: a result file of the exchange (path, or the table of ``read_results``); exactly
    one of the two. ``suites_dir`` defaults to the project's ``expectations/``; with
    ``data_docs_dir`` the police suite's Data Docs are built there.
    """
    if (registry is None) == (results is None):
        raise ValueError("police_check 需要公安人口信息库摘录或比对结果文件之一")
    frame = _roster(roster)
    sent = exchange.sendable(frame)
    files: list[dict] = []
    if registry is not None:
        if not isinstance(registry, pa.Table):
            path = Path(registry)
            registry = read_registry(path)
            files.append(_facts(path, registry.num_rows))
        registry = _strings(registry)
        verdicts = _registry_verdicts(frame, sent, registry)
        pending_rows = np.zeros(0, dtype=np.int64)
        checksum = checksum_suggestions(frame, registry)
    else:
        if not isinstance(results, pa.Table):
            path = Path(results)
            results = exchange.read_results(path)
            files.append(_facts(path, results.num_rows))
        results = _strings(results)
        verdicts = _results_verdicts(frame, sent, results)
        pending_rows = verdicts.index[verdicts["pending"].to_numpy(dtype=bool)].to_numpy()
        checksum = _empty(CHECKSUM_COLUMNS)
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
