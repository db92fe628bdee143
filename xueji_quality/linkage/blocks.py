"""Pairs within blocks: the integer machinery every blocking pass shares.

A pass gives each record an int64 key (-1: takes no part); records sharing a key form a block,
and a block's members are paired. Blocks larger than a cap are either left unexpanded or, given
orders, sub-blocked by sorted neighbourhood. Pairs are integer positions (a < b), never labels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from xueji_quality.linkage.records import CHUNK_ROWS


def expand(source: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, q) for every p in ``source`` and q in [low, high) of it."""
    count = np.maximum(high - low, 0)
    total = int(count.sum())
    left = np.repeat(source, count)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    return left, np.repeat(low, count) + offsets


def _window_pairs(
    block: np.ndarray, left: np.ndarray | None, width: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of sorted positions in one block id run: within ``width`` places (None: all).

    ``block`` holds the block number of each sorted position (runs). With ``left`` only pairs
    with at least one left member are formed, from the left members' side.
    """
    m = len(block)
    position = np.arange(m, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]]) if m else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, m])
    start = np.repeat(starts, sizes)
    end = start + np.repeat(sizes, sizes)
    if left is None:
        high = end if width is None else np.minimum(end, position + width)
        return expand(position, position + 1, high)
    source = np.flatnonzero(left)
    low, high = start[source], end[source]
    if width is not None:
        low = np.maximum(low, source - width + 1)
        high = np.minimum(high, source + width)
    p, q = expand(source, low, high)
    keep = (q != p) & ~(left[q] & (q < p))  # a pair of two left members is formed once
    return p[keep], q[keep]


def _shared_values(values: np.ndarray) -> np.ndarray:
    """The values that occur more than once (sorted)."""
    values.sort()
    repeated = values[1:][values[1:] == values[:-1]]
    return np.unique(repeated)


def _isin(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """values in wanted (a small set), by hashing, a slice of rows at a time."""
    out = np.zeros(len(values), dtype=bool)
    if len(wanted) == 0:
        return out
    index = pd.Index(wanted)
    for start in range(0, len(values), CHUNK_ROWS):
        part = values[start : start + CHUNK_ROWS]
        out[start : start + len(part)] = index.get_indexer(part) >= 0
    return out


def sub_block_window(cap: int, budget: int | None, members: int, orders: int) -> int:
    """Sorted-neighbourhood window of a pass's oversized blocks: the cap, narrowed so that the
    pass forms about ``budget`` pairs there at most.

    A roster whose names, dates or guardians are mostly placeholders puts most of its records
    into a few giant blocks; a window of the cap would pair each with a thousand neighbours per
    order (a billion pairs for a million records) before any agreement is checked.
    """
    if budget is None or members == 0:
        return cap
    return int(max(2, min(cap, budget // (members * max(orders, 1)))))


def pairs_in_blocks(
    keys: np.ndarray,
    cap: int,
    rows: np.ndarray | None = None,
    *,
    left: np.ndarray | None = None,
    orders: tuple[np.ndarray, ...] | list[np.ndarray] | None = None,
    pair_budget: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All pairs of positions sharing a key (keys < 0 take no part).

    ``rows`` maps each key to its roster position (default: the key's own index). With ``left``
    (a mask over the keys) only pairs with at least one left member are formed. Blocks above
    ``cap`` are not expanded, unless ``orders`` is given: then each block above the cap is sorted
    on each order array in turn and a member is paired with the members less than ``cap`` places
    away in that order (sorted neighbourhood; fewer places when ``pair_budget`` asks for it, see
    :func:`sub_block_window`). Returns (a, b, oversized_keys, oversized_sizes) with a < b.
    """
    keys = np.asarray(keys, dtype=np.int64)
    used = keys >= 0
    if left is not None:
        left = np.asarray(left, dtype=bool)
        wanted = np.unique(keys[used & left])  # blocks holding at least one left member
    else:
        wanted = _shared_values(keys[used])  # (a copy, sorted in place)
    used &= _isin(keys, wanted)
    index = np.flatnonzero(used)
    del used
    empty = np.zeros(0, dtype=np.int64)
    if len(index) == 0:
        return empty, empty, empty, empty
    order = index[np.argsort(keys[index], kind="stable")]
    del index
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_keys)])
    size_of = np.repeat(sizes, sizes)
    small = (size_of >= 2) & (size_of <= cap)
    parts_p, parts_q = [], []

    chosen = order[small]
    p, q = _window_pairs(sorted_keys[small], None if left is None else left[chosen], None)
    parts_p.append(chosen[p])
    parts_q.append(chosen[q])

    big = size_of > cap
    if orders is not None and big.any():
        members, member_keys = order[big], sorted_keys[big]
        width = sub_block_window(cap, pair_budget, len(members), len(orders))
        for extra in orders:
            arranged = np.lexsort((members, extra[members], member_keys))
            m = members[arranged]
            p, q = _window_pairs(member_keys[arranged], None if left is None else left[m], width)
            parts_p.append(m[p])
            parts_q.append(m[q])

    source = np.arange(len(keys), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    a = source[np.concatenate(parts_p)]
    b = source[np.concatenate(parts_q)]
    keep = a != b
    a, b = a[keep], b[keep]
    oversized = sizes > cap
    return (
        np.minimum(a, b),
        np.maximum(a, b),
        sorted_keys[starts[oversized]],
        sizes[oversized],
    )


def rows_where(n: int, condition: Callable[[slice], np.ndarray]) -> np.ndarray:
    """Positions where ``condition(slice)`` is true, evaluated a slice of rows at a time (no
    roster-length temporaries)."""
    parts = [
        start + np.flatnonzero(condition(slice(start, min(start + CHUNK_ROWS, n))))
        for start in range(0, n, CHUNK_ROWS)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def match_values(
    left_rows: np.ndarray, left_values: np.ndarray, right_values: np.ndarray, right_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (left row, right position) with equal int64 values (>= 0); the right side is every
    position of ``right_values`` where ``right_mask`` holds."""
    keep = left_values >= 0
    left_rows, left_values = np.asarray(left_rows)[keep], np.asarray(left_values)[keep]
    wanted = pd.Index(np.unique(left_values))
    # The few right positions that can match, found a slice at a time.
    right_rows = rows_where(
        len(right_values),
        lambda rows: right_mask[rows] & (wanted.get_indexer(right_values[rows]) >= 0),
    )
    right_values = right_values[right_rows]
    order = np.argsort(right_values, kind="stable")
    right_rows, right_values = right_rows[order], right_values[order]
    low = np.searchsorted(right_values, left_values, side="left")
    high = np.searchsorted(right_values, left_values, side="right")
    a, position = expand(left_rows, low, high)
    b = right_rows[position]
    return np.minimum(a, b), np.maximum(a, b)
