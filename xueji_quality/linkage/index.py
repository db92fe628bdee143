"""Blocking (建立候选对): the passes whose union is the set of record pairs worth comparing.

Comparing every pair of a province is out of the question (10^12 pairs for a million rows), so
each pass groups records by a key and only records sharing a key become candidates:

- ``id``: the same normalised ID number (18 characters of ID shape) — the Ministry's class 1.
- ``student_no``: the same 学籍号, and a ``G`` 学籍号 whose 18 tail characters equal another
  record's ID number (a damaged ID field often sits next to an intact 学籍号). Blocks form around
  the numbers that are not "G" + the record's own ID: two of those that agree carry one ID, and
  the ``id`` pass pairs them already.
- ``id_neighbour``: IDs that fail their MOD 11-2 check. A single substitution or a swap of two
  adjacent characters always breaks the check, so for such an ID every valid number one edit away
  is computed (at most 17 substitutions, the right check character, 17 swaps) and looked up among
  the valid IDs; two invalid IDs are matched on the ID with one position masked and on the ID with
  an adjacent pair put in canonical order. Valid IDs are never neighbour-matched: two valid,
  different numbers are two people.
- ``name_birth``: the cleaned name and the birth date (姓名+出生日期).
- ``pinyin_birth``: the reading of the name (zhang wei for 张伟 and 张玮) with the birth year and the
  unordered pair {month, day}, so homophones and day/month swaps fall into one block.
- ``guardian_birth``: guardian and the birth year with the unordered {month, day}.

- ``name_id_parts``: the reading of the name with the address code and the sequence of the ID: a
  copy whose birth date was moved together with the date inside a re-made (check-valid) ID keeps
  the other parts of the number, but falls into none of the birth-date blocks.

The last four are declared as data in config/linkage.json (``blocking_rules``): the key fields
(``on``), ``one_side_without_consistent_id`` (a pair of two valid IDs that are both *consistent*
with their record is either one ID, found by the ``id`` pass, or two people, which the model's
both_valid_different level vetoes, so it is not formed; see ``id_conflicts`` for what makes a
valid ID inconsistent), and ``agree_on_one_of`` (sub-blocking: a pair is kept when it agrees on
at least one of these fields or one side lacks the field, so the pass grows with the rows, not
with their square). Candidates are formed from the records without a valid, consistent ID: each
is paired with the members of its block.

Blocks larger than ``block_size_cap``: in the declared passes they are sub-blocked by sorted
neighbourhood — the block is ordered on each ``agree_on_one_of`` field in turn and a record is
paired with the records less than ``block_size_cap`` places away — and listed in the stats as
sub-blocked. In the ID passes such a block is a placeholder number shared by hundreds of rows,
not a set of duplicates: it is not expanded and is listed for a person to look at. Pairs are
integer positions (a < b) into the roster, never labels.

Records hold integer codes only (dictionary codes of the text fields, the ID as one int64), built
from the Arrow buffers of the roster a slice of rows at a time, so linkage adds tens of bytes per
row to the roster it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pypinyin import Style, pinyin

from xueji_quality import idcard, regions

# Place values of the 18 ID positions: 17 decimal digits, then the check character (0-10, X = 10)
# in base 11. An ID is one int64 below 1.1e18, and a 学籍号 (letter + 18) fits as value * 4 + letter.
PLACE = np.array([11 * 10 ** (16 - k) for k in range(17)] + [1], dtype=np.int64)
_WEIGHT_INVERSE = np.array([pow(int(w), -1, 11) for w in idcard.WEIGHTS], dtype=np.int64)
_LETTERS = {"G": 1, "J": 2, "L": 3}
PASSES = (
    "id",
    "student_no",
    "id_neighbour",
    "name_birth",
    "pinyin_birth",
    "guardian_birth",
    "name_id_parts",
    "name_id_birth",
)
RULE_PASSES = ("name_birth", "pinyin_birth", "guardian_birth", "name_id_parts", "name_id_birth")
FIELDS = (
    "name",
    "name_pinyin",
    "guardian",
    "birth_date",
    "birth_date_unordered",
    "sex",
    "household_region",
    "id_address",
    "id_birth",
    "id_sequence",
)
# ID parts as integers of an ID value (PLACE): the address code (6 digits), the date (8), the
# sequence (3).
ADDRESS_PLACE = int(PLACE[5])
BIRTH_PLACE = int(PLACE[13])
SEQUENCE_PLACE = int(PLACE[16])

# What makes a valid ID inconsistent with its record (bits of Records.id_conflict). A number can
# pass MOD 11-2 and still be made up or someone else's: only a valid ID that agrees with the
# record is evidence of one person.
CONFLICT_ADDRESS = 1  # the address code was never issued (GB/T 2260), or names no province
CONFLICT_ID_DATE = 2  # the date inside the ID is not a real date (or lies after the run date)
CONFLICT_DATE_MISMATCH = 4  # the date inside the ID differs from a valid 出生日期
CONFLICT_BIRTH_INVALID = 8  # 出生日期 is filled but not a real date
CONFLICT_SEX = 16  # the 17th digit's parity differs from 性别
CONFLICT_AGE = 32  # the birth date gives an age impossible for the grade
CONFLICT_LABELS: tuple[tuple[int, str], ...] = (
    (CONFLICT_ADDRESS, "身份证号地址码不存在"),
    (CONFLICT_ID_DATE, "证内出生日期无效"),
    (CONFLICT_DATE_MISMATCH, "证内出生日期与出生日期不符"),
    (CONFLICT_BIRTH_INVALID, "出生日期无效"),
    (CONFLICT_SEX, "身份证号性别位与性别不符"),
    (CONFLICT_AGE, "出生日期与年级明显不符"),
)
# Address codes of the residence permits of Hong Kong, Macao and Taiwan residents, which
# GB/T 2260 does not list as counties (loc.dat lacks 830000).
PERMIT_ADDRESSES = (810000, 820000, 830000)
# Years the birth date may lie outside the nominal window of the grade before the age counts as
# impossible (config/linkage.json ``consistency`` overrides): the AGE_GRADE rule's window (one
# year older allowed) widened by one year on either side. An age that only loses the ID its
# veto costs nothing when the other fields say two people (different guardian or household).
AGE_SLACK_YEARS = {"older": 2, "younger": 1}
EARLIEST_YEAR = 1900
# Rows handled at a time while the ID and 学籍号 columns are parsed (bounds the digit matrices).
CHUNK_ROWS = 1 << 18
# Distinct names turned into Python strings at a time for their pinyin.
READING_BATCH = 100_000


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
    id_value: np.ndarray  # int64 value of the ID (PLACE) where it has ID shape, else -1
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
        return id_value_digits(self.id_value[rows])

    def student_no_ids(self, rows: np.ndarray) -> np.ndarray:
        """Value of the valid ID carried by the G 学籍号 at ``rows``, else -1."""
        rows = np.asarray(rows, dtype=np.int64)
        kind = self.student_no_kind[rows]
        out = np.where((kind == 1) & self.id_valid[rows], self.id_value[rows], -1)
        other = np.flatnonzero(kind == 2)
        at = np.searchsorted(self.student_no_rows, rows[other])
        out[other] = np.where(self.student_no_g_valid[at], self.student_no_keys[at] // 4, -1)
        return out


def id_value_digits(values: np.ndarray) -> np.ndarray:
    """Digits of ID values (PLACE); rows with a negative value give zeros."""
    values = np.asarray(values, dtype=np.int64)
    out = np.zeros((len(values), 18), dtype=np.uint8)
    has = values >= 0
    v = values[has]
    digits = np.empty((len(v), 18), dtype=np.uint8)
    digits[:, 17] = v % 11
    v = v // 11
    for k in range(16, -1, -1):
        digits[:, k] = v % 10
        v = v // 10
    out[has] = digits
    return out


def _digits_value(digits: np.ndarray) -> np.ndarray:
    """int64 value (PLACE) of an (n, 18) digit matrix with decimal first 17 digits."""
    value = np.zeros(len(digits), dtype=np.int64)
    for k in range(17):
        value *= 10
        value += digits[:, k]
    value *= 11
    value += digits[:, 17]
    return value


# Blanks a name may carry (RE2 \s is ASCII only): NFKC has already turned U+3000 into a space.
_NAME_BLANKS = r"[\s\x{00a0}\x{200b}-\x{200d}\x{2060}\x{feff}]"
_READINGS: dict[str, frozenset[str]] = {}
_DEFAULT_READING: dict[str, str] = {}


def char_readings(ch: str) -> frozenset[str]:
    """Every reading of one character (heteronyms included: 单 → dan, shan, chan)."""
    found = _READINGS.get(ch)
    if found is None:
        readings = pinyin(ch, heteronym=True, style=Style.NORMAL)[0]
        found = frozenset(readings)
        _READINGS[ch] = found
        _DEFAULT_READING[ch] = readings[0]
    return found


def default_readings(names: list[str]) -> list[str]:
    """The common reading of each name, syllables separated by blanks (key of the pinyin pass)."""
    chars = set("".join(names))
    for ch in chars:
        char_readings(ch)
    table = {ord(ch): _DEFAULT_READING[ch] + " " for ch in chars}
    return [name.translate(table) for name in names]


def text_values(values, codes: np.ndarray) -> pd.Series:
    """The texts of ``codes`` in a dictionary (Arrow array or list); code -1 gives ''."""
    codes = np.asarray(codes)
    if not isinstance(values, pa.Array):
        values = pa.array(list(values), type=pa.string())
    safe = pa.array(np.where(codes >= 0, codes, 0).astype(np.int64))
    if len(values) == 0:
        texts = pa.nulls(len(codes), pa.string())
    else:
        texts = values.take(safe)
    series = pd.Series(texts.to_pylist(), dtype="string")
    return series.where(pd.Series(codes >= 0), "").astype("string")


def take_rows(column: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """``column[rows]`` taken chunk by chunk (Arrow's take on a chunked array first concatenates
    the whole column)."""
    rows = np.asarray(rows, dtype=np.int64)
    if column.num_chunks == 1:
        return column.chunk(0).take(pa.array(rows))
    if column.num_chunks == 0 or len(rows) == 0:
        return pa.array([], type=column.type)
    bounds = np.cumsum([0] + [len(c) for c in column.chunks])
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    cuts = np.searchsorted(ordered, bounds)
    parts = [
        column.chunk(i).take(pa.array(ordered[cuts[i] : cuts[i + 1]] - bounds[i]))
        for i in range(column.num_chunks)
        if cuts[i + 1] > cuts[i]
    ]
    taken = pa.concat_arrays(parts)
    return taken.take(pa.array(np.argsort(order, kind="stable")))


def chunked_text(values: pd.Series) -> pa.ChunkedArray:
    """A text column as Arrow, without a copy when it is pyarrow-backed already."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        values = values.astype(pd.StringDtype("pyarrow"))
    array = values.array.__arrow_array__()
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def _arrow(roster: pd.DataFrame, column: str) -> pa.ChunkedArray:
    """The roster's column as Arrow text (nulls if the column is absent)."""
    if column not in roster.columns:
        return pa.chunked_array([pa.nulls(len(roster), pa.string())])
    return chunked_text(roster[column])


def _codes(array: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """int32 dictionary codes (-1 for null or empty) and the distinct values."""
    encoded = pc.dictionary_encode(array)
    if isinstance(encoded, pa.ChunkedArray):
        if len({len(c.dictionary) for c in encoded.chunks}) > 1:
            encoded = encoded.unify_dictionaries()
        chunks = encoded.chunks
    else:
        chunks = [encoded]
    if chunks:
        dictionary = chunks[0].dictionary
        codes = np.empty(sum(len(c) for c in chunks), dtype=np.int32)
        start = 0
        for chunk in chunks:
            part = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
            codes[start : start + len(part)] = part
            start += len(part)
    else:
        dictionary, codes = pa.array([], pa.string()), np.zeros(0, np.int32)
    empty = pc.index(dictionary, "").as_py() if len(dictionary) else -1
    if empty >= 0:  # an empty cell is a missing value, not a value shared by many records
        codes[codes == empty] = -1
    return codes, dictionary


def _cleaned_codes(array: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array, np.ndarray, pa.Array]:
    """Codes of the cleaned values (NFKC, blanks removed, '.'/'•' → '·') and of the raw ones."""
    raw_codes, raw_values = _codes(array)
    cleaned = pc.utf8_normalize(raw_values, "NFKC")
    cleaned = pc.replace_substring_regex(cleaned, _NAME_BLANKS, "")
    cleaned = pc.replace_substring_regex(cleaned, r"[.•・]", "·")
    clean_codes, clean_values = _codes(cleaned)
    lookup = np.append(clean_codes, -1).astype(np.int32)
    return lookup[raw_codes], clean_values, raw_codes, raw_values


def _id_digits(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(n, 18) digit values (X = 10) of values shaped like an ID (17 ASCII digits, then a digit or
    X), zeros elsewhere, and the shape mask: idcard.id_digits, read with uint8 arithmetic."""
    fits, raw = idcard.fixed_width_bytes(values, 18)
    digits = raw - np.uint8(48)  # bytes below '0' wrap round to large values
    x = raw[:, 17] == ord("X")
    digits[x, 17] = 10
    highest = digits[:, 0].copy()  # column by column: faster than a reduction along rows of 18
    for k in range(1, 17):
        np.maximum(highest, digits[:, k], out=highest)
    shape = fits & (highest <= 9) & (digits[:, 17] <= 10)
    digits[~shape] = 0
    return digits, shape


def _check_values(digits: np.ndarray) -> np.ndarray:
    """MOD 11-2 check value (0..10) of the first 17 digits, a column at a time (no int64 matrix)."""
    total = np.zeros(len(digits), dtype=np.int32)
    for k, weight in enumerate(idcard.WEIGHTS.tolist()):
        total += digits[:, k].astype(np.int32) * weight
    return ((12 - total % 11) % 11).astype(np.uint8)


def _valid(digits: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Shape right (17 digits, then a digit or X: see idcard.id_digits) and check character right."""
    return shape & (_check_values(digits) == digits[:, 17])


def real_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """True where year-month-day is a calendar date from EARLIEST_YEAR on."""
    year, month, day = (np.asarray(x, dtype=np.int32) for x in (year, month, day))
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_ok = (month >= 1) & (month <= 12)
    days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)
    limit = days[np.where(month_ok, month, 0)] + (leap & (month == 2))
    return month_ok & (day >= 1) & (day <= limit) & (year >= EARLIEST_YEAR)


def _birth_table(birth: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the birth-date texts and a (distinct + 1, 3) year/month/day table (zeros where
    the text is not a real YYYY-MM-DD date; the last row is that of code -1, a blank)."""
    codes, values = _codes(birth)
    table = np.zeros((len(values) + 1, 3), dtype=np.int16)
    for i, text in enumerate(values.to_pylist()):
        if text is not None and len(text) == 10 and text[4] == "-" and text[7] == "-":
            parts = (text[:4], text[5:7], text[8:10])
            if all(p.isascii() and p.isdigit() for p in parts):
                table[i] = [int(p) for p in parts]
    table[~real_dates(table[:, 0], table[:, 1], table[:, 2])] = 0
    return codes, table


@cache
def _known_address_table() -> np.ndarray:
    """bool per 6-digit number: an address code an ID may carry (GB/T 2260 codes ever issued,
    and the residence permits' codes)."""
    table = np.zeros(10**6, dtype=bool)
    codes = [int(c) for c in regions.known_codes() if len(c) == 6 and c.isdigit()]
    table[np.array([*codes, *PERMIT_ADDRESSES], dtype=np.int64)] = True
    return table


# Real dates as a table over YYYYMMDD - DATE_TABLE_START (years EARLIEST_YEAR .. 2199).
DATE_TABLE_START, DATE_TABLE_END = EARLIEST_YEAR * 10000, 2200 * 10000


@cache
def _real_date_table() -> np.ndarray:
    days = np.arange(
        f"{DATE_TABLE_START // 10000}-01-01",
        f"{DATE_TABLE_END // 10000}-01-01",
        dtype="datetime64[D]",
    )
    months = days.astype("datetime64[M]")
    numbers = (
        (days.astype("datetime64[Y]").astype(np.int64) + 1970) * 10000
        + (months.astype(np.int64) % 12 + 1) * 100
        + (days - months).astype(np.int64)
        + 1
    )
    table = np.zeros(DATE_TABLE_END - DATE_TABLE_START, dtype=bool)
    table[numbers - DATE_TABLE_START] = True
    return table


def real_date_numbers(numbers: np.ndarray) -> np.ndarray:
    """True where a YYYYMMDD number is a real date (years EARLIEST_YEAR .. 2199)."""
    table = _real_date_table()
    at = np.asarray(numbers, dtype=np.int64) - DATE_TABLE_START
    inside = (at >= 0) & (at < len(table))
    return inside & table[np.where(inside, at, 0)]


def id_birth_numbers(values: np.ndarray) -> np.ndarray:
    """YYYYMMDD inside each ID value (PLACE; -1 gives -1)."""
    return np.where(values >= 0, values // int(PLACE[13]) % 10**8, -1)


@dataclass(frozen=True)
class Consistency:
    """What the conflict bits of a roster are judged against (see ``id_conflicts``)."""

    school_year: int  # Y of the school year starting in September of Y
    as_of: int  # YYYYMMDD of the run date
    older_years: int
    younger_years: int


def consistency_rules(as_of: date | str | None = None, settings: dict | None = None) -> Consistency:
    """The run date and the age slack (config ``consistency``) the conflict bits use."""
    day = as_of if isinstance(as_of, date) else None
    if day is None:
        day = date.fromisoformat(str(as_of)[:10]) if as_of is not None else date.today()
    slack = AGE_SLACK_YEARS | (settings or {}).get("age_slack_years", {})
    return Consistency(
        # The AGE_GRADE rule's school year (rules.checks.school_year): September starts it.
        school_year=day.year if day.month >= 9 else day.year - 1,
        as_of=day.year * 10000 + day.month * 100 + day.day,
        older_years=int(slack["older"]),
        younger_years=int(slack["younger"]),
    )


def id_conflicts(
    values: np.ndarray,
    valid: np.ndarray,
    given: np.ndarray,
    given_filled: np.ndarray,
    sex: np.ndarray,
    grade: np.ndarray,
    rules: Consistency,
) -> np.ndarray:
    """CONFLICT_* bits of each valid ID (int64 value, PLACE) against its record (0 where the ID
    is not valid).

    ``given`` is 出生日期 as YYYYMMDD (0 where blank or not a real date), ``given_filled`` whether
    the field held anything, ``sex`` 1/2 (0 unknown), ``grade`` 1..12 (0 unknown). A blank field
    contradicts nothing: the date inside the ID stands for a blank 出生日期, also in the age check.
    """
    values = np.where(valid, values, 0)
    inside = id_birth_numbers(values)
    real = real_date_numbers(inside) & (inside <= rules.as_of)
    bits = np.zeros(len(values), dtype=np.uint8)
    bits[~_known_address_table()[values // ADDRESS_PLACE]] |= CONFLICT_ADDRESS
    bits[~real] |= CONFLICT_ID_DATE
    bits[real & (given > 0) & (given != inside)] |= CONFLICT_DATE_MISMATCH
    bits[given_filled & (given == 0)] |= CONFLICT_BIRTH_INVALID
    male = values // SEQUENCE_PLACE % 2 == 1
    bits[(sex > 0) & (male != (sex == 1))] |= CONFLICT_SEX
    # The AGE_GRADE window of grade g in school year Y: born 1 Sep (Y-g-6) .. 31 Aug (Y-g-5),
    # widened by the slack years: outside it the age is impossible, not only unusual.
    born = np.where(given > 0, given, np.where(real, inside, 0))
    g = grade.astype(np.int64)
    earliest = (rules.school_year - g - 6 - rules.older_years) * 10000 + 901
    latest = (rules.school_year - g - 5 + rules.younger_years) * 10000 + 831
    bits[(g > 0) & (born > 0) & ((born < earliest) | (born > latest))] |= CONFLICT_AGE
    bits[~valid] = 0
    return bits


def conflict_texts(bits: np.ndarray) -> np.ndarray:
    """Chinese list (、) of the conflicts named by each bit mask."""
    table = np.array(
        ["、".join(label for bit, label in CONFLICT_LABELS if mask & bit) for mask in range(64)],
        dtype=object,
    )
    return table[np.asarray(bits, dtype=np.int64) & 63]


def _parse_ids(
    records: dict,
    ids: pa.Array,
    student_no: pa.Array,
    rows: slice,
    grade: np.ndarray,
    rules: Consistency,
) -> None:
    """ID and 学籍号 fields of one slice of rows, written into the arrays of ``records``."""
    digits, shape = _id_digits(ids)
    value = np.where(shape, _digits_value(digits), -1)
    valid = _valid(digits, shape)
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
    inside = id_birth_numbers(value)
    use_id = np.flatnonzero((year == 0) & real_date_numbers(inside))
    if len(use_id):
        inside = inside[use_id]
        year[use_id] = inside // 10000
        month[use_id] = inside // 100 % 100
        day[use_id] = inside % 100
    del inside

    letter_text = pc.utf8_slice_codeunits(student_no, 0, 1)
    letter = np.zeros(len(student_no), dtype=np.int64)
    for text, code in _LETTERS.items():
        letter[pc.fill_null(pc.equal(letter_text, text), False).to_numpy(zero_copy_only=False)] = (
            code
        )
    length = pc.fill_null(pc.utf8_length(student_no), 0).to_numpy(zero_copy_only=False)
    tail_digits, tail_shape = _id_digits(pc.utf8_slice_codeunits(student_no, 1))
    well_formed = (letter > 0) & (length == 19) & tail_shape
    tail_value = _digits_value(tail_digits)
    own = well_formed & (letter == _LETTERS["G"]) & (tail_value == value)
    records["student_no_kind"][rows] = np.where(own, 1, np.where(well_formed, 2, 0))
    other = np.flatnonzero(well_formed & ~own)
    records["student_no_rows"].append(rows.start + other)
    records["student_no_keys"].append(tail_value[other] * 4 + letter[other])
    g_valid = (letter == _LETTERS["G"]) & _valid(tail_digits, tail_shape)
    records["student_no_g_valid"].append(g_valid[other])


def _grade_levels(roster: pd.DataFrame) -> np.ndarray:
    """Grade level 1..12 of each record (0 unknown) from ``grade_level``, numbers or text."""
    if "grade_level" not in roster.columns:
        return np.zeros(len(roster), dtype=np.int8)
    column = roster["grade_level"]
    if pd.api.types.is_numeric_dtype(column.dtype):
        levels = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:  # text (a staged sample cast to strings): the few distinct values parsed once
        codes, values = _codes(_arrow(roster, "grade_level"))
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
    with its record (``id_conflicts``).
    """
    n = len(roster)
    rules = consistency_rules(as_of, consistency)
    birth_codes, birth_table = _birth_table(_arrow(roster, "birth_date"))
    sex_text = _arrow(roster, "sex")
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
    ids, student_nos = _arrow(roster, "id_number"), _arrow(roster, "student_no")
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

    name_code, names, name_raw_code, names_raw = _cleaned_codes(_arrow(roster, "name"))
    guardian_code, guardians, _, _ = _cleaned_codes(_arrow(roster, "guardian_name"))
    # Readings of the distinct names, a batch of Python strings at a time, coded in Arrow.
    readings = [
        pa.array(default_readings(names.slice(start, READING_BATCH).to_pylist()), pa.string())
        for start in range(0, len(names), READING_BATCH)
    ]
    pinyin_codes, _ = _codes(pa.chunked_array(readings, type=pa.string()))
    pinyin_of_name = np.append(pinyin_codes, -1).astype(np.int32)
    del readings

    region, region_values = _codes(_arrow(roster, "household_region"))
    if len(region_values) < np.iinfo(np.int16).max:
        region = region.astype(np.int16)

    if "record_id" in roster.columns:
        record_id = _arrow(roster, "record_id")
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


# --- pairs within blocks -----------------------------------------------------------------------


def _expand(source: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, q) for every p in ``source`` and q in [low, high) of it."""
    count = np.maximum(high - low, 0)
    total = int(count.sum())
    left = np.repeat(source, count)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    return left, np.repeat(low, count) + offsets


def _window_pairs(
    block: np.ndarray, left: np.ndarray | None, width: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of sorted positions in one block id run: within ``width`` places (None: all).

    ``block`` holds the block number of each sorted position (runs). With ``left`` only pairs
    with at least one left member are formed, from the left members' side.
    """
    m = len(block)
    position = np.arange(m, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]]) if m else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, m])
    start = np.repeat(starts, sizes)
    end = start + np.repeat(sizes, sizes)
    if left is None:
        high = end if width is None else np.minimum(end, position + width)
        return _expand(position, position + 1, high)
    source = np.flatnonzero(left)
    low, high = start[source], end[source]
    if width is not None:
        low = np.maximum(low, source - width + 1)
        high = np.minimum(high, source + width)
    p, q = _expand(source, low, high)
    keep = (q != p) & ~(left[q] & (q < p))  # a pair of two left members is formed once
    return p[keep], q[keep]


def _shared_values(values: np.ndarray) -> np.ndarray:
    """The values that occur more than once (sorted)."""
    values.sort()
    repeated = values[1:][values[1:] == values[:-1]]
    return np.unique(repeated)


def _isin(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """values in wanted (a small set), by hashing, a slice of rows at a time."""
    out = np.zeros(len(values), dtype=bool)
    if len(wanted) == 0:
        return out
    index = pd.Index(wanted)
    for start in range(0, len(values), CHUNK_ROWS):
        part = values[start : start + CHUNK_ROWS]
        out[start : start + len(part)] = index.get_indexer(part) >= 0
    return out


def sub_block_window(cap: int, budget: int | None, members: int, orders: int) -> int:
    """Sorted-neighbourhood window of a pass's oversized blocks: the cap, narrowed so that the
    pass forms about ``budget`` pairs there at most.

    A roster whose names, dates or guardians are mostly placeholders puts most of its records
    into a few giant blocks; a window of the cap would pair each with a thousand neighbours per
    order (a billion pairs for a million records) before any agreement is checked.
    """
    if budget is None or members == 0:
        return cap
    return int(max(2, min(cap, budget // (members * max(orders, 1)))))


def pairs_in_blocks(
    keys: np.ndarray,
    cap: int,
    rows: np.ndarray | None = None,
    *,
    left: np.ndarray | None = None,
    orders: tuple[np.ndarray, ...] | list[np.ndarray] | None = None,
    pair_budget: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All pairs of positions sharing a key (keys < 0 take no part).

    ``rows`` maps each key to its roster position (default: the key's own index). With ``left``
    (a mask over the keys) only pairs with at least one left member are formed. Blocks above
    ``cap`` are not expanded, unless ``orders`` is given: then each block above the cap is sorted
    on each order array in turn and a member is paired with the members less than ``cap`` places
    away in that order (sorted neighbourhood; fewer places when ``pair_budget`` asks for it, see
    :func:`sub_block_window`). Returns (a, b, oversized_keys, oversized_sizes) with a < b.
    """
    keys = np.asarray(keys, dtype=np.int64)
    used = keys >= 0
    if left is not None:
        left = np.asarray(left, dtype=bool)
        wanted = np.unique(keys[used & left])  # blocks holding at least one left member
    else:
        wanted = _shared_values(keys[used])  # (a copy, sorted in place)
    used &= _isin(keys, wanted)
    index = np.flatnonzero(used)
    del used
    empty = np.zeros(0, dtype=np.int64)
    if len(index) == 0:
        return empty, empty, empty, empty
    order = index[np.argsort(keys[index], kind="stable")]
    del index
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_keys)])
    size_of = np.repeat(sizes, sizes)
    small = (size_of >= 2) & (size_of <= cap)
    parts_p, parts_q = [], []

    chosen = order[small]
    p, q = _window_pairs(sorted_keys[small], None if left is None else left[chosen], None)
    parts_p.append(chosen[p])
    parts_q.append(chosen[q])

    big = size_of > cap
    if orders is not None and big.any():
        members, member_keys = order[big], sorted_keys[big]
        width = sub_block_window(cap, pair_budget, len(members), len(orders))
        for extra in orders:
            arranged = np.lexsort((members, extra[members], member_keys))
            m = members[arranged]
            p, q = _window_pairs(member_keys[arranged], None if left is None else left[m], width)
            parts_p.append(m[p])
            parts_q.append(m[q])

    source = np.arange(len(keys), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    a = source[np.concatenate(parts_p)]
    b = source[np.concatenate(parts_q)]
    keep = a != b
    a, b = a[keep], b[keep]
    oversized = sizes > cap
    return (
        np.minimum(a, b),
        np.maximum(a, b),
        sorted_keys[starts[oversized]],
        sizes[oversized],
    )


# --- keys --------------------------------------------------------------------------------------


def _date_code(records: Records, unordered: bool, rows=None) -> np.ndarray:
    """Dense int32 code of the birth date (year, month, day; or year and {month, day}), -1 unknown."""
    if rows is None:
        out = np.empty(records.n, dtype=np.int32)
        for start in range(0, records.n, CHUNK_ROWS):
            part = slice(start, start + CHUNK_ROWS)
            out[part] = _date_code(records, unordered, part)
        return out
    year = records.birth_year[rows].astype(np.int32)
    month = records.birth_month[rows].astype(np.int32)
    day = records.birth_day[rows].astype(np.int32)
    if unordered:
        month, day = np.minimum(month, day), np.maximum(month, day)
    return np.where(year > 0, year * 372 + (month - 1) * 31 + (day - 1), -1).astype(np.int32)


def field_codes(records: Records, name: str, rows=None) -> tuple[np.ndarray, int]:
    """Integer codes of one blocking field at ``rows`` (all by default; -1 missing; the Records
    array itself where it can be) and the number of possible codes."""
    every = slice(None) if rows is None else rows
    if name == "name":
        return records.name_code[every], len(records.names)
    if name == "name_pinyin":
        table = records.pinyin_of_name
        return table[records.name_code[every]], int(table.max(initial=-1)) + 1
    if name == "guardian":
        return records.guardian_code[every], len(records.guardians)
    if name in ("birth_date", "birth_date_unordered"):
        return _date_code(records, name.endswith("unordered"), rows), 10_000 * 372
    if name == "sex":
        return records.sex[every] - 1, 2
    if name == "household_region":
        return records.region[every], records.extra["region_values"]
    if name in ("id_address", "id_birth", "id_sequence"):
        value = records.id_value[every]
        if name == "id_address":
            return np.where(value >= 0, value // ADDRESS_PLACE, -1), 10**6
        if name == "id_birth":
            return np.where(value >= 0, value // BIRTH_PLACE % 10**8, -1), 10**8
        return np.where(value >= 0, value // SEQUENCE_PLACE % 1000, -1), 1000
    raise ValueError(f"unknown blocking field {name!r}; known: {', '.join(FIELDS)}")


def block_keys(records: Records, fields: list[str], rows=None) -> np.ndarray:
    """One int64 key per record (at ``rows``, all by default) from several fields; -1 where any
    is missing. The key of a record does not depend on which rows are asked for. Should the
    fields' code ranges multiply beyond 2^62, the partial key is folded (modulo): two blocks may
    then share a key, which adds candidate pairs and loses none."""
    codes, size = field_codes(records, fields[0], rows)
    key = codes.astype(np.int64)
    for name in fields[1:]:
        codes, cardinality = field_codes(records, name, rows)
        cardinality = max(cardinality, 1)
        missing = key < 0
        missing |= codes < 0
        if size * cardinality >= 2**62:
            size = 2**62 // cardinality
            key %= size
        key *= cardinality
        key += codes
        key[missing] = -1
        size *= cardinality
    return key


def agree_or_missing(
    records: Records, fields: list[str], a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """True where a pair agrees on at least one field, or one side lacks it."""
    keep = np.zeros(len(a), dtype=bool)
    for name in fields:
        ca, _ = field_codes(records, name, a)
        cb, _ = field_codes(records, name, b)
        keep |= (ca == cb) | (ca < 0) | (cb < 0)
    return keep


# --- the passes --------------------------------------------------------------------------------


def _id_text(value: int) -> str:
    return "".join("0123456789X"[d] for d in id_value_digits(np.array([value]))[0])


def _student_no_text(key: int) -> str:
    letter = {v: k for k, v in _LETTERS.items()}[key % 4]
    return letter + _id_text(key // 4)


def _one_edit_valid_neighbours(digits: np.ndarray, value: np.ndarray) -> list[np.ndarray]:
    """For IDs failing MOD 11-2: values of every valid ID one substitution/swap away."""
    d = digits.astype(np.int64)
    total = d[:, :17] @ idcard.WEIGHTS
    check = d[:, 17]
    target = (12 - check) % 11  # the weighted sum (mod 11) a valid first-17 would need
    out = []
    for k in range(17):
        x = (d[:, k] + (target - total) * _WEIGHT_INVERSE[k]) % 11
        ok = x <= 9
        out.append(np.where(ok, value + (x - d[:, k]) * PLACE[k], -1))
    right_check = (12 - total % 11) % 11
    out.append(value + (right_check - check) * PLACE[17])
    for k in range(17):
        swapped = d.copy()
        swapped[:, [k, k + 1]] = swapped[:, [k + 1, k]]
        ok = (swapped[:, :17] <= 9).all(axis=1) & (swapped[:, k] != swapped[:, k + 1])
        ok &= idcard.check_digit_values(swapped) == swapped[:, 17]
        out.append(np.where(ok, swapped @ PLACE, -1))
    return out


def _rows_where(n: int, condition) -> np.ndarray:
    """Positions where ``condition(slice)`` is true, evaluated a slice of rows at a time (no
    roster-length temporaries)."""
    parts = [
        start + np.flatnonzero(condition(slice(start, min(start + CHUNK_ROWS, n))))
        for start in range(0, n, CHUNK_ROWS)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _match_values(left_rows, left_values, right_values, right_mask):
    """Pairs (left row, right position) with equal int64 values (>= 0); the right side is every
    position of ``right_values`` where ``right_mask`` holds."""
    keep = left_values >= 0
    left_rows, left_values = np.asarray(left_rows)[keep], np.asarray(left_values)[keep]
    wanted = pd.Index(np.unique(left_values))
    # The few right positions that can match, found a slice at a time.
    right_rows = _rows_where(
        len(right_values),
        lambda rows: right_mask[rows] & (wanted.get_indexer(right_values[rows]) >= 0),
    )
    right_values = right_values[right_rows]
    order = np.argsort(right_values, kind="stable")
    right_rows, right_values = right_rows[order], right_values[order]
    low = np.searchsorted(right_values, left_values, side="left")
    high = np.searchsorted(right_values, left_values, side="right")
    a, position = _expand(left_rows, low, high)
    b = right_rows[position]
    return np.minimum(a, b), np.maximum(a, b)


def one_side_without_consistent_id(rule: dict) -> bool:
    """Whether a declared rule forms only pairs with a record lacking a valid, consistent ID
    (``one_side_without_valid_id``, the key of earlier configs, is read the same way: pairs of a
    valid, inconsistent ID are never to be left out)."""
    return bool(
        rule.get("one_side_without_consistent_id", rule.get("one_side_without_valid_id", False))
    )


def blocking_rules(config: dict) -> dict[str, dict]:
    """The declared passes (name_birth, pinyin_birth, guardian_birth) of a linkage config."""
    rules = config.get("blocking_rules", {})
    for name, rule in rules.items():
        unknown = [f for f in [*rule["on"], *rule.get("agree_on_one_of", [])] if f not in FIELDS]
        if unknown:
            raise ValueError(f"blocking rule {name}: unknown fields {unknown}")
    return rules


def _rule_pass(
    records: Records, rule: dict, cap: int, budget: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Pairs of one declared rule; also the oversized blocks and the keys (with their rows)."""
    on = list(rule["on"])
    agree = list(rule.get("agree_on_one_of", []))
    rows, left = None, None
    if one_side_without_consistent_id(rule):
        # Only blocks holding a record without a valid, consistent ID can give pairs: their keys
        # first, then the records with such a key, found a slice of rows at a time.
        without = _rows_where(records.n, lambda part: ~records.id_consistent(part))
        left_keys = block_keys(records, on, without)
        wanted = pd.Index(np.unique(left_keys[left_keys >= 0]))
        rows = _rows_where(
            records.n, lambda part: wanted.get_indexer(block_keys(records, on, part)) >= 0
        )
        left = ~records.id_consistent(rows)
    keys = block_keys(records, on, rows)
    orders = [field_codes(records, f, rows)[0] for f in agree] or [np.zeros(len(keys), np.int8)]
    a, b, big_keys, big_sizes = pairs_in_blocks(
        keys, cap, rows, left=left, orders=orders, pair_budget=budget
    )
    del orders
    if agree:
        keep = agree_or_missing(records, agree, a, b)
        a, b = a[keep], b[keep]
    return a, b, big_keys, big_sizes, keys, rows


def candidate_pairs(records: Records, config: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """Union of all blocking passes: (a, b) positions with a < b, and per-pass stats."""
    cap = int(config["block_size_cap"])
    budget = config.get("sub_block_pair_budget")
    budget = None if budget is None else int(budget)
    enabled = set(config.get("passes", PASSES))
    rules = blocking_rules(config)
    n = records.n
    found: dict[str, np.ndarray] = {}  # pass -> sorted unique pair codes a * n + b
    oversized: list[dict] = []

    def add(name: str, a, b, big_keys=(), big_sizes=(), describe=None, handled="skipped") -> None:
        found[name] = np.unique(np.asarray(a, np.int64) * n + np.asarray(b, np.int64))
        for key, size in zip(big_keys, big_sizes, strict=True):
            label = describe(int(key)) if describe is not None else str(key)
            oversized.append({"pass": name, "key": label, "size": int(size), "handled": handled})

    if "id" in enabled:
        a, b, bk, bs = pairs_in_blocks(records.id_value, cap)
        add("id", a, b, bk, bs, _id_text)

    if "student_no" in enabled:
        # Two records holding "G" + their own ID and the same 学籍号 hold the same ID: the id
        # pass has them. So blocks are formed around the other 学籍号 (kind 2) only.
        other_rows, other_keys = records.student_no_rows, records.student_no_keys
        wanted = pd.Index(np.unique(other_keys))
        own_rows = _rows_where(
            records.n,
            lambda rows: (
                (records.student_no_kind[rows] == 1)
                & (wanted.get_indexer(records.id_value[rows] * 4 + 1) >= 0)
            ),
        )
        a, b, bk, bs = pairs_in_blocks(
            np.r_[other_keys, records.id_value[own_rows] * 4 + 1],
            cap,
            np.r_[other_rows, own_rows],
            left=np.r_[np.ones(len(other_rows), bool), np.zeros(len(own_rows), bool)],
        )
        # A G 学籍号 carrying a valid ID other than the record's own: look that ID up.
        carries = records.student_no_g_valid
        a2, b2 = _match_values(
            other_rows[carries], other_keys[carries] // 4, records.id_value, records.id_valid
        )
        keep = a2 != b2
        add("student_no", np.r_[a, a2[keep]], np.r_[b, b2[keep]], bk, bs, _student_no_text)

    if "id_neighbour" in enabled:
        invalid = _rows_where(
            records.n, lambda rows: (records.id_value[rows] >= 0) & ~records.id_valid[rows]
        )
        d = records.digits(invalid)
        v = records.id_value[invalid]
        neighbours = _one_edit_valid_neighbours(d, v)
        values = np.concatenate(neighbours) if neighbours else np.zeros(0, np.int64)
        rows = np.tile(invalid, len(neighbours))
        a, b = _match_values(rows, values, records.id_value, records.id_valid)
        del values, rows, neighbours
        parts_a, parts_b = [a], [b]
        d = d.astype(np.int64)
        big_k: list[str] = []
        big_s: list[int] = []
        for k in range(18):
            masked = v - d[:, k] * PLACE[k]
            block_a, block_b, bk, bs = pairs_in_blocks(pd.factorize(masked)[0], cap, invalid)
            parts_a.append(block_a)
            parts_b.append(block_b)
            big_k += [f"第{k + 1}位掩码" for _ in bk]
            big_s += list(bs)
        for k in range(17):
            low, high = np.minimum(d[:, k], d[:, k + 1]), np.maximum(d[:, k], d[:, k + 1])
            canonical = v - d[:, k] * PLACE[k] - d[:, k + 1] * PLACE[k + 1]
            canonical = canonical + low * PLACE[k] + high * PLACE[k + 1]
            block_a, block_b, bk, bs = pairs_in_blocks(pd.factorize(canonical)[0], cap, invalid)
            parts_a.append(block_a)
            parts_b.append(block_b)
            big_k += [f"第{k + 1}、{k + 2}位互换" for _ in bk]
            big_s += list(bs)
        add("id_neighbour", np.concatenate(parts_a), np.concatenate(parts_b), big_k, big_s)

    for name in RULE_PASSES:
        if name in enabled and name in rules:
            a, b, bk, bs, keys, rows = _rule_pass(records, rules[name], cap, budget)
            what = "guardian" if rules[name]["on"][0] == "guardian" else "name"
            orders = max(1, len(rules[name].get("agree_on_one_of", [])))
            width = sub_block_window(cap, budget, int(np.sum(bs)), orders)
            handled = "sub-blocked" if width == cap else f"sub-blocked, window {width}"
            add(name, a, b, bk, bs, _key_describer(records, keys, rows, what), handled)
            del keys, rows

    codes = np.unique(np.concatenate(list(found.values()))) if found else np.zeros(0, np.int64)
    stats = {
        "candidate_pairs": int(len(codes)),
        "pass_pairs": {name: int(len(p)) for name, p in found.items()},
        "oversized_blocks": oversized,
    }
    return codes // max(n, 1), codes % max(n, 1), stats


def _key_describer(records: Records, keys: np.ndarray, rows: np.ndarray | None, what: str):
    """Readable text of an oversized block's key (first member's name and birth date)."""

    def describe(key: int) -> str:
        first = int(np.flatnonzero(keys == key)[0])
        row = first if rows is None else int(rows[first])
        codes, values = (
            (records.name_code, records.names)
            if what == "name"
            else (records.guardian_code, records.guardians)
        )
        label = text_values(values, codes[row : row + 1])[0]
        date = f"{records.birth_year[row]:04d}-{records.birth_month[row]:02d}-{records.birth_day[row]:02d}"
        return f"{label}|{date}"

    return describe
