"""Duplicate groups (重复组) and the reasons a clerk reads.

Linked pairs are joined into groups by connected components (scipy.sparse.csgraph). A group's id
is "G" + the first 12 hex digits of sha1 over its sorted record ids, so the same records give the
same id in every run. A group is DUP_ID (身份证号重复) when any of its links is an equal ID, else
DUP_FUZZY (疑似重复). Groups larger than the configured cap are kept but their reason says they
need a person's review: a chain of fuzzy links can join students who are not one person.

Pair reasons are built column-wise from the comparison levels: one clause per field that is not
simply equal, and the equal fields listed together (姓名、性别、出生日期、监护人相同).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from xueji_quality import schema
from xueji_quality.digests import digest_bytes, hex_texts
from xueji_quality.linkage.compare import LEVELS
from xueji_quality.linkage.consistency import conflict_texts
from xueji_quality.linkage.records import Records
from xueji_quality.linkage.text import chunked_text, code_texts, python_text, take_rows

_EQUAL_FIELDS = (("name", "姓名"), ("sex", "性别"), ("birth", "出生日期"), ("guardian", "监护人"))


def _lv(feature: str, name: str) -> int:
    return LEVELS[feature].index(name)


_NO_TEXT = pa.scalar(None, pa.string())


def _when(mask: np.ndarray, text: pa.Array | str) -> pa.Array:
    """``text`` where ``mask`` holds, else null: a clause the pair does not have."""
    return pc.if_else(pa.array(mask, pa.bool_()), text, _NO_TEXT)


def _concat(*parts: pa.Array | str) -> pa.Array:
    """Row-wise concatenation; null where any part is null, as pandas' ``+`` of strings."""
    return pc.binary_join_element_wise(*parts, "")


def _join(parts: list[pa.Array], sep: str) -> pa.Array:
    """Join clause columns row-wise, skipping null clauses ('' where every clause is null)."""
    return pc.binary_join_element_wise(*parts, sep, null_handling="skip")


def _date_text(records: Records, rows: np.ndarray) -> pa.Array:
    """YYYY-MM-DD of the birth dates at ``rows`` (0000-00-00 when unknown)."""
    year = records.birth_year[rows].astype(np.int64)
    month, day = records.birth_month[rows], records.birth_day[rows]
    key = (year << 16) | ((month.astype(np.int64) & 0xFF) << 8) | (day.astype(np.int64) & 0xFF)
    # A roster holds a few thousand distinct birth dates: each is formatted once.
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    texts = [
        f"{str(y).zfill(4)}-{str(m).zfill(2)}-{str(d).zfill(2)}"
        for y, m, d in zip(
            year[first].tolist(), month[first].tolist(), day[first].tolist(), strict=True
        )
    ]
    return pa.array(texts, pa.string()).take(pa.array(inverse.astype(np.int64)))


def pair_reasons(records: Records, scored: pd.DataFrame) -> pa.Array:
    """Chinese reason of each compared pair, as Arrow text."""
    a, b = scored["a"].to_numpy(), scored["b"].to_numpy()
    lv = {f: scored[f].to_numpy() for f in LEVELS}
    id_position = scored["id_position"].to_numpy().astype(int)
    position = pc.cast(pa.array(id_position, pa.int64()), pa.string())
    next_position = pc.cast(pa.array(id_position + 1, pa.int64()), pa.string())
    invalid_count = (~records.id_valid[a]).astype(int) + (~records.id_valid[b]).astype(int)
    who = pc.if_else(pa.array(invalid_count >= 2), "双方", "一方")

    clauses: list[pa.Array] = []
    id_level = lv["id"]
    no_text = ~records.id_present[a] | ~records.id_present[b]
    id_texts = [
        (id_level == _lv("id", "equal"), "身份证号相同"),
        (
            id_level == _lv("id", "one_digit"),
            _concat("身份证号第", position, "位不同（", who, "校验位错误）"),
        ),
        (
            id_level == _lv("id", "transposed"),
            _concat("身份证号仅第", position, "、", next_position, "位互换（", who, "校验位错误）"),
        ),
        (id_level == _lv("id", "via_student_no"), "学籍号所含身份证号与另一方身份证号相同"),
        (id_level == _lv("id", "both_valid_different"), "身份证号不同（双方均为有效号码）"),
        (
            id_level == _lv("id", "invalid_different"),
            _concat("身份证号不同（", who, "校验位错误）"),
        ),
        ((id_level == _lv("id", "missing")) & no_text, "一方无身份证号"),
        ((id_level == _lv("id", "missing")) & ~no_text, "一方身份证号格式错误"),
    ]
    id_text = pa.nulls(len(scored), pa.string())
    for mask, text in id_texts:
        id_text = pc.if_else(pa.array(mask), text, id_text)
    inconsistent = np.isin(
        id_level,
        [_lv("id", "valid_different_parts_agree"), _lv("id", "valid_different_inconsistent")],
    )
    if inconsistent.any():
        rows = np.flatnonzero(inconsistent)
        id_text = pc.replace_with_mask(
            id_text,
            pa.array(inconsistent),
            _inconsistent_id_text(records, a[rows], b[rows], id_level[rows]),
        )
    clauses.append(id_text)
    clauses.append(_when(lv["student_no"] == _lv("student_no", "equal"), "学籍号相同"))

    equal = [lv[f] == _lv(f, "equal") for f, _ in _EQUAL_FIELDS]
    equal_text = _join(
        [_when(m, label) for m, (_, label) in zip(equal, _EQUAL_FIELDS, strict=True)], "、"
    )
    clauses.append(_when(np.logical_or.reduce(equal), _concat(equal_text, "相同")))

    names_a = code_texts(records.names, records.name_code[a])
    names_b = code_texts(records.names, records.name_code[b])
    raw_a = code_texts(records.names_raw, records.name_raw_code[a])
    raw_b = code_texts(records.names_raw, records.name_raw_code[b])
    clauses.append(
        _when(
            lv["name"] == _lv("name", "equal_after_cleaning"),
            _concat("姓名仅空格或全角字符不同（", raw_a, "/", raw_b, "）"),
        )
    )
    pair_names = _concat("（", names_a, "/", names_b, "）")
    for level_name, label in (
        ("homophone", "姓名同音"),
        ("similar", "姓名相近"),
        ("different", "姓名不同"),
    ):
        clauses.append(_when(lv["name"] == _lv("name", level_name), _concat(label, pair_names)))
    dates = _concat("（", _date_text(records, a), "/", _date_text(records, b), "）")
    clauses.append(
        _when(lv["birth"] == _lv("birth", "swapped"), _concat("出生日期月日颠倒", dates))
    )
    clauses.append(_when(lv["birth"] == _lv("birth", "different"), _concat("出生日期不同", dates)))
    clauses.append(_when(lv["sex"] == _lv("sex", "different"), "性别不同"))
    for level_name, label in (
        ("equal_after_cleaning", "监护人姓名仅空格或全角字符不同"),
        ("homophone", "监护人同音"),
        ("similar", "监护人相近"),
        ("different", "监护人不同"),
    ):
        clauses.append(_when(lv["guardian"] == _lv("guardian", level_name), label))
    return _join(clauses, "；")


# What the two numbers of a valid_different_parts_agree pair share; 0 for the other levels.
_ID_PARTS_TEXT = (
    "",
    "（地址码、出生日期码相同，顺序码不同）",
    "（地址码、顺序码相同，出生日期码不同）",
    "（出生日期码、顺序码相同，地址码不同）",
)


def _inconsistent_id_text(
    records: Records, a: np.ndarray, b: np.ndarray, id_level: np.ndarray
) -> pa.Array:
    """Why a pair was linked despite two valid, different IDs: which parts of the numbers agree
    and what contradicts itself on the inconsistent side(s)."""
    conflict_a, conflict_b = records.id_conflict[a], records.id_conflict[b]
    who = pc.if_else(pa.array((conflict_a > 0) & (conflict_b > 0)), "双方", "一方")
    what = pa.array(conflict_texts(conflict_a | conflict_b), pa.string())
    differs = records.digits(a) != records.digits(b)
    address_same = ~differs[:, :6].any(axis=1)
    sequence_same = ~differs[:, 14:17].any(axis=1)
    parts = np.where(
        id_level == _lv("id", "valid_different_parts_agree"),
        np.select([~sequence_same, address_same], [1, 2], 3),
        0,
    )
    parts_text = pa.array(_ID_PARTS_TEXT, pa.string()).take(pa.array(parts.astype(np.int64)))
    return _concat("身份证号不同", parts_text, "，但", who, "信息自相矛盾（", what, "）")


def group_id(record_ids: list[str]) -> str:
    """Stable id of a group: 'G' + sha1 of the sorted record ids (first 12 hex digits)."""
    text = "\n".join(sorted(record_ids))
    return "G" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


_GROUP_ID_BYTES = 6  # 12 hex digits


def _group_ids(record_ids: pa.Array, offsets: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """:func:`group_id` of each group, its record ids ``record_ids[offsets[i]:offsets[i + 1]]``
    already sorted, and the same ids as int64 numbers that sort as the texts do."""
    texts = pc.binary_join(
        pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), record_ids), "\n"
    )
    head = digest_bytes(texts, hashlib.sha1, _GROUP_ID_BYTES)
    number = np.zeros(len(head), dtype=np.int64)
    for column in range(_GROUP_ID_BYTES):
        number = (number << 8) | head[:, column]
    # Fixed-width lowercase hex orders as the number does ('0'-'9' before 'a'-'f').
    ids = hex_texts(head, "G")
    return ids, number


def _roster_text(roster: pd.DataFrame, column: str, rows: np.ndarray) -> pa.Array:
    """Text of ``column`` at the positions ``rows`` (only those rows are converted)."""
    if column not in roster.columns:
        return pa.nulls(len(rows), pa.string())
    values = roster[column]
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return take_rows(chunked_text(values), rows).cast(pa.string())
    taken = values.iloc[rows].astype("string").to_numpy(dtype=object, na_value=None)
    return pa.array(taken, pa.string())


def _pair_text(pairs: pd.DataFrame, column: str) -> pa.Array:
    """A text column of the pairs table as Arrow string."""
    values = pa.array(pairs[column].array, pa.string())
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _per_group(texts: np.ndarray, label: np.ndarray) -> pd.Series:
    """A text column of one value per row from the values per group (str objects shared by the
    rows of a group, not copied per row)."""
    return pd.Series(texts[label], dtype="string")


def build_groups(
    roster: pd.DataFrame, pairs: pd.DataFrame, a: np.ndarray, b: np.ndarray, group_size_cap: int
) -> pd.DataFrame:
    """schema.DUPLICATE_COLUMNS rows, one per (group, record), from linked pairs (positions a, b)."""
    columns = list(schema.DUPLICATE_COLUMNS)
    if len(a) == 0:
        return pd.DataFrame(
            {c: pd.Series(dtype="float64" if c == "score" else "string") for c in columns}
        )
    # Components over the linked records only (not an n x n graph of the whole roster).
    members, inverse = np.unique(np.r_[a, b], return_inverse=True)
    m = len(members)
    node_a, node_b = inverse[: len(a)], inverse[len(a) :]
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (node_a, node_b)), shape=(m, m))
    group_count, member_labels = connected_components(graph, directed=False)
    # Members by group, then record id; a stable sort, so records sharing an id keep roster order.
    member_ids = _roster_text(roster, "record_id", members)
    by_group = pc.sort_indices(
        pa.table({"label": member_labels, "record_id": member_ids}),
        sort_keys=[("label", "ascending"), ("record_id", "ascending")],
    ).to_numpy()
    label, rows, record_ids = member_labels[by_group], members[by_group], member_ids.take(by_group)
    sizes = np.bincount(member_labels, minlength=group_count)
    group_ids, group_numbers = _group_ids(record_ids, np.r_[0, np.cumsum(sizes)])

    # Each group's pairs (in the order of ``pairs``) as one text.
    pair_label = member_labels[node_a]
    pair_order = np.argsort(pair_label, kind="stable")
    pair_counts = np.bincount(pair_label, minlength=group_count)
    pair_texts = _concat(
        _pair_text(pairs, "record_id_a"),
        "与",
        _pair_text(pairs, "record_id_b"),
        "：",
        _pair_text(pairs, "reason"),
    ).take(pair_order)
    pair_offsets = pa.array(np.r_[0, np.cumsum(pair_counts)], pa.int32())
    reasons = pc.binary_join(pa.ListArray.from_arrays(pair_offsets, pair_texts), "。")
    oversized = sizes > group_size_cap
    warn = _concat(
        "组内",
        pc.cast(pa.array(sizes), pa.string()),
        f"条记录，超过上限{group_size_cap}条，需人工复核：",
    )
    reasons = _concat(pc.if_else(pa.array(oversized), warn, ""), reasons)
    is_id = (pairs["dup_class"] == "DUP_ID").to_numpy()
    group_class = np.where(
        np.bincount(pair_label, weights=is_id, minlength=group_count) > 0, "DUP_ID", "DUP_FUZZY"
    ).astype(object)
    # fmin skips NaN as pandas' min does.
    group_score = np.fmin.reduceat(
        pairs["score"].to_numpy(dtype=np.float64)[pair_order], pair_offsets.to_numpy()[:-1]
    )

    # Rows by group id, then record id. Rows are in record-id order within each group already,
    # so distinct group ids need only the groups ordered; two groups of the same record ids (ids
    # repeated in the roster) share a group id, and their rows interleave by record id.
    group_order = np.argsort(group_numbers, kind="stable")
    if np.all(np.diff(group_numbers[group_order]) != 0):
        group_rank = np.empty(group_count, dtype=np.int64)
        group_rank[group_order] = np.arange(group_count)
        by_id = np.argsort(group_rank[label], kind="stable")
    else:
        by_id = pc.sort_indices(
            pa.table({"group_id": group_ids.take(label), "record_id": record_ids}),
            sort_keys=[("group_id", "ascending"), ("record_id", "ascending")],
        ).to_numpy()
    label, rows = label[by_id], rows[by_id]
    return pd.DataFrame(
        {
            "group_id": _per_group(group_ids.to_numpy(zero_copy_only=False), label),
            "record_id": python_text(record_ids.take(by_id)),
            "county_code": python_text(_roster_text(roster, "county_code", rows)),
            "school_code": python_text(_roster_text(roster, "school_code", rows)),
            "school_name": python_text(_roster_text(roster, "school_name", rows)),
            "dup_class": _per_group(group_class, label),
            "score": group_score[label],
            "reason": _per_group(reasons.to_numpy(zero_copy_only=False), label),
        }
    )[columns]
