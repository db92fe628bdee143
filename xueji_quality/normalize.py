"""Normalisation of roster values: what differs only in how it was typed is made identical.

Exports are typed by hand in many schools, on Chinese input methods and through Excel, so the
same value arrives in several spellings that are not errors:

- full-width ASCII (U+FF01-FF5E) and the ideographic space U+3000 from a Chinese input method;
- blanks, including U+3000, no-break spaces, zero-width characters (U+200B-U+200D, U+2060,
  U+FEFF) and left-to-right / right-to-left marks;
- a leading apostrophe, Excel's marker for "store this as text";
- ``x`` for the check character ``X`` of an ID number;
- dates as YYYY-MM-DD, YYYY/M/D, YYYY.M.D, YYYY年M月D日 (also 号), YYYYMMDD, with or without a
  time of day (``2012-03-04 00:00:00``, ``2012/3/4 0:00``: Excel's text of a date cell), dashes
  of other widths, and Excel serial numbers (see below);
- 男/女 for the sex code, the name of a 民族 for its GB 3304 code, the name of an ID type for its
  code;
- in 姓名: blanks between Han characters, and look-alikes of the middle dot ``·`` (U+00B7) of
  minority and foreign names (see ``middle_dots``, ``blanks_as_dots`` and ``join_name_parts``).

Dates are read only where the reading is certain. Day-first or month-first dates with the year
last (``04/03/2012``) are read when one of the first two numbers is above 12 (it can only be
the day) or both are equal; ``04/03/2012`` itself could be 4 March or 3 April and is kept as
typed. Two-digit years (``12-3-4``, ``120304``) are kept as typed: the century is a guess. A bare
number is an Excel serial (day 1 = 1900-01-01, counted from 1899-12-30 because of Excel's 1900
leap-year bug) only from 18264 (1950-01-01) to 60000 (2064-04-08): below that it is a
placeholder (0, 1) or a typo, not a date, and the problem list must show what was typed.
Impossible dates (0000-00-00, 2015-02-30) are kept as typed; placeholders that are real dates
(1900-01-01) are written as YYYY-MM-DD like any other. Judging them is validation's business
(出生日期无效, ``checks.birth_date_valid``), which therefore sees every value that is there:
nothing becomes missing here.

Blanks inside other names are left alone: a school or class name may hold them, and a blank
in 监护人姓名 may separate two guardians (张三 李四). Only
full-width ASCII is folded in names (NFKC would also rewrite CJK compatibility ideographs).
Unrecognised values are kept as given; validation reports them. Spreadsheet damage
(``4.40103E+17``) is kept as is: the fix is at the source file.

Every step works on the distinct values of a column (``pandas.factorize``) with vectorised string
operations, and reports which rows it changed, so ingest can record each change with its kind
(``fullwidth``, ``blank``, ``invisible``, ``text_marker``, ``lowercase_x``, ``uppercase``,
``date_format``, ``code_word``, ``middle_dot``, ``blank_as_dot``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import schema
from xueji_quality.date_spellings import extract, format_dates, format_months
from xueji_quality.standards import gb2260

STRING = pd.StringDtype("pyarrow")

FULLWIDTH_TABLE = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
FULLWIDTH_CHARS = "[\uff01-\uff5e\u3000]"
# Invisible characters: zero-width, word joiner, BOM, direction marks and embeddings.
INVISIBLE_CHARS = "[\u200b-\u200f\u2060\ufeff\u202a-\u202e\u2066-\u2069]"
BLANK_CHARS = (
    "[\\t\\n\\v\\f\\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    "\u200b-\u200f\u2060\ufeff\u202a-\u202e\u2066-\u2069]"
)

# Person names: the characters of a name (as the NAME_CHARS rule), the middle dot U+00B7 and
# what is typed for it: a full stop (also the ideographic 。 that a Chinese input method gives
# for "."), bullets, katakana middle dots, hyphenation point, dot operators.
HAN_CHARS = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f\u3007]"
MIDDLE_DOT = "\u00b7"
DOT_LOOKALIKES = "[.\u0387\u2022\u2024\u2027\u2219\u22c5\u3002\u30fb\ufe52\uff0e\uff61\uff65]"
_NAME_SEP = f"(?:{BLANK_CHARS}|{MIDDLE_DOT})"

IDENTIFIER_FIELDS = (
    "id_number",
    "student_no",
    "school_code",
    "phone",
    "household_region",
    "school_county",
    "export_key",
)
TEXT_FIELDS = ("name", "guardian_name", "school_name", "class_name", "grade")
# Fields whose values are nearly all different (factorising them costs more than it saves),
# with a regex for the values a normalisation step might change.
_ODD_IN_NAMES = f"{BLANK_CHARS}|{FULLWIDTH_CHARS}|{DOT_LOOKALIKES}"
MOSTLY_DISTINCT = {
    "id_number": "[^0-9A-Z]",
    "student_no": "[^0-9A-Z]",
    "phone": "[^0-9A-Z-]",
    "export_key": "[^0-9A-Za-z_-]",
    "name": _ODD_IN_NAMES,
}
CODE_FIELDS = {
    "sex": schema.SEX_CODES,
    "ethnicity": schema.ETHNICITY_CODES,
    "id_type": schema.ID_TYPE_CODES,
}

Step = tuple[str, Callable[[pd.Series], pd.Series]]
CHANGE_COLUMNS = ("row", "field", "kind", "original")


def _arrow(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    return pa.array(values.astype(STRING).array)


def contains(values: pd.Series, pattern: str, *, regex: bool = False) -> np.ndarray:
    """Boolean mask (numpy, missing = False) of values containing ``pattern``."""
    match = pc.match_substring_regex if regex else pc.match_substring
    found = pc.fill_null(match(_arrow(values), pattern), False)
    return found.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def differs(before: pd.Series, after: pd.Series) -> np.ndarray:
    """Boolean mask (numpy) of positions where two string columns hold different values."""
    a, b = _arrow(before), _arrow(after)
    changed = pc.fill_null(pc.not_equal(a, b), False)
    # A value that became missing, or appeared, is a change too.
    changed = pc.or_(changed, pc.not_equal(pc.is_null(a), pc.is_null(b)))
    return changed.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def to_halfwidth(values: pd.Series) -> pd.Series:
    """Full-width ASCII (U+FF01-FF5E) to ASCII and U+3000 to a space; nothing else changes."""
    hit = contains(values, FULLWIDTH_CHARS, regex=True)
    if not hit.any():
        return values
    out = values.copy()
    out[hit] = values[hit].str.translate(FULLWIDTH_TABLE)
    return out


def _replace(values: pd.Series, pattern: str, replacement: str, *, regex: bool) -> pd.Series:
    # Searching is cheaper than rewriting; most columns have nothing to rewrite.
    if not contains(values, pattern, regex=regex).any():
        return values
    return values.str.replace(pattern, replacement, regex=regex)


def remove_blanks(values: pd.Series) -> pd.Series:
    """Every blank removed, inner ones included (identifiers, codes, dates)."""
    return _replace(values, BLANK_CHARS, "", regex=True)


def remove_invisible(values: pd.Series) -> pd.Series:
    """Zero-width characters and direction marks removed (they cannot be seen, only compared)."""
    return _replace(values, INVISIBLE_CHARS, "", regex=True)


def strip_blanks(values: pd.Series) -> pd.Series:
    """Surrounding blanks removed; inner blanks kept (names must keep them for validation)."""
    return _replace(values, f"^{BLANK_CHARS}+|{BLANK_CHARS}+$", "", regex=True)


def strip_text_marker(values: pd.Series) -> pd.Series:
    """Excel's leading apostrophe (\"store as text\") removed."""
    return _replace(values, "^'+", "", regex=True)


def _replace_between(values: pd.Series, pattern: str, replacement: str) -> pd.Series:
    """``pattern`` (a character, a separator, a character) replaced twice: a one-character part
    between two separators (阿 依 古) is the right end of one match and the left of the next."""
    if not contains(values, pattern, regex=True).any():
        return values
    once = values.str.replace(pattern, replacement, regex=True)
    return once.str.replace(pattern, replacement, regex=True)


def middle_dots(values: pd.Series) -> pd.Series:
    """Look-alikes of the middle dot between two Han characters become ``·`` (U+00B7).

    阿依古丽•买买提, 阿依古丽・买买提, 阿依古丽.买买提 and 阿依古丽。买买提 are one name, typed on
    keyboards and input methods that put the dot elsewhere. A look-alike anywhere else (张伟.,
    a dot beside a digit or letter) is left as typed, for NAME_CHARS to report.
    """
    dots = f"(?:{DOT_LOOKALIKES}|{MIDDLE_DOT})"
    pattern = (
        f"({HAN_CHARS}{BLANK_CHARS}*){dots}*{DOT_LOOKALIKES}{dots}*({BLANK_CHARS}*{HAN_CHARS})"
    )
    return _replace_between(values, pattern, f"\\1{MIDDLE_DOT}\\2")


def blanks_as_dots(values: pd.Series) -> pd.Series:
    """Blanks between the parts of a long name become ``·``: 阿依古丽 买买提 is 阿依古丽·买买提.

    A blank is read as the middle dot when the whole name is Han parts separated by blanks (and
    dots), every part has two characters or more, and the name already holds a dot or has five
    characters or more. Han names have at most four characters in all but a handful of cases (a
    two-character surname and a two-character given name: 欧阳 娜娜), so a shorter name, or one
    with a one-character part (张 伟, 张 三丰, 诸葛 亮), is one name typed with a stray blank and
    ``join_name_parts`` removes the blank. The rare Han name of five characters or more typed
    with a blank (爱新觉罗 溥仪) gets a dot; the change is recorded as ``blank_as_dot`` so a
    clerk can see the reading and correct it.
    """
    between = contains(values, f"{HAN_CHARS}{BLANK_CHARS}+{HAN_CHARS}", regex=True)
    if not between.any():
        return values
    candidates = values[between]
    arrow = _arrow(candidates)
    parts_only = pc.fill_null(
        pc.match_substring_regex(arrow, f"^{HAN_CHARS}+(?:{_NAME_SEP}+{HAN_CHARS}+)+$"), False
    ).to_numpy(zero_copy_only=False)
    short_part = contains(candidates, f"(?:^|{_NAME_SEP}){HAN_CHARS}(?:{_NAME_SEP}|$)", regex=True)
    dotted = contains(candidates, MIDDLE_DOT)
    characters = pc.fill_null(pc.count_substring_regex(arrow, HAN_CHARS), 0)
    long_name = characters.to_numpy(zero_copy_only=False) >= 5
    chosen = parts_only & ~short_part & (dotted | long_name)
    if not chosen.any():
        return values
    out = values.copy()
    positions = np.flatnonzero(between)[chosen]
    out.iloc[positions] = (
        values.iloc[positions].str.replace(f"{_NAME_SEP}+", MIDDLE_DOT, regex=True).array
    )
    return out


def join_name_parts(values: pd.Series) -> pd.Series:
    """Blanks between two Han characters, or between a Han character and ``·``, removed:
    张 伟 and 张\u3000伟 are 张伟, 阿依古丽 · 买买提 is 阿依古丽·买买提. Blanks beside anything
    else (张 3, Li Ming) stay for NAME_CHARS to report."""
    joined = _replace_between(values, f"({HAN_CHARS}){BLANK_CHARS}+({HAN_CHARS})", "\\1\\2")
    return _replace_between(
        joined,
        f"({HAN_CHARS}){BLANK_CHARS}*{MIDDLE_DOT}{BLANK_CHARS}*({HAN_CHARS})",
        f"\\1{MIDDLE_DOT}\\2",
    )


def upper_x(values: pd.Series) -> pd.Series:
    """Lowercase x (the check character of an ID number) to X."""
    return _replace(values, "x", "X", regex=False)


def upper_ascii(values: pd.Series) -> pd.Series:
    """ASCII letters upper-cased (the G/J/L prefix and X of a national student number)."""
    if not contains(values, "[a-z]", regex=True).any():
        return values
    return values.str.upper()


def map_codes(table: dict[str, str]) -> Callable[[pd.Series], pd.Series]:
    """Values found in ``table`` replaced by their code; other values kept as given."""

    def step(values: pd.Series) -> pd.Series:
        mapped = values.map(table)
        return mapped.where(mapped.notna(), values).astype(STRING)

    return step


def remove_date_blanks(values: pd.Series) -> pd.Series:
    """Every blank removed, except that the blanks between a date and its time of day become one
    space (without it 2012/3/4 12:30 would read as day 41 at 2:30)."""
    if not contains(values, BLANK_CHARS, regex=True).any():
        return values
    out = remove_blanks(values)
    timed = contains(values, f"[0-9日号]{BLANK_CHARS}+[0-9]{{1,2}}:[0-9]", regex=True)
    if timed.any():
        parts = extract(
            values[timed], f"^(?P<date>.*?[0-9日号]){BLANK_CHARS}+(?P<time>[0-9]{{1,2}}:[0-9].*)$"
        )
        out[timed] = remove_blanks(parts["date"]) + " " + remove_blanks(parts["time"])
    return out


def field_steps(field: str) -> list[Step]:
    """The ordered normalisation steps of a canonical field (empty for fields left as given)."""
    identifier: list[Step] = [
        ("fullwidth", to_halfwidth),
        ("blank", remove_blanks),
        ("text_marker", strip_text_marker),
    ]
    if field == "id_number":
        return [*identifier, ("lowercase_x", upper_x)]
    if field == "student_no":
        return [*identifier, ("uppercase", upper_ascii)]
    if field in IDENTIFIER_FIELDS:
        return identifier
    if field == "name":
        return [
            ("fullwidth", to_halfwidth),
            ("invisible", remove_invisible),
            ("blank", strip_blanks),
            ("middle_dot", middle_dots),
            ("blank_as_dot", blanks_as_dots),
            ("blank", join_name_parts),
        ]
    if field in TEXT_FIELDS:
        return [
            ("fullwidth", to_halfwidth),
            ("invisible", remove_invisible),
            ("blank", strip_blanks),
        ]
    if field in CODE_FIELDS:
        return [*identifier, ("code_word", map_codes(CODE_FIELDS[field]))]
    dated: list[Step] = [
        ("fullwidth", to_halfwidth),
        ("blank", remove_date_blanks),
        ("text_marker", strip_text_marker),
    ]
    if field == "birth_date":
        return [*dated, ("date_format", format_dates)]
    if field == "enroll_date":
        return [*dated, ("date_format", format_months)]
    return []


def normalize_column(
    values: pd.Series, steps: list[Step], *, distinct: bool = True, candidates: str | None = None
) -> tuple[pd.Series, dict[str, np.ndarray]]:
    """Apply ``steps`` to a column; returns the new column and, per kind, a mask of changed rows.

    With ``distinct`` the steps run on the distinct values only, so a column of a million rows
    with a few thousand distinct dates costs a few thousand conversions. Columns whose values are
    nearly all different (ID numbers, names) skip that; for them ``candidates`` (a regex) picks
    the rows a step might change, and only those are worked on.
    """
    values = values.astype(STRING)
    size = len(values)
    if distinct:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        current = pd.Series(uniques, dtype=STRING)
    else:
        if candidates is None:
            codes = np.arange(size)
        else:
            codes = np.flatnonzero(contains(values, candidates, regex=True))
        current = values.iloc[codes].reset_index(drop=True)
    changed: dict[str, np.ndarray] = {}
    for kind, step in steps:
        after = step(current)
        if after is current:  # the step found nothing to change
            continue
        after = after.astype(STRING)
        changed_values = differs(current, after)
        if changed_values.any():
            if distinct:
                rows = changed_values[codes] & (codes >= 0)
            else:
                rows = np.zeros(size, dtype=bool)
                rows[codes[changed_values]] = True
            changed[kind] = changed[kind] | rows if kind in changed else rows
        current = after
    if distinct:
        taken = current.array.take(codes, allow_fill=True)
        return pd.Series(taken, index=values.index, dtype=STRING), changed
    out = values.copy()
    if changed:
        out.iloc[codes] = current.array
    return out, changed


def repeat(value: str, count: int) -> pd.arrays.ArrowStringArray:
    """A string array holding ``value`` ``count`` times, built without Python objects."""
    return pd.array(pa.repeat(pa.scalar(value, pa.large_string()), count), dtype=STRING)


def normalize_roster(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalise every canonical field of ``frame`` (other columns untouched).

    Returns the new frame and the changes: one row per (row, field, kind) with ``row`` the
    frame's index label and ``original`` the value as read.
    """
    out = frame.copy()
    parts: list[pd.DataFrame] = []
    for field in schema.FIELDS:
        if field not in frame.columns:
            continue
        steps = field_steps(field)
        if not steps:
            continue
        new, changed = normalize_column(
            frame[field],
            steps,
            distinct=field not in MOSTLY_DISTINCT,
            candidates=MOSTLY_DISTINCT.get(field),
        )
        out[field] = new
        for kind, mask in changed.items():
            parts.append(
                pd.DataFrame(
                    {
                        "row": frame.index.to_numpy()[mask],
                        "field": repeat(field, int(mask.sum())),
                        "kind": repeat(kind, int(mask.sum())),
                        "original": frame[field].astype(STRING).array[mask],
                    }
                )
            )
    changes = pd.concat(parts, ignore_index=True) if parts else empty_changes(frame.index.dtype)
    return out, changes.astype({"field": STRING, "kind": STRING, "original": STRING})


def empty_changes(row_dtype: object = "int64") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": pd.Series([], dtype=row_dtype),
            "field": pd.Series([], dtype=STRING),
            "kind": pd.Series([], dtype=STRING),
            "original": pd.Series([], dtype=STRING),
        }
    )


def _grade_key(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@cache
def _grade_table() -> dict[str, int]:
    return {_grade_key(k): v for k, v in schema.GRADE_LEVELS.items()}


def grade_levels(grades: pd.Series) -> pd.Series:
    """Grade level 1..12 (pandas Int8) from the grade text; <NA> where not recognised."""
    codes, uniques = pd.factorize(grades.astype(STRING), use_na_sentinel=True)
    table = _grade_table()
    # The trailing <NA> is what code -1 (a missing grade) takes.
    levels = pd.array([table.get(_grade_key(str(u))) for u in uniques] + [None], dtype="Int8")
    return pd.Series(levels.take(codes), index=grades.index)


@cache
def _county_lookup(province: str) -> tuple[dict[str, str], frozenset[str]]:
    """Name -> code for the counties of a province, with prefecture/province prefixes, and the
    names that two counties share (those cannot be mapped without a prefix)."""
    lookup = dict(gb2260.county_name_to_code(province))
    eras = gb2260.region_eras()
    rows = eras[eras["code"].str.startswith(province)]
    county_rows = rows[gb2260.ordinary_county(rows)]
    shared = county_rows.groupby("name")["code"].nunique()
    ambiguous = frozenset(shared[shared > 1].index) - set(lookup)
    try:
        province_name = gb2260.province_name(province)
    except ValueError:
        province_name = ""
    current = gb2260.counties(province)
    for code, name, prefecture in current.itertuples(index=False):
        for full in (
            f"{prefecture}{name}",
            f"{province_name}{prefecture}{name}",
            f"{province_name}{name}",
        ):
            lookup.setdefault(full, code)
    return lookup, ambiguous


def county_codes(values: pd.Series, province: str) -> tuple[pd.Series, pd.Series]:
    """The school's county code from a normalised 所在区县 value (code or name).

    Returns (code, reason): a 6-digit value is taken as the code (validation checks that it is
    a county of the province); a name is looked up among the province's counties. Where no code
    can be decided the code is <NA> and ``reason`` says why in Chinese; elsewhere reason is <NA>.
    """
    values = values.astype(STRING)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    lookup, ambiguous = _county_lookup(province)
    found: list[str | None] = []
    why: list[str | None] = []
    for value in uniques:
        text = str(value)
        if re.fullmatch(r"\d{6}", text):
            found.append(text)
            why.append(None)
        elif text in lookup:
            found.append(lookup[text])
            why.append(None)
        elif text == "":
            found.append(None)
            why.append("无法确定学校所在区县：所在区县为空")
        elif text in ambiguous:
            found.append(None)
            why.append(f"无法确定学校所在区县：'{text}' 在本省对应多个区县，请填写 6 位区县代码")
        else:
            found.append(None)
            why.append(f"无法确定学校所在区县：'{text}' 不是本省区县名称")
    found.append(None)
    why.append("无法确定学校所在区县：所在区县为空")
    code_series = pd.Series(pd.array(found, dtype=STRING).take(codes), index=values.index)
    reason_series = pd.Series(pd.array(why, dtype=STRING).take(codes), index=values.index)
    return code_series, reason_series
