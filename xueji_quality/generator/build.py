"""Synthetic provincial roster exports with ground truth: who is whom, and what is wrong where.

A roster is built in passes over whole columns (``_build``):

1. people as numbers (``people``): county, school, grade, class, sex, birth day, household
   county, ID sequence;
2. the planted kinds of the numbers passes (``PLANTED``): look-alike students who are not
   duplicates, second registrations (new rows copied from chosen rows, changed only where their
   kind says), errors in what a student is;
3. everything rendered to text the way exports show it (``render``);
4. the planted kinds of the text pass: errors in how values are written, harmless variants.

Every planted kind is one function registered on one line of ``PLANTED``, in the order its rows
are drawn; that order is part of the generator's output (the same seed gives the same bytes).

A large roster is built in pieces (``generate_chunks``): one set of counties and schools for the
whole roster, each piece's people drawn with a seed derived from (seed, piece index), its record
keys continuing where the previous piece stopped, and every ID number and 学籍号 checked against
those the earlier pieces gave out, so a piece holds the memory of its own rows only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from xueji_quality.generator import duplicates as dup
from xueji_quality.generator import errors as err
from xueji_quality.generator.numbers import Issued
from xueji_quality.generator.people import Frame, draw_people, planned_schools, school_counties
from xueji_quality.generator.piece import KEPT, Kind, Piece, chosen_rows, keep, register
from xueji_quality.generator.render import GeneratedRoster, finish, render
from xueji_quality.memory import release_unused

__all__ = [
    "CHUNK_ROWS",
    "DEFAULT_RATES",
    "DUPLICATE_KINDS",
    "ERROR_KINDS",
    "HARD_NEGATIVE_KINDS",
    "NORMALISABLE_KINDS",
    "PLANTED",
    "SCHOOL_YEAR",
    "GeneratedRoster",
    "generate",
    "generate_chunks",
]

# The school year the roster describes starts in September of this year.
SCHOOL_YEAR = 2026
# Rows per piece of a roster built in pieces (``generate_chunks``).
CHUNK_ROWS = 1_000_000

# Every planted kind, in the order its rows are drawn, pass by pass:
#   pairs   - two students who must never be linked (truth_hard_negatives)
#   copies  - second registrations; the rows of all kinds are drawn first, so no student
#             carries two planted duplicates (truth_duplicates)
#   numbers - errors in what a student is, before the text is rendered (truth_errors)
#   text    - the text of copies, errors in how values are written (truth_errors) and values
#             that differ only in writing (truth_normalisable)
# The share is the default rate: planted rows per row of the finished roster (a kind with a
# positive rate appears at least once in any roster of 1,000 rows or more). KEPT plants on the
# rows an earlier pass kept under the same name: the copies of a duplicate kind, or the rows
# chosen for ENROLL_DATE among the numbers pass.
PLANTED: tuple[Kind, ...] = (
    # pairs that are two students and must never be linked
    Kind("pairs", "twins", 0.003, dup.twins),
    Kind("pairs", "same_name_birth", 0.001, dup.same_name_birth),
    # second registrations of a student, one new row each
    Kind("copies", "exact_same_school", 0.003, dup.exact_same_school),
    Kind("copies", "exact_same_county", 0.003, dup.exact_same_county),
    Kind("copies", "exact_cross_county", 0.003, dup.exact_cross_county),
    Kind("copies", "id_digit", 0.0015, dup.moved_copy),
    Kind("copies", "id_transpose", 0.0015, dup.moved_copy),
    Kind("copies", "name_homophone", 0.0015, dup.name_homophone, dup.has_homophone),
    Kind("copies", "name_noise", 0.0015, dup.moved_copy),
    Kind("copies", "date_swap", 0.0015, dup.date_swap, dup.swappable),
    Kind("copies", "missing_id", 0.0015, dup.missing_id),
    # errors in what a student is (name = rule code), one per affected row
    Kind("numbers", "BIRTHDATE_MISMATCH", 0.001, err.birthdate_mismatch, err.born_in_window),
    Kind("numbers", "SEX_MISMATCH", 0.001, err.sex_mismatch),
    Kind("numbers", "AGE_GRADE", 0.001, err.age_grade),
    Kind("numbers", "STUDENT_NO_MISMATCH", 0.001, err.student_no_mismatch),
    Kind("numbers", "ENROLL_DATE", 0.001, keep),
    # the text of copies; errors in how a value is written; values that differ only in writing
    Kind("text", "id_digit", KEPT, dup.digit_typos),
    Kind("text", "id_transpose", KEPT, dup.transpositions),
    Kind("text", "name_noise", KEPT, dup.name_noise),
    Kind("text", "ID_FORMAT", 0.001, err.id_format),
    Kind("text", "ID_SPREADSHEET_DAMAGE", 0.001, err.spreadsheet_damage, err.damageable),
    Kind("text", "ID_CHECKSUM", 0.001, err.checksum),
    Kind("text", "ID_DATE", 0.001, err.impossible_date),
    Kind("text", "ID_REGION_UNKNOWN", 0.001, err.region_unknown),
    Kind("text", "ID_MISSING", 0.001, err.id_missing),
    Kind("text", "STUDENT_NO_FORMAT", 0.001, err.student_no_format),
    Kind("text", "SEX_CODE", 0.001, err.sex_code),
    Kind("text", "ETHNICITY_CODE", 0.001, err.ethnicity_code),
    Kind("text", "ID_TYPE_CODE", 0.001, err.id_type_code),
    Kind("text", "SCHOOL_CODE_FORMAT", 0.001, err.school_code_format),
    Kind("text", "SCHOOL_PROVINCE", 0.001, err.school_province),
    Kind("text", "COUNTY_UNKNOWN", 0.001, err.county_unknown),
    Kind("text", "NAME_CHARS", 0.001, err.name_chars),
    Kind("text", "REQUIRED_MISSING", 0.001, err.required_missing),
    Kind("text", "ENROLL_DATE", KEPT, err.enroll_date),
    Kind("text", "PHONE_FORMAT", 0.001, err.phone_format),
    Kind("text", "lowercase_x", 0.002, err.lowercase_x, err.ends_in_x),
    Kind("text", "blank", 0.003, err.blank),
    Kind("text", "fullwidth", 0.002, err.fullwidth),
)
# Third registrations per row: the first exact_same_county students, again in another county.
_TRIPLE_SHARE = 0.0005

DEFAULT_RATES: dict[str, float] = {
    kind.name: kind.share for kind in PLANTED if kind.share is not KEPT
} | {"triple": _TRIPLE_SHARE}

DUPLICATE_KINDS = tuple(k.name for k in PLANTED if k.step == "copies")
HARD_NEGATIVE_KINDS = tuple(k.name for k in PLANTED if k.step == "pairs")
ERROR_KINDS = tuple(k for k in DEFAULT_RATES if k.isupper())
NORMALISABLE_KINDS = ("lowercase_x", "blank", "fullwidth", "middle_dot")


def _counts(rows: int, rates: dict[str, float]) -> dict[str, int]:
    out = {}
    for kind, rate in rates.items():
        count = int(round(rate * rows))
        if rate > 0 and rows >= 1000:
            count = max(count, 1)
        out[kind] = count
    return out


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
    issued: Issued | None = None,
) -> GeneratedRoster:
    """Build a roster of ``rows`` rows for ``province`` (2-digit code) with its truth tables.

    ``issued``: numbers other rosters gave out already (several provinces of one nation), none
    of which this roster gives out again; it receives this roster's numbers.
    """
    province, rates = _checked(province, rates)
    rng = np.random.default_rng(seed)
    county_table = school_counties(province, counties, rng)
    count, n = _piece_counts(rows, rates, len(county_table))
    county_weight = rng.lognormal(0.0, 0.5, size=len(county_table))
    frame = Frame(province, county_table, county_weight / county_weight.sum(), school_year, None)
    return _build(rng, frame, count, n, Issued() if issued is None else issued)


def generate_chunks(
    rows: int,
    seed: int,
    province: str,
    *,
    rates: dict[str, float] | None = None,
    counties: int | None = None,
    school_year: int = SCHOOL_YEAR,
    chunk_rows: int = CHUNK_ROWS,
    issued: Issued | None = None,
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
            rows,
            seed,
            province,
            rates=rates,
            counties=counties,
            school_year=school_year,
            issued=issued,
        )
        return
    province, rates = _checked(province, rates)
    rng = np.random.default_rng(seed)
    county_table = school_counties(province, counties, rng)
    pieces = -(-rows // chunk_rows)
    sizes = [rows // pieces + (i < rows % pieces) for i in range(pieces)]
    plans = [_piece_counts(size, rates, len(county_table)) for size in sizes]
    county_weight = rng.lognormal(0.0, 0.5, size=len(county_table))
    county_p = county_weight / county_weight.sum()
    people = sum(n for _, n in plans)
    schools = planned_schools(rng, province, county_table, county_p, people)
    frame = Frame(province, county_table, county_p, school_year, schools)
    issued = Issued() if issued is None else issued
    first_key = 1
    key_width = max(7, len(str(rows)))
    for index, (count, n) in enumerate(plans):
        piece_rng = np.random.default_rng([seed, index])
        piece = _build(piece_rng, frame, count, n, issued, first_key, key_width)
        first_key += len(piece.roster)
        yield piece
        del piece
        release_unused()


def _plant(piece: Piece, step: str) -> None:
    """Plant the kinds of one pass, in table order."""
    kinds = [kind for kind in PLANTED if kind.step == step]
    if step == "copies":
        # Originals of all kinds are drawn before any copy is made.
        chosen = [(kind, chosen_rows(piece, kind)) for kind in kinds]
        for kind, rows in chosen:
            if len(rows):
                kind.plant(piece, rows, kind.name)
        return
    for kind in kinds:
        kind.plant(piece, chosen_rows(piece, kind), kind.name)


def _build(
    rng: np.random.Generator,
    frame: Frame,
    count: dict[str, int],
    n: int,
    issued: Issued,
    first_key: int = 1,
    key_width: int | None = None,
) -> GeneratedRoster:
    """One roster (or piece of one): ``n`` people, then the planted rows of ``count``."""
    people, schools = draw_people(rng, frame, n, issued)
    piece = Piece(
        rng, people, schools, count, frame.school_year, frame.province, frame.county_table, issued
    )
    for step in ("pairs", "copies", "numbers"):
        _plant(piece, step)
    render(piece)
    _plant(piece, "text")
    register(piece)
    return finish(piece, first_key, key_width)
