"""Per-record verdicts of the police check, from a registry extract or a result file, and the
registry's help for numbers failing their check character.

Each function takes the roster as ``check`` hands it (the columns the check reads, one chunk
each, RangeIndex) and the rows sent to the police, and returns one row per sent record, indexed
by its position: ``police_id``, ``police_name``, ``police_status``, and what the messages may be
filled with (``registry_name``, ``suggested_id``, ``differences``), plus ``pending``. Joins are
sorted integer look-ups over whole columns (``keys``); name pairs are judged once per distinct
pair (``names.classify``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.police import exchange, keys, names
from xueji_quality.police.registry import CANCELLED, DEAD
from xueji_quality.police.registry_index import (
    STATUSES,
    Registry,
    birth_name_keys,
    id_text,
    name_hashes,
)
from xueji_quality.rules import checks
from xueji_quality.standards import dates, iso7064, resident_id

STATUS_FINDINGS = (CANCELLED, DEAD)
# Name kinds whose suggestion may show the registry's name (the same person, written otherwise).
SHOWN_KINDS = (names.HOMOPHONE, names.VARIANT, names.RARE_PLACEHOLDER)
CHECKSUM_COLUMNS = ("record_id", "suggestion")


def take(values: pd.Series | pa.Array | pa.ChunkedArray, rows: np.ndarray) -> pd.Series:
    """The values at ``rows`` as pyarrow-backed strings (RangeIndex)."""
    array = values if not isinstance(values, pd.Series) else pa.array(values.array)
    taken = array.take(pa.array(rows, pa.int64()))
    if isinstance(taken, pa.ChunkedArray):
        taken = taken.combine_chunks()
    return pd.Series(pd.arrays.ArrowStringArray(pc.cast(taken, pa.large_string())))


def empty(columns: tuple[str, ...]) -> pd.DataFrame:
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


def _only(left: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left values, their value) for the left values that have exactly one distinct value."""
    found = pd.DataFrame({"left": left, "value": values}).drop_duplicates()
    counts = found["left"].value_counts()
    found = found[found["left"].isin(counts.index[counts == 1])]
    return found["left"].to_numpy(), found["value"].to_numpy()


def _same_names(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Position by position: equal once separators and blanks are removed (missing: False)."""
    same = names.name_key(a) == names.name_key(b)
    return same.fillna(False).to_numpy(dtype=bool)


def sent_values(frame: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
    """int64 ID numbers of the roster rows at ``positions`` (all of ID shape: they were sent)."""
    return resident_id.digits_to_values(checks.id_parts(frame["id_number"]).digits[positions])


# --- a registry extract ------------------------------------------------------------------------


def _differences(sex_differs: np.ndarray, birth_differs: np.ndarray) -> np.ndarray:
    """The reason's note on sex and birth date, without the registry's values."""
    out = np.full(len(sex_differs), "", dtype=object)
    out[sex_differs] = "；公安库登记的性别与花名册不同"
    out[birth_differs] = "；公安库登记的出生日期与花名册不同"
    out[sex_differs & birth_differs] = "；公安库登记的性别、出生日期与花名册不同"
    return out


_SAME = names.KINDS.index(names.SAME)
_SHOWN = [names.KINDS.index(k) for k in SHOWN_KINDS]
_STATUS_FINDINGS = [STATUSES.index(s) for s in STATUS_FINDINGS]


def registry_verdicts(frame: pd.DataFrame, sent: np.ndarray, registry: Registry) -> pd.DataFrame:
    """Verdicts and fill-ins of the sent rows with something to report (index = roster
    position): a number the registry lacks, a name that is not the registry's, a number
    cancelled or dead. The others need nothing more: a registry says nothing pending."""
    positions = np.flatnonzero(sent)
    values = sent_values(frame, positions)
    left, right = keys.matches(registry.by_id, values)
    kinds = names.kind_codes(take(frame["name"], positions[left]), registry.name_at(right))
    if (left[1:] == left[:-1]).any():  # matches come in the order of ``values``
        # A number the registry holds twice: the closest name decides (the roster's record is
        # right if either holder is the student; the double number is the police's business).
        keep = _one_each(left, kinds.astype(np.int64))
        left, right, kinds = left[keep], right[keep], kinds[keep]
    status = registry.status[right]
    noted = (kinds != _SAME) | np.isin(status, _STATUS_FINDINGS)
    held = np.zeros(len(positions), dtype=bool)
    held[left] = True
    missing = np.flatnonzero(~held)
    # One row per finding: the noted numbers the registry holds, then those it lacks.
    left, right, kinds, status = left[noted], right[noted], kinds[noted], status[noted]
    rows = np.r_[positions[left], positions[missing]]
    count = len(left)
    # Sex and birth date only add to a reason: compared where there is one.
    roster_sex = _sex_numbers(take(frame["sex"], positions[left]))
    registry_sex = registry.sex[right]
    sex_differs = (roster_sex > 0) & (registry_sex > 0) & (roster_sex != registry_sex)
    roster_born = dates.iso_date_numbers(take(frame["birth_date"], positions[left]))
    registry_born = registry.born[right]
    birth_differs = (roster_born > 0) & (registry_born > 0) & (roster_born != registry_born)
    shown = np.flatnonzero(np.isin(kinds, _SHOWN))
    registry_name = np.full(len(rows), None, dtype=object)
    registry_name[shown] = registry.name_at(right[shown]).to_numpy(dtype=object)
    # For the numbers it lacks the registry may hold the same person under a near number
    # (``near_numbers``, once for the whole roster): their birth date and sex are kept for it.
    birth_key = np.full(len(rows), keys.NO_KEY, dtype=np.int64)
    birth_key[count:] = _birth_keys(
        take(frame["birth_date"], positions[missing]), take(frame["sex"], positions[missing])
    )
    none = np.full(len(missing), None, dtype=object)
    return pd.DataFrame(
        {
            "police_id": np.r_[
                np.full(count, "found", object), np.full(len(missing), "not_found", object)
            ],
            "police_name": np.r_[np.asarray(names.KINDS, dtype=object)[kinds], none],
            "police_status": np.r_[registry.status_at(right), none],
            "registry_name": registry_name,
            "suggested_id": None,
            "differences": np.r_[
                _differences(sex_differs, birth_differs), np.full(len(missing), "", object)
            ],
            "pending": False,
            "birth_key": birth_key,
        },
        index=rows,
    ).sort_index()


def near_numbers(records: pd.DataFrame, registry: Registry) -> pd.DataFrame:
    """``records`` (the findings of ``check``: id_number, name, police_id, suggested_id,
    birth_key) with each number the registry lacks turned ``not_found_near``, with the number
    as ``suggested_id``, where exactly one registry person of the same name, sex and birth date
    holds a number differing from it in one or two positions."""
    missing = np.flatnonzero(
        (records["police_id"] == "not_found").fillna(False).to_numpy(dtype=bool)
        & (records["birth_key"].to_numpy() > 0)
    )
    if not len(missing):
        return records
    born = records["birth_key"].to_numpy()[missing]
    roster_names = take(records["name"], missing)
    values, _ = keys.id_values(pa.array(take(records["id_number"], missing).array))
    # Candidates: the birth date and sex inside their number, their own 出生日期 and 性别, and
    # the hash of their name all the roster's; names are compared again (a hash can clash).
    wanted = birth_name_keys(born, name_hashes(roster_names))
    rows, found = registry.with_birth_name(np.unique(wanted))
    left, at = keys.matches(keys.key_index(found), wanted)
    right = rows[at]
    agree = registry.born[right].astype(np.int64) * 10 + registry.sex[right] == born[left]
    left, right = left[agree], right[agree]
    ours = resident_id.values_to_digits(values[left])
    theirs = resident_id.values_to_digits(registry.values[right])
    distance = (ours != theirs).sum(axis=1)
    close = (distance >= 1) & (distance <= 2)
    left, right = left[close], right[close]
    same = _same_names(take(roster_names, left), registry.name_at(right))
    chosen, number = _only(left[same], registry.values[right[same]])
    if not len(chosen):
        return records
    out = records.copy()
    near = missing[chosen]
    out.loc[near, "police_id"] = "not_found_near"
    out.loc[near, "suggested_id"] = id_text(number)
    return out


# --- a result file -----------------------------------------------------------------------------


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
        ours = sent_values(frame, positions)
        left, right = keys.matches(keys.key_index(theirs), ours)
        named = pc.equal(
            pa.array(take(frame["name"], positions[left]).array),
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


def results_verdicts(frame: pd.DataFrame, sent: np.ndarray, results: pa.Table) -> pd.DataFrame:
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
        placeholder = names.has_placeholder(take(frame["name"], positions[mismatch]))
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


def checksum_suggestions(frame: pd.DataFrame, registry: Registry) -> pd.DataFrame:
    """record_id -> suggestion for the ID_CHECKSUM items whose number has exactly one valid
    neighbour (one character changed, two adjacent ones swapped) in the registry under the same
    name."""
    failing = checks.id_status(frame["id_type"], frame["id_number"]) == checks.ID_BAD_CHECKSUM
    failing &= checks.present(frame["name"]).to_numpy()
    positions = np.flatnonzero(failing)
    if not len(positions):
        return empty(CHECKSUM_COLUMNS)
    row, made = iso7064.one_edit_valid_neighbours(
        checks.id_parts(frame["id_number"]).digits[positions]
    )
    left, right = keys.matches(registry.by_id, resident_id.digits_to_values(made))
    rows = positions[row[left]]
    same = _same_names(take(frame["name"], rows), registry.name_at(right))
    chosen, number = _only(rows[same], registry.values[right[same]])
    suggestion = (
        "公安库核实：学生本人的号码应为 "
        + pd.Series(id_text(number), dtype="string")
        + "（姓名与公安库一致），对照户口簿确认后更正"
    ).to_numpy()
    return pd.DataFrame(
        {"record_id": frame["record_id"].iloc[chosen].to_numpy(), "suggestion": suggestion}
    ).astype("string")
