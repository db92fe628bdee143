"""What a Data Docs page shows of the records an expectation failed on: a sample of them, each
named by its 记录号 with its values masked as a county list masks them with ``--mask-ids``
(``id_masks``).

Great Expectations names the failing rows of a pandas batch by their frame index (here a chunk's
row position, meaningless to a reader) unless the result format names index columns
(``unexpected_index_column_names``); then the result's ``unexpected_index_list`` holds one dict
per failing row, the index columns beside the domain columns, and the Data Docs table of sampled
values gets a column per index column. GX builds those dicts with a lookup per failing row and
column over every failing row (all of them in COMPLETE mode, which validation needs for the
problem rows), and the values it puts beside them are the raw ones: full ID numbers, names.

So validation keeps its plain COMPLETE results (row positions, from which the problem rows come)
and the stored result a page is rendered from is rewritten in the shape GX gives for
``unexpected_index_column_names=["记录号"]``: the first :data:`SAMPLE_ROWS` failing rows, their
record keys and their values, masked. The result's counts and percentages stay GX's; the list of
every failing value (``unexpected_list``) is dropped, as it would put every bad ID number of a
chunk into the site.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import schema
from xueji_quality.id_masks import mask_id_numbers, mask_student_numbers

# GX's own default partial_unexpected_count.
SAMPLE_ROWS = 20
KEY_COLUMN = "record_id"
KEY_LABEL = schema.FIELDS["export_key"]
VALUE_LABEL = "取值"
MISSING = "（空）"
# Result entries that name failing rows or values: replaced by the sample, or dropped.
_ROW_ENTRIES = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_list",
    "unexpected_index_list",
    "unexpected_index_query",
    "unexpected_index_column_names",
)
# Letters of any script but Latin: a name shows its punctuation, spacing, digits and Latin
# letters (what NAME_CHARS is about), never its characters.
_LETTER = r"[^\P{L}A-Za-z]"


def _letters_starred(values: pd.Series) -> pd.Series:
    array = pa.array(values.astype("string").array, type=pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(pc.replace_substring_regex(array, _LETTER, "*")))


def _phone_masked(values: pd.Series) -> pd.Series:
    text = values.astype("string")
    return (text.str.slice(0, 3) + text.str.slice(3).str.replace(r"\d", "*", regex=True)).astype(
        "string"
    )


def masked(values: pd.Series, column: str) -> pd.Series:
    """The values of ``column`` as Data Docs may show them (positions kept, <NA> stays <NA>).

    ID numbers and 学籍号 as ``--mask-ids`` shows them in a county list (440103********001X);
    names with every letter a star but Latin ones (张 三 -> * *, 王五A -> **A); a phone number
    with its first three digits.
    Codes and dates are shown as they are.

    >>> masked(pd.Series(["44010320120101001X", None]), "id_number").tolist()
    ['440103********001X', <NA>]
    >>> masked(pd.Series(["艾力.买买提"]), "name").tolist()
    ['**.***']
    """
    values = values.astype("string").reset_index(drop=True)
    if column == "id_number":
        shown = mask_id_numbers(values)
    elif column == "student_no":
        shown = mask_student_numbers(values)
    elif column in ("name", "guardian_name"):
        shown = _letters_starred(values)
    elif column == "phone":
        shown = _phone_masked(values)
    else:
        shown = values
    return shown.astype("string").where(values.notna(), pd.NA)


# Columns the rules read that are derived from a field, named as the field.
_DERIVED_LABELS = {
    "grade_level": schema.FIELDS["grade"],
    "county_code": schema.FIELDS["school_county"],
}


def _label(column: str) -> str:
    return schema.FIELDS.get(column) or _DERIVED_LABELS.get(column, column)


def _shown_columns(
    columns: pd.DataFrame, rows: np.ndarray, names: set[str]
) -> dict[str, np.ndarray]:
    """Masked text of ``names`` at ``rows`` (sorted), missing values as :data:`MISSING`: one
    vectorised pass per column for every sample of a part, however many rules sample it."""
    shown = {}
    for column in names:
        if column in columns.columns:
            values = masked(columns[column].iloc[rows], column).fillna(MISSING)
            shown[column] = values.to_numpy(dtype=object)
        else:
            shown[column] = np.full(len(rows), MISSING, dtype=object)
    return shown


def _documented(
    result: dict[str, Any], at: np.ndarray, domain: list[str], shown: dict[str, np.ndarray]
) -> dict[str, Any]:
    kept = {key: value for key, value in result.items() if key not in _ROW_ENTRIES}
    if len(at) == 0:
        return kept
    if len(domain) == 1:
        values = shown[domain[0]][at].tolist()
    else:
        # At most SAMPLE_ROWS rows: the sample does not grow with the roster.
        values = [
            "；".join(f"{_label(column)}={shown[column][i]}" for column in domain) for i in at
        ]
    keys = shown[KEY_COLUMN][at].tolist()
    index_list = [{VALUE_LABEL: v, KEY_LABEL: k} for v, k in zip(values, keys, strict=True)]
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return {
        **kept,
        "partial_unexpected_list": values,
        "partial_unexpected_counts": [
            {"value": v, "count": n} for v, n in sorted(counts.items(), key=lambda c: -c[1])
        ],
        "partial_unexpected_index_list": index_list,
        "unexpected_index_list": index_list,
        "unexpected_index_column_names": [KEY_LABEL],
    }


def documented_results(
    outcomes: list[tuple[dict[str, Any], np.ndarray, list[str]]],
    columns: pd.DataFrame,
    limit: int = SAMPLE_ROWS,
) -> list[dict[str, Any]]:
    """GX expectation results as their Data Docs pages should render them.

    Each outcome is a GX result dict, the positions in ``columns`` of every row that failed
    (in row order) and the expectation's domain columns; ``columns`` carries those columns and
    ``record_id``. Counts and percentages are kept; the failing values and rows become a
    sample of the first ``limit`` rows, each named by its 记录号, values masked
    (:func:`masked`), in the shape GX gives for ``unexpected_index_column_names``.
    """
    samples = [np.asarray(rows[:limit], dtype=np.int64) for _, rows, _ in outcomes]
    union = np.unique(np.concatenate([np.zeros(0, dtype=np.int64), *samples]))
    names = {KEY_COLUMN} | {
        column for _, rows, domain in outcomes if len(rows) for column in domain
    }
    shown = _shown_columns(columns, union, names)
    return [
        _documented(result, np.searchsorted(union, sample), domain, shown)
        for (result, _, domain), sample in zip(outcomes, samples, strict=True)
    ]
