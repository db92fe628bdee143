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

Hashing is Python's hashlib over the records that carry a problem (not the whole roster); the
strings are assembled with vectorised pandas operations.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from xueji_quality import schema

KEY_HEX = 16
SEPARATOR = "\x1f"
_ID_NUMBER = r"^(?:\d{17}[\dX]|\d{15})$"
_STUDENT_NO = r"^[A-Z]\d{17}[\dX]$"
# Every canonical field but the export's own key, which may change from one export to the next.
FINGERPRINT_FIELDS: tuple[str, ...] = tuple(f for f in schema.FIELDS if f != "export_key")


def _digest(values: pd.Series) -> pd.Series:
    digests = [
        hashlib.blake2b(v.encode("utf-8"), digest_size=KEY_HEX // 2).hexdigest()
        for v in values.tolist()
    ]
    return pd.Series(digests, index=values.index, dtype="string")


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype("string")
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _joined(frame: pd.DataFrame, columns: list[str] | tuple[str, ...]) -> pd.Series:
    parts = [_column(frame, c).fillna("") for c in columns]
    return parts[0].str.cat(parts[1:], sep=SEPARATOR) if len(parts) > 1 else parts[0]


def record_identity(roster: pd.DataFrame) -> pd.Series:
    """``ID:<number>``, ``XJ:<学籍号>`` or ``NBS:<name>|<birth date>|<school code>`` per row."""
    id_number = _column(roster, "id_number")
    student_no = _column(roster, "student_no")
    usable_id = id_number.str.fullmatch(_ID_NUMBER).fillna(False).astype(bool)
    usable_no = student_no.str.fullmatch(_STUDENT_NO).fillna(False).astype(bool)
    fallback = "NBS:" + _joined(roster, ["name", "birth_date", "school_code"])
    identity = fallback.where(~usable_no, "XJ:" + student_no)
    identity = identity.where(~usable_id, "ID:" + id_number)
    return identity.astype("string")


def record_fingerprint(roster: pd.DataFrame) -> pd.Series:
    """16 hex over every canonical field value of each row."""
    return _digest(_joined(roster, FINGERPRINT_FIELDS))


def _record_table(roster: pd.DataFrame, record_ids: pd.Series) -> pd.DataFrame:
    """record_id, identity, secondary (name|birth|school), fingerprint of the given records."""
    wanted = roster[roster["record_id"].isin(record_ids.dropna().unique()).fillna(False)]
    wanted = wanted.drop_duplicates("record_id")
    return pd.DataFrame(
        {
            "record_id": wanted["record_id"].astype("string").to_numpy(),
            "identity": record_identity(wanted).to_numpy(),
            "school": _column(wanted, "school_code").fillna("").to_numpy(),
            "secondary": _joined(wanted, ["name", "birth_date"]).to_numpy(),
            "fingerprint": record_fingerprint(wanted).to_numpy(),
        }
    ).astype("string")


def _unique_identity(frame: pd.DataFrame, scope: list[str]) -> pd.Series:
    """Identity made unique within ``scope`` columns: school, name and birth, then an ordinal."""
    identity = frame["identity"].fillna("?")
    for extra in ("school", "secondary"):
        clash = frame.assign(_i=identity).duplicated([*scope, "_i"], keep=False)
        identity = identity.where(~clash, identity + "|" + frame[extra].fillna(""))
    ordered = frame.assign(_i=identity).sort_values("record_id", kind="stable")
    ordinal = ordered.groupby([*scope, "_i"], dropna=False).cumcount()
    ordinal = ordinal.reindex(frame.index)
    identity = identity.where(ordinal == 0, identity + "#" + ordinal.astype("string"))
    return identity.astype("string")


def _join_per_group(frame: pd.DataFrame, column: str) -> pd.Series:
    """Per group_id, the column's values sorted and joined (groups cut by position, not by a
    per-group pandas aggregate)."""
    ordered = frame.sort_values(["group_id", column], kind="stable")
    groups = ordered["group_id"].to_numpy(dtype=object)
    values = ordered[column].fillna("").to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    stops = np.r_[starts[1:], len(groups)]
    joined = [SEPARATOR.join(values[a:b]) for a, b in zip(starts, stops, strict=True)]
    return pd.Series(joined, index=pd.Index(groups[starts]), dtype="string")


def problem_keys(problems: pd.DataFrame, roster: pd.DataFrame) -> pd.DataFrame:
    """problem_key, identity and fingerprint of every problem row (same index as ``problems``).

    Rows whose record is missing from the roster fall back to ``RID:<record_id>``.
    """
    records = _record_table(roster, problems["record_id"]).set_index("record_id")
    found = records.reindex(problems["record_id"].astype("string"))
    frame = pd.DataFrame(
        {
            "record_id": problems["record_id"].astype("string").to_numpy(),
            "rule": problems["rule"].astype("string").fillna("").to_numpy(),
            "field": problems["field"].astype("string").fillna("").to_numpy(),
            "identity": found["identity"].to_numpy(),
            "school": found["school"].to_numpy(),
            "secondary": found["secondary"].to_numpy(),
            "fingerprint": found["fingerprint"].to_numpy(),
        }
    ).astype("string")
    missing = frame["identity"].isna()
    frame["identity"] = frame["identity"].where(~missing, "RID:" + frame["record_id"].fillna(""))
    frame["fingerprint"] = frame["fingerprint"].fillna("")
    identity = _unique_identity(frame, ["rule", "field"])
    key = "P" + _digest(frame["rule"] + SEPARATOR + frame["field"] + SEPARATOR + identity)
    out = pd.DataFrame(
        {"problem_key": key, "identity": identity, "fingerprint": frame["fingerprint"]}
    ).astype("string")
    out.index = problems.index
    return out


def group_keys(duplicates: pd.DataFrame, roster: pd.DataFrame) -> pd.DataFrame:
    """problem_key, identity (sorted member identities), fingerprint and member (the row's
    record's number in its group, as text) per duplicate row."""
    columns = ["problem_key", "identity", "fingerprint", "member"]
    if duplicates.empty:
        return pd.DataFrame(columns=columns, index=duplicates.index, dtype="string")
    records = _record_table(roster, duplicates["record_id"]).set_index("record_id")
    found = records.reindex(duplicates["record_id"].astype("string"))
    frame = pd.DataFrame(
        {
            "group_id": duplicates["group_id"].astype("string").to_numpy(),
            "record_id": duplicates["record_id"].astype("string").to_numpy(),
            "dup_class": duplicates["dup_class"].astype("string").fillna("").to_numpy(),
            "identity": found["identity"].to_numpy(),
            "school": found["school"].to_numpy(),
            "secondary": found["secondary"].to_numpy(),
            "fingerprint": found["fingerprint"].to_numpy(),
        }
    ).astype("string")
    missing = frame["identity"].isna()
    frame["identity"] = frame["identity"].where(~missing, "RID:" + frame["record_id"])
    frame["fingerprint"] = frame["fingerprint"].fillna("")
    # Inside a group the members' identities must differ (one ID registered twice).
    frame["identity"] = _unique_identity(frame, ["group_id"])
    ordered = frame.sort_values(["group_id", "identity"], kind="stable")
    member = (ordered.groupby("group_id", sort=False).cumcount() + 1).reindex(frame.index)
    members = _join_per_group(frame, "identity")
    prints = _join_per_group(frame, "fingerprint")
    classes = frame.drop_duplicates("group_id").set_index("group_id")["dup_class"]
    per_group = pd.DataFrame({"identity": members.astype("string")})
    per_group["problem_key"] = "D" + _digest(per_group["identity"])
    per_group["fingerprint"] = _digest(
        classes.reindex(per_group.index).astype("string")
        + SEPARATOR
        + prints.reindex(per_group.index).astype("string")
    )
    out = per_group.reindex(frame["group_id"])[columns[:3]]
    out.index = duplicates.index
    out["member"] = member.astype("string").to_numpy()
    return out.astype("string")
