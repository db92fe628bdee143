"""Records: what blocking and comparison read of a roster, as integer codes (prepare step).

Records hold integer codes only (dictionary codes of the text fields, the ID as one int64 value
of ``resident_id.PLACE``, the birth date as year/month/day), built from the Arrow buffers of the
roster a slice of rows at a time, so linkage adds tens of bytes per row to the roster it is given.
``Records.frame`` is their positional view as the DataFrame recordlinkage's Index and Compare
objects take: one row per roster position, integer columns, no text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.linkage.consistency import (
    Consistency,
    consistency_rules,
    id_conflicts,
    real_date_numbers,
)
from xueji_quality.linkage.text import (
    cleaned_codes,
    dictionary_codes,
    reading_codes,
    roster_text,
    take_rows,
)
from xueji_quality.standards import dates, iso7064, resident_id

# A 学籍号 (letter + 18) is held as the value of its 18 characters * 4 + its letter.
STUDENT_NO_LETTERS = {"G": 1, "J": 2, "L": 3}
# Rows handled at a time while the ID and 学籍号 columns are parsed (bounds the digit matrices).
CHUNK_ROWS = 1 << 18
# Name of the index of the frames handed to recordlinkage (labels are roster positions).
POSITION = "position"

# Records fields with one entry per record (Records.subset takes them at the chosen rows).
_PER_RECORD = (
    "id_present",
    "id_valid",
    "id_conflict",
    "id_value",
    "student_no_kind",
    "name_code",
    "name_raw_code",
    "guardian_code",
    "birth_year",
    "birth_month",
    "birth_day",
    "sex",
    "region",
)


@dataclass
class Records:
    """Per-record keys and comparison inputs, computed once per roster (numpy, length n)."""

    n: int
    record_id: pa.ChunkedArray  # the roster's record ids as text
    id_present: np.ndarray  # bool: the ID field holds something
    id_valid: np.ndarray  # bool: ID shape (17 digits + digit/X) and check character right
    id_conflict: np.ndarray  # uint8 CONFLICT_* bits of a valid ID (0: consistent or not valid)
    id_value: np.ndarray  # int64 value of the ID (resident_id.PLACE) where it has ID shape, else -1
    # 学籍号 (letter + 18): 0 none or malformed, 1 "G" + the record's own ID number (the common
    # case, key = id_value * 4 + 1), 2 any other; kind 2 keys are kept for those rows only.
    student_no_kind: np.ndarray  # uint8
    student_no_rows: np.ndarray  # int64 sorted positions of kind 2
    student_no_keys: np.ndarray  # int64 key (tail value * 4 + letter) of each kind 2 row
    student_no_g_valid: np.ndarray  # bool per kind 2 row: a G 学籍号 whose tail is a valid ID
    name_code: np.ndarray  # int32 code of the cleaned name (-1 missing)
    names: pa.Array  # cleaned name per code
    name_raw_code: np.ndarray  # int32 code of the name as given (-1 missing)
    names_raw: pa.Array
    pinyin_of_name: np.ndarray  # int32 code of the default reading of each name code, then -1
    guardian_code: np.ndarray  # int32
    guardians: pa.Array
    birth_year: np.ndarray  # int16, 0 when unknown
    birth_month: np.ndarray  # int8
    birth_day: np.ndarray  # int8
    sex: np.ndarray  # int8: 1, 2, 0 unknown
    region: np.ndarray  # int16 (int32 beyond 32,000 values) code of household_region, -1 missing
    extra: dict = field(default_factory=dict)

    @property
    def name_pinyin(self) -> np.ndarray:
        """int32 code of the default reading of each record's name (-1 missing)."""
        return self.pinyin_of_name[self.name_code]

    def pinyin_of_guardian(self) -> np.ndarray:
        """int32 code of the default reading of each guardian code, then -1 (made when a
        declared pass first asks for it)."""
        if "pinyin_of_guardian" not in self.extra:
            self.extra["pinyin_of_guardian"] = reading_codes(self.guardians)
        return self.extra["pinyin_of_guardian"]

    def subset(self, rows: np.ndarray) -> Records:
        """The records at ``rows`` (positions 0..len(rows)-1 in the result), dictionaries shared."""
        rows = np.asarray(rows, dtype=np.int64)
        arrays = {name: getattr(self, name)[rows] for name in _PER_RECORD}
        keys, g_valid = self.student_no_at(rows), self.student_no_ids(rows) >= 0
        other = np.flatnonzero(arrays["student_no_kind"] == 2)
        return replace(
            self,
            n=len(rows),
            record_id=pa.chunked_array([take_rows(self.record_id, rows)]),
            student_no_rows=other,
            student_no_keys=keys[other],
            student_no_g_valid=g_valid[other],
            **arrays,
        )

    def student_no_at(self, rows: np.ndarray) -> np.ndarray:
        """int64 key of the 学籍号 at ``rows`` (-1 none or malformed)."""
        rows = np.asarray(rows, dtype=np.int64)
        kind = self.student_no_kind[rows]
        out = np.where(kind == 1, self.id_value[rows] * 4 + 1, -1)
        other = np.flatnonzero(kind == 2)
        out[other] = self.student_no_keys[np.searchsorted(self.student_no_rows, rows[other])]
        return out

    def id_consistent(self, rows) -> np.ndarray:
        """Valid ID that agrees with its record (no CONFLICT_* bit) at ``rows``."""
        return self.id_valid[rows] & (self.id_conflict[rows] == 0)

    def digits(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), 18) digit values (X = 10) of the IDs at ``rows``; zeros where no ID shape."""
        return resident_id.values_to_digits(self.id_value[rows])

    def student_no_ids(self, rows: np.ndarray) -> np.ndarray:
        """Value of the valid ID carried by the G 学籍号 at ``rows``, else -1."""
        rows = np.asarray(rows, dtype=np.int64)
        kind = self.student_no_kind[rows]
        out = np.where((kind == 1) & self.id_valid[rows], self.id_value[rows], -1)
        other = np.flatnonzero(kind == 2)
        at = np.searchsorted(self.student_no_rows, rows[other])
        out[other] = np.where(self.student_no_g_valid[at], self.student_no_keys[at] // 4, -1)
        return out

    def frame(self, rows: np.ndarray | None = None) -> pd.DataFrame:
        """The records as a DataFrame of integer codes indexed by roster position.

        Without ``rows``: every record, the columns views of the arrays (no copy), as the Index
        step takes it. With ``rows``: those positions only, and the per-record values comparison
        derives (ID consistent with its record, the 学籍号 key, the ID a G 学籍号 carries), as
        the Compare step takes it: a small frame, whatever the roster's length.
        """
        if rows is None:
            columns = {name: pd.Series(getattr(self, name), copy=False) for name in _PER_RECORD}
            out = pd.DataFrame(columns, copy=False)
            out.index.name = POSITION
            return out
        rows = np.asarray(rows, dtype=np.int64)
        columns = {name: getattr(self, name)[rows] for name in _PER_RECORD}
        columns["id_consistent"] = self.id_consistent(rows)
        columns["student_no"] = self.student_no_at(rows)
        columns["carried_id"] = self.student_no_ids(rows)
        return pd.DataFrame(columns, index=pd.Index(rows, name=POSITION))


def _birth_table(birth: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the birth-date texts and a (distinct + 1, 3) year/month/day table (zeros where
    the text is not a real YYYY-MM-DD date; the last row is that of code -1, a blank)."""
    codes, values = dictionary_codes(birth)
    table = np.zeros((len(values) + 1, 3), dtype=np.int16)
    for i, text in enumerate(values.to_pylist()):
        if text is not None and len(text) == 10 and text[4] == "-" and text[7] == "-":
            parts = (text[:4], text[5:7], text[8:10])
            if all(p.isascii() and p.isdigit() for p in parts):
                table[i] = [int(p) for p in parts]
    table[~dates.real(table[:, 0], table[:, 1], table[:, 2])] = 0
    return codes, table


def _parse_ids(
    records: dict,
    ids: pa.Array,
    student_no: pa.Array,
    rows: slice,
    grade: np.ndarray,
    rules: Consistency,
) -> None:
    """ID and 学籍号 fields of one slice of rows, written into the arrays of ``records``."""
    digits, shape = resident_id.digit_matrix(ids)
    value = np.where(shape, resident_id.digits_to_values(digits), -1)
    valid = shape & iso7064.check_ok_column(digits)
    records["id_valid"][rows] = valid
    records["id_value"][rows] = value
    records["id_present"][rows] = pc.fill_null(pc.greater(pc.utf8_length(ids), 0), False).to_numpy(
        zero_copy_only=False
    )
    del digits
    year, month, day = (
        records["birth_year"][rows],
        records["birth_month"][rows],
        records["birth_day"][rows],
    )
    given = year.astype(np.int32) * 10000 + month.astype(np.int32) * 100 + day
    records["id_conflict"][rows] = id_conflicts(
        value, valid, given, records["birth_filled"][rows], records["sex"][rows], grade, rules
    )
    # Birth date inside the ID fills a missing or unusable birth date.
    inside = resident_id.birth_numbers_from_values(value)
    use_id = np.flatnonzero((year == 0) & real_date_numbers(inside))
    if len(use_id):
        inside = inside[use_id]
        year[use_id] = inside // 10000
        month[use_id] = inside // 100 % 100
        day[use_id] = inside % 100
    del inside

    letter_text = pc.utf8_slice_codeunits(student_no, 0, 1)
    letter = np.zeros(len(student_no), dtype=np.int64)
    for text, code in STUDENT_NO_LETTERS.items():
        letter[pc.fill_null(pc.equal(letter_text, text), False).to_numpy(zero_copy_only=False)] = (
            code
        )
    length = pc.fill_null(pc.utf8_length(student_no), 0).to_numpy(zero_copy_only=False)
    tail_digits, tail_shape = resident_id.digit_matrix(pc.utf8_slice_codeunits(student_no, 1))
    well_formed = (letter > 0) & (length == 19) & tail_shape
    tail_value = resident_id.digits_to_values(tail_digits)
    own = well_formed & (letter == STUDENT_NO_LETTERS["G"]) & (tail_value == value)
    records["student_no_kind"][rows] = np.where(own, 1, np.where(well_formed, 2, 0))
    other = np.flatnonzero(well_formed & ~own)
    records["student_no_rows"].append(rows.start + other)
    records["student_no_keys"].append(tail_value[other] * 4 + letter[other])
    tail_valid = tail_shape & iso7064.check_ok_column(tail_digits)
    g_valid = (letter == STUDENT_NO_LETTERS["G"]) & tail_valid
    records["student_no_g_valid"].append(g_valid[other])


def _grade_levels(roster: pd.DataFrame) -> np.ndarray:
    """Grade level 1..12 of each record (0 unknown) from ``grade_level``, numbers or text."""
    if "grade_level" not in roster.columns:
        return np.zeros(len(roster), dtype=np.int8)
    column = roster["grade_level"]
    if pd.api.types.is_numeric_dtype(column.dtype):
        levels = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:  # text (a staged sample cast to strings): the few distinct values parsed once
        codes, values = dictionary_codes(roster_text(roster, "grade_level"))
        parsed = pd.to_numeric(pd.Series(values.to_pylist(), dtype=object), errors="coerce")
        levels = np.append(parsed.to_numpy(dtype=np.float64, na_value=np.nan), np.nan)[codes]
    levels = np.nan_to_num(levels, nan=0.0)
    return np.where((levels >= 1) & (levels <= 12), levels, 0).astype(np.int8)


def prepare_records(
    roster: pd.DataFrame, as_of: date | str | None = None, consistency: dict | None = None
) -> Records:
    """Everything blocking and comparison need, computed column-wise from a canonical roster.

    ``as_of`` (the run date, default today) gives the school year of the age check that, with
    the slack of ``consistency`` (config/linkage.json), decides whether a valid ID is consistent
    with its record (``consistency.id_conflicts``).
    """
    n = len(roster)
    rules = consistency_rules(as_of, consistency)
    birth_codes, birth_table = _birth_table(roster_text(roster, "birth_date"))
    sex_text = roster_text(roster, "sex")
    sex = np.zeros(n, dtype=np.int8)
    for text, code in (("1", 1), ("2", 2)):
        sex[pc.fill_null(pc.equal(sex_text, text), False).to_numpy(zero_copy_only=False)] = code
    del sex_text
    grade = _grade_levels(roster)
    arrays = {
        "id_present": np.zeros(n, dtype=bool),
        "id_valid": np.zeros(n, dtype=bool),
        "id_conflict": np.zeros(n, dtype=np.uint8),
        "id_value": np.full(n, -1, dtype=np.int64),
        "student_no_kind": np.zeros(n, dtype=np.uint8),
        "student_no_rows": [np.zeros(0, dtype=np.int64)],
        "student_no_keys": [np.zeros(0, dtype=np.int64)],
        "student_no_g_valid": [np.zeros(0, dtype=bool)],
        "birth_year": birth_table[birth_codes, 0],
        "birth_month": birth_table[birth_codes, 1].astype(np.int8),
        "birth_day": birth_table[birth_codes, 2].astype(np.int8),
        "birth_filled": birth_codes >= 0,
        "sex": sex,
    }
    del birth_codes
    ids, student_nos = roster_text(roster, "id_number"), roster_text(roster, "student_no")
    for start in range(0, n, CHUNK_ROWS):
        length = min(CHUNK_ROWS, n - start)
        _parse_ids(
            arrays,
            ids.slice(start, length).combine_chunks(),
            student_nos.slice(start, length).combine_chunks(),
            slice(start, start + length),
            grade[start : start + length],
            rules,
        )
    del grade, arrays["birth_filled"]
    for key in ("student_no_rows", "student_no_keys", "student_no_g_valid"):
        arrays[key] = np.concatenate(arrays[key])
    month, day = arrays["birth_month"], arrays["birth_day"]
    bad = (month < 1) | (month > 12) | (day < 1) | (day > 31)
    for key in ("birth_year", "birth_month", "birth_day"):
        arrays[key][bad] = 0

    name_code, names, name_raw_code, names_raw = cleaned_codes(roster_text(roster, "name"))
    guardian_code, guardians, _, _ = cleaned_codes(roster_text(roster, "guardian_name"))
    pinyin_of_name = reading_codes(names)

    region, region_values = dictionary_codes(roster_text(roster, "household_region"))
    if len(region_values) < np.iinfo(np.int16).max:
        region = region.astype(np.int16)

    if "record_id" in roster.columns:
        record_id = roster_text(roster, "record_id")
    else:
        record_id = pa.chunked_array([pa.array([str(i) for i in range(n)], pa.string())])
    return Records(
        n=n,
        record_id=record_id,
        name_code=name_code,
        names=names,
        name_raw_code=name_raw_code,
        names_raw=names_raw,
        pinyin_of_name=pinyin_of_name,
        guardian_code=guardian_code,
        guardians=guardians,
        region=region,
        extra={"region_values": len(region_values)},
        **arrays,
    )


def pair_index(a: np.ndarray, b: np.ndarray) -> pd.MultiIndex:
    """Record pairs as recordlinkage holds them: a MultiIndex of roster positions (a, b), in the
    order given, each level holding only the positions that occur in it."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    left, left_codes = np.unique(a, return_inverse=True)
    right, right_codes = np.unique(b, return_inverse=True)
    return pd.MultiIndex(
        levels=[left, right],
        codes=[left_codes, right_codes],
        names=[f"{POSITION}_1", f"{POSITION}_2"],
        verify_integrity=False,
    )


def pair_positions(pairs: pd.MultiIndex) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) roster positions of a MultiIndex of pairs, as int64 arrays."""
    left = np.asarray(pairs.levels[0], dtype=np.int64)[pairs.codes[0]]
    right = np.asarray(pairs.levels[1], dtype=np.int64)[pairs.codes[1]]
    return left, right
