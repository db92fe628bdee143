"""Joins of the police check as sorted integer look-ups.

An ID number is one int64 (``standards.resident_id.digits_to_values``: 17 digits, then the check
value in base 11), a request number the uint64 it spells; a table's keys are sorted once
(``KeyIndex``) and every look-up is a ``searchsorted`` over a whole column. That is several times
faster than hashing 18-character strings for a join of a million roster rows with a registry of
1.3 million, and it gives every match, so a number the registry holds twice is seen as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xueji_quality.standards import resident_id

NO_KEY = -1


def id_values(numbers: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 value of each ID number, ``NO_KEY`` where it has no ID shape; its digit matrix)."""
    digits, shaped = resident_id.digit_matrix(numbers)
    values = resident_id.digits_to_values(digits)
    values[~shaped] = NO_KEY
    return values, digits


@dataclass(frozen=True)
class KeyIndex:
    """The keys of a table, sorted: ``order`` maps sorted positions back to table rows (None:
    the table is in key order)."""

    order: np.ndarray | None
    keys: np.ndarray


def key_index(keys: np.ndarray) -> KeyIndex:
    order = np.argsort(keys, kind="stable")
    return KeyIndex(order, keys[order])


def _bounds(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``searchsorted`` left and right of each key. The keys are looked up in their own sorted
    order: each search then starts where the last ended, which on a table of tens of millions
    of keys is several times faster than searching in a random order."""
    order = np.argsort(keys)
    ascending = keys[order]
    lo = np.empty(len(keys), dtype=np.int64)
    hi = np.empty(len(keys), dtype=np.int64)
    lo[order] = np.searchsorted(sorted_keys, ascending, side="left")
    hi[order] = np.searchsorted(sorted_keys, ascending, side="right")
    return lo, hi


def matches(
    index: KeyIndex, keys: np.ndarray, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (position in ``keys``, row of the indexed table) with equal keys, in the
    order of ``keys`` and, for one key, of the table's rows; keys equal to ``NO_KEY``, or
    outside ``valid``, match nothing."""
    lo, hi = _bounds(index.keys, keys)
    usable = keys != NO_KEY if valid is None else valid
    count = np.where(usable, hi - lo, 0)
    left = np.repeat(np.arange(len(keys)), count)
    offset = np.arange(len(left)) - np.repeat(np.cumsum(count) - count, count)
    sorted_rows = np.repeat(lo, count) + offset
    return left, sorted_rows if index.order is None else index.order[sorted_rows]
