"""Synthetic provincial roster exports with ground truth: who is whom, and what is wrong where.

A roster is built in three passes over whole columns:

1. people as numbers: county, school, grade, class, sex, birth day, household county, ID sequence;
   the planted duplicates, twins and same-name pairs are drawn here (new rows are copies of
   chosen rows, changed only where their kind says);
2. everything rendered to text the way exports show it (codes or words, mixed date formats);
3. field errors and harmless normalisable variants written over a few chosen rows.

Every chosen row is taken from a pool of untouched students, so one row carries at most one
planted problem and each truth kind names exactly what a rule or the linkage must find.

A large roster is built in pieces (``generate_chunks``): one set of counties and schools for the
whole roster, each piece's people drawn with a seed derived from (seed, piece index), its record
keys continuing where the previous piece stopped, and every ID number and 学籍号 checked against
those the earlier pieces gave out, so a piece holds the memory of its own rows only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from xueji_quality import regions, schema
from xueji_quality.generator import names as nm
from xueji_quality.memory import release_unused

# The school year the roster describes starts in September of this year.
SCHOOL_YEAR = 2026
# Rows per piece of a roster built in pieces (``generate_chunks``).
CHUNK_ROWS = 1_000_000

# Share of rows per planted problem (rows of the finished roster). A kind with a positive rate
# appears at least once in any roster of 1,000 rows or more.
DEFAULT_RATES: dict[str, float] = {
    # second registrations of a student (one new row each; "triple" adds a third registration)
    "exact_same_school": 0.003,
    "exact_same_county": 0.003,
    "exact_cross_county": 0.003,
    "triple": 0.0005,
    "id_digit": 0.0015,
    "id_transpose": 0.0015,
    "name_homophone": 0.0015,
    "name_noise": 0.0015,
    "date_swap": 0.0015,
    "missing_id": 0.0015,
    # pairs that are two students and must never be linked
    "twins": 0.003,
    "same_name_birth": 0.001,
    # field errors, one per affected row (key = rule code)
    "ID_FORMAT": 0.001,
    "ID_SPREADSHEET_DAMAGE": 0.001,
    "ID_CHECKSUM": 0.001,
    "ID_DATE": 0.001,
    "BIRTHDATE_MISMATCH": 0.001,
    "SEX_MISMATCH": 0.001,
    "ID_REGION_UNKNOWN": 0.001,
    "ID_MISSING": 0.001,
    "STUDENT_NO_FORMAT": 0.001,
    "STUDENT_NO_MISMATCH": 0.001,
    "SEX_CODE": 0.001,
    "ETHNICITY_CODE": 0.001,
    "ID_TYPE_CODE": 0.001,
    "SCHOOL_CODE_FORMAT": 0.001,
    "SCHOOL_PROVINCE": 0.001,
    "COUNTY_UNKNOWN": 0.001,
    "NAME_CHARS": 0.001,
    "REQUIRED_MISSING": 0.001,
    "AGE_GRADE": 0.001,
    "ENROLL_DATE": 0.001,
    "PHONE_FORMAT": 0.001,
    # values that differ only in writing and must not be reported
    "lowercase_x": 0.002,
    "blank": 0.003,
    "fullwidth": 0.002,
}

EXACT_KINDS = ("exact_same_school", "exact_same_county", "exact_cross_county")
FUZZY_KINDS = (
    "id_digit",
    "id_transpose",
    "name_homophone",
    "name_noise",
    "date_swap",
    "missing_id",
)
DUPLICATE_KINDS = EXACT_KINDS + FUZZY_KINDS
HARD_NEGATIVE_KINDS = ("twins", "same_name_birth")
ERROR_KINDS = tuple(k for k in DEFAULT_RATES if k.isupper())
NORMALISABLE_KINDS = ("lowercase_x", "blank", "fullwidth")

# Population shares (not problems).
_SHARE_OTHER_ID_TYPE = 0.004
_SHARE_HOUSEHOLD_OTHER_COUNTY = 0.10
_SHARE_MIGRANT = 0.05
_SHARE_REPEATER = 0.01
_SHARE_DOT_NAME = 0.002
_SHARE_POPULAR_GIVEN = 0.3
_SHARE_ONE_CHAR_GIVEN = 0.15
_MIGRANT_PROVINCES = ("43", "45", "36", "51", "41", "42", "52", "35")
_STUDENTS_PER_SCHOOL = 800
_GRADE_WEIGHT = np.array([1.0] * 6 + [0.95] * 3 + [0.6] * 3)
_CLASS_SIZE = 45
# Codes that exist in GB/T 2260 for the whole life of the students (no "not in force" warnings).
_IN_FORCE_FROM, _IN_FORCE_TO = 2000, 2024

_CN = "一二三四五六七八九"
_GRADE_TEXT = {g: f"{_CN[g - 1]}年级" for g in range(1, 7)} | {
    10: "高一",
    11: "高二",
    12: "高三",
}
_JUNIOR_TEXT = ({7: "初一", 8: "初二", 9: "初三"}, {7: "七年级", 8: "八年级", 9: "九年级"})
_STAGE_OF_GRADE = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
_STAGE_FIRST_GRADE = np.array([1, 7, 10])
_STAGE_CATEGORY = ("21", "31", "34")
_ID_TYPE_NAMES = {
    "1": "居民身份证",
    "6": "香港特区护照/身份证明",
    "7": "澳门特区护照/身份证明",
    "8": "台湾居民来往大陆通行证",
    "A": "护照",
    "Z": "其他",
}
_FIELD_ORDER = tuple(schema.FIELDS)
_STRING_TYPES = {
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
}
_EPOCH_TO_EXCEL = 25569  # days from 1899-12-30 (Excel's day 0) to 1970-01-01


@dataclass(frozen=True)
class GeneratedRoster:
    """A roster export (Chinese headers, text only) and the truth about it."""

    roster: pd.DataFrame
    truth_duplicates: pd.DataFrame
    truth_errors: pd.DataFrame
    truth_normalisable: pd.DataFrame
    truth_hard_negatives: pd.DataFrame


# ----------------------------------------------------------------------------------------------
# small column helpers


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 ASCII digits of non-negative integers, zero-padded."""
    v = np.asarray(values, dtype=np.int64).copy()
    out = np.empty((len(v), width), dtype=np.uint8)
    for k in range(width - 1, -1, -1):
        out[:, k] = v % 10 + 48
        v //= 10
    return out


def _ascii(matrix: np.ndarray) -> np.ndarray:
    """Rows of an ASCII byte matrix as a unicode array."""
    width = matrix.shape[1]
    if len(matrix) == 0:
        return np.array([], dtype=f"U{width}")
    return np.ascontiguousarray(matrix).view(f"S{width}").ravel().astype(f"U{width}")


def _cat(*parts: np.ndarray | str) -> np.ndarray:
    out = np.asarray(parts[0])
    for part in parts[1:]:
        out = np.char.add(out, np.asarray(part))
    return out


def _zipf(n: int, exponent: float = 1.0) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = np.asarray(days, dtype="int64").astype("M8[D]")
    months = d.astype("M8[M]")
    year = d.astype("M8[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (d - months.astype("M8[D]")).astype(np.int64) + 1
    return year, month, day


def _day_number(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    months = (np.asarray(year, dtype=np.int64) - 1970) * 12 + np.asarray(month) - 1
    return months.astype("M8[M]").astype("M8[D]").astype(np.int64) + np.asarray(day) - 1


def _window(grade: np.ndarray, school_year: int) -> tuple[np.ndarray, np.ndarray]:
    """Nominal birth window of each grade: 1 Sep (Y-g-6) .. 31 Aug (Y-g-5), as day numbers."""
    start_year = school_year - np.asarray(grade, dtype=np.int64) - 6
    start = _day_number(start_year, np.full_like(start_year, 9), np.ones_like(start_year))
    end = _day_number(start_year + 1, np.full_like(start_year, 9), np.ones_like(start_year)) - 1
    return start, end


def _yyyymmdd(days: np.ndarray) -> np.ndarray:
    y, m, d = _ymd(days)
    return y * 10000 + m * 100 + d


def _check_values(body: np.ndarray) -> np.ndarray:
    """MOD 11-2 check values (10 = X) of 17-digit integer bodies."""
    digits = _digits(body, 17).astype(np.int64) - 48
    return ((12 - (digits @ _WEIGHTS) % 11) % 11).astype(np.int64)


_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK_ASCII = np.frombuffer(b"0123456789X", dtype=np.uint8)


def _id_text(body: np.ndarray) -> np.ndarray:
    """18-character ID numbers from 17-digit bodies (address * 1e11 + yyyymmdd * 1e3 + seq)."""
    matrix = np.empty((len(body), 18), dtype=np.uint8)
    matrix[:, :17] = _digits(body, 17)
    matrix[:, 17] = _CHECK_ASCII[_check_values(body)]
    return _ascii(matrix)


def _body(address: np.ndarray, days: np.ndarray, seq: np.ndarray) -> np.ndarray:
    return (
        np.asarray(address, dtype=np.int64) * 10**11
        + _yyyymmdd(days) * 1000
        + np.asarray(seq, dtype=np.int64)
    )


def _render_dates(days: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Dates as exports write them: 0 YYYY-MM-DD, 1 YYYY/M/D, 2 YYYYMMDD, 3 Excel serial."""
    y, m, d = _ymd(days)
    out = np.empty(len(days), dtype="U10")
    iso = np.empty((len(days), 10), dtype=np.uint8)
    iso[:, 0:4] = _digits(y, 4)
    iso[:, 4] = ord("-")
    iso[:, 5:7] = _digits(m, 2)
    iso[:, 7] = ord("-")
    iso[:, 8:10] = _digits(d, 2)
    out[:] = _ascii(iso)
    compact = style == 2
    out[compact] = _ascii(iso[compact][:, [0, 1, 2, 3, 5, 6, 8, 9]])
    slash = np.flatnonzero(style == 1)
    out[slash] = _cat(y[slash].astype(str), "/", m[slash].astype(str), "/", d[slash].astype(str))
    serial = style == 3
    out[serial] = (np.asarray(days)[serial] + _EPOCH_TO_EXCEL).astype(str)
    return out


def _render_months(year: np.ndarray, month: np.ndarray, style: np.ndarray) -> np.ndarray:
    """入学年月: 0 YYYY-MM, 1 YYYY/M, 2 YYYYMM, 3 YYYY-MM-DD, 4 Excel serial of the 1st."""
    n = len(year)
    matrix = np.empty((n, 10), dtype=np.uint8)
    matrix[:, 0:4] = _digits(year, 4)
    matrix[:, 4] = ord("-")
    matrix[:, 5:7] = _digits(month, 2)
    matrix[:, 7:10] = np.frombuffer(b"-01", dtype=np.uint8)
    out = np.empty(n, dtype="U10")
    out[:] = _ascii(matrix[:, :7])
    sel = style == 1
    out[sel] = _cat(year[sel].astype(str), "/", month[sel].astype(str))
    sel = style == 2
    out[sel] = _ascii(matrix[sel][:, [0, 1, 2, 3, 5, 6]])
    sel = style == 3
    out[sel] = _ascii(matrix[sel])
    sel = style == 4
    out[sel] = (_day_number(year[sel], month[sel], 1) + _EPOCH_TO_EXCEL).astype(str)
    return out


# ----------------------------------------------------------------------------------------------
# regions


def _stable_codes(prefix: str) -> pd.DataFrame:
    """County-level codes starting with ``prefix`` in force over the students' whole lives."""
    eras = regions.region_eras()
    rows = eras[eras["code"].str.startswith(prefix)]
    # Every year of the span must be covered: a code can lapse and be issued again (511403).
    covered = (
        rows["end"].clip(upper=_IN_FORCE_TO) - rows["start"].clip(lower=_IN_FORCE_FROM) + 1
    ).clip(lower=0)
    years = covered.groupby(rows["code"]).sum()
    stable = years[years >= _IN_FORCE_TO - _IN_FORCE_FROM + 1].index
    live = regions.counties(prefix[:2], _IN_FORCE_TO)
    live = live[live["code"].str.startswith(prefix) & live["code"].isin(stable)]
    return live.reset_index(drop=True)


def _school_counties(province: str, counties: int | None, rng: np.random.Generator) -> pd.DataFrame:
    table = _stable_codes(province)
    by_name = regions.county_name_to_code(province)
    # A county is written by name only where the name maps back to its code alone.
    table["named_ok"] = [
        by_name.get(n) == c for n, c in zip(table["name"], table["code"], strict=True)
    ]
    if table.empty:
        raise ValueError(f"省份代码 {province!r} 没有可用的区县")
    if counties is not None:
        if counties < 1:
            raise ValueError("counties 至少为 1")
        pick = np.sort(rng.choice(len(table), size=min(counties, len(table)), replace=False))
        table = table.iloc[pick]
    return table.reset_index(drop=True)


def _unissued_codes(province: str) -> np.ndarray:
    """6-digit codes under the province that GB/T 2260 never issued."""
    known = regions.known_codes()
    candidates = [f"{province}{p:02d}{c:02d}" for p in (90, 91, 92, 97, 98) for c in range(2, 99)]
    return np.array([c for c in candidates if c not in known])


# ----------------------------------------------------------------------------------------------
# the build


class _Pool:
    """Rows still free of any planted problem; each draw removes the rows it returns."""

    def __init__(self, eligible: np.ndarray, rng: np.random.Generator) -> None:
        self.free = eligible.copy()
        self.rng = rng

    def take(self, k: int, where: np.ndarray | None = None) -> np.ndarray:
        mask = self.free if where is None else self.free & where
        candidates = np.flatnonzero(mask)
        k = min(k, len(candidates))
        chosen = (
            np.sort(self.rng.choice(candidates, size=k, replace=False)) if k else candidates[:0]
        )
        self.free[chosen] = False
        return chosen


def _counts(rows: int, rates: dict[str, float]) -> dict[str, int]:
    out = {}
    for kind, rate in rates.items():
        count = int(round(rate * rows))
        if rate > 0 and rows >= 1000:
            count = max(count, 1)
        out[kind] = count
    return out


_NONE = np.array([], dtype=np.int64)


def _member(taken: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in ``taken`` (sorted int64)."""
    values = np.asarray(values, dtype=np.int64)
    if not len(taken):
        return np.zeros(len(values), dtype=bool)
    if len(values) < 1000:
        pos = np.searchsorted(taken, values).clip(max=len(taken) - 1)
        return taken[pos] == values
    # Searched in sorted order, a large batch walks ``taken`` front to back: many times faster.
    order = np.argsort(values)
    found = np.empty(len(values), dtype=bool)
    pos = np.searchsorted(taken, values[order]).clip(max=len(taken) - 1)
    found[order] = taken[pos] == values[order]
    return found


class _Issued:
    """Numbers a roster has given out so far, by kind, each kind a sorted int64 array.

    Kinds: ``body`` (the 17 digits of every resident ID and of every G 学籍号, planted wrong ones
    included), ``invalid`` (18-character ID numbers that fail the check, as base-11 values),
    ``L`` (temporary 学籍号 without the letter), ``J`` (self codes of J 学籍号, 17 digits) and
    ``foreign`` (numbers of other documents, type index * 10**8 + number). A roster built in
    pieces keeps one of these for all its pieces, so no number is given to two students.
    """

    def __init__(self) -> None:
        self._sorted: dict[str, np.ndarray] = {}

    def get(self, kind: str) -> np.ndarray:
        return self._sorted.get(kind, _NONE)

    def has(self, kind: str, value: int) -> bool:
        return bool(_member(self.get(kind), np.array([value]))[0])

    def add(self, kind: str, values: np.ndarray) -> None:
        # Sort and drop repeats: faster here than np.unique, which hashes.
        new = np.sort(np.asarray(values, dtype=np.int64))
        new = new[np.concatenate([[True], new[1:] != new[:-1]])] if len(new) else new
        old = self.get(kind)
        new = new[~_member(old, new)]
        self._sorted[kind] = np.insert(old, np.searchsorted(old, new), new)


def _distinct(
    base: np.ndarray, tail: np.ndarray, taken: np.ndarray, rng: np.random.Generator, span: int
) -> np.ndarray:
    """``base + tail``; where a value is in ``taken`` (sorted) or repeats an earlier one of the
    batch, its tail is drawn again from ``0 .. span - 1``."""
    base = np.asarray(base, dtype=np.int64)
    value = base + tail
    for _ in range(100):
        clash = _member(taken, value) | pd.Series(value).duplicated(keep="first").to_numpy()
        if not clash.any():
            return value
        idx = np.flatnonzero(clash)
        value[idx] = base[idx] + rng.integers(0, span, size=len(idx))
    raise RuntimeError("could not find free numbers")


def _base11(number: str) -> int:
    """An 18-character ID number (17 digits and a check character) as one integer."""
    return int(number[:17]) * 11 + "0123456789X".index(number[17])


def _free_bodies(
    taken: np.ndarray,
    body: np.ndarray,
    male: np.ndarray,
    rng: np.random.Generator,
    step: np.ndarray | None = None,
    issued: np.ndarray = _NONE,
) -> np.ndarray:
    """Give rows whose body collides with ``taken`` or ``issued`` (both sorted) or each other a
    new sequence number.

    With ``step`` given, the rows come in consecutive pairs (twins) whose sequences must stay
    ``step`` apart, so both members are redrawn together.
    """
    body = body.copy()
    for _ in range(100):
        clash = _member(taken, body) | _member(issued, body)
        clash |= pd.Series(body).duplicated(keep="first").to_numpy()
        if not clash.any():
            return body
        if step is not None:
            pairs = np.flatnonzero(clash[0::2] | clash[1::2])
            first = body[2 * pairs]
            seq = 2 * rng.integers(0, 498, size=len(pairs)) + male[2 * pairs]
            body[2 * pairs] = first - first % 1000 + seq
            body[2 * pairs + 1] = first - first % 1000 + seq + step[pairs]
        else:
            idx = np.flatnonzero(clash)
            seq = 2 * rng.integers(0, 500, size=len(idx)) + male[idx]
            body[idx] = body[idx] - body[idx] % 1000 + seq
    raise RuntimeError("could not find free ID sequence numbers")


@dataclass(frozen=True)
class _Frame:
    """What every piece of one roster shares: province, counties, their weights and schools.

    ``schools`` is None for a roster built in one piece: its schools follow its own people.
    """

    province: str
    county_table: pd.DataFrame
    county_p: np.ndarray
    school_year: int
    schools: dict[str, np.ndarray] | None


def _checked(province: str, rates: dict[str, float] | None) -> tuple[str, dict[str, float]]:
    unknown = set(rates or {}) - set(DEFAULT_RATES)
    if unknown:
        raise ValueError(f"未知的比例键: {sorted(unknown)}")
    return str(province).zfill(2), DEFAULT_RATES | dict(rates or {})


def _piece_counts(
    rows: int, rates: dict[str, float], n_counties: int
) -> tuple[dict[str, int], int]:
    """Planted rows of each kind in ``rows`` rows, and the number of people drawn first."""
    count = _counts(rows, rates)
    if n_counties < 2:
        count["exact_same_county"] += count["exact_cross_county"] + count["triple"]
        count["exact_cross_county"] = count["triple"] = 0
    n_copies = sum(count[k] for k in DUPLICATE_KINDS) + count["triple"]
    n_twins = count["twins"]
    n = rows - n_copies - n_twins
    if n < rows // 2 or n <= 0:
        raise ValueError("行数太少，放不下这些比例的问题行")
    return count, n


def generate(
    rows: int,
    seed: int,
    province: str,
    *,
    rates: dict[str, float] | None = None,
    counties: int | None = None,
    school_year: int = SCHOOL_YEAR,
) -> GeneratedRoster:
    """Build a roster of ``rows`` rows for ``province`` (2-digit code) with its truth tables."""
    province, rates = _checked(province, rates)
    rng = np.random.default_rng(seed)
    county_table = _school_counties(province, counties, rng)
    count, n = _piece_counts(rows, rates, len(county_table))
    county_weight = rng.lognormal(0.0, 0.5, size=len(county_table))
    frame = _Frame(province, county_table, county_weight / county_weight.sum(), school_year, None)
    return _build(rng, frame, count, n, _Issued())


def generate_chunks(
    rows: int,
    seed: int,
    province: str,
    *,
    rates: dict[str, float] | None = None,
    counties: int | None = None,
    school_year: int = SCHOOL_YEAR,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[GeneratedRoster]:
    """The roster of ``rows`` rows in pieces of at most ``chunk_rows`` rows, in file order.

    Up to ``chunk_rows`` rows the one piece is ``generate(rows, seed, ...)``. A larger roster is
    split into pieces of equal size (within one row); the counties, their weights and the schools
    (numbers of schools and classes from the whole roster's expected sizes) are drawn once from
    ``seed``, each piece's people from a seed derived from (seed, piece index). Record keys run on
    from piece to piece (one width for the whole roster), and no ID number, 学籍号 or number of
    another document is given out twice. Planted duplicates and look-alikes pair rows of one
    piece; truth tables refer to the piece's own rows. Each piece is sorted by county, school,
    grade and class.

    The caller should drop each piece before asking for the next, so only one is held at a time.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows 至少为 1")
    if rows <= chunk_rows:
        yield generate(
            rows, seed, province, rates=rates, counties=counties, school_year=school_year
        )
        return
    province, rates = _checked(province, rates)
    rng = np.random.default_rng(seed)
    county_table = _school_counties(province, counties, rng)
    pieces = -(-rows // chunk_rows)
    sizes = [rows // pieces + (i < rows % pieces) for i in range(pieces)]
    plans = [_piece_counts(size, rates, len(county_table)) for size in sizes]
    county_weight = rng.lognormal(0.0, 0.5, size=len(county_table))
    county_p = county_weight / county_weight.sum()
    people = sum(n for _, n in plans)
    schools = _planned_schools(rng, province, county_table, county_p, people)
    frame = _Frame(province, county_table, county_p, school_year, schools)
    issued = _Issued()
    first_key = 1
    key_width = max(7, len(str(rows)))
    for index, (count, n) in enumerate(plans):
        piece_rng = np.random.default_rng([seed, index])
        piece = _build(piece_rng, frame, count, n, issued, first_key, key_width)
        first_key += len(piece.roster)
        yield piece
        del piece
        release_unused()


def _schools(
    rng: np.random.Generator, province: str, county_table: pd.DataFrame, per_cell: np.ndarray
) -> dict[str, np.ndarray]:
    """Schools of ``per_cell[county * 3 + stage]`` per county and stage: codes, names, style."""
    n_counties = len(county_table)
    cell_first = np.concatenate([[0], np.cumsum(per_cell)[:-1]])
    n_schools = int(per_cell.sum())
    school_cell = np.repeat(np.arange(n_counties * 3), per_cell)
    school_county = school_cell // 3
    school_stage = school_cell % 3
    school_rank = np.arange(n_schools) - cell_first[school_cell]
    school_seq = rng.choice(1_000_000, size=n_schools, replace=False)
    school_code = _cat(
        np.array(_STAGE_CATEGORY)[school_stage],
        province,
        _ascii(_digits(school_seq, 6)),
    )
    county_names = county_table["name"].to_numpy().astype(str)
    words = np.array(nm.SCHOOL_WORDS)
    word = words[(school_seq + school_rank) % len(words)]
    number = np.array([f"第{_CN[r % 9]}" for r in range(9)])[school_rank % 9]
    school_name = np.where(
        school_stage == 0,
        _cat(county_names[school_county], word, "小学"),
        np.where(
            school_stage == 1,
            _cat(county_names[school_county], number, "中学"),
            _cat(county_names[school_county], number, "高级中学"),
        ),
    )
    # 七年级 or 初一: a school keeps one way of writing.
    school_junior_style = rng.integers(0, 2, size=n_schools)
    return {
        "county": school_county,
        "stage": school_stage,
        "code": school_code,
        "name": school_name,
        "junior_style": school_junior_style,
        "cell_first": cell_first,
        "per_cell": per_cell,
    }


def _planned_schools(
    rng: np.random.Generator,
    province: str,
    county_table: pd.DataFrame,
    county_p: np.ndarray,
    people: int,
) -> dict[str, np.ndarray]:
    """Schools and classes for a roster built in pieces, sized by the whole roster's expected
    students per county, stage and grade (as ``_build`` sizes them by its own people)."""
    n_counties = len(county_table)
    grade_p = _GRADE_WEIGHT / _GRADE_WEIGHT.sum()
    stage_p = np.bincount(_STAGE_OF_GRADE[1:], weights=grade_p, minlength=3)
    expected = people * np.repeat(county_p, 3) * np.tile(stage_p, n_counties)
    per_cell = np.maximum(2, np.ceil(expected / _STUDENTS_PER_SCHOOL).astype(np.int64))
    schools = _schools(rng, province, county_table, per_cell)
    n_schools = len(schools["code"])
    school_cell = schools["county"] * 3 + schools["stage"]
    grade = np.arange(1, 13)
    per_school = people * county_p[schools["county"]] / per_cell[school_cell]
    in_stage = _STAGE_OF_GRADE[grade][None, :] == schools["stage"][:, None]
    students = per_school[:, None] * grade_p[None, :] * in_stage
    classes = np.ones((n_schools, 13), dtype=np.int64)
    classes[:, 1:] = np.maximum(1, np.ceil(students / _CLASS_SIZE).astype(np.int64))
    schools["classes"] = classes.ravel()
    return schools


def _build(
    rng: np.random.Generator,
    frame: _Frame,
    count: dict[str, int],
    n: int,
    issued: _Issued,
    first_key: int = 1,
    key_width: int | None = None,
) -> GeneratedRoster:
    """One roster (or piece of one): ``n`` people, then the planted rows of ``count``."""
    province, county_table, school_year = frame.province, frame.county_table, frame.school_year
    n_counties = len(county_table)

    # --- people ---------------------------------------------------------------------------
    county = rng.choice(n_counties, size=n, p=frame.county_p)
    grade = rng.choice(np.arange(1, 13), size=n, p=_GRADE_WEIGHT / _GRADE_WEIGHT.sum())
    stage = _STAGE_OF_GRADE[grade]

    # Schools: at least two per county and stage, so a second registration can sit next door.
    cell = county * 3 + stage
    if frame.schools is None:
        cell_size = np.bincount(cell, minlength=n_counties * 3)
        per_cell = np.maximum(2, np.ceil(cell_size / _STUDENTS_PER_SCHOOL).astype(np.int64))
        cell_first = np.concatenate([[0], np.cumsum(per_cell)[:-1]])
        school = cell_first[cell] + (rng.random(n) * per_cell[cell]).astype(np.int64)
        schools = _schools(rng, province, county_table, per_cell)
        group_size = np.bincount(school * 13 + grade, minlength=len(schools["code"]) * 13)
        classes = np.maximum(1, np.ceil(group_size / _CLASS_SIZE).astype(np.int64))
    else:
        schools = frame.schools
        per_cell, cell_first = schools["per_cell"], schools["cell_first"]
        school = cell_first[cell] + (rng.random(n) * per_cell[cell]).astype(np.int64)
        classes = schools["classes"]
    group = school * 13 + grade
    class_no = 1 + (rng.random(n) * classes[group]).astype(np.int64)

    male = (rng.random(n) < 0.52).astype(np.int64)
    start, end = _window(grade, school_year)
    birth = start + (rng.random(n) * (end - start + 1)).astype(np.int64)
    repeater = rng.random(n) < _SHARE_REPEATER
    birth[repeater] -= rng.integers(1, 300, size=int(repeater.sum()))

    county_codes = county_table["code"].to_numpy().astype(np.int64)
    province_codes = _stable_codes(province)["code"].to_numpy().astype(np.int64)
    migrant_codes = np.concatenate(
        [
            _stable_codes(p)["code"].to_numpy().astype(np.int64)
            for p in _MIGRANT_PROVINCES
            if p != province
        ]
    )
    household = county_codes[county].copy()
    draw = rng.random(n)
    other = draw < _SHARE_HOUSEHOLD_OTHER_COUNTY
    household[other] = rng.choice(province_codes, size=int(other.sum()))
    migrant = draw > 1 - _SHARE_MIGRANT
    household[migrant] = rng.choice(migrant_codes, size=int(migrant.sum()))

    seq = 2 * rng.integers(0, 500, size=n) + male
    body = _free_bodies(_NONE, _body(household, birth, seq), male, rng, issued=issued.get("body"))

    # Names.
    surnames = np.array([s for s, _ in nm.SURNAMES])
    surname_p = np.array([w for _, w in nm.SURNAMES])
    surname = surnames[rng.choice(len(surnames), size=n, p=surname_p / surname_p.sum())]
    given = _given_names(rng, male)
    dot = rng.random(n) < _SHARE_DOT_NAME
    dot_idx = rng.integers(0, len(nm.DOT_NAMES), size=int(dot.sum()))
    ethnicity = _ethnicities(rng, n)

    # Guardians: the father's surname is usually the child's.
    guardian_surname = np.where(
        rng.random(n) < 0.7,
        surname,
        surnames[rng.choice(len(surnames), size=n, p=surname_p / surname_p.sum())],
    )
    guardian_given = np.array(nm.GUARDIAN_GIVEN)[rng.integers(0, len(nm.GUARDIAN_GIVEN), size=n)]
    guardian = _cat(guardian_surname, guardian_given)
    phone = _phones(rng, n)

    id_type = np.full(n, "1", dtype="U1")
    other_type = rng.random(n) < _SHARE_OTHER_ID_TYPE
    id_type[other_type] = rng.choice(np.array(list("678AZ")), size=int(other_type.sum()))

    people = {
        "county": county,
        "school": school,
        "grade": grade,
        "class_no": class_no,
        "male": male,
        "sex_shown": 2 - male,
        "birth": birth,
        "birth_shown": birth.copy(),
        "household": household,
        "body": body,
        "surname": surname.astype("U4"),
        "given": given.astype("U8"),
        "ethnicity": ethnicity,
        "guardian": guardian.astype("U6"),
        "phone": phone,
        "id_type": id_type,
        "student_no_kind": np.where(id_type == "1", "G", "J").astype("U1"),
        "student_no_body": body.copy(),
    }
    dot_rows = np.flatnonzero(dot)
    people["surname"][dot_rows] = ""
    people["given"] = people["given"].astype("U12")
    people["given"][dot_rows] = np.array([x[0] for x in nm.DOT_NAMES])[dot_idx]
    people["male"][dot_rows] = np.array([x[1] == "1" for x in nm.DOT_NAMES], dtype=np.int64)[
        dot_idx
    ]
    people["sex_shown"][dot_rows] = 2 - people["male"][dot_rows]
    people["ethnicity"][dot_rows] = "05"
    # Sex changed for the dotted names: give them an ID of the right parity.
    seq_dot = 2 * rng.integers(0, 500, size=len(dot_rows)) + people["male"][dot_rows]
    people["body"][dot_rows] = people["body"][dot_rows] - people["body"][dot_rows] % 1000 + seq_dot
    others = np.ones(n, dtype=bool)
    others[dot_rows] = False
    people["body"][dot_rows] = _free_bodies(
        np.sort(people["body"][others]),
        people["body"][dot_rows],
        people["male"][dot_rows],
        rng,
        issued=issued.get("body"),
    )
    people["student_no_body"] = people["body"].copy()

    plan = _Plan(rng, people, schools, count, school_year, n_counties, issued)
    plan.hard_negatives()
    plan.duplicates()
    plan.numeric_errors()
    text = plan.render(county_table)
    plan.text_errors(text, province, county_table)
    plan.register()
    return plan.finish(text, first_key, key_width)


def _given_names(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    n = len(male)
    boys, girls = np.array(list(nm.BOY_CHARS)), np.array(list(nm.GIRL_CHARS))
    first_b = boys[rng.choice(len(boys), size=n, p=_zipf(len(boys)))]
    second_b = boys[rng.choice(len(boys), size=n, p=_zipf(len(boys), 0.8))]
    first_g = girls[rng.choice(len(girls), size=n, p=_zipf(len(girls)))]
    second_g = girls[rng.choice(len(girls), size=n, p=_zipf(len(girls), 0.8))]
    # A character is rarely used twice in a row: draw the second again where it repeats.
    again_b = boys[rng.choice(len(boys), size=n, p=_zipf(len(boys), 0.8))]
    again_g = girls[rng.choice(len(girls), size=n, p=_zipf(len(girls), 0.8))]
    second_b = np.where(second_b == first_b, again_b, second_b)
    second_g = np.where(second_g == first_g, again_g, second_g)
    one_char = rng.random(n) < _SHARE_ONE_CHAR_GIVEN
    boy_name = np.where(one_char, second_b, _cat(first_b, second_b))
    girl_name = np.where(one_char, second_g, _cat(first_g, second_g))
    given = np.where(male == 1, boy_name, girl_name).astype("U8")
    popular = rng.random(n) < _SHARE_POPULAR_GIVEN
    pop_b, pop_g = np.array(nm.BOY_POPULAR), np.array(nm.GIRL_POPULAR)
    pick_b = pop_b[rng.choice(len(pop_b), size=n, p=_zipf(len(pop_b)))]
    pick_g = pop_g[rng.choice(len(pop_g), size=n, p=_zipf(len(pop_g)))]
    given[popular] = np.where(male == 1, pick_b, pick_g)[popular]
    return given


def _ethnicities(rng: np.random.Generator, n: int) -> np.ndarray:
    codes = np.array([c for c, _, _ in nm.ETHNICITIES])
    share = np.array([s for _, _, s in nm.ETHNICITIES])
    return codes[rng.choice(len(codes), size=n, p=share / share.sum())].astype("U2")


_MOBILE_PREFIXES = np.array(
    [130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 157, 158]
    + [159, 166, 173, 175, 176, 177, 178, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189]
    + [191, 198, 199],
    dtype=np.int64,
)


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = _MOBILE_PREFIXES[rng.integers(0, len(_MOBILE_PREFIXES), size=n)]
    return prefix * 10**8 + rng.integers(0, 10**8, size=n)


class _Plan:
    """The roster under construction: numeric columns, then text, plus what was planted where."""

    def __init__(
        self,
        rng: np.random.Generator,
        people: dict[str, np.ndarray],
        schools: dict[str, np.ndarray],
        count: dict[str, int],
        school_year: int,
        n_counties: int,
        issued: _Issued,
    ) -> None:
        self.rng = rng
        self.p = people
        self.s = schools
        self.count = count
        self.school_year = school_year
        self.n_counties = n_counties
        # Numbers given out by earlier pieces of the roster, and this piece's planted numbers.
        self.issued = issued
        self.made_bodies: list[int] = []
        self.invalid_ids: set[str] = set()
        # Rows a problem may be planted on: resident-ID students with plain names.
        eligible = (people["id_type"] == "1") & (people["surname"] != "")
        self.pool = _Pool(eligible, rng)
        self.dot_rows = np.flatnonzero(people["surname"] == "")
        self.dup_groups: list[tuple[np.ndarray, np.ndarray, str]] = []
        self.hard: list[tuple[np.ndarray, np.ndarray, str]] = []
        self.errors: list[tuple[np.ndarray, str, str]] = []
        self.normalisable: list[tuple[np.ndarray, str, str]] = []

    # --- growing the table -------------------------------------------------------------------
    def _append(self, source: np.ndarray) -> np.ndarray:
        """Append copies of rows ``source``; return the new rows' indices."""
        first = len(self.p["body"])
        for key, column in self.p.items():
            self.p[key] = np.concatenate([column, column[source]])
        return np.arange(first, first + len(source))

    def _other_school(self, rows: np.ndarray, same_county: bool) -> np.ndarray:
        """A different school of the same stage: in the same county, or in another county."""
        school = self.p["school"][rows]
        county = self.s["county"][school]
        stage = self.s["stage"][school]
        if same_county:
            target_county = county
        else:
            shift = self.rng.integers(1, self.n_counties, size=len(rows))
            target_county = (county + shift) % self.n_counties
        cell = target_county * 3 + stage
        per_cell = self.s["per_cell"][cell]
        pick = self.s["cell_first"][cell] + (self.rng.random(len(rows)) * per_cell).astype(int)
        if same_county:
            clash = pick == school
            pick[clash] = self.s["cell_first"][cell[clash]] + (
                (pick[clash] - self.s["cell_first"][cell[clash]] + 1) % per_cell[clash]
            )
        return pick

    def _taken(self) -> np.ndarray:
        return np.sort(self.p["body"])

    # --- pass 1: people ----------------------------------------------------------------------
    def hard_negatives(self) -> None:
        p, rng = self.p, self.rng
        # Twins: same surname, birth day, guardian, household and school; sequences 1 or 2 apart
        # (a boy and a girl take consecutive numbers; two of one sex the next of their parity).
        a = self.pool.take(self.count["twins"])
        if len(a):
            b = self._append(a)
            self.pool.free = np.concatenate([self.pool.free, np.zeros(len(b), dtype=bool)])
            mixed = rng.random(len(a)) < 0.6
            step = np.where(mixed, 1, 2)
            # The first twin takes the lower sequence of the right parity (0..996).
            seq_a = 2 * rng.integers(0, 498, size=len(a)) + p["male"][a]
            p["male"][b] = np.where(mixed, 1 - p["male"][a], p["male"][a])
            p["sex_shown"][b] = 2 - p["male"][b]
            base = p["body"][a] - p["body"][a] % 1000
            pair_body = np.empty(2 * len(a), dtype=np.int64)
            pair_body[0::2] = base + seq_a
            pair_body[1::2] = base + seq_a + step
            pair_male = np.empty(2 * len(a), dtype=np.int64)
            pair_male[0::2] = p["male"][a]
            pair_male[1::2] = p["male"][a]
            keep = np.ones(len(p["body"]), dtype=bool)
            keep[a] = keep[b] = False
            pair_body = _free_bodies(
                np.sort(p["body"][keep]), pair_body, pair_male, rng, step, self.issued.get("body")
            )
            p["body"][a], p["body"][b] = pair_body[0::2], pair_body[1::2]
            p["student_no_body"][a], p["student_no_body"][b] = p["body"][a], p["body"][b]
            p["given"][b] = self._different_given(p["given"][a], p["male"][b])
            p["class_no"][b] = p["class_no"][a]
            self.hard.append((a, b, "twins"))

        # Same common name and birth day, two different students far apart (other county and
        # other household code), both IDs valid.
        k = self.count["same_name_birth"]
        a = self.pool.take(k)
        offer = self.pool.take(max(20 * k, 200) if k else 0)
        b = np.full(len(a), -1, dtype=np.int64)
        used = np.zeros(len(offer), dtype=bool)
        school_county = self.s["county"][p["school"]]
        for i, row in enumerate(a):
            fit = ~used & (p["grade"][offer] == p["grade"][row])
            fit &= school_county[offer] != school_county[row]
            fit &= p["household"][offer] != p["household"][row]
            hit = np.flatnonzero(fit)
            if len(hit):
                used[hit[0]] = True
                b[i] = offer[hit[0]]
        self.pool.free[offer[~used]] = True
        a, b = a[b >= 0], b[b >= 0]
        if len(a):
            names = {sex: np.array(v) for sex, v in nm.COMMON_FULL_NAMES.items()}
            male = p["male"][a]
            full = np.where(
                male == 1,
                names["1"][rng.integers(0, len(names["1"]), size=len(a))],
                names["2"][rng.integers(0, len(names["2"]), size=len(a))],
            )
            p["surname"][a] = np.array([x[0] for x in full])
            p["given"][a] = np.array([x[1:] for x in full])
            for key in ("surname", "given", "male", "sex_shown", "birth", "birth_shown"):
                p[key][b] = p[key][a]
            seq = 2 * rng.integers(0, 500, size=len(b)) + p["male"][b]
            body_b = _body(p["household"][b], p["birth"][b], seq)
            keep = np.ones(len(p["body"]), dtype=bool)
            keep[b] = False
            male_b = p["male"][b]
            p["body"][b] = _free_bodies(
                np.sort(p["body"][keep]), body_b, male_b, rng, issued=self.issued.get("body")
            )
            p["student_no_body"][b] = p["body"][b]
            self.hard.append((a, b, "same_name_birth"))

    def _different_given(self, given: np.ndarray, male: np.ndarray) -> np.ndarray:
        fresh = _given_names(self.rng, male)
        for _ in range(20):
            same = fresh == given
            if not same.any():
                break
            fresh[same] = _given_names(self.rng, male[same])
        return fresh

    def duplicates(self) -> None:
        p, rng = self.p, self.rng
        c = self.count
        # Originals: one draw for all kinds, so no student carries two planted duplicates.
        kinds: list[str] = []
        sources: list[np.ndarray] = []
        for kind in DUPLICATE_KINDS:
            where = None
            if kind == "name_homophone":
                where = self._has_homophone()
            elif kind == "date_swap":
                where = self._swappable()
            rows = self.pool.take(c[kind], where)
            kinds.append(kind)
            sources.append(rows)
        for kind, rows in zip(kinds, sources, strict=True):
            if not len(rows):
                continue
            copies = self._append(rows)
            self.pool.free = np.concatenate([self.pool.free, np.zeros(len(copies), dtype=bool)])
            if kind == "exact_same_county":
                p["school"][copies] = self._other_school(rows, same_county=True)
            elif kind == "exact_cross_county":
                p["school"][copies] = self._other_school(rows, same_county=False)
            elif kind in FUZZY_KINDS:
                move = rng.random(len(rows)) < 0.5
                p["school"][copies[move]] = self._other_school(rows[move], same_county=True)
            p["class_no"][copies] = 1 + rng.integers(0, 3, size=len(copies))
            # A second registration has not passed the national check: temporary L number.
            p["student_no_kind"][copies] = "L"
            self.dup_groups.append((rows, copies, kind))
            if kind == "exact_same_county" and c["triple"]:
                third_of = rows[: c["triple"]]
                third = self._append(third_of)
                self.pool.free = np.concatenate([self.pool.free, np.zeros(len(third), dtype=bool)])
                p["school"][third] = self._other_school(third_of, same_county=False)
                p["class_no"][third] = 1 + rng.integers(0, 3, size=len(third))
                p["student_no_kind"][third] = "L"
                self.dup_groups.append((third_of, third, "triple"))
                self.dup_groups.append((copies[: c["triple"]], third, "triple"))
            if kind == "name_homophone":
                p["given"][copies] = [self._homophone(g) for g in p["given"][copies]]
            elif kind == "date_swap":
                y, m, d = _ymd(p["birth"][copies])
                p["birth_shown"][copies] = _day_number(y, d, m)
                self.errors.append((copies, "birth_date", "BIRTHDATE_MISMATCH"))
            elif kind == "missing_id":
                p["id_type"][copies] = "Z"
        self.copy_kind = {kind: copies for (_, copies, kind) in self.dup_groups}

    def _has_homophone(self) -> np.ndarray:
        given = pd.Series(self.p["given"])
        pattern = "[" + "".join(nm.HOMOPHONES) + "]"
        return given.str.contains(pattern, regex=True).to_numpy()

    def _homophone(self, given: str) -> str:
        spots = [i for i, ch in enumerate(given) if ch in nm.HOMOPHONES]
        i = spots[int(self.rng.integers(0, len(spots)))]
        options = nm.HOMOPHONES[given[i]]
        return given[:i] + options[int(self.rng.integers(0, len(options)))] + given[i + 1 :]

    def _swappable(self) -> np.ndarray:
        """Birth days whose day/month swap is another date inside the same grade window."""
        p = self.p
        y, m, d = _ymd(p["birth"])
        ok = (d <= 12) & (d != m)
        swapped = _day_number(y, np.where(ok, d, 1), np.where(ok, m, 1))
        start, end = _window(p["grade"], self.school_year)
        return ok & (swapped >= start) & (swapped <= end) & (p["birth"] >= start)

    def numeric_errors(self) -> None:
        p, rng, c = self.p, self.rng, self.count
        start, end = _window(p["grade"], self.school_year)

        rows = self.pool.take(c["BIRTHDATE_MISMATCH"], p["birth"] >= start)
        if len(rows):
            # Another day inside the same window, so the age rule has nothing to say.
            span = end[rows] - start[rows]
            shift = rng.integers(1, span)
            p["birth_shown"][rows] = start[rows] + (p["birth"][rows] - start[rows] + shift) % (
                span + 1
            )
            self.errors.append((rows, "birth_date", "BIRTHDATE_MISMATCH"))

        rows = self.pool.take(c["SEX_MISMATCH"])
        p["sex_shown"][rows] = 1 + p["male"][rows]
        self.errors.append((rows, "sex", "SEX_MISMATCH"))

        rows = self.pool.take(c["AGE_GRADE"])
        if len(rows):
            older = rng.random(len(rows)) < 0.7
            new_birth = np.where(
                older,
                start[rows] - rng.integers(380, 900, size=len(rows)),
                end[rows] + rng.integers(380, 700, size=len(rows)),
            )
            p["birth"][rows] = p["birth_shown"][rows] = new_birth
            seq = p["body"][rows] % 1000
            keep = np.ones(len(p["body"]), dtype=bool)
            keep[rows] = False
            p["body"][rows] = _free_bodies(
                np.sort(p["body"][keep]),
                _body(p["household"][rows], new_birth, seq),
                p["male"][rows],
                rng,
                issued=self.issued.get("body"),
            )
            p["student_no_body"][rows] = p["body"][rows]
            self.errors.append((rows, "birth_date", "AGE_GRADE"))

        rows = self.pool.take(c["STUDENT_NO_MISMATCH"])
        if len(rows):
            # G + a valid number of the same household and birth day that is not the student's.
            seq = 2 * rng.integers(0, 500, size=len(rows)) + p["male"][rows]
            other = _body(p["household"][rows], p["birth"][rows], seq)
            other = _free_bodies(
                self._taken(), other, p["male"][rows], rng, issued=self.issued.get("body")
            )
            p["student_no_body"][rows] = other
            self.errors.append((rows, "student_no", "STUDENT_NO_MISMATCH"))

        rows = self.pool.take(c["ENROLL_DATE"])
        self.enroll_error = rows

    # --- pass 2: text ------------------------------------------------------------------------
    def render(self, county_table: pd.DataFrame) -> dict[str, np.ndarray]:
        p, s, rng = self.p, self.s, self.rng
        n = len(p["body"])
        self.n = n
        school = p["school"]
        grade = p["grade"]
        text: dict[str, np.ndarray] = {}
        text["name"] = _cat(p["surname"], p["given"]).astype("U14")
        sex_word = rng.random(n) < 0.3
        text["sex"] = np.where(
            sex_word, np.where(p["sex_shown"] == 1, "男", "女"), p["sex_shown"].astype(str)
        ).astype("U2")
        birth_style = rng.choice(4, size=n, p=[0.55, 0.2, 0.2, 0.05])
        text["birth_date"] = _render_dates(p["birth_shown"], birth_style).astype("U12")
        eth_names = np.array([nm.ETHNICITY_NAMES[c] for c in sorted(nm.ETHNICITY_NAMES)])
        eth_codes = np.array(sorted(nm.ETHNICITY_NAMES))
        eth_word = eth_names[np.searchsorted(eth_codes, p["ethnicity"])]
        text["ethnicity"] = np.where(rng.random(n) < 0.4, eth_word, p["ethnicity"]).astype("U4")
        type_word = np.array([_ID_TYPE_NAMES[t] for t in "1678AZ"])[
            np.searchsorted(np.array(list("1678AZ")), p["id_type"])
        ]
        text["id_type"] = np.where(rng.random(n) < 0.3, type_word, p["id_type"]).astype("U12")

        ids = _id_text(p["body"]).astype("U20")
        self._foreign_numbers(ids)
        text["id_number"] = ids

        county_code = county_table["code"].to_numpy().astype(str)
        school_county = s["county"][school]
        kind = p["student_no_kind"]
        student_no = np.char.add("G", _id_text(p["student_no_body"])).astype("U20")
        sel = np.flatnonzero(kind == "L")
        student_no[sel] = self._temporary_numbers(sel, county_code)
        sel = kind == "J"
        if sel.any():
            base = _body(county_code[school_county[sel]].astype(np.int64), p["birth"][sel], 0)
            tail = rng.integers(0, 1000, size=int(sel.sum()))
            self_code = _distinct(base, tail, self.issued.get("J"), rng, 1000)
            self.issued.add("J", self_code)
            student_no[sel] = np.char.add("J", _id_text(self_code))
        text["student_no"] = student_no
        text["school_code"] = s["code"][school].astype("U12")
        text["school_name"] = s["name"][school]
        county_text = county_code[school_county].astype("U8")
        by_name = (rng.random(n) < 0.03) & county_table["named_ok"].to_numpy()[school_county]
        county_text[by_name] = county_table["name"].to_numpy().astype(str)[school_county[by_name]]
        text["school_county"] = county_text
        grade_text = np.array([""] + [_GRADE_TEXT.get(g, "") for g in range(1, 13)], dtype="U8")
        out_grade = grade_text[grade]
        style = s["junior_style"][school]
        for g in (7, 8, 9):
            for st in (0, 1):
                out_grade[(grade == g) & (style == st)] = _JUNIOR_TEXT[st][g]
        text["grade"] = out_grade
        class_names = np.char.add(np.arange(p["class_no"].max() + 1).astype(str), "班")
        text["class_name"] = class_names[p["class_no"]]
        stage = _STAGE_OF_GRADE[grade]
        enroll_year = self.school_year - (grade - _STAGE_FIRST_GRADE[stage])
        enroll_style = rng.choice(5, size=n, p=[0.5, 0.2, 0.15, 0.1, 0.05])
        text["enroll_date"] = _render_months(
            enroll_year, np.full(n, 9, dtype=np.int64), enroll_style
        ).astype("U12")
        text["household_region"] = p["household"].astype("U6")
        text["guardian_name"] = p["guardian"].astype("U8")
        text["phone"] = p["phone"].astype("U12")
        text["export_key"] = np.zeros(n, dtype="U1")  # filled in by finish()
        return text

    def _foreign_numbers(self, ids: np.ndarray) -> None:
        """Numbers of non-resident documents; 其他 (Z) leaves the number empty."""
        p, rng = self.p, self.rng
        eight = rng.integers(0, 10**8, size=len(ids))
        prefix = {"6": "H", "7": "M", "8": "", "A": "E"}
        for i, (code, letter) in enumerate(prefix.items()):
            sel = p["id_type"] == code
            base = np.full(int(sel.sum()), i * 10**8, dtype=np.int64)
            value = _distinct(base, eight[sel], self.issued.get("foreign"), rng, 10**8)
            self.issued.add("foreign", value)
            ids[sel] = np.char.add(letter, _ascii(_digits(value - base, 8)))
        ids[p["id_type"] == "Z"] = ""

    def _temporary_numbers(self, rows: np.ndarray, county_code: np.ndarray) -> np.ndarray:
        """Temporary 学籍号 of ``rows``: L + school county + birth date as typed in + 4 digits,
        none of them given out before."""
        codes = county_code[self.s["county"][self.p["school"][rows]]]
        ymd = _yyyymmdd(self.p["birth_shown"][rows])
        base = (codes.astype(np.int64) * 10**8 + ymd) * 10_000
        tail = self.rng.integers(0, 10_000, size=len(rows))
        value = _distinct(base, tail, self.issued.get("L"), self.rng, 10_000)
        self.issued.add("L", value)
        return _cat("L", codes, _ascii(_digits(ymd, 8)), _ascii(_digits(value - base, 4)))

    def _claim(self, number: str) -> bool:
        """Take an ID number that fails its check for a planted error, unless already given out."""
        if number in self.invalid_ids or self.issued.has("invalid", _base11(number)):
            return False
        self.invalid_ids.add(number)
        return True

    def register(self) -> None:
        """Record this roster's ID bodies, G 学籍号 bodies and planted numbers as given out."""
        made = np.array(self.made_bodies, dtype=np.int64)
        self.issued.add("body", np.concatenate([self.p["body"], self.p["student_no_body"], made]))
        self.issued.add("invalid", np.array([_base11(s) for s in self.invalid_ids], np.int64))

    # --- pass 3: text errors -----------------------------------------------------------------
    def text_errors(
        self, text: dict[str, np.ndarray], province: str, county_table: pd.DataFrame
    ) -> None:
        p, rng, c = self.p, self.rng, self.count
        ids = text["id_number"]
        sno = text["student_no"]
        county_code = county_table["code"].to_numpy().astype(str)

        def temporary(rows: np.ndarray) -> None:
            # A number that fails the national check keeps its temporary L 学籍号.
            sno[rows] = self._temporary_numbers(rows, county_code)

        def cycle(rows: np.ndarray, k: int) -> np.ndarray:
            return np.arange(len(rows)) % k

        # Duplicates whose copy carries a typo in the number (the check character then fails).
        copies = self.copy_kind.get("id_digit", np.array([], dtype=np.int64))
        for row in copies:
            ids[row] = self._digit_typo(ids[row])
        self.errors.append((copies, "id_number", "ID_CHECKSUM"))
        copies = self.copy_kind.get("id_transpose", np.array([], dtype=np.int64))
        for row in copies:
            ids[row] = self._transpose(ids[row])
        self.errors.append((copies, "id_number", "ID_CHECKSUM"))
        copies = self.copy_kind.get("name_noise", np.array([], dtype=np.int64))
        if len(copies):
            names = text["name"][copies]
            variant = cycle(copies, 4)
            inner = variant < 2
            blank = np.where(variant == 0, " ", "\u3000")
            # An inner blank is a NAME_CHARS error; a blank around the name is only writing.
            names[inner] = [
                nme[:1] + b + nme[1:] for nme, b in zip(names[inner], blank[inner], strict=True)
            ]
            names[variant == 2] = np.char.add(names[variant == 2], " ")
            names[variant == 3] = np.char.add("\u3000", names[variant == 3])
            text["name"][copies] = names
            self.errors.append((copies[inner], "name", "NAME_CHARS"))
            self.normalisable.append((copies[~inner], "name", "blank"))

        # Resident-ID errors.
        rows = self.pool.take(c["ID_FORMAT"])
        variant = cycle(rows, 5)
        for row, v in zip(rows, variant, strict=True):
            ids[row] = self._bad_format(ids[row], int(v), p["household"][row])
        temporary(rows)
        self.errors.append((rows, "id_number", "ID_FORMAT"))

        tail = np.array(pd.Series(ids).str.slice(15).tolist(), dtype="U3")
        damage_ok = np.char.isdigit(tail) & (tail != "000")
        rows = self.pool.take(c["ID_SPREADSHEET_DAMAGE"], damage_ok)
        for i, row in enumerate(rows):
            number = ids[row]
            if i % 2 == 0:
                ids[row] = f"{number[0]}.{number[1:6]}E+17"
            else:
                zeroed = number[:15] + "000"
                if _valid(zeroed) or not self._claim(zeroed):
                    zeroed = f"{number[0]}.{number[1:6]}E+17"
                ids[row] = zeroed
        # The 学籍号 was typed as text and still carries the intact number.
        self.errors.append((rows, "id_number", "ID_SPREADSHEET_DAMAGE"))

        rows = self.pool.take(c["ID_CHECKSUM"])
        for row in rows:
            right = ids[row][17]
            # A wrong check character must not make the number end in 000: that is what a
            # spreadsheet leaves behind (ID_SPREADSHEET_DAMAGE), not a typing error.
            taboo = {right, "0"} if ids[row][15:17] == "00" else {right}
            wrong = [ch for ch in "0123456789X" if ch not in taboo]
            for _ in range(100):
                number = ids[row][:17] + wrong[int(rng.integers(0, len(wrong)))]
                if self._claim(number):
                    break
            else:
                raise RuntimeError("could not find a free wrong check character")
            ids[row] = number
        temporary(rows)
        self.errors.append((rows, "id_number", "ID_CHECKSUM"))

        rows = self.pool.take(c["ID_DATE"])
        impossible = ("0230", "0231", "0431", "1301", "0010", "1132", "0600")
        made: set[str] = set()  # numbers that no other student holds, kept apart from each other
        for i, row in enumerate(rows):
            number = ids[row]
            body = number[:10] + impossible[i % len(impossible)] + number[14:17]
            body = self._unused(body, made)
            ids[row] = body + _check_char(body)
        temporary(rows)
        self.errors.append((rows, "id_number", "ID_DATE"))

        rows = self.pool.take(c["ID_REGION_UNKNOWN"])
        unissued = _unissued_codes(province)
        made.clear()
        for row in rows:
            code = unissued[int(rng.integers(0, len(unissued)))]
            body = self._unused(code + ids[row][6:17], made)
            ids[row] = body + _check_char(body)
            # The 学籍号 went through the national check with this number.
            sno[row] = "G" + ids[row]
        self.errors.append((rows, "id_number", "ID_REGION_UNKNOWN"))

        rows = self.pool.take(c["ID_MISSING"])
        ids[rows] = ""
        temporary(rows)
        self.errors.append((rows, "id_number", "ID_MISSING"))

        rows = self.pool.take(c["STUDENT_NO_FORMAT"])
        for row, v in zip(rows, cycle(rows, 4), strict=True):
            number = ids[row]
            sno[row] = (number, "G" + number[:17], "G" + number + "1", "K" + number)[int(v)]
        self.errors.append((rows, "student_no", "STUDENT_NO_FORMAT"))

        # Code fields.
        rows = self.pool.take(c["SEX_CODE"])
        text["sex"][rows] = np.array(["3", "M", "5", "F"])[cycle(rows, 4)]
        self.errors.append((rows, "sex", "SEX_CODE"))
        rows = self.pool.take(c["ETHNICITY_CODE"])
        text["ethnicity"][rows] = np.array(["99", "汉人", "00", "57"])[cycle(rows, 4)]
        self.errors.append((rows, "ethnicity", "ETHNICITY_CODE"))
        rows = self.pool.take(c["ID_TYPE_CODE"])
        text["id_type"][rows] = np.array(["3", "0", "B", "户籍证明"])[cycle(rows, 4)]
        self.errors.append((rows, "id_type", "ID_TYPE_CODE"))

        rows = self.pool.take(c["SCHOOL_CODE_FORMAT"])
        codes = text["school_code"]
        for row, v in zip(rows, cycle(rows, 3), strict=True):
            code = codes[row]
            codes[row] = (code[:9], code + "0", code[:5] + "O" + code[6:])[int(v)]
        self.errors.append((rows, "school_code", "SCHOOL_CODE_FORMAT"))
        rows = self.pool.take(c["SCHOOL_PROVINCE"])
        foreign = [code for code in ("43", "45", "36", "51", "35") if code != province]
        for i, row in enumerate(rows):
            code = codes[row]
            codes[row] = code[:2] + foreign[i % len(foreign)] + code[4:]
        self.errors.append((rows, "school_code", "SCHOOL_PROVINCE"))

        rows = self.pool.take(c["COUNTY_UNKNOWN"])
        neighbour = _stable_codes("43" if province != "43" else "45")["code"].to_numpy()
        outside = np.concatenate([unissued[:5], neighbour[:5].astype(str)])
        outside = outside[rng.permutation(len(outside))]
        text["school_county"][rows] = outside[cycle(rows, len(outside))]
        self.errors.append((rows, "school_county", "COUNTY_UNKNOWN"))

        # Names: digit, latin letter, ?, inner blank, '.' or '•' for '·'.
        rows = self.pool.take(c["NAME_CHARS"])
        names = text["name"]
        for row, v in zip(rows, cycle(rows, 4), strict=True):
            name = names[row]
            names[row] = (name + "2", name[:-1] + "A", name[:-1] + "?", name[:1] + " " + name[1:])[
                int(v)
            ]
        self.errors.append((rows, "name", "NAME_CHARS"))
        # Dotted names never enter the pool; a few of them get a '.' or '•' for the '·'.
        k = min(len(self.dot_rows), max(1, c["NAME_CHARS"] // 4) if c["NAME_CHARS"] else 0)
        dotted = np.sort(rng.choice(self.dot_rows, size=k, replace=False))
        for i, row in enumerate(dotted):
            names[row] = names[row].replace("·", "." if i % 2 == 0 else "•")
        self.errors.append((dotted, "name", "NAME_CHARS"))

        rows = self.pool.take(c["REQUIRED_MISSING"])
        for i, row in enumerate(rows):
            field = schema.REQUIRED_VALUES[i % len(schema.REQUIRED_VALUES)]
            text[field][row] = ""
            self.errors.append((np.array([row]), field, "REQUIRED_MISSING"))

        rows = self.enroll_error
        if len(rows):
            future = rng.random(len(rows)) < 0.5
            year = np.where(
                future,
                self.school_year + rng.integers(1, 3, size=len(rows)),
                _ymd(p["birth"][rows])[0] - rng.integers(1, 3, size=len(rows)),
            )
            text["enroll_date"][rows] = _cat(year.astype(str), "-09")
            self.errors.append((rows, "enroll_date", "ENROLL_DATE"))

        rows = self.pool.take(c["PHONE_FORMAT"])
        phones = text["phone"]
        for row, v in zip(rows, cycle(rows, 3), strict=True):
            phone = phones[row]
            phones[row] = (phone[:10], phone + "8", "12" + phone[2:])[int(v)]
        self.errors.append((rows, "phone", "PHONE_FORMAT"))

        # Values that differ only in writing.
        x_end = np.char.endswith(ids, "X")
        rows = self.pool.take(c["lowercase_x"], x_end)
        ids[rows] = np.char.add(np.array([s[:17] for s in ids[rows]], dtype="U17"), "x")
        self.normalisable.append((rows, "id_number", "lowercase_x"))
        rows = self.pool.take(c["blank"])
        fields = ("id_number", "name", "phone", "school_code")
        for i, row in enumerate(rows):
            field = fields[i % len(fields)]
            pad = (" ", "\u3000")[(i // 2) % 2]
            value = text[field][row]
            text[field][row] = pad + value if i % 2 else value + pad
            self.normalisable.append((np.array([row]), field, "blank"))
        rows = self.pool.take(c["fullwidth"])
        full = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
        ids[rows] = [s.translate(full) for s in ids[rows]]
        self.normalisable.append((rows, "id_number", "fullwidth"))

    def _unused(self, body: str, made: set[str]) -> str:
        """``body`` or, if already made or given out, the same body with another sequence of the
        same parity."""
        while body in made or self.issued.has("body", int(body)):
            seq = 2 * int(self.rng.integers(0, 500)) + int(body[16]) % 2
            body = body[:14] + f"{seq:03d}"
        made.add(body)
        self.made_bodies.append(int(body))
        return body

    def _digit_typo(self, number: str) -> str:
        # Sequence digits only, parity kept: the typo changes nothing but the check.
        while True:
            pos = int(self.rng.choice([14, 15, 16, 17]))
            old = number[pos]
            if pos == 16:
                choices = [d for d in "0123456789" if d != old and int(d) % 2 == int(old) % 2]
            elif pos == 17:
                choices = [d for d in "0123456789X" if d != old]
            else:
                choices = [d for d in "0123456789" if d != old]
            new = choices[int(self.rng.integers(0, len(choices)))]
            typo = number[:pos] + new + number[pos + 1 :]
            if not _valid(typo) and self._claim(typo):
                return typo

    def _transpose(self, number: str) -> str:
        options = []
        for i in (14, 15, 16):
            a, b = number[i], number[i + 1]
            if a == b or not (a.isdigit() and b.isdigit()):
                continue
            if i in (15, 16) and int(a) % 2 != int(b) % 2:
                continue  # would change the sex digit's parity
            options.append(i)
        if not options:
            return self._digit_typo(number)
        i = options[int(self.rng.integers(0, len(options)))]
        swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
        if not _valid(swapped) and self._claim(swapped):
            return swapped
        return self._digit_typo(number)

    def _bad_format(self, number: str, variant: int, household: int) -> str:
        rng = self.rng
        if variant == 0:  # a digit lost
            pos = int(rng.integers(6, 17))
            return number[:pos] + number[pos + 1 :]
        if variant == 1:  # a digit typed twice
            pos = int(rng.integers(6, 17))
            return number[:pos] + number[pos] + number[pos:]
        if variant == 2:  # a guardian's 15-digit legacy number
            yymmdd = f"{int(rng.integers(75, 92)):02d}{int(rng.integers(1, 13)):02d}"
            yymmdd += f"{int(rng.integers(1, 29)):02d}"
            return f"{household}{yymmdd}{int(rng.integers(0, 1000)):03d}"
        if variant == 3:  # birth date masked
            return number[:6] + "********" + number[14:]
        return number[:12] + "xxxxxx"

    # --- assembling --------------------------------------------------------------------------
    def finish(
        self, text: dict[str, np.ndarray], first_key: int = 1, key_width: int | None = None
    ) -> GeneratedRoster:
        """The roster in export order with keys R<first_key>…, and the truth tables."""
        p = self.p
        n = self.n
        # Exports list students by county, school, grade and class.
        school_rank = np.argsort(np.argsort(self.s["code"], kind="stable"))
        county = self.s["county"][p["school"]]
        keys = (self.rng.random(n), p["class_no"], p["grade"], school_rank[p["school"]], county)
        order = np.lexsort(keys)
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        width = key_width or max(7, len(str(n)))
        key_matrix = np.empty((n, width + 1), dtype=np.uint8)
        key_matrix[:, 0] = ord("R")
        key_matrix[:, 1:] = _digits(np.arange(first_key, first_key + n), width)
        key = _ascii(key_matrix)
        record = key[position]  # record id of each built row
        text["export_key"] = record

        columns = {schema.FIELDS["export_key"]: pa.array(key)}
        arrow_order = pa.array(order)
        for field in _FIELD_ORDER:
            if field != "export_key":
                columns[schema.FIELDS[field]] = pa.array(text.pop(field)).take(arrow_order)
        frame = pa.table(columns).to_pandas(types_mapper=_STRING_TYPES.get)

        dup_rows = []
        for a, b, kind in self.dup_groups:
            # Exact copies are named by where the two registrations sit.
            named = self._relation(a, b) if kind in EXACT_KINDS + ("triple",) else kind
            dup_rows.append(pd.DataFrame({"a": record[a], "b": record[b], "kind": named}))
        truth_duplicates = _pairs(dup_rows)
        truth_hard = _pairs(
            [pd.DataFrame({"a": record[a], "b": record[b], "kind": k}) for a, b, k in self.hard]
        )
        truth_errors = _cells(self.errors, record)
        truth_normalisable = _cells(self.normalisable, record)
        return GeneratedRoster(
            roster=frame,
            truth_duplicates=truth_duplicates,
            truth_errors=truth_errors,
            truth_normalisable=truth_normalisable,
            truth_hard_negatives=truth_hard,
        )

    def _relation(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        school_a, school_b = self.p["school"][a], self.p["school"][b]
        county_a, county_b = self.s["county"][school_a], self.s["county"][school_b]
        return np.where(
            school_a == school_b,
            "exact_same_school",
            np.where(county_a == county_b, "exact_same_county", "exact_cross_county"),
        )


def _pairs(parts: list[pd.DataFrame]) -> pd.DataFrame:
    columns = ["record_id_a", "record_id_b", "kind"]
    if not parts:
        return pd.DataFrame(columns=columns, dtype="string")
    both = pd.concat(parts, ignore_index=True)
    a, b = both["a"].to_numpy(dtype=str), both["b"].to_numpy(dtype=str)
    lo, hi = np.where(a < b, a, b), np.where(a < b, b, a)
    out = pd.DataFrame({"record_id_a": lo, "record_id_b": hi, "kind": both["kind"].to_numpy()})
    return out.sort_values(columns[:2], ignore_index=True).astype("string")


def _cells(parts: list[tuple[np.ndarray, str, str]], record: np.ndarray) -> pd.DataFrame:
    frames = [
        pd.DataFrame({"record_id": record[rows], "field": field, "kind": kind})
        for rows, field, kind in parts
        if len(rows)
    ]
    if not frames:
        return pd.DataFrame(columns=["record_id", "field", "kind"], dtype="string")
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["record_id", "field"], ignore_index=True).astype("string")


def _check_char(body17: str) -> str:
    value = (12 - sum(int(d) * w for d, w in zip(body17, _WEIGHTS, strict=True)) % 11) % 11
    return "0123456789X"[value]


def _valid(number: str) -> bool:
    return len(number) == 18 and number[:17].isdigit() and _check_char(number[:17]) == number[17]
