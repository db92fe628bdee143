"""Comparison vectors (比对): one row per candidate pair, one discrete level per field.

Levels are what the Fellegi-Sunter model weighs (config/linkage.json gives m and u per level):

- id: equal; one_digit (one position differs, at least one side fails MOD 11-2); transposed (two
  adjacent positions swapped); via_student_no (a ``G`` 学籍号 carries the other record's ID);
  both_valid_different (two valid, different numbers, each consistent with its record, or of one
  address code and birth day — twins: two people); valid_different_parts_agree and
  valid_different_inconsistent (two valid, different numbers, at least one contradicting its own
  record — unknown address code, date inside not the 出生日期, sex digit not the 性别, an age
  impossible for the grade — so the number may be made up or re-made and the other fields
  decide; parts_agree when the sequence and either the address code or the date part are equal,
  as a re-made number keeps them); invalid_different; missing.
- name / guardian: equal; equal_after_cleaning (only blanks or full-width forms differ);
  homophone (same length, every character shares a reading: 张伟/张玮, 单/善 via heteronyms);
  similar (same first character, three characters or more, Damerau-Levenshtein distance 1);
  different; missing.
- birth: equal; swapped (day and month exchanged); year_differs (same month and day, another
  year: a date moved by years); different; missing.
- sex, region (户口所在地), student_no: equal; different; missing.

For name and guardian the share of records holding the agreeing value is kept next to the level
(name_share, guardian_share): agreeing on 张伟 is weaker evidence than agreeing on a rare name.
When the children's names share their first character, the guardian's share is taken among
guardians of that surname (the surname must not be counted twice).

ID digits are compared as (pairs, 18) matrices decoded from the int64 ID values of the pair's
records; names and guardians are compared once per distinct pair of values (names repeat heavily),
with jellyfish doing the string distance.
"""

from __future__ import annotations

import jellyfish
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.linkage.index import Records, char_readings

LEVELS: dict[str, tuple[str, ...]] = {
    "id": (
        "equal",
        "one_digit",
        "transposed",
        "via_student_no",
        "both_valid_different",
        "valid_different_parts_agree",
        "valid_different_inconsistent",
        "invalid_different",
        "missing",
    ),
    "name": ("equal", "equal_after_cleaning", "homophone", "similar", "different", "missing"),
    "birth": ("equal", "swapped", "year_differs", "different", "missing"),
    "sex": ("equal", "different", "missing"),
    "guardian": ("equal", "equal_after_cleaning", "homophone", "similar", "different", "missing"),
    "region": ("equal", "different", "missing"),
    "student_no": ("equal", "different", "missing"),
}


def level(feature: str, name: str) -> int:
    return LEVELS[feature].index(name)


def id_parts_agree(differs: np.ndarray) -> np.ndarray:
    """Pairs of IDs (an (n, 18) mask of differing positions) whose sequence code and either the
    address code or the date part are equal."""
    sequence = ~differs[:, 14:17].any(axis=1)
    return sequence & (~differs[:, :6].any(axis=1) | ~differs[:, 6:14].any(axis=1))


def id_levels(records: Records, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ID level of each pair and the 1-based first differing position (0 when not applicable)."""
    da, db = records.digits(a), records.digits(b)
    differs = da != db
    count = differs.sum(axis=1)
    first = np.argmax(differs, axis=1)
    nxt = np.minimum(first + 1, 17)
    rows = np.arange(len(a))
    swapped = (
        (count == 2)
        & differs[rows, nxt]
        & (da[rows, first] == db[rows, nxt])
        & (da[rows, nxt] == db[rows, first])
    )
    shape_a, shape_b = records.id_value[a] >= 0, records.id_value[b] >= 0
    valid_a, valid_b = records.id_valid[a], records.id_valid[b]
    both = shape_a & shape_b
    sno_a, sno_b = records.student_no_ids(a), records.student_no_ids(b)
    value_a, value_b = records.id_value[a], records.id_value[b]
    via_sno = ((sno_a >= 0) & ((sno_a == value_b) | (sno_a == sno_b))) | (
        (sno_b >= 0) & (sno_b == value_a)
    )
    both_valid = both & valid_a & valid_b
    consistent = records.id_consistent(a) & records.id_consistent(b)
    # One address and birth day, another sequence number: two children born the same day at the
    # same place (twins), whatever else their records get wrong; but twins are not given one
    # name, so with one name written alike it is one child whose sequence was typed anew.
    same_name = (records.name_code[a] >= 0) & (records.name_code[a] == records.name_code[b])
    twin_numbers = ~differs[:, :14].any(axis=1)
    rules = (
        ("equal", both & (count == 0)),
        ("both_valid_different", both_valid & (consistent | (twin_numbers & ~same_name))),
        (
            "valid_different_parts_agree",
            both_valid & (id_parts_agree(differs) | (twin_numbers & same_name)),
        ),
        ("valid_different_inconsistent", both_valid),
        ("one_digit", both & (count == 1)),
        ("transposed", both & swapped),
        ("via_student_no", via_sno),
        ("invalid_different", both),
    )
    conditions = [condition for _, condition in rules]
    choices = [level("id", name) for name, _ in rules]
    levels = np.select(conditions, choices, level("id", "missing")).astype(np.int8)
    position = np.where(
        np.isin(levels, [level("id", "one_digit"), level("id", "transposed")]), first + 1, 0
    )
    return levels, position.astype(np.int8)


def text_similarity(left: str, right: str) -> str:
    """Level of two cleaned names: equal, homophone, similar or different."""
    if left == right:
        return "equal"
    if len(left) == len(right) and all(
        x == y or (char_readings(x) & char_readings(y)) for x, y in zip(left, right, strict=True)
    ):
        return "homophone"
    # Two-character names sharing a surname and nothing else are different names (宋平/宋涛).
    if (
        left[:1] == right[:1]
        and max(len(left), len(right)) >= 3
        and jellyfish.damerau_levenshtein_distance(left, right) <= 1
    ):
        return "similar"
    return "different"


def _texts(values: pa.Array | list[str], codes: np.ndarray) -> list[str]:
    """The texts of value codes (all >= 0)."""
    if isinstance(values, pa.Array):
        return values.take(pa.array(codes, type=pa.int64())).to_pylist()
    return [values[i] for i in codes.tolist()]


def text_levels(
    codes: np.ndarray,
    values: pa.Array | list[str],
    raw_codes: np.ndarray | None,
    a: np.ndarray,
    b: np.ndarray,
    feature: str,
) -> np.ndarray:
    """Name-like comparison, computed once per distinct (code, code) pair."""
    ca, cb = codes[a].astype(np.int64), codes[b].astype(np.int64)
    out = np.full(len(a), level(feature, "missing"), dtype=np.int8)
    known = (ca >= 0) & (cb >= 0)
    if known.any():
        width = max(len(values), 1)
        pair_code = np.minimum(ca[known], cb[known]) * width + np.maximum(ca[known], cb[known])
        distinct, inverse = np.unique(pair_code, return_inverse=True)
        lefts, rights = _texts(values, distinct // width), _texts(values, distinct % width)
        computed = np.array(
            [level(feature, text_similarity(x, y)) for x, y in zip(lefts, rights, strict=True)],
            dtype=np.int8,
        )
        out[known] = computed[inverse]
    if raw_codes is not None:
        cleaned_only = (out == level(feature, "equal")) & (raw_codes[a] != raw_codes[b])
        out[cleaned_only] = level(feature, "equal_after_cleaning")
    return out


def _equality_levels(left: np.ndarray, right: np.ndarray, missing_left, missing_right, feature):
    return np.select(
        [missing_left | missing_right, left == right],
        [level(feature, "missing"), level(feature, "equal")],
        level(feature, "different"),
    ).astype(np.int8)


def _value_shares(codes: np.ndarray) -> np.ndarray:
    """Share of the other records holding each value code (last slot: missing).

    The two records of an agreeing pair are left out of the count (count - 2 of n - 2): they are
    what is being judged, and in a small roster (one school) they would dominate the share.
    """
    counts = np.bincount(codes[codes >= 0], minlength=int(codes.max(initial=-1)) + 1)
    others = np.maximum(counts - 2, 0) / max(len(codes) - 2, 1)
    return np.append(others, 1.0)


def _surname_table(values: pa.Array | list[str]) -> np.ndarray:
    """Code of the first character of each value code; the last slot (code -1) is -1."""
    if not isinstance(values, pa.Array):
        values = pa.array(list(values), type=pa.string())
    first = pc.dictionary_encode(pc.utf8_slice_codeunits(values, 0, 1))
    return np.append(first.indices.to_numpy(zero_copy_only=False), -1).astype(np.int64)


def _guardian_shares(records: Records, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of the agreeing guardian among comparable records, per pair.

    A child usually carries the guardian's surname, so when the two children's names share their
    first character the guardians' surnames agree already: the guardian's given name is the new
    evidence, and its share is counted among guardians of that surname only.
    """
    codes = records.guardian_code
    overall = _value_shares(codes)[codes[a]]
    surname_table = _surname_table(records.guardians)
    counts = np.bincount(codes[codes >= 0], minlength=len(records.guardians))
    per_surname = np.bincount(
        surname_table[: len(counts)],
        weights=counts,
        minlength=int(surname_table.max(initial=-1)) + 1,
    ).astype(np.int64)
    code = codes[a]
    has = code >= 0
    within = np.zeros(len(a))
    surname = surname_table[code[has]]
    within[has] = np.maximum(counts[code[has]] - 2, 0) / np.maximum(per_surname[surname] - 2, 1)
    child_first = _surname_table(records.names)
    first_a, first_b = child_first[records.name_code[a]], child_first[records.name_code[b]]
    same_surname = (first_a >= 0) & (first_a == first_b)
    return np.where(same_surname & has, np.maximum(within, overall), overall)


def compare_pairs(records: Records, a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """Comparison vector of every candidate pair (positions a < b)."""
    id_level, id_position = id_levels(records, a, b)
    ya, yb = records.birth_year[a], records.birth_year[b]
    ma, mb = records.birth_month[a], records.birth_month[b]
    dda, ddb = records.birth_day[a], records.birth_day[b]
    birth = np.select(
        [
            (ya == 0) | (yb == 0),
            (ya == yb) & (ma == mb) & (dda == ddb),
            (ya == yb) & (ma == ddb) & (dda == mb) & (ma != dda),
            (ma == mb) & (dda == ddb),
        ],
        [
            level("birth", "missing"),
            level("birth", "equal"),
            level("birth", "swapped"),
            level("birth", "year_differs"),
        ],
        level("birth", "different"),
    ).astype(np.int8)
    sa, sb = records.sex[a], records.sex[b]
    sno_a, sno_b = records.student_no_at(a), records.student_no_at(b)
    name_share = _value_shares(records.name_code)
    guardian_share = _guardian_shares(records, a, b)
    return pd.DataFrame(
        {
            "a": a,
            "b": b,
            "id": id_level,
            "id_position": id_position,
            "name": text_levels(
                records.name_code, records.names, records.name_raw_code, a, b, "name"
            ),
            "birth": birth,
            "sex": _equality_levels(sa, sb, sa == 0, sb == 0, "sex"),
            "guardian": text_levels(
                records.guardian_code, records.guardians, None, a, b, "guardian"
            ),
            "name_share": name_share[records.name_code[a]],
            "guardian_share": guardian_share,
            "region": _equality_levels(
                records.region[a],
                records.region[b],
                records.region[a] < 0,
                records.region[b] < 0,
                "region",
            ),
            "student_no": _equality_levels(sno_a, sno_b, sno_a < 0, sno_b < 0, "student_no"),
        }
    )
