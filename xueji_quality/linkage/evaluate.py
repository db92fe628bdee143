"""Evaluation of duplicate detection against known truth (precision, recall, F1).

Truth comes as pairs (record_id_a, record_id_b, kind). Both sides are read as equivalence
relations: a found pair is correct when its records are in one truth group (two copies of one
student are duplicates of each other even if the truth lists each only against the original), and
a truth pair is found when its records ended up in one found group. Hard negatives (twins, common
name with the same birth date) are counted when they ended up in one found group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def _component_of(pairs: pd.DataFrame, universe: pd.Index) -> pd.Series:
    """Component label of every record id in ``universe`` (singletons get their own label)."""
    a = universe.get_indexer(pairs["record_id_a"].astype(str))
    b = universe.get_indexer(pairs["record_id_b"].astype(str))
    n = len(universe)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return pd.Series(labels, index=universe)


def _ratio(numerator: int, denominator: int) -> float:
    return float(numerator) / denominator if denominator else 1.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def pairs_from_groups(duplicates: pd.DataFrame) -> pd.DataFrame:
    """Pairs (record_id_a < record_id_b) joining each group's records to its first record.

    Enough for ``evaluate``, which reads found pairs as groups: a run's duplicates.parquet can be
    scored against truth without the pair table.
    """
    frame = duplicates.sort_values(["group_id", "record_id"], kind="stable")
    first = frame.groupby("group_id", sort=False)["record_id"].transform("first")
    rest = frame[frame["record_id"] != first]
    first = first[rest.index]
    a = np.where(rest["record_id"].astype(str) < first.astype(str), rest["record_id"], first)
    b = np.where(rest["record_id"].astype(str) < first.astype(str), first, rest["record_id"])
    return pd.DataFrame(
        {
            "record_id_a": pd.Series(a, dtype="string"),
            "record_id_b": pd.Series(b, dtype="string"),
            "dup_class": pd.Series(rest["dup_class"].to_numpy(), dtype="string"),
            "score": rest["score"].to_numpy(dtype=np.float64),
            "reason": pd.Series(rest["reason"].to_numpy(), dtype="string"),
        }
    )


def evaluate(
    pairs: pd.DataFrame,
    truth_duplicates: pd.DataFrame,
    hard_negatives: pd.DataFrame | None = None,
) -> dict:
    """Pair precision, recall and F1 overall and per truth kind; hard-negative pairs linked."""
    frames = [pairs, truth_duplicates] + ([hard_negatives] if hard_negatives is not None else [])
    ids = pd.Index(
        pd.unique(
            np.concatenate(
                [
                    f[c].astype(str).to_numpy()
                    for f in frames
                    for c in ("record_id_a", "record_id_b")
                ]
            )
        )
    )
    found = _component_of(pairs, ids)
    truth = _component_of(truth_duplicates, ids)

    pa, pb = pairs["record_id_a"].astype(str), pairs["record_id_b"].astype(str)
    correct = truth[pa].to_numpy() == truth[pb].to_numpy()
    ta, tb = (
        truth_duplicates["record_id_a"].astype(str),
        truth_duplicates["record_id_b"].astype(str),
    )
    recalled = found[ta].to_numpy() == found[tb].to_numpy()

    precision = _ratio(int(correct.sum()), len(pairs))
    recall = _ratio(int(recalled.sum()), len(truth_duplicates))
    result: dict = {
        "found_pairs": len(pairs),
        "truth_pairs": len(truth_duplicates),
        "true_positives": int(correct.sum()),
        "false_positives": int((~correct).sum()),
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "per_kind": {},
    }
    if "kind" in truth_duplicates.columns:
        kinds = truth_duplicates["kind"].astype(str).to_numpy()
        for kind in sorted(set(kinds)):
            mask = kinds == kind
            hits = int(recalled[mask].sum())
            result["per_kind"][kind] = {
                "truth_pairs": int(mask.sum()),
                "found": hits,
                "recall": _ratio(hits, int(mask.sum())),
            }
    if hard_negatives is not None:
        ha, hb = (
            hard_negatives["record_id_a"].astype(str),
            hard_negatives["record_id_b"].astype(str),
        )
        linked = found[ha].to_numpy() == found[hb].to_numpy()
        kinds = (
            hard_negatives["kind"].astype(str).to_numpy()
            if "kind" in hard_negatives.columns
            else np.array(["hard_negative"] * len(hard_negatives))
        )
        result["hard_negatives"] = {
            kind: {"pairs": int((kinds == kind).sum()), "linked": int(linked[kinds == kind].sum())}
            for kind in sorted(set(kinds))
        }
        result["hard_negatives_linked"] = int(linked.sum())
    return result


def format_evaluation(result: dict) -> str:
    lines = [
        f"precision {result['precision']:.5f}  recall {result['recall']:.5f}  f1 {result['f1']:.5f}"
        f"  (found {result['found_pairs']}, truth {result['truth_pairs']},"
        f" false positives {result['false_positives']})"
    ]
    for kind, figures in result["per_kind"].items():
        lines.append(
            f"  {kind:<24} recall {figures['recall']:.5f}  ({figures['found']}/{figures['truth_pairs']})"
        )
    for kind, figures in result.get("hard_negatives", {}).items():
        lines.append(f"  hard negative {kind:<14} linked {figures['linked']}/{figures['pairs']}")
    return "\n".join(lines)
