"""Scoring a national run against a truth file of cross-province pairs.

A pair is unordered: (province, record key) of each side. The returns of every province list each
pair from their own side; both sides must agree (a pair found by one side only is counted in
``one_sided``). Truth files have the columns province_a, record_id_a, province_b, record_id_b
(and kind), as ``generator.national`` writes them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xueji_quality.national.link import RETURNS


def _pairs(a_province, a_key, b_province, b_key) -> pd.DataFrame:
    left = a_province.astype(str) + "|" + a_key.astype(str)
    right = b_province.astype(str) + "|" + b_key.astype(str)
    low = left.where(left < right, right)
    high = right.where(left < right, left)
    return pd.DataFrame({"low": low.to_numpy(), "high": high.to_numpy()})


def found_pairs(out_dir: Path | str) -> pd.DataFrame:
    """Every pair the returns files of ``out_dir`` list (low, high, match_class, match_keys,
    sides)."""
    frames = []
    for path in sorted((Path(out_dir) / RETURNS).glob("*.parquet")):
        returns = pd.read_parquet(path)
        province = pd.Series(path.stem, index=returns.index)
        pairs = _pairs(
            province, returns["record_key"], returns["other_province"], returns["other_record_key"]
        )
        frames.append(
            pairs.assign(
                match_class=returns["match_class"].to_numpy(),
                match_keys=returns["match_keys"].to_numpy(),
            )
        )
    if not frames:
        return pd.DataFrame(columns=["low", "high", "match_class", "match_keys", "sides"])
    both = pd.concat(frames, ignore_index=True)
    return (
        both.groupby(["low", "high"], as_index=False)
        .agg(
            match_class=("match_class", "first"),
            match_keys=("match_keys", "first"),
            sides=("match_class", "size"),
        )
        .reset_index(drop=True)
    )


def truth_pairs(path: Path | str) -> pd.DataFrame:
    truth = pd.read_csv(path, dtype=str)
    pairs = _pairs(
        truth["province_a"], truth["record_id_a"], truth["province_b"], truth["record_id_b"]
    )
    return pairs.assign(kind=truth["kind"].to_numpy()).drop_duplicates(["low", "high"])


def score(out_dir: Path | str, truth: Path | str, negatives: Path | str | None = None) -> dict:
    """Precision, recall, true/false pairs, recall per truth kind, negatives linked."""
    found = found_pairs(out_dir)
    real = truth_pairs(truth)
    joined = found.merge(real, on=["low", "high"], how="left", indicator=True)
    hits = int((joined["_merge"] == "both").sum())
    recalled = real.merge(found, on=["low", "high"], how="left", indicator=True)
    by_kind = (
        recalled.assign(hit=recalled["_merge"] == "both").groupby("kind")["hit"].mean().round(4)
    )
    result = {
        "found": len(found),
        "true": len(real),
        "hits": hits,
        "precision": hits / len(found) if len(found) else 1.0,
        "recall": hits / len(real) if len(real) else 1.0,
        "one_sided": int((found["sides"] < 2).sum()),
        "recall_by_kind": {str(k): float(v) for k, v in by_kind.items()},
        "false_pairs_by_class": {
            str(k): int(v)
            for k, v in joined[joined["_merge"] == "left_only"]["match_class"]
            .value_counts()
            .items()
        },
    }
    if negatives is not None:
        hard = truth_pairs(negatives)
        linked = hard.merge(found, on=["low", "high"], how="inner")
        result["negatives"] = len(hard)
        result["negatives_linked"] = len(linked)
        result["negatives_linked_by_kind"] = {
            str(k): int(v) for k, v in linked["kind"].value_counts().items()
        }
    return result


def found_by_kind(
    out_dir: Path | str, truth: Path | str, negatives: Path | str | None = None
) -> dict[str, dict[str, int]]:
    """Found pairs by what they are (a truth kind, a negative kind, or ``false``) and by the
    tokens that met."""
    found = found_pairs(out_dir)
    known = [truth_pairs(truth)]
    if negatives is not None:
        hard = truth_pairs(negatives)
        known.append(hard.assign(kind="negative:" + hard["kind"]))
    kinds = pd.concat(known, ignore_index=True).drop_duplicates(["low", "high"])
    joined = found.merge(kinds, on=["low", "high"], how="left")
    joined["kind"] = joined["kind"].fillna("false")
    counts = joined.groupby(["kind", "match_keys"]).size()
    result: dict[str, dict[str, int]] = {}
    for (kind, keys), count in counts.items():
        result.setdefault(str(kind), {})[str(keys)] = int(count)
    return result
