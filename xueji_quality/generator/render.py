"""The people of a piece written the way exports show them, and the finished roster with truth.

``render`` turns the numeric columns into text (codes or words, mixed date spellings, the
学籍号 of each kind); ``finish`` puts the rows in export order (county, school, grade, class),
gives them their 记录号 and turns what was planted into the truth tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from xueji_quality import schema
from xueji_quality.generator import names as nm
from xueji_quality.generator.columns import (
    ascii_text,
    cat,
    digits,
    render_dates,
    render_months,
)
from xueji_quality.generator.numbers import distinct, id_body, id_text
from xueji_quality.generator.people import (
    CN_NUMERALS,
    STAGE_FIRST_GRADE,
    STAGE_OF_GRADE,
)
from xueji_quality.generator.piece import Cells, Pairs, Piece, temporary_numbers

_GRADE_TEXT = {g: f"{CN_NUMERALS[g - 1]}年级" for g in range(1, 7)} | {
    10: "高一",
    11: "高二",
    12: "高三",
}
_JUNIOR_TEXT = ({7: "初一", 8: "初二", 9: "初三"}, {7: "七年级", 8: "八年级", 9: "九年级"})
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


@dataclass(frozen=True)
class GeneratedRoster:
    """A roster export (Chinese headers, text only) and the truth about it."""

    roster: pd.DataFrame
    truth_duplicates: pd.DataFrame
    truth_errors: pd.DataFrame
    truth_normalisable: pd.DataFrame
    truth_hard_negatives: pd.DataFrame


def render(piece: Piece) -> None:
    """Fill ``piece.text``: every field of the export as text, by canonical field name."""
    p, s, rng = piece.people, piece.schools, piece.rng
    county_table = piece.county_table
    n = len(p["body"])
    school = p["school"]
    grade = p["grade"]
    text = piece.text
    text["name"] = cat(p["surname"], p["given"]).astype("U14")
    sex_word = rng.random(n) < 0.3
    text["sex"] = np.where(
        sex_word, np.where(p["sex_shown"] == 1, "男", "女"), p["sex_shown"].astype(str)
    ).astype("U2")
    birth_style = rng.choice(4, size=n, p=[0.55, 0.2, 0.2, 0.05])
    text["birth_date"] = render_dates(p["birth_shown"], birth_style).astype("U12")
    eth_names = np.array([nm.ETHNICITY_NAMES[c] for c in sorted(nm.ETHNICITY_NAMES)])
    eth_codes = np.array(sorted(nm.ETHNICITY_NAMES))
    eth_word = eth_names[np.searchsorted(eth_codes, p["ethnicity"])]
    text["ethnicity"] = np.where(rng.random(n) < 0.4, eth_word, p["ethnicity"]).astype("U4")
    type_word = np.array([_ID_TYPE_NAMES[t] for t in "1678AZ"])[
        np.searchsorted(np.array(list("1678AZ")), p["id_type"])
    ]
    text["id_type"] = np.where(rng.random(n) < 0.3, type_word, p["id_type"]).astype("U12")

    ids = id_text(p["body"]).astype("U20")
    _foreign_numbers(piece, ids)
    text["id_number"] = ids

    county_code = piece.county_codes
    school_county = s["county"][school]
    text["student_no"] = _student_numbers(piece, county_code[school_county])
    text["school_code"] = s["code"][school].astype("U12")
    text["school_name"] = s["name"][school]
    # Wide enough for the longest county name (连山壮族瑶族自治县 is 9 characters).
    county_text = county_code[school_county].astype("U32")
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
    stage = STAGE_OF_GRADE[grade]
    enroll_year = piece.school_year - (grade - STAGE_FIRST_GRADE[stage])
    enroll_style = rng.choice(5, size=n, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    text["enroll_date"] = render_months(
        enroll_year, np.full(n, 9, dtype=np.int64), enroll_style
    ).astype("U12")
    text["household_region"] = p["household"].astype("U6")
    text["guardian_name"] = p["guardian"].astype("U8")
    text["phone"] = p["phone"].astype("U12")


def _student_numbers(piece: Piece, school_county_code: np.ndarray) -> np.ndarray:
    """学籍号: G + ID body, L temporary numbers, J + a self code of school county and birth."""
    p, rng = piece.people, piece.rng
    kind = p["student_no_kind"]
    student_no = np.char.add("G", id_text(p["student_no_body"])).astype("U20")
    sel = np.flatnonzero(kind == "L")
    student_no[sel] = temporary_numbers(piece, sel)
    sel = kind == "J"
    if sel.any():
        base = id_body(school_county_code[sel].astype(np.int64), p["birth"][sel], 0)
        tail = rng.integers(0, 1000, size=int(sel.sum()))
        self_code = distinct(base, tail, piece.issued.get("J"), rng, 1000)
        piece.issued.add("J", self_code)
        student_no[sel] = np.char.add("J", id_text(self_code))
    return student_no


def _foreign_numbers(piece: Piece, ids: np.ndarray) -> None:
    """Numbers of non-resident documents; 其他 (Z) leaves the number empty."""
    id_type, rng = piece.people["id_type"], piece.rng
    eight = rng.integers(0, 10**8, size=len(ids))
    prefix = {"6": "H", "7": "M", "8": "", "A": "E"}
    for i, (code, letter) in enumerate(prefix.items()):
        sel = id_type == code
        base = np.full(int(sel.sum()), i * 10**8, dtype=np.int64)
        value = distinct(base, eight[sel], piece.issued.get("foreign"), rng, 10**8)
        piece.issued.add("foreign", value)
        ids[sel] = np.char.add(letter, ascii_text(digits(value - base, 8)))
    ids[id_type == "Z"] = ""


def finish(piece: Piece, first_key: int = 1, key_width: int | None = None) -> GeneratedRoster:
    """The roster in export order with keys R<first_key>…, and the truth tables."""
    p, text = piece.people, piece.text
    n = len(p["body"])
    # Exports list students by county, school, grade and class.
    school_rank = np.argsort(np.argsort(piece.schools["code"], kind="stable"))
    county = piece.schools["county"][p["school"]]
    keys = (piece.rng.random(n), p["class_no"], p["grade"], school_rank[p["school"]], county)
    order = np.lexsort(keys)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    width = key_width or max(7, len(str(n)))
    key_matrix = np.empty((n, width + 1), dtype=np.uint8)
    key_matrix[:, 0] = ord("R")
    key_matrix[:, 1:] = digits(np.arange(first_key, first_key + n), width)
    key = ascii_text(key_matrix)
    record = key[position]  # record id of each built row

    columns = {schema.FIELDS["export_key"]: pa.array(key)}
    arrow_order = pa.array(order)
    for field in _FIELD_ORDER:
        if field != "export_key":
            columns[schema.FIELDS[field]] = pa.array(text.pop(field)).take(arrow_order)
    frame = pa.table(columns).to_pandas(types_mapper=_STRING_TYPES.get)
    return GeneratedRoster(
        roster=frame,
        truth_duplicates=_pairs(piece.duplicates, record),
        truth_errors=_cells(piece.errors, record),
        truth_normalisable=_cells(piece.normalisable, record),
        truth_hard_negatives=_pairs(piece.hard_negatives, record),
    )


def _pairs(parts: list[Pairs], record: np.ndarray) -> pd.DataFrame:
    columns = ["record_id_a", "record_id_b", "kind"]
    if not parts:
        return pd.DataFrame(columns=columns, dtype="string")
    both = pd.concat(
        [pd.DataFrame({"a": record[a], "b": record[b], "kind": k}) for a, b, k in parts],
        ignore_index=True,
    )
    a, b = both["a"].to_numpy(dtype=str), both["b"].to_numpy(dtype=str)
    lo, hi = np.where(a < b, a, b), np.where(a < b, b, a)
    out = pd.DataFrame({"record_id_a": lo, "record_id_b": hi, "kind": both["kind"].to_numpy()})
    return out.sort_values(columns[:2], ignore_index=True).astype("string")


def _cells(parts: list[Cells], record: np.ndarray) -> pd.DataFrame:
    frames = [
        pd.DataFrame({"record_id": record[rows], "field": field, "kind": kind})
        for rows, field, kind in parts
        if len(rows)
    ]
    if not frames:
        return pd.DataFrame(columns=["record_id", "field", "kind"], dtype="string")
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["record_id", "field"], ignore_index=True).astype("string")
