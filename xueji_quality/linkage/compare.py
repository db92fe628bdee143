"""Comparison vectors (比对) through recordlinkage's Compare: one discrete level per field.

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

Each field is a ``recordlinkage.base.BaseCompareFeature`` run by ``recordlinkage.Compare`` on
the pairs (a MultiIndex of positions) and a small frame of integer codes (``Records.frame(rows)``,
the records the pairs touch). ID digits are compared as (pairs, 18) matrices decoded from the
int64 ID values; names and guardians once per distinct pair of values (names repeat heavily),
with jellyfish doing the string distance.
"""

from __future__ import annotations

import jellyfish
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import recordlinkage
from recordlinkage.base import BaseCompareFeature

from xueji_quality.linkage.records import Records, pair_index, pair_positions
from xueji_quality.linkage.text import char_readings
from xueji_quality.standards import resident_id

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
# The comparison table: the pair's positions, then the levels and shares.
COLUMNS = (
    "a",
    "b",
    "id",
    "id_position",
    "name",
    "birth",
    "sex",
    "guardian",
    "name_share",
    "guardian_share",
    "region",
    "student_no",
)
# Pairs compared at a time (bounds the per-pair columns Compare gathers).
COMPARE_BATCH = 1 << 20


def level(feature: str, name: str) -> int:
    return LEVELS[feature].index(name)


def id_parts_agree(differs: np.ndarray) -> np.ndarray:
    """Pairs of IDs (an (n, 18) mask of differing positions) whose sequence code and either the
    address code or the date part are equal."""
    sequence = ~differs[:, 14:17].any(axis=1)
    return sequence & (~differs[:, :6].any(axis=1) | ~differs[:, 6:14].any(axis=1))


# --- the ID -----------------------------------------------------------------------------------

ID_COLUMNS = ["id_value", "id_valid", "id_consistent", "carried_id", "name_code"]


def id_level_values(left: dict, right: dict) -> tuple[np.ndarray, np.ndarray]:
    """ID level of each pair and the 1-based first differing position (0 when not applicable),
    from the ID_COLUMNS values of the two sides."""
    value_a, value_b = left["id_value"], right["id_value"]
    da, db = resident_id.values_to_digits(value_a), resident_id.values_to_digits(value_b)
    differs = da != db
    count = differs.sum(axis=1)
    first = np.argmax(differs, axis=1)
    nxt = np.minimum(first + 1, 17)
    rows = np.arange(len(value_a))
    swapped = (
        (count == 2)
        & differs[rows, nxt]
        & (da[rows, first] == db[rows, nxt])
        & (da[rows, nxt] == db[rows, first])
    )
    both = (value_a >= 0) & (value_b >= 0)
    sno_a, sno_b = left["carried_id"], right["carried_id"]
    via_sno = ((sno_a >= 0) & ((sno_a == value_b) | (sno_a == sno_b))) | (
        (sno_b >= 0) & (sno_b == value_a)
    )
    both_valid = both & left["id_valid"] & right["id_valid"]
    consistent = left["id_consistent"] & right["id_consistent"]
    # One address and birth day, another sequence number: two children born the same day at the
    # same place (twins), whatever else their records get wrong; but twins are not given one
    # name, so with one name written alike it is one child whose sequence was typed anew.
    same_name = (left["name_code"] >= 0) & (left["name_code"] == right["name_code"])
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


def _sides(names: list[str], columns: tuple[pd.Series, ...]) -> tuple[dict, dict]:
    """The Series recordlinkage hands a feature (left columns, then right) as two dicts of
    numpy arrays."""
    k = len(names)
    left = {name: column.to_numpy() for name, column in zip(names, columns[:k], strict=True)}
    right = {name: column.to_numpy() for name, column in zip(names, columns[k:], strict=True)}
    return left, right


class IdNumberLevel(BaseCompareFeature):
    """The ID field: its level and the first differing position."""

    def __init__(self) -> None:
        super().__init__(ID_COLUMNS, ID_COLUMNS, label=["id", "id_position"])

    def _compute_vectorized(self, *columns: pd.Series):
        return id_level_values(*_sides(ID_COLUMNS, columns))


def id_levels(records: Records, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ID level of each pair (positions a, b) and the 1-based first differing position."""
    frame_a, frame_b = records.frame(a), records.frame(b)
    left = {name: frame_a[name].to_numpy() for name in ID_COLUMNS}
    right = {name: frame_b[name].to_numpy() for name in ID_COLUMNS}
    return id_level_values(left, right)


# --- names and guardians ----------------------------------------------------------------------


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


def text_level_values(
    ca: np.ndarray,
    cb: np.ndarray,
    values: pa.Array | list[str],
    raw_a: np.ndarray | None,
    raw_b: np.ndarray | None,
    feature: str,
) -> np.ndarray:
    """Name-like comparison of the value codes of the two sides, computed once per distinct
    (code, code) pair; with raw codes, equal cleaned values written differently are
    equal_after_cleaning."""
    ca, cb = np.asarray(ca, dtype=np.int64), np.asarray(cb, dtype=np.int64)
    out = np.full(len(ca), level(feature, "missing"), dtype=np.int8)
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
    if raw_a is not None:
        cleaned_only = (out == level(feature, "equal")) & (raw_a != raw_b)
        out[cleaned_only] = level(feature, "equal_after_cleaning")
    return out


def text_levels(
    codes: np.ndarray,
    values: pa.Array | list[str],
    raw_codes: np.ndarray | None,
    a: np.ndarray,
    b: np.ndarray,
    feature: str,
) -> np.ndarray:
    """``text_level_values`` of the pairs (positions a, b) of one coded field."""
    raw_a = None if raw_codes is None else raw_codes[a]
    raw_b = None if raw_codes is None else raw_codes[b]
    return text_level_values(codes[a], codes[b], values, raw_a, raw_b, feature)


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


class NameLevel(BaseCompareFeature):
    """The name: its level (jellyfish for the similar names) and the share of the left name."""

    COLUMNS = ["name_code", "name_raw_code"]

    def __init__(self, records: Records) -> None:
        super().__init__(self.COLUMNS, self.COLUMNS, label=["name", "name_share"])
        self.names = records.names
        self.shares = _value_shares(records.name_code)

    def _compute_vectorized(self, *columns: pd.Series):
        left, right = _sides(self.COLUMNS, columns)
        levels = text_level_values(
            left["name_code"],
            right["name_code"],
            self.names,
            left["name_raw_code"],
            right["name_raw_code"],
            "name",
        )
        return levels, self.shares[left["name_code"]]


class GuardianLevel(BaseCompareFeature):
    """The guardian: its level and the share of the agreeing guardian among comparable records.

    A child usually carries the guardian's surname, so when the two children's names share their
    first character the guardians' surnames agree already: the guardian's given name is the new
    evidence, and its share is counted among guardians of that surname only.
    """

    COLUMNS = ["guardian_code", "name_code"]

    def __init__(self, records: Records) -> None:
        super().__init__(self.COLUMNS, self.COLUMNS, label=["guardian", "guardian_share"])
        codes = records.guardian_code
        self.guardians = records.guardians
        self.overall = _value_shares(codes)
        self.surname = _surname_table(records.guardians)
        self.counts = np.bincount(codes[codes >= 0], minlength=len(records.guardians))
        self.per_surname = np.bincount(
            self.surname[: len(self.counts)],
            weights=self.counts,
            minlength=int(self.surname.max(initial=-1)) + 1,
        ).astype(np.int64)
        self.child_first = _surname_table(records.names)

    def _compute_vectorized(self, *columns: pd.Series):
        left, right = _sides(self.COLUMNS, columns)
        code = left["guardian_code"]
        levels = text_level_values(
            code, right["guardian_code"], self.guardians, None, None, "guardian"
        )
        overall = self.overall[code]
        has = code >= 0
        within = np.zeros(len(code))
        surname = self.surname[code[has]]
        within[has] = np.maximum(self.counts[code[has]] - 2, 0) / np.maximum(
            self.per_surname[surname] - 2, 1
        )
        first_a = self.child_first[left["name_code"]]
        first_b = self.child_first[right["name_code"]]
        same_surname = (first_a >= 0) & (first_a == first_b)
        return levels, np.where(same_surname & has, np.maximum(within, overall), overall)


# --- dates and codes --------------------------------------------------------------------------


class BirthDateLevel(BaseCompareFeature):
    """The birth date: equal, day and month swapped, another year only, different, missing."""

    COLUMNS = ["birth_year", "birth_month", "birth_day"]

    def __init__(self) -> None:
        super().__init__(self.COLUMNS, self.COLUMNS, label="birth")

    def _compute_vectorized(self, *columns: pd.Series):
        left, right = _sides(self.COLUMNS, columns)
        ya, yb = left["birth_year"], right["birth_year"]
        ma, mb = left["birth_month"], right["birth_month"]
        da, db = left["birth_day"], right["birth_day"]
        return np.select(
            [
                (ya == 0) | (yb == 0),
                (ya == yb) & (ma == mb) & (da == db),
                (ya == yb) & (ma == db) & (da == mb) & (ma != da),
                (ma == mb) & (da == db),
            ],
            [
                level("birth", "missing"),
                level("birth", "equal"),
                level("birth", "swapped"),
                level("birth", "year_differs"),
            ],
            level("birth", "different"),
        ).astype(np.int8)


class CodeEquality(BaseCompareFeature):
    """A coded field compared for equality; codes below ``smallest`` are missing."""

    def __init__(self, column: str, feature: str, smallest: int = 0) -> None:
        super().__init__(column, column, label=feature)
        self.feature, self.smallest = feature, smallest

    def _compute_vectorized(self, left: pd.Series, right: pd.Series):
        x, y = left.to_numpy(), right.to_numpy()
        return np.select(
            [(x < self.smallest) | (y < self.smallest), x == y],
            [level(self.feature, "missing"), level(self.feature, "equal")],
            level(self.feature, "different"),
        ).astype(np.int8)


def comparator(records: Records) -> recordlinkage.Compare:
    """recordlinkage's Compare holding one feature per field, for the pairs of ``records``."""
    return recordlinkage.Compare(
        features=[
            IdNumberLevel(),
            NameLevel(records),
            BirthDateLevel(),
            CodeEquality("sex", "sex", smallest=1),
            GuardianLevel(records),
            CodeEquality("region", "region"),
            CodeEquality("student_no", "student_no"),
        ]
    )


def compare_links(records: Records, pairs: pd.MultiIndex) -> pd.DataFrame:
    """The comparison table (COLUMNS) of the pairs, a row per pair in their order: Compare runs
    on a batch of pairs at a time, with the frame of the records that batch touches."""
    compare = comparator(records)
    tables = []
    for start in range(0, max(len(pairs), 1), COMPARE_BATCH):
        batch = pairs[start : start + COMPARE_BATCH]
        a, b = pair_positions(batch)
        frame = records.frame(np.unique(np.r_[a, b]))
        vectors = compare.compute(batch, frame).reset_index(drop=True)
        vectors.insert(0, "b", b)
        vectors.insert(0, "a", a)
        tables.append(vectors[list(COLUMNS)])
    return tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)


def compare_pairs(records: Records, a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """Comparison table of the pairs at positions (a, b), in their order."""
    return compare_links(records, pair_index(a, b))
