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
from xueji_quality.linkage.compare import LEVELS
from xueji_quality.linkage.consistency import conflict_texts
from xueji_quality.linkage.records import Records
from xueji_quality.linkage.text import chunked_text, code_texts, take_rows

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
    distinct, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    texts = [
        f"{str(y).zfill(4)}-{str(m).zfill(2)}-{str(d).zfill(2)}"
        for y, m, d in zip(
            year[first].tolist(), month[first].tolist(), day[first].tolist(), strict=True
        )
    ]
    return pa.array(texts, pa.string()).take(pa.array(inverse.astype(np.int64)))


def pair_reasons(records: Records, scored: pd.DataFrame) -> pa.Array:
    """Chinese reason of each compared pair."""
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


def _per_label(labels: np.ndarray, values: list, combine) -> tuple[np.ndarray, list, np.ndarray]:
    """combine(values of one label) for each run of equal labels (labels sorted)."""
    if len(labels) == 0:
        return labels, [], np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], len(labels)]
    combined = [combine(values[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    return labels[starts], combined, ends - starts


def _take(roster: pd.DataFrame, column: str, rows: np.ndarray) -> pd.Series:
    """Text of ``column`` at the positions ``rows`` (only those rows are converted)."""
    if column not in roster.columns:
        return pd.Series(pd.NA, index=range(len(rows)), dtype="string")
    values = roster[column]
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        taken = take_rows(chunked_text(values), rows).to_pylist()
    else:
        taken = values.iloc[rows].astype("string").to_numpy(dtype=object, na_value=None).tolist()
    return pd.Series(taken, dtype="string")


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
    _, member_labels = connected_components(graph, directed=False)
    record_ids = _take(roster, "record_id", members).to_numpy(dtype=object)
    frame = pd.DataFrame({"row": members, "label": member_labels, "record_id": record_ids})
    frame = frame.sort_values(["label", "record_id"], kind="stable")
    group_labels, group_ids, group_sizes = _per_label(
        frame["label"].to_numpy(), frame["record_id"].tolist(), group_id
    )
    ids = pd.Series(group_ids, index=group_labels)
    sizes = pd.Series(group_sizes, index=group_labels)

    pair_label = member_labels[node_a]
    texts = (pairs["record_id_a"] + "与" + pairs["record_id_b"] + "：" + pairs["reason"]).tolist()
    order = np.argsort(pair_label, kind="stable")
    reason_labels, reasons, _ = _per_label(pair_label[order], [texts[i] for i in order], "。".join)
    by_label = pd.DataFrame(
        {
            "label": pair_label,
            "is_id": (pairs["dup_class"] == "DUP_ID").to_numpy(),
            "score": pairs["score"].to_numpy(),
        }
    ).groupby("label", sort=False)
    group_class = by_label["is_id"].any().map({True: "DUP_ID", False: "DUP_FUZZY"})
    group_score = by_label["score"].min()
    group_reason = pd.Series(reasons, index=reason_labels)
    oversized = sizes > group_size_cap
    warn = pd.Series("", index=sizes.index)
    warn[oversized] = (
        "组内" + sizes[oversized].astype(str) + f"条记录，超过上限{group_size_cap}条，需人工复核："
    )
    group_reason = warn + group_reason.reindex(sizes.index)

    label = frame["label"].to_numpy()
    rows = frame["row"].to_numpy()

    def take(column: str) -> pd.Series:
        return _take(roster, column, rows)

    out = pd.DataFrame(
        {
            "group_id": pd.Series(ids.reindex(label).to_numpy(), dtype="string"),
            "record_id": pd.Series(frame["record_id"].to_numpy(), dtype="string"),
            "county_code": take("county_code"),
            "school_code": take("school_code"),
            "school_name": take("school_name"),
            "dup_class": pd.Series(group_class.reindex(label).to_numpy(), dtype="string"),
            "score": group_score.reindex(label).to_numpy(dtype=np.float64),
            "reason": pd.Series(group_reason.reindex(label).to_numpy(), dtype="string"),
        }
    )
    return out.sort_values(["group_id", "record_id"], kind="stable").reset_index(drop=True)[columns]
