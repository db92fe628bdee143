"""One roster (or piece of one) under construction, and what every planted kind is made of.

A ``Piece`` holds the people as numeric columns, later their text, the pool of rows still free
of any planted problem, and the truth gathered so far. A planted kind is a ``Kind``: a function
``plant(piece, rows, kind)`` given the rows chosen for it, registered with its pass, name and default
share on one line of the table ``build.PLANTED``.

Every chosen row is taken from the pool, so one row carries at most one planted problem and each
truth kind names exactly what a rule or the linkage must find.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from xueji_quality.generator.columns import ascii_text, cat, digits, yyyymmdd
from xueji_quality.generator.numbers import NONE, Issued, distinct
from xueji_quality.standards import resident_id

Rows = np.ndarray
Pairs = tuple[Rows, Rows, "str | np.ndarray"]
Cells = tuple[Rows, str, str]


@dataclass
class Piece:
    """The roster under construction: numeric columns, then text, plus what was planted where."""

    rng: np.random.Generator
    people: dict[str, np.ndarray]
    schools: dict[str, np.ndarray]
    count: dict[str, int]
    school_year: int
    province: str
    county_table: pd.DataFrame
    # Numbers given out by earlier pieces of the roster (this piece's are added at the end).
    issued: Issued
    # Rows a problem may still be planted on.
    free: np.ndarray = field(init=False)
    # Rows of names with a middle dot (艾力·买买提), kept out of the pool.
    dot_rows: np.ndarray = field(init=False)
    text: dict[str, np.ndarray] = field(default_factory=dict)
    # Rows chosen in one pass for a kind that finishes its work in a later one, by kind.
    kept: dict[str, Rows] = field(default_factory=dict)
    duplicates: list[Pairs] = field(default_factory=list)
    hard_negatives: list[Pairs] = field(default_factory=list)
    errors: list[Cells] = field(default_factory=list)
    normalisable: list[Cells] = field(default_factory=list)
    # Planted numbers of this piece: valid bodies no student holds, and numbers failing the check.
    made_bodies: list[int] = field(default_factory=list)
    invalid_ids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # Problems are planted on resident-ID students with plain names only.
        p = self.people
        self.free = (p["id_type"] == "1") & (p["surname"] != "")
        self.dot_rows = np.flatnonzero(p["surname"] == "")

    @property
    def n_counties(self) -> int:
        return len(self.county_table)

    @property
    def county_codes(self) -> np.ndarray:
        return self.county_table["code"].to_numpy().astype(str)


# The share of a kind that plants on rows kept by an earlier pass, not on rows of its own.
KEPT = None


class Kind(NamedTuple):
    """A planted kind: in which pass, under which truth name, on how many rows, what it does.

    ``plant(piece, rows, name)`` is given ``count[name]`` rows taken from the pool (narrowed to
    ``eligible(piece)`` if given), or with ``share`` KEPT the rows an earlier pass kept under
    ``name``. ``share`` is the default rate, ``count[name]`` comes from the rates in force.
    """

    step: str
    name: str
    share: float | None
    plant: Callable[[Piece, Rows, str], None]
    eligible: Callable[[Piece], np.ndarray] | None = None


def take(piece: Piece, k: int, where: np.ndarray | None = None) -> Rows:
    """``k`` free rows (fewer if the pool runs dry), sorted; they leave the pool."""
    mask = piece.free if where is None else piece.free & where
    candidates = np.flatnonzero(mask)
    k = min(k, len(candidates))
    chosen = np.sort(piece.rng.choice(candidates, size=k, replace=False)) if k else candidates[:0]
    piece.free[chosen] = False
    return chosen


def chosen_rows(piece: Piece, kind: Kind) -> Rows:
    """The rows ``kind`` is planted on: taken from the pool, or kept by an earlier pass."""
    if kind.share is KEPT:
        return piece.kept.pop(kind.name, NONE)
    where = kind.eligible(piece) if kind.eligible is not None else None
    return take(piece, piece.count[kind.name], where)


def keep(piece: Piece, rows: Rows, kind: str) -> None:
    """Plant nothing yet: a later pass plants ``kind`` on these rows."""
    piece.kept[kind] = rows


def append(piece: Piece, source: Rows) -> Rows:
    """Append copies of rows ``source`` (outside the pool); return the new rows' indices."""
    p = piece.people
    first = len(p["body"])
    for key, column in p.items():
        p[key] = np.concatenate([column, column[source]])
    piece.free = np.concatenate([piece.free, np.zeros(len(source), dtype=bool)])
    return np.arange(first, first + len(source))


def other_school(piece: Piece, rows: Rows, same_county: bool) -> np.ndarray:
    """A different school of the same stage: in the same county, or in another county."""
    s, rng = piece.schools, piece.rng
    school = piece.people["school"][rows]
    county = s["county"][school]
    stage = s["stage"][school]
    if same_county:
        target_county = county
    else:
        shift = rng.integers(1, piece.n_counties, size=len(rows))
        target_county = (county + shift) % piece.n_counties
    cell = target_county * 3 + stage
    per_cell = s["per_cell"][cell]
    pick = s["cell_first"][cell] + (rng.random(len(rows)) * per_cell).astype(int)
    if same_county:
        clash = pick == school
        pick[clash] = s["cell_first"][cell[clash]] + (
            (pick[clash] - s["cell_first"][cell[clash]] + 1) % per_cell[clash]
        )
    return pick


def relation(piece: Piece, a: Rows, b: Rows) -> np.ndarray:
    """Where two registrations sit: exact_same_school, exact_same_county or exact_cross_county."""
    school_a, school_b = piece.people["school"][a], piece.people["school"][b]
    county_a, county_b = piece.schools["county"][school_a], piece.schools["county"][school_b]
    return np.where(
        school_a == school_b,
        "exact_same_school",
        np.where(county_a == county_b, "exact_same_county", "exact_cross_county"),
    )


def temporary_numbers(piece: Piece, rows: Rows) -> np.ndarray:
    """Temporary 学籍号 of ``rows``: L + school county + birth date as typed in + 4 digits,
    none of them given out before."""
    p = piece.people
    codes = piece.county_codes[piece.schools["county"][p["school"][rows]]]
    ymd = yyyymmdd(p["birth_shown"][rows])
    base = (codes.astype(np.int64) * 10**8 + ymd) * 10_000
    tail = piece.rng.integers(0, 10_000, size=len(rows))
    value = distinct(base, tail, piece.issued.get("L"), piece.rng, 10_000)
    piece.issued.add("L", value)
    return cat("L", codes, ascii_text(digits(ymd, 8)), ascii_text(digits(value - base, 4)))


def claim(piece: Piece, number: str) -> bool:
    """Take an ID number that fails its check for a planted error, unless already given out."""
    if number in piece.invalid_ids or piece.issued.has("invalid", resident_id.value(number)):
        return False
    piece.invalid_ids.add(number)
    return True


def unused(piece: Piece, body: str, made: set[str]) -> str:
    """``body`` or, if already made or given out, the same body with another sequence of the
    same parity."""
    while body in made or piece.issued.has("body", int(body)):
        seq = 2 * int(piece.rng.integers(0, 500)) + int(body[16]) % 2
        body = body[:14] + f"{seq:03d}"
    made.add(body)
    piece.made_bodies.append(int(body))
    return body


def register(piece: Piece) -> None:
    """Record this piece's ID bodies, G 学籍号 bodies and planted numbers as given out."""
    p = piece.people
    made = np.array(piece.made_bodies, dtype=np.int64)
    piece.issued.add("body", np.concatenate([p["body"], p["student_no_body"], made]))
    piece.issued.add(
        "invalid", np.array([resident_id.value(s) for s in piece.invalid_ids], np.int64)
    )
