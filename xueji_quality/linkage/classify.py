"""Fellegi-Sunter scoring (判定): comparison levels → match weight → probability → link.

For each field f and level l the model has m = P(level | same student) and u = P(level | two
students); the pair's match weight is the sum of log2(m/u) over its fields, and with the prior
probability that a candidate pair is a duplicate it becomes a probability. m, u, the prior and the
threshold live in config/linkage.json, not here.

The domain rule "both IDs valid and different" is a level of the ID field whose weight outweighs
every other agreement: MOD 11-2 catches every single-digit substitution and adjacent swap, so two
valid, different IDs are two people (twins, common names) — when each agrees with its record.
A valid ID that contradicts its own record (unknown address code, date inside not the 出生日期,
sex digit not the 性别, an age impossible for the grade) may be made up or re-made: such pairs
get levels of their own whose weights leave the decision to the other fields. Pairs sharing one
ID are always linked when ``link_equal_ids`` is set: the Ministry counts every repeated ID
(身份证号重复), whatever the other fields say.

``estimate_u`` measures u on random pairs; ``measure_m`` measures m on known duplicate pairs, as a
check of the documented priors. recordlinkage's ECMClassifier was tried on the one-hot levels of
the candidate pairs: with duplicates a small minority and levels strongly dependent (equal IDs
bring equal names and dates), it settles on a split that is not duplicate/non-duplicate, so m is
not fitted unsupervised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xueji_quality.linkage.compare import LEVELS, compare_pairs
from xueji_quality.linkage.passes import one_side_without_consistent_id
from xueji_quality.linkage.records import Records

FEATURES: tuple[str, ...] = tuple(LEVELS)


def weight_tables(config: dict) -> dict[str, np.ndarray]:
    """log2(m/u) per level, in LEVELS order, for every field."""
    tables = {}
    for feature, levels in LEVELS.items():
        params = config["comparisons"][feature]
        tables[feature] = np.array(
            [np.log2(params[lv]["m"] / params[lv]["u"]) for lv in levels], dtype=np.float64
        )
    return tables


def match_weights(features: pd.DataFrame, config: dict) -> np.ndarray:
    """Sum of log2(m/u) over the fields.

    For fields named in ``term_frequency`` the u of an agreement is the share of records holding
    the agreeing value when that is larger than the configured u (Fellegi-Sunter with
    frequency-based u): two records agreeing on a common name or guardian weigh less.
    """
    tables = weight_tables(config)
    total = np.zeros(len(features), dtype=np.float64)
    for feature in FEATURES:
        levels = features[feature].to_numpy()
        weights = tables[feature][levels]
        if feature in config.get("term_frequency", ()):
            params = config["comparisons"][feature]
            share = features[f"{feature}_share"].to_numpy()
            for name in ("equal", "equal_after_cleaning"):
                agree = levels == LEVELS[feature].index(name)
                u = np.maximum(params[name]["u"], share[agree])
                weights[agree] = np.log2(params[name]["m"] / u)
        total += weights
    return total


def probabilities(weights: np.ndarray, config: dict) -> np.ndarray:
    prior = float(config["prior_match_probability"])
    logit = weights + np.log2(prior / (1 - prior))
    return 1.0 / (1.0 + np.exp2(-np.clip(logit, -200, 200)))


def classify(features: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Adds weight, score (probability) and the boolean ``linked`` to the comparison table."""
    out = features.copy()
    out["weight"] = match_weights(features, config)
    out["score"] = probabilities(out["weight"].to_numpy(), config)
    linked = out["score"].to_numpy() >= float(config["threshold_probability"])
    if config.get("link_equal_ids", True):
        linked |= out["id"].to_numpy() == LEVELS["id"].index("equal")
    out["linked"] = linked
    return out


def check_blocking(config: dict) -> None:
    """A blocking rule may leave out pairs of two valid, consistent IDs only while the model
    vetoes them.

    ``one_side_without_consistent_id`` drops pairs whose IDs are both valid and consistent with
    their records: equal ones come from the id pass, different ones are two people because the
    both_valid_different level outweighs every other agreement. If the configured weights stop
    saying so, the rule would lose links. (Pairs with an inconsistent valid ID are formed, and
    their levels let the other fields decide.)
    """
    if not any(
        one_side_without_consistent_id(r) for r in config.get("blocking_rules", {}).values()
    ):
        return
    tables = weight_tables(config)
    best = tables["id"][LEVELS["id"].index("both_valid_different")]
    best += sum(float(tables[f].max()) for f in FEATURES if f != "id")
    prior = float(config["prior_match_probability"])
    threshold = float(config["threshold_probability"])
    reachable = best + np.log2(prior / (1 - prior)) >= np.log2(threshold / (1 - threshold))
    if reachable:
        raise ValueError(
            "config/linkage.json: a blocking rule has one_side_without_consistent_id, but two "
            "valid, consistent, different IDs can reach the threshold with these weights"
        )


def level_shares(features: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Share of each level per field (the u or m estimate of the pairs given)."""
    shares = {}
    for feature, levels in LEVELS.items():
        counts = np.bincount(features[feature].to_numpy(), minlength=len(levels))
        total = max(int(counts.sum()), 1)
        shares[feature] = {lv: float(c) / total for lv, c in zip(levels, counts, strict=True)}
    return shares


def estimate_u(records: Records, pairs: int = 200_000, seed: int = 0) -> dict:
    """u per level from uniformly random record pairs (duplicates among them are negligible)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, records.n, pairs)
    b = rng.integers(0, records.n, pairs)
    keep = a != b
    a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    return level_shares(compare_pairs(records, a, b))


def measure_m(features: pd.DataFrame, is_match: np.ndarray) -> dict:
    """m per level measured on pairs known to be duplicates (e.g. a generated roster's truth)."""
    return level_shares(features[np.asarray(is_match, dtype=bool)])
