"""Duplicate detection (查重) for student rosters: index → compare → classify → cluster.

recordlinkage is the frame, with plain tables between the steps: ``records.prepare_records``
turns the roster into integer codes; ``index.candidate_links`` runs the blocking passes declared
in config/linkage.json as index algorithms of a ``recordlinkage.Index`` (a MultiIndex of roster
positions); ``compare.compare_links`` runs one compare feature per field through
``recordlinkage.Compare`` (a DataFrame of discrete levels); ``classify.classify`` applies the
project's Fellegi-Sunter weights from config/linkage.json, the threshold and the equal-ID rule;
``cluster.build_groups`` forms connected components, stable group ids and Chinese reasons.

Finds the Ministry's class 1 (身份证号重复: one normalised ID in two or more records, in one school
or across schools and counties, dup_class DUP_ID) and class 3 (疑似重复, DUP_FUZZY: one-digit ID
typos and adjacent swaps, homophone names, stray blanks, day/month swaps, a missing ID carried by
name, sex, birth date and guardian). Twins and students who share a common name and birth date
but hold two valid, different IDs are not linked. Two valid, different IDs decide "two people"
only when each agrees with its record (known address code, date inside equal to a valid 出生日期,
sex digit equal to 性别, an age possible for the grade in the school year of ``as_of``):
otherwise the number may be made up or re-made, and the other fields decide.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.linkage.classify import check_blocking, classify
from xueji_quality.linkage.cluster import build_groups, pair_reasons
from xueji_quality.linkage.compare import LEVELS, compare_links
from xueji_quality.linkage.evaluate import evaluate, format_evaluation, pairs_from_groups
from xueji_quality.linkage.index import candidate_links
from xueji_quality.linkage.passes import LinkageConfigError, declared_passes
from xueji_quality.linkage.records import Records, prepare_records
from xueji_quality.linkage.text import python_text, take_rows
from xueji_quality.memory import release_unused

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "linkage.json"

# Roster columns linkage reads; a caller short of memory may pass only these.
COLUMNS_USED: tuple[str, ...] = (
    "record_id",
    "county_code",
    "name",
    "sex",
    "birth_date",
    "id_number",
    "student_no",
    "school_code",
    "school_name",
    "guardian_name",
    "household_region",
    "grade_level",
)

# Roster columns the duplicate groups show (:func:`build_groups`).
GROUP_COLUMNS: tuple[str, ...] = ("record_id", "county_code", "school_code", "school_name")

PAIR_COLUMNS: tuple[str, ...] = ("record_id_a", "record_id_b", "dup_class", "score", "reason")

__all__ = [
    "COLUMNS_USED",
    "DEFAULT_CONFIG",
    "LinkResult",
    "LinkageConfigError",
    "evaluate",
    "find_duplicates",
    "format_evaluation",
    "load_config",
    "pairs_from_groups",
]


@dataclass
class LinkResult:
    pairs: pd.DataFrame  # record_id_a, record_id_b (a < b), dup_class, score, reason
    duplicates: pd.DataFrame  # schema.DUPLICATE_COLUMNS, one row per (group, record)
    stats: dict = field(default_factory=dict)


def load_config(config_path: Path | str | None = None) -> dict:
    path = Path(config_path) if config_path is not None else DEFAULT_CONFIG
    return json.loads(path.read_text(encoding="utf-8"))


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="float64" if c == "score" else "string") for c in PAIR_COLUMNS}
    )


# Linked pairs whose reasons are written at a time (bounds the text columns held at once).
REASON_BATCH = 100_000


def _linked_pairs(records: Records, linked: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """PAIR_COLUMNS of the linked pairs (positions a, b in ``records``), in record-id order, and
    that order as positions in ``linked``."""
    left = take_rows(records.record_id, linked["a"].to_numpy())
    right = take_rows(records.record_id, linked["b"].to_numpy())
    # Arrow compares UTF-8 bytes, which orders valid text as Python's code-point comparison does.
    swap = pc.greater(left, right)
    record_id_a, record_id_b = pc.if_else(swap, right, left), pc.if_else(swap, left, right)
    reasons = pa.chunked_array(
        [
            pair_reasons(records, linked.iloc[start : start + REASON_BATCH].reset_index(drop=True))
            for start in range(0, len(linked), REASON_BATCH)
        ],
        type=pa.string(),
    )
    # Pairs in record-id order, so reasons and outputs do not depend on the row order of the file
    # (a stable sort: pairs of records sharing both ids keep the order they were found in).
    order = pc.sort_indices(
        pa.table({"a": record_id_a, "b": record_id_b}),
        sort_keys=[("a", "ascending"), ("b", "ascending")],
    ).to_numpy()
    if len(linked) == 0:
        return _empty_pairs(), order
    is_id = linked["id"].to_numpy()[order] == LEVELS["id"].index("equal")
    pairs = pd.DataFrame(
        {
            "record_id_a": python_text(record_id_a.take(order)),
            "record_id_b": python_text(record_id_b.take(order)),
            "dup_class": pd.Series(np.where(is_id, "DUP_ID", "DUP_FUZZY"), dtype="string"),
            "score": linked["score"].to_numpy(dtype=np.float64)[order],
            "reason": python_text(reasons.take(order)),
        }
    )
    return pairs, order


def find_duplicates(
    roster: pd.DataFrame, config_path: Path | None = None, as_of: date | str | None = None
) -> LinkResult:
    """Duplicate pairs and groups of a canonical roster (see contracts: RangeIndex, text columns).

    ``as_of`` is the run date (default today): its school year tells which ages are possible for
    a grade, one of the checks of whether a valid ID is consistent with its record.
    """
    config = load_config(config_path)
    source = str(config_path) if config_path is not None else str(DEFAULT_CONFIG)
    declared_passes(config, source)  # a configuration error before the roster is read
    check_blocking(config)
    if not roster.index.equals(pd.RangeIndex(len(roster))):
        roster = roster.reset_index(drop=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    # Reading the roster (a staged store's county files) leaves as much again in freed
    # buffers, which linkage's own peak would stack on.
    release_unused()
    records = prepare_records(roster, as_of, config.get("consistency"))
    # The groups need only these of the roster's columns; the compared ones live on in
    # ``records`` as their prepared forms, and a province's raw text would double the peak.
    roster = roster[list(GROUP_COLUMNS)]
    release_unused()
    inconsistent_ids = int(np.count_nonzero(records.id_conflict))
    timings["prepare"] = time.perf_counter() - clock
    clock = time.perf_counter()

    release_unused()
    candidates, stats = candidate_links(records, config, source)
    release_unused()
    timings["index"] = time.perf_counter() - clock
    clock = time.perf_counter()

    features = compare_links(records, candidates)
    del candidates
    timings["compare"] = time.perf_counter() - clock
    clock = time.perf_counter()

    scored = classify(features, config)
    del features
    linked = scored[scored["linked"]].reset_index(drop=True)
    del scored
    timings["classify"] = time.perf_counter() - clock
    clock = time.perf_counter()

    # From here on only the linked records matter: keep those, let the roster-length arrays go.
    roster_a, roster_b = linked["a"].to_numpy(), linked["b"].to_numpy()
    rows, local = np.unique(np.r_[roster_a, roster_b], return_inverse=True)
    records = records.subset(rows)
    release_unused()
    linked["a"], linked["b"] = local[: len(linked)], local[len(linked) :]
    pairs, order = _linked_pairs(records, linked)
    duplicates = build_groups(
        roster, pairs, roster_a[order], roster_b[order], int(config["group_size_cap"])
    )
    timings["cluster"] = time.perf_counter() - clock

    stats.update(
        {
            "records": len(roster),
            "inconsistent_valid_ids": inconsistent_ids,
            "linked_pairs": len(pairs),
            "groups": int(duplicates["group_id"].nunique()),
            "oversized_groups": int(
                (duplicates.groupby("group_id").size() > int(config["group_size_cap"])).sum()
            )
            if len(duplicates)
            else 0,
            "timings": timings,
        }
    )
    return LinkResult(pairs=pairs.reset_index(drop=True), duplicates=duplicates, stats=stats)
