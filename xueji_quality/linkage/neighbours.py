"""Neighbour search among ID numbers failing their check (the id_neighbour pass's keys).

A single substitution or a swap of two adjacent characters always breaks the MOD 11-2 check, so
an ID failing it is most likely one edit away from the number meant:

- ``one_edit_valid_neighbours``: every valid number one edit away (at most 17 substitutions,
  the right check character, 17 swaps: ``iso7064.one_edit_valid_neighbours``), looked up among
  the valid IDs of the roster;
- ``masked_position``: two failing IDs equal but for one position (18 keys per ID);
- ``adjacent_pair_canonical``: two failing IDs equal once one adjacent pair is put in ascending
  order (17 keys per ID).

Valid IDs are never neighbour-matched with each other: two valid, different numbers are two
people.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from xueji_quality.linkage.blocks import match_values
from xueji_quality.linkage.records import Records
from xueji_quality.standards import iso7064, resident_id

PLACE = resident_id.PLACE


def valid_neighbour_pairs(records: Records, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a < b) of a record at ``rows`` (IDs failing their check) and a record whose valid
    ID is one edit away from its ID."""
    made_for, made = iso7064.one_edit_valid_neighbours(records.digits(rows))
    values = resident_id.digits_to_values(made)
    return match_values(rows[made_for], values, records.id_value, records.id_valid)


def masked_position_keys(
    values: np.ndarray, digits: np.ndarray
) -> Iterator[tuple[str, np.ndarray]]:
    """(label, key per ID) for each of the 18 positions masked."""
    d = digits.astype(np.int64)
    for k in range(18):
        yield f"第{k + 1}位掩码", values - d[:, k] * PLACE[k]


def adjacent_pair_keys(values: np.ndarray, digits: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """(label, key per ID) for each of the 17 adjacent pairs put in ascending order."""
    d = digits.astype(np.int64)
    for k in range(17):
        low, high = np.minimum(d[:, k], d[:, k + 1]), np.maximum(d[:, k], d[:, k + 1])
        canonical = values - d[:, k] * PLACE[k] - d[:, k + 1] * PLACE[k + 1]
        yield f"第{k + 1}、{k + 2}位互换", canonical + low * PLACE[k] + high * PLACE[k + 1]


KEY_FAMILIES = {
    "masked_position": masked_position_keys,
    "adjacent_pair_canonical": adjacent_pair_keys,
}
