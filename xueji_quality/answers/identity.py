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
from operator import methodcaller

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import schema

KEY_HEX = 16
SEPARATOR = "\x1f"
# Python's \d (any Unicode decimal digit) in RE2's spelling.
_ID_NUMBER = r"^(?:\p{Nd}{17}[\p{Nd}X]|\p{Nd}{15})$"
_STUDENT_NO = r"^[A-Z]\p{Nd}{17}[\p{Nd}X]$"
# Every canonical field but the export's own key, which may change from one export to the next.
FINGERPRINT_FIELDS: tuple[str, ...] = tuple(f for f in schema.FIELDS if f != "export_key")
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_BLAKE2B = partial(hashlib.blake2b, digest_size=KEY_HEX // 2)
_DIGEST = methodcaller("digest")


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
    data = values.fill_null("").cast(pa.binary()).to_pylist()
    raw = np.frombuffer(b"".join(map(_DIGEST, map(_BLAKE2B, data))), dtype=np.uint8)
    raw = raw.reshape(-1, KEY_HEX // 2)
    head = len(prefix.encode())
    text = np.empty((len(raw), head + KEY_HEX), dtype=np.uint8)
    text[:, :head] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    text[:, head::2] = _HEX_DIGITS[raw >> 4]
    text[:, head + 1 :: 2] = _HEX_DIGITS[raw & 15]
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(head + KEY_HEX), len(text), [None, pa.py_buffer(text.tobytes())]
    )
    return fixed.cast(pa.binary()).cast(pa.string())


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


def _record_table(roster: pd.DataFrame, record_ids: pd.Series) -> pd.DataFrame:
    """record_id, identity, secondary (name|birth|school), fingerprint of the given records
    (object columns, indexed by record_id)."""
    # Arrow's hash set: pandas' isin on Arrow strings builds its set one Python value at a time.
    member = pc.is_in(
        _column(roster, "record_id"), value_set=_strings(pd.Series(record_ids).dropna().unique())
    )
    wanted = roster[member.fill_null(False).to_numpy(zero_copy_only=False)]
    wanted = wanted.drop_duplicates("record_id")
    return pd.DataFrame(
        {
            "identity": _identity(wanted).to_numpy(zero_copy_only=False),
            "school": _column(wanted, "school_code").fill_null("").to_numpy(zero_copy_only=False),
            "secondary": _joined(wanted, ["name", "birth_date"]).to_numpy(zero_copy_only=False),
            "fingerprint": _digest(_joined(wanted, FINGERPRINT_FIELDS)).to_numpy(
                zero_copy_only=False
            ),
        },
        index=pd.Index(wanted["record_id"].astype(object).to_numpy(), name="record_id"),
    )


def _found(records: pd.DataFrame, record_id: np.ndarray, blank_rid: bool) -> pd.DataFrame:
    """The record facts of each row's record; a record the roster lacks is named by its
    record_id (``RID:``; a missing record_id counts as "" with ``blank_rid``, else leaves the
    identity missing) and has no fingerprint ("")."""
    found = records.reindex(record_id)
    missing = found["identity"].isna().to_numpy()
    identity = found["identity"].to_numpy(dtype=object)
    if missing.any():
        rid = pd.Series(record_id[missing], dtype=object)
        identity[missing] = ("RID:" + (rid.fillna("") if blank_rid else rid)).to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "record_id": record_id,
            "identity": identity,
            "school": found["school"].to_numpy(dtype=object),
            "secondary": found["secondary"].to_numpy(dtype=object),
            "fingerprint": found["fingerprint"].fillna("").to_numpy(dtype=object),
        }
    )


def _unique_identity(frame: pd.DataFrame, scope: list[str]) -> np.ndarray:
    """Identity made unique within ``scope`` columns: school, name and birth, then an ordinal
    (only the rows that clash are touched)."""
    identity = frame["identity"].fillna("?").to_numpy(dtype=object)
    keys = frame[scope].assign(_i=identity)
    clash = keys.duplicated(keep=False).to_numpy()
    for extra in ("school", "secondary"):
        if not clash.any():
            return identity
        identity = identity.copy()
        identity[clash] = (
            identity[clash] + "|" + frame[extra].fillna("").to_numpy(dtype=object)[clash]
        )
        keys = frame[scope].assign(_i=identity)
        clash = keys.duplicated(keep=False).to_numpy()
    if not clash.any():
        return identity
    alike = frame[clash].assign(_i=identity[clash])
    ordered = alike.sort_values("record_id", kind="stable")
    ordinal = ordered.groupby([*scope, "_i"], dropna=False).cumcount().reindex(alike.index)
    numbered = np.where(
        ordinal.to_numpy() == 0,
        alike["_i"].to_numpy(dtype=object),
        alike["_i"].to_numpy(dtype=object) + "#" + ordinal.astype(str).to_numpy(dtype=object),
    )
    identity = identity.copy()
    identity[clash] = numbered
    return identity


def _join_per_group(groups: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """Per group, its values sorted and joined: (group ids, joined), cut by position."""
    order = np.lexsort((values.astype(str), groups.astype(str)))
    groups, values = groups[order], values[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    offsets = np.r_[starts, len(groups)].astype(np.int64)
    lists = pa.LargeListArray.from_arrays(offsets, _strings(values))
    return groups[starts], pc.binary_join(lists, SEPARATOR)


def _place_in_group(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each row's place (1, 2 …) among its group's values sorted (UTF-8 byte order, which is
    code point order)."""
    order = pc.sort_indices(
        pa.table({"group": _strings(groups), "value": _strings(values)}),
        sort_keys=[("group", "ascending"), ("value", "ascending")],
    ).to_numpy()
    ordered = groups[order]
    rows = np.arange(len(order))
    first = np.r_[True, ordered[1:] != ordered[:-1]] if len(order) else np.zeros(0, bool)
    place = np.empty(len(order), dtype=np.int64)
    place[order] = rows - np.maximum.accumulate(np.where(first, rows, 0)) + 1
    return place


def problem_keys(problems: pd.DataFrame, roster: pd.DataFrame) -> pd.DataFrame:
    """problem_key, identity and fingerprint of every problem row (same index as ``problems``).

    Rows whose record is missing from the roster fall back to ``RID:<record_id>``.
    """
    records = _record_table(roster, problems["record_id"])
    record_id = problems["record_id"].astype("string").astype(object).to_numpy()
    frame = _found(records, record_id, blank_rid=True)
    frame["rule"] = problems["rule"].astype("string").fillna("").astype(object).to_numpy()
    frame["field"] = problems["field"].astype("string").fillna("").astype(object).to_numpy()
    identity = _unique_identity(frame, ["rule", "field"])
    text = pc.binary_join_element_wise(
        _strings(frame["rule"]), _strings(frame["field"]), _strings(identity), SEPARATOR
    )
    out = pd.DataFrame(
        {
            "problem_key": _digest(text, "P").to_numpy(zero_copy_only=False),
            "identity": identity,
            "fingerprint": frame["fingerprint"].to_numpy(dtype=object),
        },
        index=problems.index,
    )
    return out.astype("string")


def group_keys(duplicates: pd.DataFrame, roster: pd.DataFrame) -> pd.DataFrame:
    """problem_key, identity (sorted member identities), fingerprint and member (the row's
    record's number in its group, as text) per duplicate row."""
    columns = ["problem_key", "identity", "fingerprint", "member"]
    if duplicates.empty:
        return pd.DataFrame(columns=columns, index=duplicates.index, dtype="string")
    records = _record_table(roster, duplicates["record_id"])
    record_id = duplicates["record_id"].astype("string").astype(object).to_numpy()
    frame = _found(records, record_id, blank_rid=False)
    frame["group_id"] = duplicates["group_id"].astype("string").astype(object).to_numpy()
    dup_class = duplicates["dup_class"].astype("string").fillna("").astype(object).to_numpy()
    # Inside a group the members' identities must differ (one ID registered twice).
    identity = _unique_identity(frame, ["group_id"])
    groups = frame["group_id"].to_numpy(dtype=object)
    member = _place_in_group(groups, identity)
    group_ids, members = _join_per_group(groups, identity)
    _, prints = _join_per_group(groups, frame["fingerprint"].to_numpy(dtype=object))
    classes = pd.Series(dup_class, index=groups)
    classes = classes[~classes.index.duplicated()].reindex(group_ids)
    key = _digest(members, "D")
    fingerprint = _digest(
        pc.binary_join_element_wise(_strings(classes.to_numpy(dtype=object)), prints, SEPARATOR)
    )
    per_group = pd.DataFrame(
        {
            "problem_key": key.to_numpy(zero_copy_only=False),
            "identity": members.to_numpy(zero_copy_only=False),
            "fingerprint": fingerprint.to_numpy(zero_copy_only=False),
        },
        index=pd.Index(group_ids),
    )
    out = per_group.reindex(groups)
    out.index = duplicates.index
    out["member"] = member.astype(str)
    return out.astype("string")
