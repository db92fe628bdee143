"""Normalisation of roster values: what differs only in how it was typed is made identical.

Exports are typed by hand in many schools, on Chinese input methods and through Excel, so the
same value arrives in several spellings that are not errors:

- full-width ASCII (U+FF01-FF5E) and the ideographic space U+3000 from a Chinese input method;
- blanks, including U+3000, no-break spaces, zero-width characters (U+200B-U+200D, U+2060,
  U+FEFF) and left-to-right / right-to-left marks;
- a leading apostrophe, Excel's marker for "store this as text";
- ``x`` for the check character ``X`` of an ID number;
- dates as YYYY-MM-DD, YYYY/M/D, YYYY.M.D, YYYYMMDD or Excel serial numbers (day 1 = 1900-01-01,
  counted from 1899-12-30 because of Excel's 1900 leap-year bug);
- 男/女 for the sex code, the name of a 民族 for its GB 3304 code, the name of an ID type for its
  code.

Names keep their inner blanks: a space inside a name is a problem validation must see. Only
full-width ASCII is folded in names (NFKC would also rewrite CJK compatibility ideographs).
Unrecognised values are kept as given; validation reports them. Spreadsheet damage
(``4.40103E+17``) is kept as is: the fix is at the source file.

Every step works on the distinct values of a column (``pandas.factorize``) with vectorised string
operations, and reports which rows it changed, so ingest can record each change with its kind
(``fullwidth``, ``blank``, ``invisible``, ``text_marker``, ``lowercase_x``, ``uppercase``,
``date_format``, ``code_word``).
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

from xueji_quality import regions, schema

STRING = pd.StringDtype("pyarrow")

FULLWIDTH_TABLE = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
FULLWIDTH_CHARS = "[\uff01-\uff5e\u3000]"
# Invisible characters: zero-width, word joiner, BOM, direction marks and embeddings.
INVISIBLE_CHARS = "[\u200b-\u200f\u2060\ufeff\u202a-\u202e\u2066-\u2069]"
BLANK_CHARS = (
    "[\\t\\n\\v\\f\\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    "\u200b-\u200f\u2060\ufeff\u202a-\u202e\u2066-\u2069]"
)
EXCEL_ORIGIN = np.datetime64("1899-12-30")
MAX_EXCEL_SERIAL = 60000  # 2064-04-08: later "serials" are something else

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
_ODD_IN_NAMES = f"^{BLANK_CHARS}|{BLANK_CHARS}$|{FULLWIDTH_CHARS}|{INVISIBLE_CHARS}"
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


def _date_parts(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """(year, month, day, excel serial) text parts of every recognised date spelling."""
    separated = values.str.extract(
        r"^(\d{4})[-/.年](\d{1,2})(?:[-/.月](\d{1,2})日?)?(?:[ T]?\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
    )
    compact = values.str.extract(r"^(\d{4})(\d{2})(\d{2})?$")
    serial = values.str.extract(r"^(\d{1,5})(?:\.\d+)?$")[0]
    year = separated[0].fillna(compact[0])
    month = separated[1].fillna(compact[1])
    day = separated[2].where(separated[0].notna(), compact[2])
    return year, month, day, serial


def _from_serial(serial: pd.Series) -> pd.Series:
    number = pd.to_numeric(serial, errors="coerce")
    number = number.where((number >= 1) & (number <= MAX_EXCEL_SERIAL))
    days = number.fillna(0).to_numpy(dtype="int64").astype("timedelta64[D]")
    dates = pd.Series((EXCEL_ORIGIN + days).astype("datetime64[s]"), index=serial.index)
    return dates.where(number.notna())


def parse_dates(values: pd.Series) -> pd.Series:
    """Timestamps of recognised full dates (NaT where the value is no valid date)."""
    year, month, day, serial = _date_parts(values)
    text = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2)
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    return dates.fillna(_from_serial(serial))


def format_dates(values: pd.Series) -> pd.Series:
    """Dates as YYYY-MM-DD where recognised; other values kept as given."""
    dates = parse_dates(values)
    return dates.dt.strftime("%Y-%m-%d").astype(STRING).where(dates.notna(), values)


def format_months(values: pd.Series) -> pd.Series:
    """Year and month as YYYY-MM (from YYYY-MM, YYYY/M, YYYYMM, full dates, serials)."""
    year, month, day, serial = _date_parts(values)
    text = year + "-" + month.str.zfill(2) + "-" + day.fillna("1").str.zfill(2)
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    dates = dates.fillna(_from_serial(serial))
    return dates.dt.strftime("%Y-%m").astype(STRING).where(dates.notna(), values)


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
    if field in TEXT_FIELDS:
        return [
            ("fullwidth", to_halfwidth),
            ("invisible", remove_invisible),
            ("blank", strip_blanks),
        ]
    if field in CODE_FIELDS:
        return [*identifier, ("code_word", map_codes(CODE_FIELDS[field]))]
    if field == "birth_date":
        return [*identifier, ("date_format", format_dates)]
    if field == "enroll_date":
        return [*identifier, ("date_format", format_months)]
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
    lookup = dict(regions.county_name_to_code(province))
    eras = regions.region_eras()
    rows = eras[eras["code"].str.startswith(province)]
    county_rows = rows[
        (rows["code"].str.slice(2, 4) != "00") & ~rows["code"].str.slice(4, 6).isin(["00", "01"])
    ]
    shared = county_rows.groupby("name")["code"].nunique()
    ambiguous = frozenset(shared[shared > 1].index) - set(lookup)
    try:
        province_name = regions.province_name(province)
    except ValueError:
        province_name = ""
    current = regions.counties(province)
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
