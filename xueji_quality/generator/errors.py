"""Planted field errors (one per chosen row, named by the rule code that must report it) and
harmless writing variants (values that differ only in writing and must not be reported).

Errors in what a student is (birth day, sex, 学籍号 body) are planted on the numbers, before the
text is rendered; errors in how a value is written are planted on the text. An ID number that
fails the national check leaves its student with a temporary L 学籍号.

Each function here is registered in ``build.PLANTED``; ``kind`` is the truth kind it writes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from xueji_quality import schema
from xueji_quality.generator.columns import cat, grade_window, ymd
from xueji_quality.generator.numbers import free_bodies, id_body
from xueji_quality.generator.people import stable_codes, unissued_codes
from xueji_quality.generator.piece import Piece, Rows, claim, temporary_numbers, unused
from xueji_quality.standards import iso7064, resident_id


def _cycle(rows: Rows, k: int) -> np.ndarray:
    """Variant 0 .. k-1 of each chosen row, in turn."""
    return np.arange(len(rows)) % k


def _temporary(piece: Piece, rows: Rows) -> None:
    # A number that fails the national check keeps its temporary L 学籍号.
    piece.text["student_no"][rows] = temporary_numbers(piece, rows)


# ----------------------------------------------------------------------------------------------
# numbers pass


def born_in_window(piece: Piece) -> np.ndarray:
    start, _ = grade_window(piece.people["grade"], piece.school_year)
    return piece.people["birth"] >= start


def birthdate_mismatch(piece: Piece, rows: Rows, kind: str) -> None:
    """出生日期 another day inside the same grade window, so the age rule has nothing to say."""
    if not len(rows):
        return
    p = piece.people
    start, end = grade_window(p["grade"], piece.school_year)
    span = end[rows] - start[rows]
    shift = piece.rng.integers(1, span)
    p["birth_shown"][rows] = start[rows] + (p["birth"][rows] - start[rows] + shift) % (span + 1)
    piece.errors.append((rows, "birth_date", kind))


def sex_mismatch(piece: Piece, rows: Rows, kind: str) -> None:
    p = piece.people
    p["sex_shown"][rows] = 1 + p["male"][rows]
    piece.errors.append((rows, "sex", kind))


def age_grade(piece: Piece, rows: Rows, kind: str) -> None:
    """Born a year or more before or after the grade's window (ID agreeing)."""
    if not len(rows):
        return
    p, rng = piece.people, piece.rng
    start, end = grade_window(p["grade"], piece.school_year)
    older = rng.random(len(rows)) < 0.7
    new_birth = np.where(
        older,
        start[rows] - rng.integers(380, 900, size=len(rows)),
        end[rows] + rng.integers(380, 700, size=len(rows)),
    )
    p["birth"][rows] = p["birth_shown"][rows] = new_birth
    seq = p["body"][rows] % 1000
    others = np.ones(len(p["body"]), dtype=bool)
    others[rows] = False
    p["body"][rows] = free_bodies(
        np.sort(p["body"][others]),
        id_body(p["household"][rows], new_birth, seq),
        p["male"][rows],
        rng,
        issued=piece.issued.get("body"),
    )
    p["student_no_body"][rows] = p["body"][rows]
    piece.errors.append((rows, "birth_date", kind))


def student_no_mismatch(piece: Piece, rows: Rows, kind: str) -> None:
    """G + a valid number of the same household and birth day that is not the student's."""
    if not len(rows):
        return
    p, rng = piece.people, piece.rng
    seq = 2 * rng.integers(0, 500, size=len(rows)) + p["male"][rows]
    other = id_body(p["household"][rows], p["birth"][rows], seq)
    other = free_bodies(
        np.sort(p["body"]), other, p["male"][rows], rng, issued=piece.issued.get("body")
    )
    p["student_no_body"][rows] = other
    piece.errors.append((rows, "student_no", kind))


# ----------------------------------------------------------------------------------------------
# text pass: the resident ID and the 学籍号


def id_format(piece: Piece, rows: Rows, kind: str) -> None:
    ids = piece.text["id_number"]
    for row, v in zip(rows, _cycle(rows, 5), strict=True):
        ids[row] = _bad_format(piece.rng, ids[row], int(v), piece.people["household"][row])
    _temporary(piece, rows)
    piece.errors.append((rows, "id_number", kind))


def _bad_format(rng: np.random.Generator, number: str, variant: int, household: int) -> str:
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


def damageable(piece: Piece) -> np.ndarray:
    """IDs a spreadsheet can visibly damage: their last three characters are not already 000."""
    tail = np.array(pd.Series(piece.text["id_number"]).str.slice(15).tolist(), dtype="U3")
    return np.char.isdigit(tail) & (tail != "000")


def spreadsheet_damage(piece: Piece, rows: Rows, kind: str) -> None:
    """The ID as a spreadsheet leaves it: 4.40106E+17, or its last three digits zeroed. The
    学籍号 was typed as text and still carries the intact number."""
    ids = piece.text["id_number"]
    for i, row in enumerate(rows):
        scientific, zeroed = resident_id.spreadsheet_forms(ids[row])
        if i % 2 == 1 and not iso7064.is_valid(zeroed) and claim(piece, zeroed):
            ids[row] = zeroed
        else:
            ids[row] = scientific
    piece.errors.append((rows, "id_number", kind))


def checksum(piece: Piece, rows: Rows, kind: str) -> None:
    ids = piece.text["id_number"]
    for row in rows:
        right = ids[row][17]
        # A wrong check character must not make the number end in 000: that is what a
        # spreadsheet leaves behind (ID_SPREADSHEET_DAMAGE), not a typing error.
        taboo = {right, "0"} if ids[row][15:17] == "00" else {right}
        wrong = [ch for ch in "0123456789X" if ch not in taboo]
        for _ in range(100):
            number = ids[row][:17] + wrong[int(piece.rng.integers(0, len(wrong)))]
            if claim(piece, number):
                break
        else:
            raise RuntimeError("could not find a free wrong check character")
        ids[row] = number
    _temporary(piece, rows)
    piece.errors.append((rows, "id_number", kind))


def impossible_date(piece: Piece, rows: Rows, kind: str) -> None:
    """A birth date that no calendar has (0230, 1301, ...) with a right check character."""
    ids = piece.text["id_number"]
    impossible = ("0230", "0231", "0431", "1301", "0010", "1132", "0600")
    made: set[str] = set()  # numbers that no other student holds, kept apart from each other
    for i, row in enumerate(rows):
        number = ids[row]
        body = number[:10] + impossible[i % len(impossible)] + number[14:17]
        body = unused(piece, body, made)
        ids[row] = body + iso7064.check_digit(body)
    _temporary(piece, rows)
    piece.errors.append((rows, "id_number", kind))


def region_unknown(piece: Piece, rows: Rows, kind: str) -> None:
    """An address code GB/T 2260 never issued, with a right check character."""
    ids, sno = piece.text["id_number"], piece.text["student_no"]
    unissued = unissued_codes(piece.province)
    made: set[str] = set()
    for row in rows:
        code = unissued[int(piece.rng.integers(0, len(unissued)))]
        body = unused(piece, code + ids[row][6:17], made)
        ids[row] = body + iso7064.check_digit(body)
        # The 学籍号 went through the national check with this number.
        sno[row] = "G" + ids[row]
    piece.errors.append((rows, "id_number", kind))


def id_missing(piece: Piece, rows: Rows, kind: str) -> None:
    piece.text["id_number"][rows] = ""
    _temporary(piece, rows)
    piece.errors.append((rows, "id_number", kind))


def student_no_format(piece: Piece, rows: Rows, kind: str) -> None:
    ids, sno = piece.text["id_number"], piece.text["student_no"]
    for row, v in zip(rows, _cycle(rows, 4), strict=True):
        number = ids[row]
        sno[row] = (number, "G" + number[:17], "G" + number + "1", "K" + number)[int(v)]
    piece.errors.append((rows, "student_no", kind))


# ----------------------------------------------------------------------------------------------
# text pass: codes, school, county, name, dates, phone


def _coded(field: str, wrong: tuple[str, ...]) -> Callable[[Piece, Rows, str], None]:
    """A planting of ``wrong`` values, in turn, in a code field."""

    def plant(piece: Piece, rows: Rows, kind: str) -> None:
        piece.text[field][rows] = np.array(wrong)[_cycle(rows, len(wrong))]
        piece.errors.append((rows, field, kind))

    return plant


sex_code = _coded("sex", ("3", "M", "5", "F"))
ethnicity_code = _coded("ethnicity", ("99", "汉人", "00", "57"))
id_type_code = _coded("id_type", ("3", "0", "B", "户籍证明"))


def school_code_format(piece: Piece, rows: Rows, kind: str) -> None:
    codes = piece.text["school_code"]
    for row, v in zip(rows, _cycle(rows, 3), strict=True):
        code = codes[row]
        codes[row] = (code[:9], code + "0", code[:5] + "O" + code[6:])[int(v)]
    piece.errors.append((rows, "school_code", kind))


def school_province(piece: Piece, rows: Rows, kind: str) -> None:
    codes = piece.text["school_code"]
    foreign = [code for code in ("43", "45", "36", "51", "35") if code != piece.province]
    for i, row in enumerate(rows):
        code = codes[row]
        codes[row] = code[:2] + foreign[i % len(foreign)] + code[4:]
    piece.errors.append((rows, "school_code", kind))


def county_unknown(piece: Piece, rows: Rows, kind: str) -> None:
    """所在区县 an unissued code of the province or a county of a neighbouring province."""
    province = piece.province
    neighbour = stable_codes("43" if province != "43" else "45")["code"].to_numpy()
    outside = np.concatenate([unissued_codes(province)[:5], neighbour[:5].astype(str)])
    outside = outside[piece.rng.permutation(len(outside))]
    piece.text["school_county"][rows] = outside[_cycle(rows, len(outside))]
    piece.errors.append((rows, "school_county", kind))


def name_chars(piece: Piece, rows: Rows, kind: str) -> None:
    """A digit, latin letter or ? in the name (NAME_CHARS); an inner blank, or '.' / '•' for a
    dotted name's '·', which normalisation fixes (only writing)."""
    names = piece.text["name"]
    variant = _cycle(rows, 4)
    for row, v in zip(rows, variant, strict=True):
        name = names[row]
        names[row] = (name + "2", name[:-1] + "A", name[:-1] + "?", name[:1] + " " + name[1:])[
            int(v)
        ]
    piece.errors.append((rows[variant != 3], "name", kind))
    piece.normalisable.append((rows[variant == 3], "name", "blank"))
    # Dotted names never enter the pool; a few of them are chosen here.
    dot_rows = piece.dot_rows
    planned = piece.count[kind]
    k = min(len(dot_rows), max(1, planned // 4) if planned else 0)
    dotted = np.sort(piece.rng.choice(dot_rows, size=k, replace=False))
    for i, row in enumerate(dotted):
        names[row] = names[row].replace("·", "." if i % 2 == 0 else "•")
    piece.normalisable.append((dotted, "name", "middle_dot"))


def required_missing(piece: Piece, rows: Rows, kind: str) -> None:
    for i, row in enumerate(rows):
        field = schema.REQUIRED_VALUES[i % len(schema.REQUIRED_VALUES)]
        piece.text[field][row] = ""
        piece.errors.append((np.array([row]), field, kind))


def enroll_date(piece: Piece, rows: Rows, kind: str) -> None:
    """入学年月 in the future or before the student was born."""
    if not len(rows):
        return
    rng = piece.rng
    future = rng.random(len(rows)) < 0.5
    year = np.where(
        future,
        piece.school_year + rng.integers(1, 3, size=len(rows)),
        ymd(piece.people["birth"][rows])[0] - rng.integers(1, 3, size=len(rows)),
    )
    piece.text["enroll_date"][rows] = cat(year.astype(str), "-09")
    piece.errors.append((rows, "enroll_date", kind))


def phone_format(piece: Piece, rows: Rows, kind: str) -> None:
    phones = piece.text["phone"]
    for row, v in zip(rows, _cycle(rows, 3), strict=True):
        phone = phones[row]
        phones[row] = (phone[:10], phone + "8", "12" + phone[2:])[int(v)]
    piece.errors.append((rows, "phone", kind))


# ----------------------------------------------------------------------------------------------
# text pass: values that differ only in writing


def ends_in_x(piece: Piece) -> np.ndarray:
    return np.char.endswith(piece.text["id_number"], "X")


def lowercase_x(piece: Piece, rows: Rows, kind: str) -> None:
    ids = piece.text["id_number"]
    ids[rows] = np.char.add(np.array([s[:17] for s in ids[rows]], dtype="U17"), "x")
    piece.normalisable.append((rows, "id_number", kind))


def blank(piece: Piece, rows: Rows, kind: str) -> None:
    """A blank or U+3000 before or after an ID, name, phone or school code."""
    fields = ("id_number", "name", "phone", "school_code")
    for i, row in enumerate(rows):
        field = fields[i % len(fields)]
        pad = (" ", "\u3000")[(i // 2) % 2]
        value = piece.text[field][row]
        piece.text[field][row] = pad + value if i % 2 else value + pad
        piece.normalisable.append((np.array([row]), field, kind))


def fullwidth(piece: Piece, rows: Rows, kind: str) -> None:
    ids = piece.text["id_number"]
    full = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
    ids[rows] = [s.translate(full) for s in ids[rows]]
    piece.normalisable.append((rows, "id_number", kind))
