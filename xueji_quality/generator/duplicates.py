"""Planted duplicates (one student registered twice) and hard negatives (two students alike).

A duplicate is a new row copied from a chosen row and changed only where its kind says; its
truth is the pair. Exact copies are named by where the two registrations sit
(``exact_same_school``, ``exact_same_county``, ``exact_cross_county``). Kinds whose difference
is in the text (a typo in the ID, a blank in the name) are copied in the people pass and changed
in the text pass, on the copies kept under their name.

Each function here is registered in ``build.PLANTED``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xueji_quality.generator import names as nm
from xueji_quality.generator.columns import day_number, grade_window, ymd
from xueji_quality.generator.numbers import free_bodies, id_body
from xueji_quality.generator.people import given_names
from xueji_quality.generator.piece import Piece, Rows, append, claim, other_school, relation, take
from xueji_quality.standards import iso7064

# ----------------------------------------------------------------------------------------------
# hard negatives: two students who must never be linked


def twins(piece: Piece, a: Rows, kind: str) -> None:
    """Same surname, birth day, guardian, household and school; sequences 1 or 2 apart (a boy
    and a girl take consecutive numbers; two of one sex the next of their parity)."""
    if not len(a):
        return
    p, rng = piece.people, piece.rng
    b = append(piece, a)
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
    others = np.ones(len(p["body"]), dtype=bool)
    others[a] = others[b] = False
    pair_body = free_bodies(
        np.sort(p["body"][others]), pair_body, pair_male, rng, step, piece.issued.get("body")
    )
    p["body"][a], p["body"][b] = pair_body[0::2], pair_body[1::2]
    p["student_no_body"][a], p["student_no_body"][b] = p["body"][a], p["body"][b]
    p["given"][b] = _different_given(piece, p["given"][a], p["male"][b])
    p["class_no"][b] = p["class_no"][a]
    piece.hard_negatives.append((a, b, kind))


def same_name_birth(piece: Piece, a: Rows, kind: str) -> None:
    """The same common name and birth day on two students far apart (other county and other
    household code), both IDs valid."""
    p, rng = piece.people, piece.rng
    k = piece.count[kind]
    offer = take(piece, max(20 * k, 200) if k else 0)
    b = np.full(len(a), -1, dtype=np.int64)
    used = np.zeros(len(offer), dtype=bool)
    school_county = piece.schools["county"][p["school"]]
    for i, row in enumerate(a):
        fit = ~used & (p["grade"][offer] == p["grade"][row])
        fit &= school_county[offer] != school_county[row]
        fit &= p["household"][offer] != p["household"][row]
        hit = np.flatnonzero(fit)
        if len(hit):
            used[hit[0]] = True
            b[i] = offer[hit[0]]
    piece.free[offer[~used]] = True
    a, b = a[b >= 0], b[b >= 0]
    if not len(a):
        return
    names = {sex: np.array(v) for sex, v in nm.COMMON_FULL_NAMES.items()}
    full = np.where(
        p["male"][a] == 1,
        names["1"][rng.integers(0, len(names["1"]), size=len(a))],
        names["2"][rng.integers(0, len(names["2"]), size=len(a))],
    )
    p["surname"][a] = np.array([x[0] for x in full])
    p["given"][a] = np.array([x[1:] for x in full])
    for key in ("surname", "given", "male", "sex_shown", "birth", "birth_shown"):
        p[key][b] = p[key][a]
    seq = 2 * rng.integers(0, 500, size=len(b)) + p["male"][b]
    body_b = id_body(p["household"][b], p["birth"][b], seq)
    others = np.ones(len(p["body"]), dtype=bool)
    others[b] = False
    p["body"][b] = free_bodies(
        np.sort(p["body"][others]), body_b, p["male"][b], rng, issued=piece.issued.get("body")
    )
    p["student_no_body"][b] = p["body"][b]
    piece.hard_negatives.append((a, b, kind))


def _different_given(piece: Piece, given: np.ndarray, male: np.ndarray) -> np.ndarray:
    fresh = given_names(piece.rng, male)
    for _ in range(20):
        same = fresh == given
        if not same.any():
            break
        fresh[same] = given_names(piece.rng, male[same])
    return fresh


# ----------------------------------------------------------------------------------------------
# duplicates, people pass: the second registration


def _register_again(piece: Piece, rows: Rows, kind: str, school: np.ndarray) -> Rows:
    """Copies of ``rows`` at ``school``, in one of the first three classes, with a temporary
    学籍号 (a second registration has not passed the national check); kept for the text pass."""
    copies = append(piece, rows)
    p = piece.people
    p["school"][copies] = school
    p["class_no"][copies] = 1 + piece.rng.integers(0, 3, size=len(copies))
    p["student_no_kind"][copies] = "L"
    piece.kept[kind] = copies
    return copies


def _moved_copies(piece: Piece, rows: Rows, kind: str) -> Rows:
    """Copies in the same school or, for half of them, another school of the same county."""
    school = piece.people["school"][rows].copy()
    move = piece.rng.random(len(rows)) < 0.5
    school[move] = other_school(piece, rows[move], same_county=True)
    copies = _register_again(piece, rows, kind, school)
    piece.duplicates.append((rows, copies, kind))
    return copies


def exact_same_school(piece: Piece, rows: Rows, kind: str) -> None:
    copies = _register_again(piece, rows, kind, piece.people["school"][rows])
    piece.duplicates.append((rows, copies, relation(piece, rows, copies)))


def exact_same_county(piece: Piece, rows: Rows, kind: str) -> None:
    """Another school of the county; the first ``triple`` of them a third time in another
    county (three pairs in the truth)."""
    copies = _register_again(piece, rows, kind, other_school(piece, rows, same_county=True))
    piece.duplicates.append((rows, copies, relation(piece, rows, copies)))
    if not piece.count["triple"]:
        return
    third_of = rows[: piece.count["triple"]]
    third = append(piece, third_of)
    p = piece.people
    p["school"][third] = other_school(piece, third_of, same_county=False)
    p["class_no"][third] = 1 + piece.rng.integers(0, 3, size=len(third))
    p["student_no_kind"][third] = "L"
    piece.duplicates.append((third_of, third, relation(piece, third_of, third)))
    second = copies[: piece.count["triple"]]
    piece.duplicates.append((second, third, relation(piece, second, third)))


def exact_cross_county(piece: Piece, rows: Rows, kind: str) -> None:
    copies = _register_again(piece, rows, kind, other_school(piece, rows, same_county=False))
    piece.duplicates.append((rows, copies, relation(piece, rows, copies)))


def moved_copy(piece: Piece, rows: Rows, kind: str) -> None:
    """A copy whose difference is planted in the text pass."""
    _moved_copies(piece, rows, kind)


def name_homophone(piece: Piece, rows: Rows, kind: str) -> None:
    """One given-name character replaced by a homophone (张伟/张玮)."""
    copies = _moved_copies(piece, rows, kind)
    given = piece.people["given"]
    given[copies] = [_homophone(piece.rng, g) for g in given[copies]]


def has_homophone(piece: Piece) -> np.ndarray:
    pattern = "[" + "".join(nm.HOMOPHONES) + "]"
    return pd.Series(piece.people["given"]).str.contains(pattern, regex=True).to_numpy()


def _homophone(rng: np.random.Generator, given: str) -> str:
    spots = [i for i, ch in enumerate(given) if ch in nm.HOMOPHONES]
    i = spots[int(rng.integers(0, len(spots)))]
    options = nm.HOMOPHONES[given[i]]
    return given[:i] + options[int(rng.integers(0, len(options)))] + given[i + 1 :]


def date_swap(piece: Piece, rows: Rows, kind: str) -> None:
    """Day and month swapped in 出生日期 only: the copy's birth date is wrong."""
    copies = _moved_copies(piece, rows, kind)
    p = piece.people
    y, m, d = ymd(p["birth"][copies])
    p["birth_shown"][copies] = day_number(y, d, m)
    piece.errors.append((copies, "birth_date", "BIRTHDATE_MISMATCH"))


def swappable(piece: Piece) -> np.ndarray:
    """Birth days whose day/month swap is another date inside the same grade window."""
    p = piece.people
    y, m, d = ymd(p["birth"])
    ok = (d <= 12) & (d != m)
    swapped = day_number(y, np.where(ok, d, 1), np.where(ok, m, 1))
    start, end = grade_window(p["grade"], piece.school_year)
    return ok & (swapped >= start) & (swapped <= end) & (p["birth"] >= start)


def missing_id(piece: Piece, rows: Rows, kind: str) -> None:
    """One side has 身份证件类型 Z (其他) and no number."""
    copies = _moved_copies(piece, rows, kind)
    piece.people["id_type"][copies] = "Z"


# ----------------------------------------------------------------------------------------------
# duplicates, text pass: the copy's ID or name as typed


def digit_typos(piece: Piece, copies: Rows, kind: str) -> None:
    """One sequence digit or the check character of the copy's ID mistyped."""
    ids = piece.text["id_number"]
    for row in copies:
        ids[row] = _digit_typo(piece, ids[row])
    piece.errors.append((copies, "id_number", "ID_CHECKSUM"))


def transpositions(piece: Piece, copies: Rows, kind: str) -> None:
    """Two adjacent digits of the copy's ID swapped."""
    ids = piece.text["id_number"]
    for row in copies:
        ids[row] = _transpose(piece, ids[row])
    piece.errors.append((copies, "id_number", "ID_CHECKSUM"))


def name_noise(piece: Piece, copies: Rows, kind: str) -> None:
    """A blank or U+3000 inside the copy's name or around it (only writing: normalised)."""
    if not len(copies):
        return
    names = piece.text["name"][copies]
    variant = np.arange(len(copies)) % 4
    inner = variant < 2
    blank = np.where(variant == 0, " ", "\u3000")
    names[inner] = [
        nme[:1] + b + nme[1:] for nme, b in zip(names[inner], blank[inner], strict=True)
    ]
    names[variant == 2] = np.char.add(names[variant == 2], " ")
    names[variant == 3] = np.char.add("\u3000", names[variant == 3])
    piece.text["name"][copies] = names
    piece.normalisable.append((copies, "name", "blank"))


def _digit_typo(piece: Piece, number: str) -> str:
    # Sequence digits only, parity kept: the typo changes nothing but the check.
    rng = piece.rng
    while True:
        pos = int(rng.choice([14, 15, 16, 17]))
        old = number[pos]
        if pos == 16:
            choices = [d for d in "0123456789" if d != old and int(d) % 2 == int(old) % 2]
        elif pos == 17:
            choices = [d for d in "0123456789X" if d != old]
        else:
            choices = [d for d in "0123456789" if d != old]
        new = choices[int(rng.integers(0, len(choices)))]
        typo = number[:pos] + new + number[pos + 1 :]
        if not iso7064.is_valid(typo) and claim(piece, typo):
            return typo


def _transpose(piece: Piece, number: str) -> str:
    options = []
    for i in (14, 15, 16):
        a, b = number[i], number[i + 1]
        if a == b or not (a.isdigit() and b.isdigit()):
            continue
        if i in (15, 16) and int(a) % 2 != int(b) % 2:
            continue  # would change the sex digit's parity
        options.append(i)
    if not options:
        return _digit_typo(piece, number)
    i = options[int(piece.rng.integers(0, len(options)))]
    swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    if not iso7064.is_valid(swapped) and claim(piece, swapped):
        return swapped
    return _digit_typo(piece, number)
