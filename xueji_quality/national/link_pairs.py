"""Candidate pairs and decisions of the national linkage, one partition at a time on a worker.

``pairs_in_partition`` turns a partition of token rows (every row of each of its tokens) into
candidate pairs of records from different provinces with the bits of the kinds that met and
how many records nationally hold the name and family tokens they met on (the run sizes: a
partition holds every row of each of its tokens, so a run's length is the token's national
count); ``decide`` ORs the bits of each pair, keeps the smallest counts, and keeps the
duplicates (class ``id`` or ``name``) as ``MissingIdRule`` says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xueji_quality.national.link_tokens import (
    KIND_FAMILY,
    KIND_ID,
    KIND_NAME,
    KIND_NAMES,
    KIND_NEAR,
    KIND_READING,
    ROW_BITS,
)
from xueji_quality.national.tokens import ID_NONE, ID_VALID

BIT_ID, BIT_NEAR, BIT_NAME, BIT_READING, BIT_FAMILY, BIT_FAMILY_COUNTY = 1, 2, 4, 8, 16, 32
BITS = tuple((1 << kind, name) for kind, name in enumerate(KIND_NAMES))
# The bit of a pair of token rows of one kind (the id space: id/id gives BIT_ID, else BIT_NEAR).
_KIND_BIT = np.array([bit for bit, _ in BITS], dtype=np.uint8)
# Kinds that carry a reading of the name: the family tokens hold the common one.
_NAMED = BIT_NAME | BIT_READING | BIT_FAMILY | BIT_FAMILY_COUNTY
# Run size of a pair that did not meet on that kind.
NOT_MET = np.iinfo(np.uint32).max
CLASS_ID, CLASS_NAME = 1, 2
CLASS_NAMES = {CLASS_ID: "id", CLASS_NAME: "name"}
# A run of more equal tokens than this is a placeholder, not a student: not expanded.
BLOCK_CAP = 50
PAIR_META = pd.DataFrame(
    {
        "a": pd.Series(dtype=np.int64),
        "b": pd.Series(dtype=np.int64),
        "bits": pd.Series(dtype=np.uint8),
        "state_a": pd.Series(dtype=np.int8),
        "state_b": pd.Series(dtype=np.int8),
        "name_run": pd.Series(dtype=np.uint32),
        "family_run": pd.Series(dtype=np.uint32),
    }
)


@dataclass(frozen=True)
class MissingIdRule:
    """When a pair in which one record has no usable ID is a duplicate (config/national.json
    ``missing_id``). With ``needs_guardian`` off: when the name or a reading met (the issue's
    literal rule). Else when the readings of name and guardian, sex, birth date and the
    household's county met (``family_county``); or its province (``family``) while the name or
    reading they met on is held by at most ``name_run_at_most`` records nationally and the
    family token by at most ``family_run_at_most``."""

    needs_guardian: bool = True
    name_run_at_most: int = 2
    family_run_at_most: int = 2


# --- per token partition -------------------------------------------------------------------------


def _ranges(
    left: np.ndarray, first: np.ndarray, count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(l, r) for every l in ``left`` and r in [first, first + count) of it."""
    count = np.maximum(count, 0)
    total = int(count.sum())
    lefts = np.repeat(left, count)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    return lefts, np.repeat(first, count) + offsets


def _or_by_pair(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (a, b): bits ORed, the smallest run sizes, states kept."""
    if frame.empty:
        return PAIR_META.copy()
    a, b = frame["a"].to_numpy(), frame["b"].to_numpy()
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    first = np.flatnonzero(np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])])
    bits = np.bitwise_or.reduceat(frame["bits"].to_numpy()[order], first)
    runs = {
        c: np.minimum.reduceat(frame[c].to_numpy()[order], first).astype(np.uint32)
        for c in ("name_run", "family_run")
    }
    return pd.DataFrame(
        {
            "a": a[first],
            "b": b[first],
            "bits": bits.astype(np.uint8),
            "state_a": frame["state_a"].to_numpy()[order][first],
            "state_b": frame["state_b"].to_numpy()[order][first],
            **runs,
        }
    )


def pairs_in_partition(
    tokens: pd.DataFrame, block_cap: int = BLOCK_CAP
) -> tuple[pd.DataFrame, dict]:
    """Candidate pairs (a < b, different provinces, with the bits that met) of one partition of
    token rows holding every row of each of its tokens, and the partition's figures."""
    n = len(tokens)
    stats = {
        "token_rows": n,
        "rows_by_kind": np.bincount(tokens["kind"].to_numpy(), minlength=len(KIND_NAMES)).tolist(),
        "runs_shared": 0,
        "largest_run": 0,
        "capped_runs": 0,
        "capped_rows_by_kind": [0] * len(KIND_NAMES),
        "candidate_pairs": 0,
    }
    if n == 0:
        return PAIR_META.copy(), stats
    hi, lo = tokens["hi"].to_numpy(), tokens["lo"].to_numpy()
    order = np.lexsort((lo, hi))
    hi, lo = hi[order], lo[order]
    kind = tokens["kind"].to_numpy()[order]
    rid = tokens["rid"].to_numpy()[order]
    state = tokens["state"].to_numpy()[order]
    new_run = np.r_[True, (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])]
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], n]
    size = ends - starts
    run_of = np.cumsum(new_run) - 1
    capped = size > block_cap
    stats["runs_shared"] = int((size >= 2).sum())
    stats["largest_run"] = int(size.max())
    stats["capped_runs"] = int(capped.sum())
    stats["capped_rows_by_kind"] = np.bincount(
        kind[capped[run_of]], minlength=len(KIND_NAMES)
    ).tolist()
    member = ((size >= 2) & ~capped)[run_of]
    position = np.arange(n, dtype=np.int64)
    run_start, run_end = starts[run_of], ends[run_of]
    id_space = kind <= KIND_NEAR  # id and near tokens share one message space
    # ID space: every pair of the run.
    left = position[member & id_space]
    l1, r1 = _ranges(left, left + 1, run_end[left] - left - 1)
    # Name space: pairs with a record lacking a valid ID (a pair of two such records once).
    left = position[member & ~id_space & (state != ID_VALID)]
    l2, r2 = _ranges(left, run_start[left], run_end[left] - run_start[left])
    keep = (r2 != l2) & ((state[r2] == ID_VALID) | (r2 > l2))
    lp = np.concatenate([l1, l2[keep]])
    rp = np.concatenate([r1, r2[keep]])
    other = (rid[lp] >> ROW_BITS) != (rid[rp] >> ROW_BITS)
    lp, rp = lp[other], rp[other]
    both_id = (kind[lp] == KIND_ID) & (kind[rp] == KIND_ID)
    bits = np.where(kind[lp] <= KIND_NEAR, np.where(both_id, BIT_ID, BIT_NEAR), _KIND_BIT[kind[lp]])
    bits = bits.astype(np.uint8)
    met = size[run_of[lp]].astype(np.uint32)
    swap = rid[lp] > rid[rp]
    a_at, b_at = np.where(swap, rp, lp), np.where(swap, lp, rp)
    pairs = _or_by_pair(
        pd.DataFrame(
            {
                "a": rid[a_at],
                "b": rid[b_at],
                "bits": bits,
                "state_a": state[a_at],
                "state_b": state[b_at],
                "name_run": np.where(
                    (kind[lp] == KIND_NAME) | (kind[lp] == KIND_READING), met, NOT_MET
                ),
                "family_run": np.where(kind[lp] == KIND_FAMILY, met, NOT_MET),
            }
        )
    )
    stats["candidate_pairs"] = len(pairs)
    return pairs, stats


# --- decisions ------------------------------------------------------------------------------------


def decide(pairs: pd.DataFrame, rule: MissingIdRule | None = None) -> pd.DataFrame:
    """The duplicates among candidate pairs holding every row of each of their pairs: a, b,
    bits, match_class (CLASS_ID / CLASS_NAME), file (province) indexes of a and b.

    A pair is a duplicate when the ID tokens met; or when a reading of the name met (the name,
    reading or family tokens) and the typo neighbours met; or when one record has no usable ID
    and ``rule`` says so."""
    rule = rule or MissingIdRule()
    pairs = _or_by_pair(pairs)
    bits = pairs["bits"].to_numpy()
    missing = (pairs["state_a"].to_numpy() == ID_NONE) | (pairs["state_b"].to_numpy() == ID_NONE)
    named = (bits & _NAMED) > 0
    if rule.needs_guardian:
        rare = (pairs["name_run"].to_numpy() <= rule.name_run_at_most) & (
            pairs["family_run"].to_numpy() <= rule.family_run_at_most
        )
        by_county = (bits & BIT_FAMILY_COUNTY) > 0
        missing &= by_county | (((bits & BIT_FAMILY) > 0) & rare)
    else:
        missing &= (bits & (BIT_NAME | BIT_READING)) > 0
    by_id = (bits & BIT_ID) > 0
    by_name = named & (((bits & BIT_NEAR) > 0) | missing)
    chosen = pairs[by_id | by_name]
    return pd.DataFrame(
        {
            "a": chosen["a"].to_numpy(),
            "b": chosen["b"].to_numpy(),
            "bits": chosen["bits"].to_numpy(),
            "match_class": np.where(by_id[by_id | by_name], CLASS_ID, CLASS_NAME).astype(np.int8),
            "file_a": (chosen["a"].to_numpy() >> ROW_BITS).astype(np.int16),
            "file_b": (chosen["b"].to_numpy() >> ROW_BITS).astype(np.int16),
        }
    )


DECIDED_META = decide(PAIR_META)


def match_keys(bits: np.ndarray) -> np.ndarray:
    """The kinds that met, joined by '+' (id+name+reading)."""
    table = np.array(
        ["+".join(name for bit, name in BITS if mask & bit) for mask in range(1 << len(BITS))],
        dtype=object,
    )
    return table[np.asarray(bits, dtype=np.int64) & ((1 << len(BITS)) - 1)]
