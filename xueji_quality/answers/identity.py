"""Problem identity: a key that names the same problem in every nightly run, and a fingerprint
that says whether the records behind it changed.

A county answers an item of its problem list (佐证/变更/删除) and the answer must find that item
again in the next export, where row order and the export's own record keys (记录号) may differ.
So a problem is named by what it is about, never by where it sits:

- a record's identity is its ID number (身份证件号) when it holds one that can be a real number
  (18 characters ``\\d{17}[\\dX]`` or a 15-digit legacy number), else its 学籍号 when that has the
  national layout (a letter and 18), else its name, birth date and school code;
- a problem row's key is ``P`` + 16 hex of BLAKE2b over rule, field and the record's identity;
- a duplicate group's key is ``D`` + 16 hex over the sorted identities of its registrations,
  and each registration is the group's member n (1, 2 …): its place among those sorted
  identities, so the same group numbers its records alike in every run (a county answers each
  record of a group on its own).

Two registrations of one ID (a 身份证号重复 group) share the identity; when two problem rows of a
table would get the same key, the clashing rows add their school code, rows still alike add name
and birth date, and rows alike even then (two copies of the whole record) are numbered in
record_id order. That is the only place the export's own key enters, and it orders copies that
are indistinguishable. (So a name corrected on one of two registrations of one ID in one school
makes its problems new ones; anywhere else a key does not depend on the name.)

A fingerprint is 16 hex over every canonical field value of a record (the export's own key
excluded): any change to a record changes it. A group's fingerprint covers its records' sorted
fingerprints and its class. A 佐证 answer holds only while the fingerprint it was given against
stays the same.

Hashing is BLAKE2b (8-byte digests, hashlib) over strings that Arrow kernels assemble column
by column from the records that carry a problem (not the whole roster). The function is the one
the first ledgers were written with, so existing ledgers and workbooks still in the counties'
hands keep matching; no Arrow or SQLite kernel computes BLAKE2b, so hashlib is called once per
value from C (``map``, no Python statement per row) and the digests are turned into hex as one
array.
"""

from __future__ import annotations

import hashlib
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import schema
from xueji_quality.digests import digest_bytes, hex_texts

KEY_HEX = 16
SEPARATOR = "\x1f"
# Python's \d (any Unicode decimal digit) in RE2's spelling.
_ID_NUMBER = r"^(?:\p{Nd}{17}[\p{Nd}X]|\p{Nd}{15})$"
_STUDENT_NO = r"^[A-Z]\p{Nd}{17}[\p{Nd}X]$"
# Every canonical field but the export's own key, which may change from one export to the next.
FINGERPRINT_FIELDS: tuple[str, ...] = tuple(f for f in schema.FIELDS if f != "export_key")
_BLAKE2B = partial(hashlib.blake2b, digest_size=KEY_HEX // 2)


def _strings(values) -> pa.Array:
    """A pandas column or object array as an Arrow string array (missing values null)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype):
        return pa.array(values, type=pa.string())
    array = np.asarray(values, dtype=object)
    return pa.array(array, type=pa.string(), from_pandas=True)


def _digest(values: pa.Array, prefix: str = "") -> pa.Array:
    """``prefix`` + 16 hex of BLAKE2b over each value's UTF-8 bytes (null counts as "")."""
    return hex_texts(digest_bytes(values, _BLAKE2B, KEY_HEX // 2), prefix)


def _text(values: pa.Array) -> pd.Series:
    """An Arrow string array as the pandas string column every table here carries."""
    return pd.Series(pd.array(values.to_numpy(zero_copy_only=False), dtype="string"))


def _column(frame: pd.DataFrame, name: str) -> pa.Array:
    if name not in frame.columns:
        return pa.nulls(len(frame), pa.string())
    values = frame[name]
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        # The staged roster's columns are Arrow already: no Python string is made.
        return _strings(pa.array(values.array)).cast(pa.string())
    return _strings(values.astype("string"))


def _joined(frame: pd.DataFrame, columns: list[str] | tuple[str, ...]) -> pa.Array:
    parts = [_column(frame, c).fill_null("") for c in columns]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, SEPARATOR)


def _identity(roster: pd.DataFrame) -> pa.Array:
    id_number = _column(roster, "id_number")
    student_no = _column(roster, "student_no")
    usable_id = pc.fill_null(pc.match_substring_regex(id_number, _ID_NUMBER), False)
    usable_no = pc.fill_null(pc.match_substring_regex(student_no, _STUDENT_NO), False)
    fallback = pc.binary_join_element_wise(
        "NBS:", _joined(roster, ["name", "birth_date", "school_code"]), ""
    )
    identity = pc.if_else(usable_no, pc.binary_join_element_wise("XJ:", student_no, ""), fallback)
    return pc.if_else(usable_id, pc.binary_join_element_wise("ID:", id_number, ""), identity)


def record_identity(roster: pd.DataFrame) -> pd.Series:
    """``ID:<number>``, ``XJ:<学籍号>`` or ``NBS:<name>|<birth date>|<school code>`` per row."""
    identity = _text(_identity(roster))
    identity.index = roster.index
    return identity


def record_fingerprint(roster: pd.DataFrame) -> pd.Series:
    """16 hex over every canonical field value of each row."""
    prints = _text(_digest(_joined(roster, FINGERPRINT_FIELDS)))
    prints.index = roster.index
    return prints


def roster_rows(roster: pd.DataFrame, record_ids: pd.Series) -> np.ndarray:
    """Each record id's first row in the roster (-1: none; a missing id finds the first row
    whose id is missing, as a pandas index lookup does)."""
    at = pc.index_in(_strings(record_ids.astype("string")), value_set=_column(roster, "record_id"))
    return at.fill_null(-1).to_numpy()


def _record_facts(roster: pd.DataFrame, record_ids: pa.Array) -> tuple[pa.Table, np.ndarray]:
    """identity, school, secondary (name|birth) and fingerprint of each record the rows name,
    once per record, and per row the index of its record's facts (-1: the roster lacks it)."""
    # The first roster row of each record counts, as when the roster's repeats are dropped.
    at = pc.index_in(record_ids, value_set=_column(roster, "record_id"), skip_nulls=True)
    at = at.fill_null(-1).to_numpy()
    rows, slot = np.unique(at, return_inverse=True)
    if len(rows) and rows[0] < 0:
        rows, slot = rows[1:], slot - 1
    wanted = roster.take(rows)
    facts = pa.table(
        {
            "identity": _identity(wanted),
            "school": _column(wanted, "school_code"),
            "secondary": _joined(wanted, ["name", "birth_date"]),
            "fingerprint": _digest(_joined(wanted, FINGERPRINT_FIELDS)),
        }
    )
    return facts, slot.reshape(-1).astype(np.int64)


def _per_row(facts: pa.Table, slot: np.ndarray, name: str) -> pa.Array:
    """A column of the facts for each row (null where the roster lacks the record)."""
    return facts[name].combine_chunks().take(pa.array(slot, mask=slot < 0))


def _row_identity(facts: pa.Table, slot: np.ndarray, record_ids: pa.Array) -> pa.Array:
    """Each row's record identity; a record the roster lacks is named ``RID:<record_id>``."""
    missing = pc.binary_join_element_wise("RID:", record_ids, "")
    return pc.if_else(pa.array(slot >= 0), _per_row(facts, slot, "identity"), missing)


def _codes(values: pa.Array) -> np.ndarray:
    """Integer codes of the values, equal exactly where the values are (null a value too)."""
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    return encoded.indices.to_numpy().astype(np.int64)


def _combined(*codes: np.ndarray) -> np.ndarray:
    """One code per row for several code columns, equal exactly where all of them are."""
    key = codes[0]
    for more in codes[1:]:
        # Renumbered first: the product of the distinct keys so far and the column's distinct
        # values stays inside int64 for any two columns a table can hold.
        key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
        key = key * (int(more.max(initial=0)) + 1) + more
    return key


def _runs(ordered: np.ndarray) -> np.ndarray:
    """Positions where a run of equal values starts in an ordered array."""
    return np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])


def _alike_runs(
    scope: np.ndarray, identity: pa.Array, then: pa.Array | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row order by scope code, identity (then ``then``), and per position of that order the
    position where its run of rows with the same scope and identity starts."""
    columns = {"scope": scope, "identity": identity}
    if then is not None:
        columns["then"] = then
    # A sort compares strings only between rows of one scope code (a duplicate group has a
    # few), which costs less than hashing every row's string.
    order = pc.sort_indices(
        pa.table(columns), sort_keys=[(name, "ascending") for name in columns]
    ).to_numpy()
    if not len(order):
        return order, order
    ordered = identity.take(order)
    scopes = scope[order]
    same = (scopes[1:] == scopes[:-1]) & pc.equal(
        ordered.slice(1), ordered.slice(0, len(order) - 1)
    ).to_numpy(zero_copy_only=False)
    starts = np.where(np.r_[True, ~same], np.arange(len(order)), 0)
    return order, np.maximum.accumulate(starts)


def _shared(scope: np.ndarray, identity: pa.Array) -> np.ndarray:
    """Rows whose identity another row of the same scope code also has."""
    order, starts = _alike_runs(scope, identity)
    runs = np.bincount(starts, minlength=len(order))
    shared = np.empty(len(order), dtype=bool)
    shared[order] = runs[starts] > 1
    return shared


def _ordinals(scope: np.ndarray, identity: pa.Array, record_ids: pa.Array) -> np.ndarray:
    """Each row's place (0, 1 …) among the rows of its scope and identity in record_id order
    (missing last; equal record_ids keep the rows' order)."""
    order, starts = _alike_runs(scope, identity, record_ids)
    ordinal = np.empty(len(order), dtype=np.int64)
    ordinal[order] = np.arange(len(order)) - starts
    return ordinal


def _unique_identity(
    scope: np.ndarray, identity: pa.Array, extras: list[pa.Array], record_ids: pa.Array
) -> pa.Array:
    """Identity made unique within ``scope`` codes: each of ``extras`` added in turn, then an
    ordinal in record_id order (only the rows that clash are touched)."""
    identity = identity.fill_null("?")
    clash = _shared(scope, identity)
    for extra in extras:
        if not clash.any():
            return identity
        added = pc.binary_join_element_wise(identity, extra.fill_null(""), "|")
        identity = pc.if_else(pa.array(clash), added, identity)
        clash = _shared(scope, identity)
    if not clash.any():
        return identity
    rows = np.flatnonzero(clash)
    alike = identity.take(rows)
    ordinal = _ordinals(scope[rows], alike, record_ids.take(rows))
    numbered = pc.binary_join_element_wise(alike, pa.array(ordinal.astype(str)), "#")
    numbered = pc.if_else(pa.array(ordinal == 0), alike, numbered)
    return pc.replace_with_mask(identity, pa.array(clash), numbered)


def _input(frame: pd.DataFrame, name: str, blank: bool = False) -> pa.Array:
    """A column of the problem or duplicate rows as Arrow strings (``blank``: missing is "")."""
    values = _strings(frame[name].astype("string"))
    return values.fill_null("") if blank else values


def problem_keys(problems: pd.DataFrame, roster: pd.DataFrame) -> pd.DataFrame:
    """problem_key, identity and fingerprint of every problem row (same index as ``problems``).

    Rows whose record is missing from the roster fall back to ``RID:<record_id>``.
    """
    record_ids = _input(problems, "record_id")
    facts, slot = _record_facts(roster, record_ids)
    rule, field = _input(problems, "rule", blank=True), _input(problems, "field", blank=True)
    identity = _unique_identity(
        _combined(_codes(rule), _codes(field)),
        _row_identity(facts, slot, record_ids.fill_null("")),
        [_per_row(facts, slot, "school"), _per_row(facts, slot, "secondary")],
        record_ids,
    )
    text = pc.binary_join_element_wise(rule, field, identity, SEPARATOR)
    out = pd.DataFrame(
        {
            "problem_key": _digest(text, "P").to_numpy(zero_copy_only=False),
            "identity": identity.to_numpy(zero_copy_only=False),
            "fingerprint": _per_row(facts, slot, "fingerprint")
            .fill_null("")
            .to_numpy(zero_copy_only=False),
        },
        index=problems.index,
    )
    return out.astype("string")


def _sorted_in_groups(groups: np.ndarray, values: pa.Array) -> np.ndarray:
    """Row order by group code, then value (UTF-8 byte order, which is code point order), equal
    values in row order."""
    # With the group codes first Arrow compares strings only within a group.
    return pc.sort_indices(
        pa.table({"group": groups, "value": values}),
        sort_keys=[("group", "ascending"), ("value", "ascending")],
    ).to_numpy()


def _joined_per_group(
    groups: np.ndarray, values: pa.Array, order: np.ndarray, n_groups: int
) -> pa.Array:
    """Per group code (0 … n_groups - 1), its values joined in ``order``."""
    offsets = np.searchsorted(groups[order], np.arange(n_groups + 1))
    lists = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values.take(order))
    return pc.binary_join(lists, SEPARATOR)


def _place_in_group(groups: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Each row's place (1, 2 …) in ``order`` among its group's rows."""
    starts = np.zeros(len(order), dtype=np.int64)
    runs = _runs(groups[order])
    starts[runs] = runs
    place = np.empty(len(order), dtype=np.int64)
    place[order] = np.arange(len(order)) - np.maximum.accumulate(starts) + 1
    return place


def group_keys(duplicates: pd.DataFrame, roster: pd.DataFrame) -> pd.DataFrame:
    """problem_key, identity (sorted member identities), fingerprint and member (the row's
    record's number in its group, as text) per duplicate row."""
    columns = ["problem_key", "identity", "fingerprint", "member"]
    if duplicates.empty:
        return pd.DataFrame(columns=columns, index=duplicates.index, dtype="string")
    record_ids = _input(duplicates, "record_id")
    facts, slot = _record_facts(roster, record_ids)
    groups = _codes(_input(duplicates, "group_id"))
    n_groups = int(groups.max()) + 1
    # Inside a group the members' identities must differ (one ID registered twice).
    identity = _unique_identity(
        groups,
        _row_identity(facts, slot, record_ids),
        [_per_row(facts, slot, "school"), _per_row(facts, slot, "secondary")],
        record_ids,
    )
    order = _sorted_in_groups(groups, identity)
    member = _place_in_group(groups, order)
    members = _joined_per_group(groups, identity, order, n_groups)
    prints = _per_row(facts, slot, "fingerprint").fill_null("")
    prints = _joined_per_group(groups, prints, _sorted_in_groups(groups, prints), n_groups)
    # A group's class is the one its first row gives.
    _, first = np.unique(groups, return_index=True)
    classes = _input(duplicates, "dup_class", blank=True).take(first)
    key = _digest(members, "D").to_numpy(zero_copy_only=False)
    fingerprint = _digest(pc.binary_join_element_wise(classes, prints, SEPARATOR))
    out = pd.DataFrame(
        {
            "problem_key": key[groups],
            "identity": members.to_numpy(zero_copy_only=False)[groups],
            "fingerprint": fingerprint.to_numpy(zero_copy_only=False)[groups],
            "member": member.astype(str),
        },
        index=duplicates.index,
    )
    return out.astype("string")
