"""The rows of a county (or school) list, shaped for writing: which problems and duplicate rows a
list gets, in which order, and what each contract column shows, as one object array of str per
column (the similarity score as float64). ID numbers and 学籍号 are masked here when asked.
:mod:`xueji_quality.reports.county_workbook` writes the arrays.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import schema, workbook
from xueji_quality.reports.county_sheets import SEVERITY_LABELS
from xueji_quality.reports.tables import text_array
from xueji_quality.rule_names import rule_names

# Excel refuses longer cell text.
CELL_MAX_CHARS = 32_767
MASK = "*" * 8
COUNTERPART_NOTE = "外区县记录，仅供核对，由所在区县处理"
OTHER_SCHOOL_NOTE = "外校记录，仅供核对，由所在学校处理"
ID_LAYOUT = r"\d{17}[\dX]"
STUDENT_NO_LAYOUT = r"[A-Z]\d{17}[\dX]"
# Any character but what Python's str.strip() removes from ASCII text.
_ASCII_NOT_SPACE = "[^\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f ]"


def mask_id_numbers(numbers: pd.Series, head: int = 6, layout: str = ID_LAYOUT) -> pd.Series:
    """A number of the standard ``layout``: first ``head`` characters, eight stars, last four.
    Anything else (spreadsheet damage, a digit missing or extra, a legacy 15-digit number): every
    digit a star, whatever its form, so no part of the number shows. Empty stays empty.

    >>> mask_id_numbers(pd.Series(["44010320120101001X", "5.20321E+17", "440103201201010"])).tolist()
    ['440103********001X', '*.*****E+**', '***************']
    """
    text = pa.chunked_array([text_array(numbers)], pa.string()).combine_chunks()
    if not pc.all(pc.string_is_ascii(text), min_count=0).as_py():
        return _mask_by_python(numbers, head, layout)
    # ASCII only, as numbers are: Arrow's regular expressions then mean what Python's do (\d is
    # a digit 0-9), in a few calls where pandas' string methods cost a county's list more.
    standard = pc.match_substring_regex(text, f"^(?:{layout})$").fill_null(False)
    kept = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(text, 0, head), MASK, pc.utf8_slice_codeunits(text, -4), ""
    )
    masked = pc.if_else(standard, kept, pc.replace_substring_regex(text, "[0-9]", "*"))
    # An empty value stays empty: stars would suggest a number that is not there. Blank is what
    # str.strip() empties: ASCII white space and the separators \x1c-\x1f.
    filled = pc.match_substring_regex(text, _ASCII_NOT_SPACE).fill_null(False)
    shown = pc.if_else(filled, masked, text).to_numpy(zero_copy_only=False)
    return pd.Series(shown, index=numbers.index, name=numbers.name, dtype="string")


def _mask_by_python(numbers: pd.Series, head: int, layout: str) -> pd.Series:
    """:func:`mask_id_numbers` through Python's string methods: for text beyond ASCII, where
    Python's ``\\d`` and white space (Unicode's) are not Arrow's."""
    text = numbers.astype("string")
    standard = text.str.fullmatch(layout).fillna(False).astype(bool)
    kept = text.str.slice(0, head) + MASK + text.str.slice(-4)
    starred = text.str.replace(r"[0-9]", "*", regex=True)
    masked = kept.where(standard, starred).where(text.notna(), pd.NA)
    return masked.where(text.fillna("").str.strip() != "", text).astype("string")


def mask_student_numbers(numbers: pd.Series) -> pd.Series:
    """学籍号 = a letter and an ID-like number: keep the letter and six, then as for IDs."""
    return mask_id_numbers(numbers, head=7, layout=STUDENT_NO_LAYOUT)


def _text(values: pd.Series) -> np.ndarray:
    """Object array of str for writing: <NA> -> '', cut to Excel's cell limit.

    The lengths are Arrow's: a list calls this some thirty times, and a pandas string method
    costs more to set up than a county's column takes to measure."""
    text = values.astype("string").to_numpy(dtype=object, na_value="")
    if len(text) == 0:
        return text
    arrow = pa.array(text, pa.string())
    if pc.max(pc.utf8_length(arrow)).as_py() > CELL_MAX_CHARS:
        cut = pc.utf8_slice_codeunits(arrow, 0, CELL_MAX_CHARS)
        text = cut.to_numpy(zero_copy_only=False).astype(object)
    return text


def _texts(columns: list[pd.Series]) -> list[np.ndarray]:
    """:func:`_text` of several columns, converted as one Arrow array: a county's duplicate
    list takes a dozen columns of a few hundred rows, where each column's own conversion cost
    more to set up than its rows take. A column holding anything but text (a number) goes
    through :func:`_text` alone, as pandas writes it."""
    objects = []
    for values in columns:
        if not (pd.api.types.is_object_dtype(values.dtype) or values.dtype == "string"):
            return [_text(values) for values in columns]
        objects.append(values.to_numpy(dtype=object))
    if not objects:
        return []
    joined = np.concatenate(objects)
    if pd.api.types.infer_dtype(joined, skipna=True) not in ("string", "empty"):
        return [_text(values) for values in columns]
    arrow = pa.array(joined, pa.string(), from_pandas=True).fill_null("")
    if len(arrow) and pc.max(pc.utf8_length(arrow)).as_py() > CELL_MAX_CHARS:
        arrow = pc.utf8_slice_codeunits(arrow, 0, CELL_MAX_CHARS)
    text = arrow.to_numpy(zero_copy_only=False)
    return np.split(text, np.cumsum([len(values) for values in objects])[:-1])


def _sort_key_frame(frame: pd.DataFrame) -> list[str]:
    frame["_not_graduating"] = ~frame["graduating"].fillna(False).astype(bool)
    return ["_not_graduating", "school_code", "grade_level", "class_name", "record_id"]


def prepare_problems(problems: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    """Problems with their record's school, grade, class, name and IDs, in list order."""
    extra = [c for c in ("problem_key", "status") if c in problems.columns]
    frame = problems[[*schema.PROBLEM_COLUMNS, *extra]].reset_index(drop=True)
    frame = frame.merge(context, on="record_id", how="left", sort=False)
    keys = _sort_key_frame(frame)
    frame = frame.sort_values(
        [*keys, "rule", "field"], na_position="last", kind="stable"
    ).reset_index(drop=True)
    return frame


def prepare_duplicates(duplicates: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    """Duplicate rows with their record's grade, class, name and IDs (school from the row)."""
    keep = [c for c in ("problem_key", "member", "status") if c in duplicates.columns]
    frame = duplicates[[*schema.DUPLICATE_COLUMNS, *keep]].reset_index(drop=True)
    extra = context.drop(columns=["school_code", "school_name"])
    frame = frame.merge(extra, on="record_id", how="left", sort=False)
    frame["graduating"] = frame["graduating"].fillna(False).astype(bool)
    return frame


def _status(frame: pd.DataFrame, show_status: bool) -> dict[str, np.ndarray]:
    if not show_status:
        return {}
    status = frame["status"] if "status" in frame.columns else frame["record_id"].where(False)
    return {"status": _text(status)}


def in_contract_order(
    values: Mapping[str, np.ndarray], columns: tuple[workbook.Column, ...]
) -> list[np.ndarray]:
    """One array per contract column, in the contract's order."""
    missing = [column.field for column in columns if column.field not in values]
    if missing:
        raise KeyError(f"no values for workbook columns {missing}")
    return [values[column.field] for column in columns]


def problem_values(
    frame: pd.DataFrame, mask_ids: bool, show_status: bool = False
) -> dict[str, np.ndarray]:
    """What each 错误学籍 / 提醒 column shows, by field: object arrays of str."""
    id_number = frame["id_number"]
    student_no = frame["student_no"]
    value = frame["value"].astype("string")
    if mask_ids:
        id_number = mask_id_numbers(id_number)
        student_no = mask_student_numbers(student_no)
        value = value.mask(frame["field"] == "id_number", mask_id_numbers(value))
        value = value.mask(frame["field"] == "student_no", mask_student_numbers(value))
    field_label = frame["field"].astype("string").map(schema.FIELDS).fillna(frame["field"])
    key = frame["problem_key"] if "problem_key" in frame.columns else frame["record_id"]
    blank = np.full(len(frame), "", dtype=object)
    return {
        "school_code": _text(frame["school_code"]),
        "school_name": _text(frame["school_name"]),
        "grade": _text(frame["grade"]),
        "class_name": _text(frame["class_name"]),
        "name": _text(frame["name"]),
        "id_number": _text(id_number),
        "student_no": _text(student_no),
        "record_id": _text(frame["record_id"]),
        "rule": _text(frame["rule"]),
        "rule_name": _text(rule_names(frame["rule"])),
        "severity": _text(frame["severity"].map(SEVERITY_LABELS).fillna(frame["severity"])),
        "field": _text(field_label),
        "value": _text(value),
        "message": _text(frame["message"]),
        "suggestion": _text(frame["suggestion"]),
        "action": blank,
        "new_value": blank,
        "note": blank,
        "problem_key": _text(key),
        **_status(frame, show_status),
    }


def problem_sheet_columns(
    frame: pd.DataFrame, mask_ids: bool, show_status: bool = False
) -> list[np.ndarray]:
    """The 错误学籍 columns as object arrays of str, in the order of
    :func:`xueji_quality.workbook.problem_columns` (状态 before 处理方式 with ``show_status``)."""
    values = problem_values(frame, mask_ids, show_status)
    return in_contract_order(values, workbook.problem_columns(show_status))


def _first_per_group(codes: np.ndarray, values: pa.Array, groups: int) -> np.ndarray:
    """Position in ``values`` of each group's smallest value (code point order, missing values
    last; the first such row on a tie), -1 for a group without rows."""
    order = pc.array_sort_indices(values, null_placement="at_end").to_numpy()
    sorted_codes = codes[order]
    present, first = np.unique(sorted_codes, return_index=True)
    found = np.full(groups, -1, dtype=np.int64)
    found[present] = order[first]
    return found


def county_duplicate_block(
    duplicates: pd.DataFrame, county_code: str, county_labels: dict[str, str]
) -> pd.DataFrame:
    """Rows of every group touching the county, ordered: groups with graduating students of the
    county first, then by the county's school; inside a group the county's own records first.

    ``_own`` marks the county's own records and ``_county_label`` names each record's county.
    The group facts are numpy arrays over group numbers and the order one Arrow sort: a county
    list is built once per county, and pandas' per-call overhead was most of its cost."""
    own_all = (duplicates["county_code"] == county_code).fillna(False).to_numpy(dtype=bool)
    group_all, _ = pd.factorize(duplicates["group_id"])
    groups = int(group_all.max()) + 2 if len(group_all) else 1  # the last slot: no group (-1)
    touched = np.zeros(groups, dtype=bool)
    touched[group_all[own_all]] = True
    keep = touched[group_all]
    block = duplicates[keep]
    own, codes = own_all[keep], group_all[keep]
    graduating = block["graduating"].to_numpy(dtype=bool)
    graduating_group = np.zeros(groups, dtype=bool)
    graduating_group[codes[own & graduating]] = True
    school = pa.chunked_array([text_array(block["school_code"])]).combine_chunks()
    own_at = np.flatnonzero(own)
    first = _first_per_group(codes[own_at], school.take(own_at), groups)
    at = first[codes]
    group_school = school.take(pa.array(np.where(at >= 0, own_at[at], 0), mask=at < 0))
    given = pa.Table.from_pandas(
        block[["group_id", "grade_level", "class_name", "record_id"]], preserve_index=False
    )
    sort_table = pa.table(
        {
            "_group_not_graduating": ~graduating_group[codes],
            "_group_school": group_school,
            "group_id": given["group_id"],
            "_not_own": ~own,
            "_not_graduating": ~graduating,
            "school_code": school,
            "grade_level": given["grade_level"],
            "class_name": given["class_name"],
            "record_id": given["record_id"],
        }
    )
    # Arrow's stable sort (strings in code point order, missing values last, as pandas sorts
    # them) instead of pandas factorising every key column of every county's block.
    order = pc.sort_indices(
        sort_table, sort_keys=[(key, "ascending", "at_end") for key in sort_table.column_names]
    ).to_numpy()
    block = block.take(order).reset_index(drop=True)
    block["_own"] = own[order]
    block["_county_label"] = block["county_code"].map(county_labels).fillna(block["county_code"])
    return block


def duplicate_sheet_columns(
    block: pd.DataFrame,
    mask_ids: bool,
    show_status: bool = False,
    county_code: str | None = None,
) -> list[np.ndarray]:
    """The 重复学籍 columns in the order of :func:`xueji_quality.workbook.duplicate_columns`
    (状态 before 处理方式 with ``show_status``); the score column stays float64.

    ``block["_own"]`` marks the list's own records: the others are counterparts, shown with
    their school, county, name and masked ID only, a note in 备注 saying who handles them and a
    问题编号 that says they are answered elsewhere. With ``county_code`` (a school's list), the
    county's records of other schools are counterparts too."""
    own = block["_own"].to_numpy(dtype=bool)
    other = ~own

    # The other records always show a masked number; the list's own as asked.
    id_number = block["id_number"].astype("string")
    masked = mask_id_numbers(id_number)
    student_no = block["student_no"]
    if mask_ids:
        student_no = mask_student_numbers(student_no)
    same_county = (block["county_code"] == county_code).fillna(False).to_numpy(dtype=bool)
    notes = np.full(len(block), "", dtype=object)
    notes[other] = np.where(same_county[other], OTHER_SCHOOL_NOTE, COUNTERPART_NOTE)
    with_members = "problem_key" in block.columns and "member" in block.columns
    key_parts = ["problem_key", "member"] if with_members else ["record_id"]
    # Every text column converted at once (_texts); a name with a leading _ is what the ID and
    # key columns are made of, not a column itself.
    shown = {
        "group_id": block["group_id"],
        "rule_name": rule_names(block["dup_class"]),
        "county": block["_county_label"],
        "school_code": block["school_code"],
        "school_name": block["school_name"],
        "grade": block["grade"],
        "class_name": block["class_name"],
        "name": block["name"],
        "id_number": masked,
        "_id_number": id_number,
        "student_no": student_no,
        "record_id": block["record_id"],
        "reason": block["reason"],
        **{f"_{part}": block[part] for part in key_parts},
    }
    text = dict(zip(shown, _texts(list(shown.values())), strict=True))
    # A counterpart shows its school, county, name and masked ID only.
    for field in ("grade", "class_name", "student_no", "record_id"):
        text[field] = np.where(other, "", text[field]).astype(object)
    if not mask_ids:
        text["id_number"] = np.where(own, text["_id_number"], text["id_number"]).astype(object)
    if with_members:
        sign = np.where(own, workbook.OWN_MEMBER, workbook.OTHER_MEMBER).astype(object)
        keys = text["_problem_key"] + sign + text["_member"]
    else:
        keys = text["_record_id"]
    values = {
        **{field: text[field] for field in shown if not field.startswith("_")},
        "score": block["score"].astype("float64").to_numpy(),
        "action": np.full(len(block), "", dtype=object),
        "new_value": np.full(len(block), "", dtype=object),
        "note": notes,
        "problem_key": keys,
        **_status(block, show_status),
    }
    return in_contract_order(values, workbook.duplicate_columns(show_status))
